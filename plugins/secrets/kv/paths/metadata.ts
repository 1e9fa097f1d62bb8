import { z } from "zod";
import { NotFound, UserError, zBool, zDuration, zInt, zStringMap } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { keyMetadataResponse, newKeyMetadata, type KeyMetadata, type KvConfig } from "../key-metadata.js";
import { KvStore, listPrefix, secretPath } from "../storage.js";
import { keyExists } from "./data.js";

const settings = {
  max_versions: zInt.optional(),
  cas_required: zBool.optional(),
  delete_version_after: zDuration.optional(),
};

const writeSchema = z.object({
  ...settings,
  custom_metadata: zStringMap.nullish(),
});

const patchSchema = z.object({
  ...settings,
  // In a merge patch a null value removes that entry, and a null map removes them all.
  custom_metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).nullish(),
});

type Settings = { max_versions?: number; cas_required?: boolean; delete_version_after?: number };

// Vault's limits on custom_metadata.
const MAX_CUSTOM_METADATA_KEYS = 64;
const MAX_CUSTOM_METADATA_KEY_BYTES = 128;
const MAX_CUSTOM_METADATA_VALUE_BYTES = 512;
const PREFIX = "custom_metadata validation failed";
// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;

/** Checks custom_metadata against Vault's limits; every problem becomes one message. */
export function validateCustomMetadata(custom: Record<string, string>): void {
  const keys = Object.keys(custom);
  if (keys.length > MAX_CUSTOM_METADATA_KEYS) {
    throw new UserError(`${PREFIX}: payload must contain at most ${MAX_CUSTOM_METADATA_KEYS} keys, provided ${keys.length}`);
  }
  const problems: string[] = [];
  for (const key of keys) {
    const value = custom[key];
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    if (keyBytes === 0 || keyBytes > MAX_CUSTOM_METADATA_KEY_BYTES) {
      problems.push(`${PREFIX}: length of key ${JSON.stringify(key)} is ${keyBytes} but must be 0 < len(key) <= ${MAX_CUSTOM_METADATA_KEY_BYTES}`);
    }
    if (valueBytes === 0 || valueBytes > MAX_CUSTOM_METADATA_VALUE_BYTES) {
      problems.push(`${PREFIX}: length of value for key ${JSON.stringify(key)} is ${valueBytes} but must be 0 < len(value) <= ${MAX_CUSTOM_METADATA_VALUE_BYTES}`);
    }
    if (!PRINTABLE.test(key)) problems.push(`${PREFIX}: key ${JSON.stringify(key)} contains unprintable characters`);
    if (!PRINTABLE.test(value)) problems.push(`${PREFIX}: value for key ${JSON.stringify(key)} contains unprintable characters`);
  }
  if (problems.length) throw new UserError(problems[0], problems.slice(1));
}

function checkSettings(s: Settings): void {
  if (s.max_versions !== undefined && s.max_versions < 0) throw new UserError("max_versions must not be negative");
}

function applySettings(meta: KeyMetadata, s: Settings): void {
  if (s.max_versions !== undefined) meta.maxVersions = s.max_versions;
  if (s.cas_required !== undefined) meta.casRequired = s.cas_required;
  if (s.delete_version_after !== undefined) meta.deleteVersionAfter = s.delete_version_after;
}

/** Vault accepts cas_required=false on a key while the mount requires cas, and says it is moot. */
function casWarnings(s: Settings, config: KvConfig): string[] {
  return s.cas_required === false && config.casRequired
    ? ['"cas_required" set to false, but is mandated by backend config. This value will be ignored.']
    : [];
}

async function readMetadata(req: HandlerRequest): Promise<HandlerResponse> {
  const path = secretPath(req.params.path);
  const meta = await new KvStore(req.storage).metadata(path);
  if (!meta) throw new NotFound();
  return { data: keyMetadataResponse(meta) };
}

/** Creates or updates a key's settings without writing a version; only the fields sent change. */
async function writeMetadata(req: HandlerRequest<z.infer<typeof writeSchema>>): Promise<HandlerResponse | void> {
  const path = secretPath(req.params.path);
  const { custom_metadata: custom, ...s } = req.data;
  // Like Vault, a write that sets nothing does not create the key either.
  if (Object.values(s).every((v) => v === undefined) && (custom === undefined || custom === null)) return;
  checkSettings(s);
  if (custom) validateCustomMetadata(custom);
  const store = new KvStore(req.storage);
  const config = await store.config();
  await store.lockKey(path, async () => {
    const meta = (await store.metadata(path)) ?? newKeyMetadata(Date.now());
    applySettings(meta, s);
    if (custom) meta.customMetadata = custom;
    await store.putMetadata(path, meta);
  });
  const warnings = casWarnings(s, config);
  return warnings.length ? { warnings } : undefined;
}

/** JSON merge patch of an existing key's settings; custom_metadata merges entry by entry. */
async function patchMetadata(req: HandlerRequest<z.infer<typeof patchSchema>>): Promise<HandlerResponse | void> {
  const path = secretPath(req.params.path);
  const { custom_metadata: customPatch, ...s } = req.data;
  checkSettings(s);
  const store = new KvStore(req.storage);
  const config = await store.config();
  await store.lockKey(path, async () => {
    const meta = await store.metadata(path);
    if (!meta) throw new NotFound();
    applySettings(meta, s);
    if (customPatch === null) {
      meta.customMetadata = null;
    } else if (customPatch !== undefined) {
      const merged = new Map(Object.entries(meta.customMetadata ?? {}));
      for (const [key, value] of Object.entries(customPatch)) {
        if (value === null) merged.delete(key);
        else merged.set(key, String(value));
      }
      const custom = Object.fromEntries(merged);
      validateCustomMetadata(custom);
      meta.customMetadata = custom;
    }
    await store.putMetadata(path, meta);
  });
  const warnings = casWarnings(s, config);
  return warnings.length ? { warnings } : undefined;
}

/** Removes the key: every version's data, then the metadata. 204 even when there was no such key. */
async function deleteKey(req: HandlerRequest): Promise<void> {
  const path = secretPath(req.params.path);
  const store = new KvStore(req.storage);
  await store.lockKey(path, async () => {
    const meta = await store.metadata(path);
    const versions = new Set([...Object.keys(meta?.versions ?? {}).map(Number), ...(await store.storedVersions(path))]);
    for (const n of versions) await store.deleteVersionData(path, n);
    if (meta) await store.deleteMetadata(path);
  });
}

async function listKeys(req: HandlerRequest): Promise<HandlerResponse> {
  const keys = await new KvStore(req.storage).listKeys(listPrefix(req.params.path));
  if (keys.length === 0) throw new NotFound();
  return { data: { keys } };
}

export function metadataPath(): PathDefinition {
  return {
    pattern: "metadata(?:/(?<path>.*))?",
    existenceCheck: keyExists,
    operations: {
      read: { handler: readMetadata, summary: "Read a key's metadata and the state of each version." },
      create: { schema: writeSchema, handler: writeMetadata, summary: "Create a key's metadata or update its settings." },
      update: { schema: writeSchema, handler: writeMetadata, summary: "Create a key's metadata or update its settings." },
      patch: { schema: patchSchema, handler: patchMetadata, summary: "Merge-patch a key's settings and custom metadata." },
      delete: { handler: deleteKey, summary: "Delete a key with all its versions." },
      list: { handler: listKeys, summary: "List the keys and folders under a folder." },
    },
  };
}
