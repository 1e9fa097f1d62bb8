import type { Logger } from "pino";
import pg from "pg";
import { DatabasePluginError } from "../../../src/sdk/index.js";
import type { DatabasePlugin, DeleteUserRequest, NewUserRequest, UpdateUserRequest } from "../../../src/sdk/index.js";
import { connectionString, connectionStringFor, loginUser, parseSettings, scrub, secretsOf, type PostgresSettings } from "./connection.js";
import { RETRYABLE_SQLSTATES, isServerError, toPluginError } from "./errors.js";
import { formatExpiration, joinStatements, renderStatement } from "./render.js";
import { scramVerifier } from "./scram.js";

const DEFAULT_RENEW = ["ALTER ROLE {{name}} VALID UNTIL {{expiration}}"];
const DEFAULT_ROTATION = ["ALTER ROLE {{name}} WITH PASSWORD {{password}}"];

/** Attempts for a statement batch that hits a retryable SQLSTATE (see errors.ts). */
const MAX_ATTEMPTS = 8;
const CONNECT_TIMEOUT_MS = 10_000;
/** How long after a conflict this config's statements run one at a time. */
const CONTENDED_MS = 3_000;

/**
 * Revocation's look-up (a prepared statement: planned once per connection): the role's OID,
 * whether it owns objects or holds privileges in this database (or on shared objects), and the
 * other databases where it does.
 */
const ROLE_DEPENDENCIES = `SELECT r.oid::int AS oid,
  EXISTS (SELECT 1 FROM pg_shdepend s WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid
            AND s.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))) AS owns_here,
  ARRAY(SELECT DISTINCT d.datname::text FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
         WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND d.datname <> current_database()) AS other_dbs
FROM pg_roles r WHERE r.rolname = $1`;

/** "role cannot be dropped because some objects depend on it". */
const DEPENDENT_OBJECTS = "2BP01";
/** Session setting (custom, per connection) that carries the dropped roles' OIDs (comma-separated) to the sweep after COMMIT. */
const REVOKED_OID_SETTING = "leasehold.revoked_role_oid";

/** Ends the sessions whose user OID satisfies the SQL condition `userIs` on `uid` (never our own). */
function endSessionsWhere(userIs: string): string {
  // The backend-status functions, not the pg_stat_activity view: same answer at a third of the cost.
  return `SELECT pg_terminate_backend(pg_stat_get_backend_pid(b)) FROM pg_stat_get_backend_idset() b,
 LATERAL (SELECT pg_stat_get_backend_userid(b) AS uid) u WHERE ${userIs} AND pg_stat_get_backend_pid(b) <> pg_backend_pid()`;
}

/** Ends the sessions of the role with OID `oid` (a number). */
function endSessionsOf(oid: number): string {
  return endSessionsWhere(`uid = ${Number(oid)}`);
}

/**
 * The usual revocation of one or more roles that own nothing, in one simple-query round trip: their
 * OIDs (those that still exist) are kept in a session setting, the roles are dropped and committed
 * together, then the sessions those roles still have are ended in one pass over the backends. The
 * setting is written on every call, so stale OIDs from an earlier revocation on this pooled
 * connection are never used. When any of the roles owns something, the whole statement fails with
 * 2BP01 and none is dropped.
 */
function dropRoles(roles: string[]): string {
  const names = [...new Set(roles)];
  const literals = names.map((n) => pg.escapeLiteral(n)).join(", ");
  const setting = pg.escapeLiteral(REVOKED_OID_SETTING);
  return [
    `SELECT set_config(${setting}, COALESCE((SELECT string_agg(oid::text, ',') FROM pg_roles WHERE rolname IN (${literals})), ''), false)`,
    `DROP ROLE IF EXISTS ${names.map((n) => pg.escapeIdentifier(n)).join(", ")}`,
    "COMMIT",
    endSessionsWhere(`uid = ANY (string_to_array(current_setting(${setting}), ',')::oid[])`),
  ].join(";\n");
}

/** Most roles one batched revocation drops in one round trip. */
const DROP_BATCH = 64;
/** Batched revocations in flight at once per config; more requests than this wait and go together. */
const DROP_FLIGHTS = 2;

interface QueuedDrop {
  name: string;
  resolve: (dropped: boolean) => void;
  reject: (err: unknown) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One PostgreSQL connection config: a `pg` pool of at most `max_open_connections`, and the four
 * verbs. Every password reaching PostgreSQL is a SCRAM-SHA-256 verifier computed here; every
 * error leaving here has had the config's secrets scrubbed.
 */
export class PostgresPlugin implements DatabasePlugin {
  private settings?: PostgresSettings;
  private pool?: pg.Pool;
  private secrets: string[] = [];
  /** Retries of conflicting DDL run one at a time, so a burst of conflicts drains instead of colliding again. */
  private retryQueue: Promise<unknown> = Promise.resolve();
  /** Until when statements queue behind each other because of a recent conflict. */
  private contendedUntil = 0;
  private closed = false;
  /** Revocations waiting for a batched DROP ROLE (see dropTogether). */
  private readonly dropQueue: QueuedDrop[] = [];
  private dropFlights = 0;

