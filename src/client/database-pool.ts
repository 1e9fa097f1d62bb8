/**
 * A `pg.Pool` stand-in whose connections always use current database credentials from
 * leasehold: when the credentials are replaced (before their lease runs out), new connections use
 * the new user, idle connections of the old user are closed at once, and busy ones are closed as
 * soon as they are released. Nothing keeps using credentials past their lease.
 *
 *   const pool = await databasePool(lh, "app", { host: "db", database: "orders", max: 10 });
 *   await pool.query("SELECT 1");
 */
import { EventEmitter } from "node:events";
import pg from "pg";
import type { DatabaseCredentials, Leasehold, Secret, SecretWatch } from "./leasehold.js";

export interface DatabasePoolOptions {
  /** The database engine's mount; `database` unless given. */
  mount?: string;
  /** Fraction of the lease after which new credentials are fetched (default 0.9, less up to 0.05 of jitter). */
  threshold?: number;
  /** Called after the pool switched to new credentials. */
  onRotated?(username: string, previousUsername: string): void;
  /** Renewal/fetch failures (the pool keeps serving with the current credentials while it retries). */
  onError?(error: Error, info: { expired: boolean }): void;
  /** Revoke the old lease once every connection of the old user is closed (needs `sys/leases/revoke`); default false. */
  revokePrevious?: boolean;
}

/** The parts of `pg.Pool` applications use, over a pool per credential generation. */
export class RotatingPool extends EventEmitter {
  private pool: pg.Pool;
  private readonly retiring = new Set<Promise<void>>();
  private ended = false;

  /** @internal use `databasePool()` */
  constructor(
    private readonly config: pg.PoolConfig,
    private secret: Secret<DatabaseCredentials>,
    private readonly options: DatabasePoolOptions,
    private readonly revoke: (leaseId: string) => Promise<void>,
  ) {
    super();
    this.pool = this.open(secret);
  }

  /** @internal set by `databasePool()` once the watch runs */
  watch: SecretWatch<Secret<DatabaseCredentials>> | undefined;

  /** The database user new connections log in as. */
  get username(): string {
    return this.secret.data.username;
  }

  /** The lease of the credentials in use. */
  get leaseId(): string {
    return this.secret.lease_id;
  }

  /** Same overloads as `pg.Pool.query` (promise or callback). */
  readonly query: pg.Pool["query"] = ((...args: unknown[]) => (this.pool.query as (...a: unknown[]) => unknown).apply(this.pool, args)) as pg.Pool["query"];

  /** Same as `pg.Pool.connect`: a client of the current user; `release()` it as usual. */
  readonly connect: pg.Pool["connect"] = ((...args: unknown[]) => (this.pool.connect as (...a: unknown[]) => unknown).apply(this.pool, args)) as pg.Pool["connect"];

  get totalCount(): number {
    return this.pool.totalCount;
  }

  get idleCount(): number {
    return this.pool.idleCount;
  }

  get waitingCount(): number {
    return this.pool.waitingCount;
  }

  /** Stops rotating and closes every connection (old users' included); the lease is left to expire. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.watch?.stop();
    await Promise.all([this.pool.end(), ...this.retiring]);
  }

  /** @internal switches new connections to `next` and retires the previous pool. */
  rotate(next: Secret<DatabaseCredentials>): void {
    if (this.ended) return;
    const previous = { pool: this.pool, secret: this.secret };
    this.secret = next;
    this.pool = this.open(next);
    // pg-pool's end() closes idle clients now and busy ones when they are released.
    const retired = previous.pool
      .end()
      .then(async () => {
        if (this.options.revokePrevious) await this.revoke(previous.secret.lease_id);
      })
      .catch((err: unknown) => this.options.onError?.(err instanceof Error ? err : new Error(String(err)), { expired: false }))
      .finally(() => this.retiring.delete(retired));
    this.retiring.add(retired);
    this.options.onRotated?.(next.data.username, previous.secret.data.username);
  }

  private open(secret: Secret<DatabaseCredentials>): pg.Pool {
    const pool = new pg.Pool({ ...this.config, user: secret.data.username, password: secret.data.password });
    // An idle client's error (say, its session was terminated) must not crash the process.
    pool.on("error", (err) => {
      if (this.listenerCount("error") > 0) this.emit("error", err);
      else this.options.onError?.(err, { expired: false });
    });
    pool.on("connect", (client) => this.emit("connect", client));
    return pool;
  }
}

/**
 * Fetches credentials for `role` and returns a pool using them, kept current by a watch on the
 * lease (renewed at about two thirds of its TTL, replaced before max TTL). `poolConfig` is
 * `pg.PoolConfig` without `user`/`password`.
 */
export async function databasePool(lh: Leasehold, role: string, poolConfig: Omit<pg.PoolConfig, "user" | "password">, options: DatabasePoolOptions = {}): Promise<RotatingPool> {
  const secret = await lh.database.creds(role, { mount: options.mount });
  const pool = new RotatingPool(poolConfig, secret, options, (leaseId) => lh.leases.revoke(leaseId));
  pool.watch = lh.watch(secret, {
    threshold: options.threshold,
    onReplaced: (next) => pool.rotate(next),
    onError: (err, info) => options.onError?.(err, { expired: info.expired }),
  });
  return pool;
}
