import pg from "pg";

/**
 * The PostgreSQL store's tables, their migrations, and the one way writes reach them.
 *
 * Every table and index name derives from the configured `table` (the key/value table), and all
 * of them are qualified with one schema, resolved once at start-up: two leasehold clusters can
 * share a database under different `table`s or schemas, and a later change of `search_path` cannot
 * point a running server at other tables.
 */
export interface PgNames {
  /** Quoted schema. */
  schema: string;
  kv: string;
  leases: string;
  counts: string;
  migrations: string;
  countsFn: string;
  /** The HA lock table (`ha_table`); it may be shared by several clusters, one row per `prefix`. */
  ha: string;
  /** The HA member registry (`<ha_table>_members`, src/cluster/members.ts), shared like `ha`: one row per cluster (`prefix`) and node. */
  haMembers: string;
  /** Unquoted prefix for index and trigger names (they live in the table's schema). */
  prefix: string;
  /** Key of the advisory lock that serialises migrations of this set of tables. */
  lockKey: string;
}

/** Table names are plain identifiers, short enough that every derived name fits PostgreSQL's 63 bytes. */
export const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;
export const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function pgNames(schema: string, table: string, haTable = "leasehold_ha_locks"): PgNames {
  if (!TABLE_NAME.test(table)) throw new Error(`PostgreSQL storage: table ${JSON.stringify(table)} must be letters, digits and _ (at most 40)`);
  if (!TABLE_NAME.test(haTable)) throw new Error(`PostgreSQL storage: ha_table ${JSON.stringify(haTable)} must be letters, digits and _ (at most 40)`);
  const s = pg.escapeIdentifier(schema);
  const q = (name: string) => `${s}.${pg.escapeIdentifier(name)}`;
  return {
    schema: s,
    kv: q(table),
    leases: q(`${table}_leases`),
    counts: q(`${table}_lease_counts`),
    migrations: q(`${table}_migrations`),
    countsFn: q(`${table}_lease_counts_fn`),
    ha: q(haTable),
    haMembers: q(`${haTable}_members`),
    prefix: table,
    lockKey: `leasehold-migrate:${schema}.${table}`,
  };
}

/**
 * Lease counts are sharded by the writing session (`pg_backend_pid() % COUNT_SHARDS`): with one
 * counter row per mount and state, every transaction that inserts a lease on a mount would queue
 * on that row's lock until the previous one commits, serialising all lease writes of a mount. A
 * reader sums at most mounts × states × shards small rows.
 */
export const COUNT_SHARDS = 64;

/**
 * Schema migrations, applied in order in one transaction under an advisory lock and recorded in
 * the migrations table. Append only. Text columns that are compared or ordered use `COLLATE "C"`:
 * bytewise order, which is code point order for UTF-8 and SQLite's BINARY order, whatever the
 * database's collation is, so prefix ranges (`prefixUpperBound`) and `id > after` paging hold.
 */