  constructor(private readonly ctx: { configName: string; logger: Logger }) {}

  async initialize(req: { details: Record<string, unknown>; verifyConnection: boolean }): Promise<{ details: Record<string, unknown>; rootUsername?: string }> {
    const settings = parseSettings(req.details);
    this.settings = settings;
    this.secrets = secretsOf(settings);
    const pool = new pg.Pool({
      connectionString: connectionString(settings),
      max: settings.max_open_connections,
      // A negative max_idle_connections disables idle connections (Vault's semantics).
      idleTimeoutMillis: settings.max_idle_connections < 0 ? 1 : 30_000,
      maxLifetimeSeconds: settings.max_connection_lifetime > 0 ? settings.max_connection_lifetime : 0,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: "leasehold",
    });
    // An idle connection the server closed (restart, terminate) must not crash the process.
    pool.on("error", (err) => this.ctx.logger.warn({ config: this.ctx.configName, err: scrub(err.message, this.secrets) }, "database connection closed by the server"));
    this.pool = pool;
    if (req.verifyConnection) {
      try {
        await this.run((c) => c.query("SELECT 1"));
      } catch (err) {
        await this.close();
        throw err;
      }
    }
    return { details: { ...settings }, rootUsername: loginUser(settings) };
  }

  async newUser(req: NewUserRequest): Promise<void> {
    const verifier = await scramVerifier(req.password);
    const values = { name: req.username, password: verifier, expiration: formatExpiration(req.expiration) };
    const sql = joinStatements(req.statements.map((s) => renderStatement(s, values)));
    try {
      await this.retrying(() => this.run((c) => c.query(sql)));
    } catch (err) {
      if (req.rollbackStatements.length) await this.rollback(req, values);
      throw err;
    }
  }

  private async rollback(req: NewUserRequest, values: { name: string; password: string; expiration: string }): Promise<void> {
    try {
      await this.run((c) => c.query(joinStatements(req.rollbackStatements.map((s) => renderStatement(s, values)))));
    } catch (err) {
      this.ctx.logger.warn({ config: this.ctx.configName, username: req.username, err: toPluginError(err, "query", this.secrets).message }, "rollback statements failed");
    }
  }

  async updateUser(req: UpdateUserRequest): Promise<void> {
    if (req.password) {
      const verifier = await scramVerifier(req.password.newPassword);
      const statements = req.password.statements.length ? req.password.statements : DEFAULT_ROTATION;
      const sql = joinStatements(statements.map((s) => renderStatement(s, { name: req.username, password: verifier })));
      await this.retrying(() => this.run((c) => c.query(sql)));
    }
    if (req.expiration) {
      const statements = req.expiration.statements.length ? req.expiration.statements : DEFAULT_RENEW;
      const sql = joinStatements(statements.map((s) => renderStatement(s, { name: req.username, expiration: formatExpiration(req.expiration!.newExpiration) })));
      await this.retrying(() => this.run((c) => c.query(sql)));
    }
  }

  /**
   * Revocation. A missing role is success. Custom statements run as one transaction. The default
   * ends the role's sessions (VALID UNTIL does not), hands what it owns to the root user and drops
   * its privileges in every database where it has any, drops the role, and then ends any session
   * that raced the drop (by role OID: a dropped role's sessions no longer show a user name).
   *
   * The default takes one round trip for the usual role, which owns nothing and holds no privileges
   * (membership in a group role is not a dependency): remember its OID, DROP ROLE, COMMIT, end its
   * sessions. When PostgreSQL refuses the drop because objects depend on the role (SQLSTATE 2BP01,
   * which rolls that transaction back), the full clean-up runs: the dependency look-up, then
   * REASSIGN/DROP OWNED wherever the role has something, then the drop.
   */
  async deleteUser(req: DeleteUserRequest): Promise<void> {
    const name = req.username;
    if (req.statements.length) {
      await this.retrying(async () => {
        const found = await this.run((c) => c.query<{ oid: number }>({ name: "leasehold_role_dependencies", text: ROLE_DEPENDENCIES, values: [name] }));
        if (found.rows.length === 0) return;
        await this.run((c) => c.query(joinStatements(req.statements.map((s) => renderStatement(s, { name })))));
      });
      return;
    }
    if (await this.dropTogether(name)) return;
    await this.retrying(async () => {
      const found = await this.run((c) => c.query<{ oid: number; owns_here: boolean; other_dbs: string[] }>({ name: "leasehold_role_dependencies", text: ROLE_DEPENDENCIES, values: [name] }));
      if (found.rows.length === 0) return;
      const { oid, owns_here: ownsHere, other_dbs: others } = found.rows[0];
      const role = pg.escapeIdentifier(name);
      const endSessions = endSessionsOf(oid);
      // REASSIGN/DROP OWNED only for a role that owns something or holds privileges: they need more
      // rights than DROP ROLE (a non-superuser root must have the role's privileges), and they would
      // wait for the locks of the role's open transactions, so its sessions are ended first.
      const dropOwned = `${endSessions};\nREASSIGN OWNED BY ${role} TO CURRENT_USER;\nDROP OWNED BY ${role};\n`;
      for (const db of others) await this.inDatabase(db, (c) => c.query(dropOwned));
      // One round trip: the part before COMMIT is one transaction, the final sweep runs after it.
      await this.run((c) => c.query(`${ownsHere ? dropOwned : ""}DROP ROLE IF EXISTS ${role};\nCOMMIT;\n${endSessions}`));
    });
  }

