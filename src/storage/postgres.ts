import pg from "pg";
import { LEASE_COLUMNS } from "./lease-sql.js";
import { PostgresLeaseStore } from "./postgres-leases.js";
import { PgExecutor, SCHEMA_NAME, migrate, pgNames, pgTypes, withClient, type PgNames, type WriteFence } from "./postgres-schema.js";
import { immediateChildren, prefixUpperBound, type BulkStorage, type LeaseRow, type LeaseStore, type PhysicalStorage, type StoreSnapshot, type StoredEntry } from "./types.js";

/** Defaults of `storage "postgresql"`: Vault's table name would name Vault's (different) layout. */
export const PG_DEFAULT_TABLE = "leasehold_kv_store";
export const PG_DEFAULT_HA_TABLE = "leasehold_ha_locks";
/** Vault opens up to 128 connections; one node rarely needs more than 16, and PostgreSQL's default max_connections is 100. */
export const PG_DEFAULT_MAX_PARALLEL = 16;

export interface PostgresOptions {
  /** `postgres://user:password@host:5432/db?sslmode=verify-full` (libpq URL, as node-postgres reads it). */
  connectionUrl: string;
  /** The key/value table; the lease tables are named after it. */
  table?: string;
  /** Schema of the tables; default: the session's current schema (first existing entry of search_path). */
  schema?: string;
  /** Pool size. */
  maxParallel?: number;
  /** The HA lock table (`ha_table`, default leasehold_ha_locks). */
  haTable?: string;
  /** Checked first in every write transaction (the HA session's epoch fence). */
  fence?: WriteFence;
  /** Errors of idle pooled connections (a restarted server); the next query reconnects. */
  onIdleError?: (err: Error) => void;
  /** Fail instead of creating the tables when they do not exist (a migration's source). */
  mustExist?: boolean;
  /** `application_name` of the sessions (default `leasehold`); `operator migrate` tells its own apart. */
  applicationName?: string;
}

/** Column types of the lease table, for `unnest` of one array per column in `load`. */
const LEASE_COLUMN_TYPES: Record<(typeof LEASE_COLUMNS)[number], string> = {
  id: "text", kind: "text", mount: "text", path: "text", role: "text", secret_type: "text", internal: "bytea", issue_time: "bigint", expire_time: "bigint",
  max_expire_time: "bigint", last_renewal: "bigint", renewable: "smallint", token_accessor: "text", auth_mount: "text", display_name: "text", metadata: "text",
  entity_id: "text", state: "text", revoke_attempts: "integer", revoke_error: "text", due_at: "bigint", creator: "bytea",
};

/** `postgresql://user@host:port/db`: the connection without its password, for messages and banners. */
export function describeConnection(url: string): string {
  try {
    const u = new URL(url);
    return `postgresql://${u.username ? `${decodeURIComponent(u.username)}@` : ""}${u.host}${u.pathname}`;
  } catch {
    return "postgresql (unparseable connection_url)";
  }
}

/**
 * PostgreSQL as the physical store, for one node today (several under an HA lock later): the same
 * ordered key/value contract and lease table as SQLite, values opaque (the barrier encrypts above
 * this layer), schema created and migrated by the server itself.
 */
export class PostgresStorage implements PhysicalStorage, BulkStorage {
  readonly kind = "postgresql";
  readonly leases: LeaseStore;
  private closed?: Promise<void>;
  private readonly sql;

