import { prefixUpperBound, type LeaseFilter } from "./types.js";

/**
 * What the SQLite and PostgreSQL lease tables share: their columns and the translation of a
 * `LeaseFilter` into a WHERE clause. Only the SQL dialect differs between them.
 */

/** Every column of a lease row, in table order (bulk copies insert them all). */
export const LEASE_COLUMNS = [
  "id", "kind", "mount", "path", "role", "secret_type", "internal", "issue_time", "expire_time", "max_expire_time", "last_renewal",
  "renewable", "token_accessor", "auth_mount", "display_name", "metadata", "entity_id", "state", "revoke_attempts", "revoke_error", "due_at", "creator",
] as const;

/** The columns `update` may set (all but the id). */
export const UPDATABLE_LEASE_COLUMNS: ReadonlySet<string> = new Set<string>(LEASE_COLUMNS.filter((c) => c !== "id"));

/** The columns of a patch that `update`/`updateMany` write, in the patch's order (unknown keys are ignored). */
export function patchColumns<P extends object>(patch: P): (keyof P & string)[] {
  return Object.keys(patch).filter((c) => UPDATABLE_LEASE_COLUMNS.has(c)) as (keyof P & string)[];
}

/** How a dialect writes the few things that differ. */
export interface LeaseSqlDialect {
  /** The placeholder of the n-th bound value (1-based): `?` or `$n`. */
  placeholder(n: number): string;
  /** True when `haystack` contains `needle` (both SQL expressions). */
  contains(haystack: string, needle: string): string;
  /** A condition that always holds (an empty filter). */
  always: string;
}

/** Builds a WHERE clause from a filter; every value is a bound parameter. */
export function leaseWhere(filter: LeaseFilter, d: LeaseSqlDialect): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const bind = (v: unknown) => {
    params.push(v);
    return d.placeholder(params.length);
  };
  const eq = (col: string, v: unknown) => parts.push(`${col} = ${bind(v)}`);
  if (filter.id !== undefined) eq("id", filter.id);
  if (filter.mount !== undefined) eq("mount", filter.mount);
  if (filter.role !== undefined) eq("role", filter.role);
  if (filter.tokenAccessor !== undefined) eq("token_accessor", filter.tokenAccessor);
  if (filter.authMount !== undefined) eq("auth_mount", filter.authMount);
  if (filter.displayName !== undefined) eq("display_name", filter.displayName);
  if (filter.state !== undefined) eq("state", filter.state);
  if (filter.kind !== undefined) eq("kind", filter.kind);
  if (filter.pathPrefix !== undefined && filter.pathPrefix !== "") {
    // Range on the primary key (bytewise order on both): ids are `<path>/<random>`, so a prefix is an id range.
    const upper = prefixUpperBound(filter.pathPrefix);
    parts.push(`id >= ${bind(filter.pathPrefix)}`);
    if (upper !== undefined) parts.push(`id < ${bind(upper)}`);
  }
  if (filter.issuedAfter !== undefined) parts.push(`issue_time >= ${bind(filter.issuedAfter)}`);
  if (filter.issuedBefore !== undefined) parts.push(`issue_time < ${bind(filter.issuedBefore)}`);
  // Clear metadata is never in the table: the manager's store view turns pairs into tags.
  if (filter.metadata !== undefined) throw new Error("lease store: a metadata filter must be given as metadataTags");
  // `metadata` is ` tag1 tag2 `: a tag (base64url, no spaces) framed by spaces matches whole.
  for (const tag of filter.metadataTags ?? []) parts.push(d.contains("metadata", bind(` ${tag} `)));
  return { sql: parts.length ? parts.join(" AND ") : d.always, params };
}
