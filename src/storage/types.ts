/**
 * The physical storage contract: an ordered key/value store. Values are opaque bytes; the barrier
 * above encrypts them. SQLite is the embedded default; a PostgreSQL backend can implement the same
 * interface to carry several broker nodes.
 */
export interface PhysicalStorage {
  readonly kind: string;
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, value: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  /** Immediate children of `prefix`: keys with the prefix removed, cut after their next `/` (kept). Sorted, unique. */
  list(prefix: string): Promise<string[]>;
  /** Applies several writes atomically (a `value` of null deletes). */
  batch(ops: { key: string; value: Buffer | null }[]): Promise<void>;
  close(): Promise<void>;
}

/** Cuts a set of full keys down to the immediate children of `prefix`, Vault-style. */
export function immediateChildren(prefix: string, keys: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf("/");
    out.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  out.delete("");
  return [...out].sort();
}
