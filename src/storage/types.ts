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
  /** The lease table of this backend. */
  readonly leases: LeaseStore;
  close(): Promise<void>;
}

/**
 * The smallest string above every string that starts with `prefix`, in SQLite's BINARY order
 * (bytewise UTF-8, which is code point order), or undefined when there is none. A range scan
 * `key >= prefix AND key < prefixUpperBound(prefix)` then holds exactly the keys with the prefix.
 * `prefix + "\uffff"` is not such a bound: a character outside the Basic Multilingual Plane
 * (4 UTF-8 bytes, F0..F4) sorts above U+FFFF (EF BF BF), so `app/😀x` fell outside `app/`'s range.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length) {
    let last = cps.pop()! + 1;
    // Surrogate code points cannot be encoded in UTF-8: the next character after U+D7FF is U+E000.
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000;
    if (last <= 0x10ffff) return String.fromCodePoint(...cps, last);
    // The last character is U+10FFFF: nothing sorts between it and the end; bump the one before.
  }
  return undefined;
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
  const children = [...out];
  // The store's order (and Vault's): UTF-8 bytes, i.e. code points. JavaScript's default sort
  // compares UTF-16 units, which puts characters past U+FFFF before U+E000..U+FFFF.
  return children.some((c) => /[\ud800-\udfff]/.test(c)) ? children.sort(compareCodePoints) : children.sort();
}

/** Code point order of two strings (UTF-16 units with surrogates moved above U+FFFF). */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x += x >= 0xe000 ? -0x800 : 0x2000;
      y += y >= 0xe000 ? -0x800 : 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Lease states: `pending` (persisted before the credential exists), `active`, `revoking` (retrying), `irrevocable`. */
export type LeaseState = "pending" | "active" | "revoking" | "irrevocable";

/** A lease as stored. `internal` is ciphertext (the barrier encrypts it); times are unix milliseconds. */
export interface LeaseRow {
  id: string;
  /** `secret` (an engine's secret) or `token` (a token's own lease). */
  kind: "secret" | "token";
  /** Mount path with trailing slash (`database/`, `auth/approle/`). */
  mount: string;
  /** Request path that created it (`database/creds/app`). */
  path: string;
  role: string;
  secret_type: string;
  internal: Buffer;
  issue_time: number;
  expire_time: number;
  max_expire_time: number;
  last_renewal: number | null;
  renewable: 0 | 1;
  /**
   * The creator token's accessor, display name and metadata (a JSON object). This is how the
   * expiration manager's store view (`ExpirationManager.store`) shows them. In the physical
   * table they are not kept in clear: `token_accessor` and `display_name` hold keyed HMACs (for
   * equality filters), `metadata` holds the HMAC tags of its key=value pairs (` tag1 tag2 `),
   * and `creator` the clear values sealed by the barrier.
   */
  token_accessor: string;
  auth_mount: string;
  display_name: string;
  metadata: string;
  /**
   * Physical rows only: the barrier ciphertext of `{token_accessor, display_name, metadata}`.
   * NULL on rows written before creator fields were sealed (converted at unseal).
   */
  creator?: Buffer | null;
  entity_id: string;
  state: LeaseState;
  revoke_attempts: number;
  revoke_error: string | null;
  /** When the expiration manager must act next (expiry or retry); null = nothing scheduled. */
  due_at: number | null;
}

/** Filters for listing and bulk revocation; every given field must match. */
export interface LeaseFilter {
  /** Exactly this lease (a `path_prefix` that names one lease id). */
  id?: string;
  mount?: string;
  role?: string;
  pathPrefix?: string;
  tokenAccessor?: string;
  authMount?: string;
  displayName?: string;
  /**
   * Exact match on each key of the creator's token metadata. Only the manager's store view takes
   * it: it turns the pairs into `metadataTags`, which is what the physical store matches.
   */
  metadata?: Record<string, string>;
  /** Physical store: every one of these HMAC tags must be among the row's metadata tags. */
  metadataTags?: string[];
  issuedAfter?: number;
  issuedBefore?: number;
  state?: LeaseState;
  kind?: "secret" | "token";
}