  async listExpiredUsers(req: { prefix: string; expiredBefore: Date }): Promise<string[]> {
    const like = `${req.prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const r = await this.run((c) =>
      c.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE $1 AND rolvaliduntil IS NOT NULL AND rolvaliduntil < $2 ORDER BY rolname LIMIT 1000", [like, req.expiredBefore]),
    );
    return r.rows.map((row) => row.rolname);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    if (pool) await pool.end().catch(() => undefined);
  }

  // ---- batched revocation -----------------------------------------------------------------

  /**
   * Drops a role that owns nothing, together with the roles other revocations queued meanwhile:
   * at most DROP_FLIGHTS round trips run at once, and what waits behind them goes in one (one
   * transaction, one commit, one pass over the backends). An idle config therefore drops at once,
   * and a burst (a prefix revoked, a mount disabled, leases expiring together) shares the cost.
   * Resolves false when the role owns objects or holds privileges (the caller then cleans up).
   */
  private dropTogether(name: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.dropQueue.push({ name, resolve, reject });
      this.pumpDrops();
    });
  }

  private pumpDrops(): void {
    while (this.dropFlights < DROP_FLIGHTS && this.dropQueue.length) {
      const batch = this.dropQueue.splice(0, DROP_BATCH);
      this.dropFlights++;
      void this.dropBatch(batch).finally(() => {
        this.dropFlights--;
        this.pumpDrops();
      });
    }
  }

  private async dropBatch(batch: QueuedDrop[]): Promise<void> {
    if (batch.length > 1) {
      try {
        await this.dropNow(batch.map((b) => b.name));
        for (const b of batch) b.resolve(true);
        return;
      } catch (err) {
        // Not a refusal by PostgreSQL (the connection failed): every revocation fails, to be retried.
        if (!(err instanceof DatabasePluginError) || !err.dbCode) {
          for (const b of batch) b.reject(err);
          return;
        }
        // One role of the batch owns something (or another statement-level refusal): nothing was
        // dropped; each role goes again on its own, so only that one takes the longer path.
      }
    }
    await Promise.all(batch.map((b) => this.dropOne(b)));
  }

  private async dropOne(b: QueuedDrop): Promise<void> {
    try {
      await this.dropNow([b.name]);
      b.resolve(true);
    } catch (err) {
      if (err instanceof DatabasePluginError && err.dbCode === DEPENDENT_OBJECTS) b.resolve(false);
      else b.reject(err);
    }
  }

  private dropNow(names: string[]): Promise<void> {
    return this.retrying(() => this.run(async (c) => void (await c.query(dropRoles(names)))));
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** Runs `fn` on a pooled connection; errors come out as scrubbed `DatabasePluginError`s. */
  private async run<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (!this.pool || this.closed) throw new DatabasePluginError("the connection is closed (the config was reset or deleted)", "not-applied", "unavailable");
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toPluginError(err, "connect", this.secrets);
    }
    let discard = false;
    try {
      return await fn(client);
    } catch (err) {
      if (isServerError(err)) {
        // A statement that opened an explicit transaction may have left it aborted: clean up or drop the connection.
        await client.query("ROLLBACK").catch(() => (discard = true));
      } else discard = true;
      throw toPluginError(err, "query", this.secrets);
    } finally {
      client.release(discard);
    }
  }

  /** A connection to another database of the same cluster, for revocation clean-up there. */
  private async inDatabase<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: connectionStringFor(this.settings!, database), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: "leasehold" });
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (err) {
      throw toPluginError(err, "connect", this.secrets);
    }
    try {
      return await fn(client);
    } catch (err) {
      throw toPluginError(err, "query", this.secrets);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Retries `fn` when PostgreSQL reports a conflict (`tuple concurrently updated` from concurrent
   * GRANTs, serialization failures, deadlocks), with jittered backoff. Retries queue behind each
   * other per config, and for a few seconds after a conflict new statements queue too, so a burst
   * of conflicting DDL drains one statement at a time instead of colliding again.
   */
  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (attempt === 1 && Date.now() >= this.contendedUntil) return await fn();
        const turn = this.retryQueue.then(fn, fn);
        this.retryQueue = turn.catch(() => undefined);
        return await turn;
      } catch (err) {
        if (!(err instanceof DatabasePluginError) || !err.dbCode || !RETRYABLE_SQLSTATES.has(err.dbCode) || attempt >= MAX_ATTEMPTS) throw err;
        this.contendedUntil = Date.now() + CONTENDED_MS;
        const base = Math.min(1_000, 10 * 2 ** attempt);
        await sleep(base / 2 + Math.random() * base);
      }
    }
  }
}
