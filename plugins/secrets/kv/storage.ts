import { UserError, type StorageView } from "../../../src/sdk/index.js";
import { DEFAULT_CONFIG, type KeyMetadata, type KvConfig } from "./key-metadata.js";

/**
 * Where a KV version 2 mount keeps things, inside its storage view:
 *
 *   config                 engine settings
 *   meta/<path>            one key's metadata (versions, settings, custom metadata)
 *   versions/<path>/<n>    the data of version n
 *
 * `meta/` mirrors the secret tree, so `LIST metadata/<prefix>/` is one storage list and never
 * decrypts a value. Version data lives apart from metadata so that destroying a version deletes
 * its ciphertext rather than leaving it inside a larger record.
 */
const CONFIG_KEY = "config";
const META_PREFIX = "meta/";
const VERSIONS_PREFIX = "versions/";

export type SecretData = Record<string, unknown>;

/** The storage side of a KV v2 mount; every handler builds one around `req.storage`. */
export class KvStore {
  constructor(private readonly storage: StorageView) {}

  async config(): Promise<KvConfig> {
    return { ...DEFAULT_CONFIG, ...(await this.storage.getJSON<Partial<KvConfig>>(CONFIG_KEY)) };
  }

  putConfig(config: KvConfig): Promise<void> {
    return this.storage.putJSON(CONFIG_KEY, config);
  }

  /** Serialises read-modify-write of the engine config. */
  lockConfig<T>(fn: () => Promise<T>): Promise<T> {
    return this.storage.withLock(CONFIG_KEY, fn);
  }

  metadata(path: string): Promise<KeyMetadata | undefined> {
    return this.storage.getJSON<KeyMetadata>(META_PREFIX + path);
  }

  putMetadata(path: string, meta: KeyMetadata): Promise<void> {
    return this.storage.putJSON(META_PREFIX + path, meta);
  }

  deleteMetadata(path: string): Promise<void> {
    return this.storage.delete(META_PREFIX + path);
  }

  versionData(path: string, version: number): Promise<SecretData | undefined> {
    return this.storage.getJSON<SecretData>(versionKey(path, version));
  }

  putVersionData(path: string, version: number, data: SecretData): Promise<void> {
    return this.storage.putJSON(versionKey(path, version), data);
  }

  deleteVersionData(path: string, version: number): Promise<void> {
    return this.storage.delete(versionKey(path, version));
  }

  /**
   * Version numbers that have data in storage, whether or not the metadata still lists them
   * (a write interrupted between its two puts leaves such an orphan).
   */
  async storedVersions(path: string): Promise<number[]> {
    const children = await this.storage.list(`${VERSIONS_PREFIX}${path}/`);
    // `versions/a/1` is version 1 of `a`; `versions/a/1/` is the folder of the key `a/1`.
    return children.filter((c) => /^\d+$/.test(c)).map(Number);
  }

  /** Immediate children of a folder of keys: names, and sub-folders ending with `/`. */
  listKeys(prefix: string): Promise<string[]> {
    return this.storage.list(META_PREFIX + prefix);
  }

  /** Serialises every read-modify-write of one key (writes, cas, deletes, metadata). */
  lockKey<T>(path: string, fn: () => Promise<T>): Promise<T> {
    return this.storage.withLock(META_PREFIX + path, fn);
  }
}

function versionKey(path: string, version: number): string {
  return `${VERSIONS_PREFIX}${path}/${version}`;
}

/**
 * Checks a secret's path (the part after `data/`, `metadata/`, ...). Empty segments and `..`
 * would make two spellings of one key, or let a name climb out of its folder in clients that
 * join paths; Vault clients never produce them.
 */
export function secretPath(raw: string | undefined): string {
  if (!raw) throw new UserError("missing path");
  for (const segment of raw.split("/")) {
    if (segment === "") throw new UserError(`invalid path ${JSON.stringify(raw)}: empty path segments are not allowed`);
    if (segment === "..") throw new UserError(`invalid path ${JSON.stringify(raw)}: ".." segments are not allowed`);
  }
  return raw;
}

/** Checks the folder of a LIST: empty (the root) or a path, with or without its trailing `/`. */
export function listPrefix(raw: string | undefined): string {
  if (!raw) return "";
  return `${secretPath(raw.endsWith("/") ? raw.slice(0, -1) : raw)}/`;
}
