import { z } from "zod";
import { CheckAndSetMismatch, NotFound, UserError, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { addVersion, isLive, newKeyMetadata, versionResponse, type KeyMetadata, type KvConfig } from "../key-metadata.js";
import { isPlainObject, mergePatch } from "../merge-patch.js";
import { KvStore, secretPath, type SecretData } from "../storage.js";

const secretData = z.custom<SecretData>(isPlainObject, { message: "expected a JSON object" });

const readSchema = z.object({
  version: zInt.optional(),
});

const writeSchema = z.object({
  data: secretData.nullish(),
  options: z.object({ cas: zInt.nullish() }).nullish(),
});
type WriteInput = z.infer<typeof writeSchema>;

/**
 * Vault answers a read of a deleted or destroyed version with 404 and still sends the version's
 * metadata in the body, so clients can tell "deleted" from "never existed".
 */
export function notFoundWith(data: Record<string, unknown>): HandlerResponse {
  return { status: 404, data };
}

/** `options.cas`: absent passes unless cas_required (key or mount); otherwise it must equal the current version (0 = key must not exist). */
export function checkAndSet(cas: number | null | undefined, config: KvConfig, meta: KeyMetadata): void {
  if (cas !== undefined && cas !== null) {
    if (cas !== meta.currentVersion) throw new CheckAndSetMismatch("check-and-set parameter did not match the current version");
  } else if (config.casRequired || meta.casRequired) {
    throw new UserError("check-and-set parameter required for this call");
  }
}

/** Stores `data` as the next version of `path` and prunes what falls outside max_versions. Runs under the key's lock. */
async function appendVersion(store: KvStore, path: string, meta: KeyMetadata, config: KvConfig, data: SecretData, now: number) {
  const { version, pruned } = addVersion(meta, config, now);
  await store.putVersionData(path, version, data);
  // Pruned data goes before the metadata is rewritten: a crash in between leaves metadata naming
  // versions whose data is gone (they read as not found), never data that no metadata names.
  for (const n of pruned) await store.deleteVersionData(path, n);
  await store.putMetadata(path, meta);
  return versionResponse(meta, version);
}

/**
 * Loads one version of a secret (the current one unless `requested` > 0): its metadata, and its
 * data when the version is live (null when deleted or destroyed). Unknown keys and versions are 404.
 */
export async function loadVersion(req: HandlerRequest, requested: number | undefined): Promise<{ metadata: Record<string, unknown>; data: SecretData | null }> {
  const path = secretPath(req.params.path);
  const store = new KvStore(req.storage);
  const meta = await store.metadata(path);
  if (!meta) throw new NotFound();
  const version = requested && requested > 0 ? requested : meta.currentVersion;
  const state = meta.versions[version];
  if (!state) throw new NotFound();
  const metadata = versionResponse(meta, version);
  if (!isLive(state)) return { metadata, data: null };
  const data = await store.versionData(path, version);
  if (!data) throw new NotFound();
  return { metadata, data };
}

async function readVersion(req: HandlerRequest<z.infer<typeof readSchema>>): Promise<HandlerResponse> {
  const { metadata, data } = await loadVersion(req, req.data.version);
  if (!data) return notFoundWith({ data: null, metadata });
  return { data: { data, metadata } };
}

async function writeVersion(req: HandlerRequest<WriteInput>): Promise<HandlerResponse> {
  const path = secretPath(req.params.path);
  const data = req.data.data;
  if (data === null || data === undefined) throw new UserError("no data provided");
  const store = new KvStore(req.storage);
  const config = await store.config();
  return store.lockKey(path, async () => {
    const now = Date.now();
    const meta = (await store.metadata(path)) ?? newKeyMetadata(now);
    checkAndSet(req.data.options?.cas, config, meta);
    return { data: await appendVersion(store, path, meta, config, data, now) };
  });
}

async function patchVersion(req: HandlerRequest<WriteInput>): Promise<HandlerResponse> {
  const path = secretPath(req.params.path);
  const patch = req.data.data;
  if (patch === null || patch === undefined) throw new UserError("no data provided");
  const store = new KvStore(req.storage);
  const config = await store.config();
  return store.lockKey(path, async () => {
    const meta = await store.metadata(path);
    if (!meta) throw new NotFound();
    checkAndSet(req.data.options?.cas, config, meta);
    const current = meta.versions[meta.currentVersion];
    if (!current) throw new NotFound();
    if (!isLive(current)) return notFoundWith(versionResponse(meta, meta.currentVersion));
    const existing = await store.versionData(path, meta.currentVersion);
    if (!existing) throw new NotFound();
    const patched = mergePatch(existing, patch) as SecretData;
    return { data: await appendVersion(store, path, meta, config, patched, Date.now()) };
  });
}

/** Soft-deletes the latest version; 204 whether or not there was anything to delete. */
async function deleteLatest(req: HandlerRequest): Promise<void> {
  const path = secretPath(req.params.path);
  const store = new KvStore(req.storage);
  await store.lockKey(path, async () => {
    const meta = await store.metadata(path);
    const latest = meta?.versions[meta.currentVersion];
    if (!meta || !latest || !isLive(latest)) return;
    latest.deletionTime = Date.now();
    await store.putMetadata(path, meta);
  });
}

/** A key exists once it has metadata, so the first write to a path is `create` for the ACL. */
export async function keyExists(req: HandlerRequest): Promise<boolean> {
  let path: string;
  try {
    path = secretPath(req.params.path);
  } catch {
    return false;
  }
  return (await new KvStore(req.storage).metadata(path)) !== undefined;
}

export function dataPath(): PathDefinition {
  return {
    pattern: "data/(?<path>.+)",
    existenceCheck: keyExists,
    operations: {
      read: { schema: readSchema, handler: readVersion, summary: "Read the latest (or the given) version of a secret." },
      create: { schema: writeSchema, handler: writeVersion, summary: "Write a new version of a secret." },
      update: { schema: writeSchema, handler: writeVersion, summary: "Write a new version of a secret." },
      patch: { schema: writeSchema, handler: patchVersion, summary: "Merge-patch the latest version into a new version." },
      delete: { handler: deleteLatest, summary: "Soft-delete the latest version." },
    },
  };
}
