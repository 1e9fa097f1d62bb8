import { z } from "zod";
import { UserError } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition } from "../../../../src/sdk/index.js";
import { isLive, scheduledDeletion, type KeyMetadata, type KvConfig } from "../key-metadata.js";
import { KvStore, secretPath } from "../storage.js";

/** Vault's comma-int-slice: `[1, 2]`, `["1", "2"]`, `"1,2"` or `1`. */
const versionList = z
  .union([z.array(z.union([z.number(), z.string()])), z.number(), z.string()])
  .transform((raw, ctx) => {
    const items = Array.isArray(raw) ? raw : typeof raw === "number" ? [raw] : raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
    const out: number[] = [];
    for (const item of items) {
      const n = typeof item === "number" ? item : Number(item.trim());
      if (!Number.isInteger(n) || (typeof item === "string" && item.trim() === "")) {
        ctx.addIssue({ code: "custom", message: `expected a list of integers, got ${JSON.stringify(item)}` });
        return z.NEVER;
      }
      out.push(n);
    }
    return out;
  });

const schema = z.object({ versions: versionList.optional() });
type Input = z.infer<typeof schema>;

type Change = (meta: KeyMetadata, version: number, store: KvStore, path: string, config: KvConfig) => Promise<void> | void;

/**
 * delete, undelete and destroy share one shape: a list of versions, applied under the key's lock
 * to the versions that still exist; 204 whether or not anything changed (also for a missing key).
 */
function versionsHandler(change: Change) {
  return async (req: HandlerRequest<Input>): Promise<void> => {
    const path = secretPath(req.params.path);
    const versions = req.data.versions ?? [];
    if (versions.length === 0) throw new UserError("No version number provided");
    const store = new KvStore(req.storage);
    const config = await store.config();
    await store.lockKey(path, async () => {
      const meta = await store.metadata(path);
      if (!meta) return;
      for (const n of new Set(versions)) {
        if (meta.versions[n]) await change(meta, n, store, path, config);
      }
      await store.putMetadata(path, meta);
    });
  };
}

const softDelete: Change = (meta, n) => {
  const v = meta.versions[n];
  if (isLive(v)) v.deletionTime = Date.now();
};

/** Restores a soft-deleted version; with delete_version_after set, its clock starts again from now. */
const undelete: Change = (meta, n, _store, _path, config) => {
  const v = meta.versions[n];
  if (v.destroyed) return;
  v.deletionTime = scheduledDeletion(Date.now(), meta, config);
};

/** Removes the version's data for good; the metadata keeps a `destroyed` marker, as Vault does. */
const destroy: Change = async (meta, n, store, path) => {
  const v = meta.versions[n];
  if (v.destroyed) return;
  // Data first: a crash before the metadata write leaves a version that reads as not found,
  // never one marked destroyed whose ciphertext is still stored.
  await store.deleteVersionData(path, n);
  v.destroyed = true;
};

function versionsPath(verb: string, change: Change, summary: string): PathDefinition {
  return {
    pattern: `${verb}/(?<path>.+)`,
    operations: { update: { schema, handler: versionsHandler(change), summary } },
  };
}

export function versionPaths(): PathDefinition[] {
  return [
    versionsPath("delete", softDelete, "Soft-delete versions of a secret."),
    versionsPath("undelete", undelete, "Restore soft-deleted versions of a secret."),
    versionsPath("destroy", destroy, "Permanently remove the data of versions of a secret."),
  ];
}