export function migrations(n: PgNames): string[] {
  const ix = (name: string) => pg.escapeIdentifier(`${n.prefix}_${name}`);
  return [
    `CREATE TABLE ${n.kv} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
     CREATE TABLE ${n.leases} (
       id text COLLATE "C" PRIMARY KEY,
       kind text COLLATE "C" NOT NULL,
       mount text COLLATE "C" NOT NULL,
       path text COLLATE "C" NOT NULL,
       role text COLLATE "C" NOT NULL DEFAULT '',
       secret_type text COLLATE "C" NOT NULL,
       internal bytea NOT NULL,
       issue_time bigint NOT NULL,
       expire_time bigint NOT NULL,
       max_expire_time bigint NOT NULL,
       last_renewal bigint,
       renewable smallint NOT NULL,
       token_accessor text COLLATE "C" NOT NULL DEFAULT '',
       auth_mount text COLLATE "C" NOT NULL DEFAULT '',
       display_name text COLLATE "C" NOT NULL DEFAULT '',
       metadata text COLLATE "C" NOT NULL DEFAULT '{}',
       entity_id text COLLATE "C" NOT NULL DEFAULT '',
       state text COLLATE "C" NOT NULL,
       revoke_attempts integer NOT NULL DEFAULT 0,
       revoke_error text,
       due_at bigint,
       creator bytea
     );
     CREATE INDEX ${ix("leases_due")} ON ${n.leases} (due_at) WHERE due_at IS NOT NULL;
     CREATE INDEX ${ix("leases_token")} ON ${n.leases} (token_accessor);
     CREATE INDEX ${ix("leases_mount_role")} ON ${n.leases} (mount, role);
     CREATE INDEX ${ix("leases_identity")} ON ${n.leases} (auth_mount, display_name);
     CREATE INDEX ${ix("leases_pending")} ON ${n.leases} (id) WHERE state = 'pending';
     CREATE INDEX ${ix("leases_revoking")} ON ${n.leases} (id) WHERE state = 'revoking';
     CREATE INDEX ${ix("leases_irrevocable")} ON ${n.leases} (id) WHERE state = 'irrevocable';
     CREATE INDEX ${ix("leases_legacy_creator")} ON ${n.leases} (id) WHERE creator IS NULL;
     CREATE TABLE ${n.counts} (
       mount text COLLATE "C" NOT NULL,
       state text COLLATE "C" NOT NULL,
       shard smallint NOT NULL,
       n bigint NOT NULL,
       PRIMARY KEY (mount, state, shard)
     );
     CREATE FUNCTION ${n.countsFn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
     DECLARE
       s smallint := pg_backend_pid() % ${COUNT_SHARDS};
     BEGIN
       IF TG_OP <> 'INSERT' THEN
         INSERT INTO ${n.counts} AS c (mount, state, shard, n) VALUES (OLD.mount, OLD.state, s, -1)
           ON CONFLICT (mount, state, shard) DO UPDATE SET n = c.n - 1;
       END IF;
       IF TG_OP <> 'DELETE' THEN
         INSERT INTO ${n.counts} AS c (mount, state, shard, n) VALUES (NEW.mount, NEW.state, s, 1)
           ON CONFLICT (mount, state, shard) DO UPDATE SET n = c.n + 1;
       END IF;
       RETURN NULL;
     END
     $fn$;
     CREATE TRIGGER ${ix("counts_insert")} AFTER INSERT ON ${n.leases} FOR EACH ROW EXECUTE FUNCTION ${n.countsFn}();
     CREATE TRIGGER ${ix("counts_delete")} AFTER DELETE ON ${n.leases} FOR EACH ROW EXECUTE FUNCTION ${n.countsFn}();
     CREATE TRIGGER ${ix("counts_update")} AFTER UPDATE OF mount, state ON ${n.leases} FOR EACH ROW
       WHEN (OLD.mount IS DISTINCT FROM NEW.mount OR OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION ${n.countsFn}()`,
    // The HA lock (src/cluster/lock.ts). Only `lock_key` is a key column: renewals and hand-overs
    // update the others, so a renewal takes FOR NO KEY UPDATE, which does not wait for the writers'
    // FOR KEY SHARE fence. IF NOT EXISTS: clusters with other `table`s may share the ha_table.
    `CREATE TABLE IF NOT EXISTS ${n.ha} (
       lock_key text COLLATE "C" PRIMARY KEY,
       holder text NOT NULL DEFAULT '',
       api_addr text NOT NULL DEFAULT '',
       cluster_addr text NOT NULL DEFAULT '',
       epoch bigint NOT NULL DEFAULT 0,
       holder_session text NOT NULL DEFAULT '',
       acquired_at timestamptz,
       renewed_at timestamptz,
       valid_until timestamptz NOT NULL DEFAULT '-infinity'
     );
     INSERT INTO ${n.ha} (lock_key) VALUES (${pg.escapeLiteral(n.prefix)}) ON CONFLICT (lock_key) DO NOTHING`,
    // The HA member registry (src/cluster/members.ts): every unsealed node heartbeats its row on the
    // lock's pool; sys/ha-status reads it. Times are PostgreSQL's clock. Nothing secret here.
    // IF NOT EXISTS: shared by the clusters that share the ha_table, keyed by the same `lock_key`.
    `CREATE TABLE IF NOT EXISTS ${n.haMembers} (
       lock_key text COLLATE "C" NOT NULL,
       node_id text COLLATE "C" NOT NULL,
       hostname text NOT NULL DEFAULT '',
       api_addr text NOT NULL DEFAULT '',
       cluster_addr text NOT NULL DEFAULT '',
       version text NOT NULL DEFAULT '',
       started_at timestamptz NOT NULL,
       last_echo timestamptz NOT NULL,
       clock_skew_ms integer NOT NULL DEFAULT 0,
       echo_duration_ms integer NOT NULL DEFAULT 0,
       PRIMARY KEY (lock_key, node_id)
     )`,
  ];
}