  private constructor(
    readonly pool: pg.Pool,
    readonly names: PgNames,
    private readonly db: PgExecutor,
  ) {
    this.leases = new PostgresLeaseStore(db, names);
    const t = names.kv;
    this.sql = {
      get: `SELECT value FROM ${t} WHERE key = $1`,
      put: `INSERT INTO ${t} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      del: `DELETE FROM ${t} WHERE key = $1`,
      range: `SELECT key FROM ${t} WHERE key >= $1 AND key < $2 ORDER BY key`,
      rangeFrom: `SELECT key FROM ${t} WHERE key >= $1 ORDER BY key`,
    };
  }

  /** Connects, resolves the schema, creates or migrates the tables. */
  static async open(opts: PostgresOptions): Promise<PostgresStorage> {
    const pool = new pg.Pool({
      connectionString: opts.connectionUrl,
      max: opts.maxParallel ?? PG_DEFAULT_MAX_PARALLEL,
      types: pgTypes,
      application_name: opts.applicationName ?? "leasehold",
      // node-postgres waits forever for a connection by default: a blackholed database would hang
      // every request instead of failing it.
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    // Without a listener, an idle connection that the server drops would crash the process.
    pool.on("error", (err) => opts.onIdleError?.(err));
    try {
      const schema = await resolveSchema(pool, opts.schema);
      const names = pgNames(schema, opts.table ?? PG_DEFAULT_TABLE, opts.haTable ?? PG_DEFAULT_HA_TABLE);
      if (opts.mustExist) {
        const { rows } = await pool.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [names.kv]);
        if (rows[0].t === null) throw new Error(`there is no table ${names.kv} (check table and schema in the storage block)`);
      }
      await migrate(pool, names);
      return new PostgresStorage(pool, names, new PgExecutor(pool, opts.fence));
    } catch (err) {
      await pool.end().catch(() => undefined);
      const e = err as Error & { code?: string };
      // Never the URL itself: it carries the password.
      throw new Error(`PostgreSQL storage (${describeConnection(opts.connectionUrl)}): ${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ""}`, { cause: err });
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const { rows } = await this.db.read<{ value: Buffer }>({ name: "kv-get", text: this.sql.get, values: [key] });
    return rows[0]?.value;
  }

  async put(key: string, value: Buffer): Promise<void> {
    await this.db.write((tx) => tx.query({ name: "kv-put", text: this.sql.put, values: [key, value] }), true);
  }

  async delete(key: string): Promise<void> {
    await this.db.write((tx) => tx.query({ name: "kv-delete", text: this.sql.del, values: [key] }), true);
  }

  async list(prefix: string): Promise<string[]> {
    // Every key with the prefix, and no other, sorts in [prefix, its upper bound) under COLLATE "C".
    const upper = prefixUpperBound(prefix);
    const q = upper === undefined ? { text: this.sql.rangeFrom, values: [prefix] } : { text: this.sql.range, values: [prefix, upper] };
    const { rows } = await this.db.read<{ key: string }>(q);
    return immediateChildren(prefix, rows.map((r) => r.key));
  }

  async batch(ops: { key: string; value: Buffer | null }[]): Promise<void> {
    if (!ops.length) return;
    await this.db.write(async (tx) => {
      for (const op of ops) {
        if (op.value === null) await tx.query({ name: "kv-delete", text: this.sql.del, values: [op.key] });
        else await tx.query({ name: "kv-put", text: this.sql.put, values: [op.key, op.value] });
      }
    });
  }

  async snapshot<T>(fn: (snap: StoreSnapshot) => Promise<T>): Promise<T> {
    // One connection in a REPEATABLE READ transaction: every page reads the snapshot of its first query.
    return withClient(this.pool, async (client, markBroken) => {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        const { kv, leases } = this.names;
        const page = async <R extends pg.QueryResultRow>(table: string, cols: string, key: string, after: string | null, limit: number) =>
          (after === null
            ? await client.query<R>(`SELECT ${cols} FROM ${table} ORDER BY ${key} LIMIT $1`, [limit])
            : await client.query<R>(`SELECT ${cols} FROM ${table} WHERE ${key} > $1 ORDER BY ${key} LIMIT $2`, [after, limit])
          ).rows;
        const out = await fn({
          size: async () => (await client.query<{ entries: number; leases: number }>(`SELECT (SELECT COUNT(*) FROM ${kv}) AS entries, (SELECT COUNT(*) FROM ${leases}) AS leases`)).rows[0],
          entries: (after, limit) => page<StoredEntry>(kv, "key, value", "key", after, limit),
          leaseRows: (after, limit) => page<LeaseRow>(leases, "*", "id", after, limit),
        });
        await client.query("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch(markBroken);
        throw err;
      }
    });
  }

  async load(entries: readonly StoredEntry[], leases: readonly LeaseRow[]): Promise<void> {
    if (!entries.length && !leases.length) return;
    // One statement per table, one array per column: a round trip per batch, not per row.
    const cols = LEASE_COLUMNS.map((c, i) => `$${i + 1}::${LEASE_COLUMN_TYPES[c]}[]`).join(", ");
    await this.db.write(async (tx) => {
      if (entries.length) {
        await tx.query({ text: `INSERT INTO ${this.names.kv} (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])`, values: [entries.map((e) => e.key), entries.map((e) => e.value)] });
      }
      if (leases.length) {
        const values = LEASE_COLUMNS.map((c) => leases.map((r) => r[c] ?? null));
        await tx.query({ text: `INSERT INTO ${this.names.leases} (${LEASE_COLUMNS.join(", ")}) SELECT * FROM unnest(${cols})`, values });
      }
    });
  }

  close(): Promise<void> {
    return (this.closed ??= this.pool.end());
  }
}

/** The schema the tables go in: the configured one (which must exist), or the session's current schema. */
async function resolveSchema(pool: pg.Pool, configured: string | undefined): Promise<string> {
  if (configured !== undefined) {
    if (!SCHEMA_NAME.test(configured)) throw new Error(`schema ${JSON.stringify(configured)} must be letters, digits and _`);
    const { rows } = await pool.query<{ ok: boolean }>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS ok", [configured]);
    if (!rows[0].ok) throw new Error(`schema ${JSON.stringify(configured)} does not exist: create it (CREATE SCHEMA ${pg.escapeIdentifier(configured)} AUTHORIZATION <role>) or remove the schema key`);
    return configured;
  }
  const { rows } = await pool.query<{ s: string | null }>("SELECT current_schema() AS s");
  const schema = rows[0].s;
  if (!schema) throw new Error("no schema of the search_path exists: set schema in the storage block, or create one the role can use");
  return schema;
}
