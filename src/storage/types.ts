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
  token_accessor: string;
  auth_mount: string;
  display_name: string;
  /** JSON object of the creator's token metadata. */
  metadata: string;
  entity_id: string;
  state: LeaseState;
  revoke_attempts: number;
  revoke_error: string | null;
  /** When the expiration manager must act next (expiry or retry); null = nothing scheduled. */
  due_at: number | null;
}

/** Filters for listing and bulk revocation; every given field must match. */
export interface LeaseFilter {
  mount?: string;
  role?: string;
  pathPrefix?: string;
  tokenAccessor?: string;
  authMount?: string;
  displayName?: string;
  /** Exact match on each key of the creator's token metadata. */
  metadata?: Record<string, string>;
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
}