/** Something that runs a query: the pool (autocommit) or a client inside a transaction. */
export type Queryable = Pick<pg.ClientBase, "query">;

/**
 * A check run first in every write transaction. The HA session plugs the epoch fence in here
 * (`HaLock.fenceFor`: `SELECT 1 FROM <ha_table> WHERE epoch = $1 ... FOR KEY SHARE`, throwing
 * `FencedError` when the node no longer holds the lock), so a deposed node's write fails instead of
 * committing after a successor took over.
 */
export type WriteFence = (tx: Queryable) => Promise<void>;

/** SQLSTATEs after which the whole transaction was rolled back and may simply run again. */
const RETRYABLE = new Set(["40001", "40P01"]); // serialization_failure, deadlock_detected
const ATTEMPTS = 4;

/**
 * The pool and the one path every write takes. Reads go straight to the pool. A write runs
 * `BEGIN; fence; fn; COMMIT` on one connection; a single-statement write without a fence runs
 * as one autocommit statement (itself a transaction) and saves two round trips. Deadlocks (two
 * sessions sharing a counter shard, see `COUNT_SHARDS`) and serialization failures are retried.
 */
export class PgExecutor {
  constructor(
    readonly pool: pg.Pool,
    private readonly fence?: WriteFence,
  ) {}

  read<R extends pg.QueryResultRow>(q: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(q);
  }

  /** `single`: `fn` issues exactly one statement, so without a fence it needs no explicit transaction. */
  async write<T>(fn: (tx: Queryable) => Promise<T>, single = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (single && !this.fence) return await fn(this.pool);
        return await this.transaction(fn);
      } catch (err) {
        if (attempt >= ATTEMPTS || !RETRYABLE.has((err as { code?: string }).code ?? "")) throw err;
      }
    }
  }

  private transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return withClient(this.pool, async (client, markBroken) => {
      await client.query("BEGIN");
      try {
        await this.fence?.(client);
        const out = await fn(client);
        await client.query("COMMIT");
        return out;
      } catch (err) {
        // A connection whose ROLLBACK failed is in an unknown state: destroyed rather than reused.
        await client.query("ROLLBACK").catch(markBroken);
        throw err;
      }
    });
  }
}

/** int8 (bigint, COUNT) as a number: our values are unix milliseconds and counts, far below 2^53. */
const INT8_OID = 20;
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, (format ?? "text") as "text")) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * Creates or upgrades the tables. Runs in one transaction holding a transaction-level advisory lock
 * keyed on the schema and table, so two processes starting at once apply each migration once: the
 * second waits, then finds the version current. Refuses a schema newer than this code knows.
 */
export async function migrate(pool: pg.Pool, n: PgNames): Promise<{ from: number; to: number }> {
  const steps = migrations(n);
  return withClient(pool, async (client, markBroken) => {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [n.lockKey]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${n.migrations} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ v: number }>(`SELECT COALESCE(MAX(version), 0)::integer AS v FROM ${n.migrations}`);
      const from = rows[0].v;
      if (from > steps.length) {
        throw new Error(`PostgreSQL storage: the tables are at schema version ${from}, newer than this leasehold knows (${steps.length}); upgrade leasehold`);
      }
      for (let v = from; v < steps.length; v++) {
        await client.query(steps[v]);
        await client.query(`INSERT INTO ${n.migrations} (version) VALUES ($1)`, [v + 1]);
      }
      await client.query("COMMIT");
      return { from, to: steps.length };
    } catch (err) {
      await client.query("ROLLBACK").catch(markBroken);
      throw err;
    }
  });
}

/**
 * A pooled client for one unit of work, returned to the pool after it (destroyed if it failed).
 * While a client is checked out pg-pool stops listening to its `error` events, so a session ended
 * under it (`pg_terminate_backend` by a new HA active ending a paused predecessor's transaction, a
 * PostgreSQL shutdown) would be an unhandled `error` event and end the process: it is listened to
 * here, and the query in progress fails as usual.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient, markBroken: () => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  const markBroken = () => {
    broken = true;
  };
  client.on("error", markBroken);
  try {
    return await fn(client, markBroken);
  } finally {
    client.off("error", markBroken);
    client.release(broken);
  }
}