/** Lease persistence: the expiration manager's only way to the store. */
export interface LeaseStore {
  insert(row: LeaseRow): Promise<void>;
  get(id: string): Promise<LeaseRow | undefined>;
  /** Updates the named columns of one lease. */
  update(id: string, patch: Partial<Omit<LeaseRow, "id">>): Promise<void>;
  /** Deletes one lease; true when a row was there. */
  delete(id: string): Promise<boolean>;
  /**
   * The rows of these ids that exist, in no particular order, each once (one statement on
   * PostgreSQL): the expiration manager reads a burst of due leases in a few round trips.
   */
  getMany(ids: readonly string[]): Promise<LeaseRow[]>;
  /**
   * Sets the same named columns on every one of these leases, in one transaction (one statement on
   * PostgreSQL, so one fence check under HA); ids without a row are skipped, as `update` does.
   */
  updateMany(ids: readonly string[], patch: Partial<Omit<LeaseRow, "id">>): Promise<void>;
  /**
   * Deletes these leases in one transaction; returns the ids whose row was there (each once, in no
   * particular order), so the lease counters hear about every removed row exactly once.
   */
  deleteMany(ids: readonly string[]): Promise<string[]>;
  /** The soonest `limit` deadlines at or before `until` (ascending). */
  due(until: number, limit: number): Promise<{ id: string; due_at: number }[]>;
  /** Lease ids matching the filter, in id order, after `after`, at most `limit`. */
  select(filter: LeaseFilter, after: string, limit: number): Promise<string[]>;
  count(filter: LeaseFilter): Promise<number>;
  /** Counts by state and by mount (for metrics and `sys/leases/count`). */
  stats(): Promise<{ byState: Record<string, number>; byMount: Record<string, number> }>;
  /** Lease counts grouped by mount and state (metrics). */
  countsByMountAndState(): Promise<{ mount: string; state: string; n: number }[]>;
  /** Ids of leases in a state (`pending` for start-up reconciliation). */
  inState(state: LeaseState, after: string, limit: number): Promise<string[]>;
  /** Physical store: up to `limit` rows whose creator fields are still in clear (`creator` NULL). */
  legacyCreators(limit: number): Promise<LeaseRow[]>;
  /**
   * Physical store: replaces the creator fields of these rows in one transaction, overwriting the
   * freed bytes of the clear values (secure_delete). `finish` makes it the last batch: the old
   * pages are then also dropped from the write-ahead log and the free list.
   */
  rewriteCreators(rows: { id: string; token_accessor: string; display_name: string; metadata: string; creator: Buffer }[], finish: boolean): Promise<void>;
}

/** One key/value entry as stored (the value is barrier ciphertext, copied as is). */
export interface StoredEntry {
  key: string;
  value: Buffer;
}

/**
 * A read-only view of the whole store as of one instant (one read transaction), paged in key and
 * lease-id order. `after` is the last key or id of the previous page, null for the first page.
 */
export interface StoreSnapshot {
  /** Rows in the two tables (counted, not read from the trigger-kept lease counts). */
  size(): Promise<{ entries: number; leases: number }>;
  entries(after: string | null, limit: number): Promise<StoredEntry[]>;
  /** Lease rows with every column, `creator` included (null on legacy rows). */
  leaseRows(after: string | null, limit: number): Promise<LeaseRow[]>;
}

/**
 * Whole-store copy, for `leasehold operator migrate` (src/storage/migrate.ts): both backends
 * implement it besides `PhysicalStorage`. Not part of the core's contract: the core never needs
 * to see every key at once.
 */
export interface BulkStorage {
  /** Runs `fn` on one consistent snapshot of the store, released when `fn` settles. */
  snapshot<T>(fn: (snap: StoreSnapshot) => Promise<T>): Promise<T>;
  /**
   * Inserts entries and lease rows (every column as given) in one transaction. Plain inserts: a
   * key or lease id already present fails the whole call instead of being overwritten. The
   * lease counts follow through the same triggers as single inserts.
   */
  load(entries: readonly StoredEntry[], leases: readonly LeaseRow[]): Promise<void>;
}
