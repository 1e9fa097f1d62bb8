import type { StorageView } from "../../../src/sdk/index.js";
import { DEFAULT_CONFIG, addVersion, newKeyMetadata } from "./key-metadata.js";
import { KvStore, type SecretData } from "./storage.js";

/**
 * Tuning a KV version 1 mount to `version=2` (Vault upgrades in place): every secret becomes
 * version 1 of the same key, created now, with no custom metadata. Reads from `source`, laid out
 * as version 1 (one entry per secret at its own path), and writes `target` as version 2. The
 * mount table switches to `target` only once this has returned, so a key is never half-converted.
 */
export async function upgradeV1ToV2(source: StorageView, target: StorageView): Promise<void> {
  const store = new KvStore(target);
  const now = Date.now();
  const walk = async (prefix: string): Promise<void> => {
    for (const child of await source.list(prefix)) {
      // A name can be a secret and a folder at once (`a` and `a/b`): list gives both entries.
      if (child.endsWith("/")) {
        await walk(prefix + child);
        continue;
      }
      const path = prefix + child;
      const data = await source.getJSON<SecretData>(path);
      if (data === undefined) continue;
      const meta = newKeyMetadata(now);
      const { version } = addVersion(meta, DEFAULT_CONFIG, now);
      await store.putVersionData(path, version, data);
      await store.putMetadata(path, meta);
    }
  };
  await walk("");
}
