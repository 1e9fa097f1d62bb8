import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { LeaseholdError } from "../sdk/errors.js";
import { pgTypes, type PgNames, type WriteFence } from "../storage/postgres-schema.js";

/**
 * The HA lock: one row per cluster in `ha_table` (created by the storage migrations), keyed by the
 * key/value table's name so several clusters may share the table. It names the holder (node id,
 * api_addr, cluster_addr), an epoch that grows at every acquisition, and `valid_until`, always
 * computed by PostgreSQL's clock (`clock_timestamp()`), never by a node's.
 *
 * Lock modes (PostgreSQL's row-lock conflict table):
 * - every write transaction of the active runs `fenceFor(epoch)`: `SELECT ... FOR KEY SHARE` of
 *   the row, with its epoch, holder and `valid_until > clock_timestamp()`;
 * - a renewal and a release are plain UPDATEs of non-key columns (only `lock_key` is a key), so
 *   they take FOR NO KEY UPDATE, which does not conflict with FOR KEY SHARE: the holder renews at
 *   once however many of its write transactions are open (FOR SHARE would make it wait for all);
 * - a take-over first locks the row FOR UPDATE, which conflicts with FOR KEY SHARE (the key
 *   sharers are carried over to newer row versions): it waits until every write transaction that
 *   passed the old epoch's fence has ended, so no write of the old epoch can commit after the new
 *   epoch is committed. A writer that blocks it longer than `takeoverGraceMs` while the row is
 *   still takeable (a paused process in the middle of a transaction) is terminated
 *   (`pg_terminate_backend`, allowed for sessions of the same role): it rolls back, commits nothing.
 *
 * A writer that waits on the take-over's FOR UPDATE re-reads the new row version when it gets the
 * lock (READ COMMITTED), finds another epoch, and fails with `FencedError`.
 *
 * Dead holders: the holder takes and renews the lock on one dedicated session whose
 * `application_name` is unique (`holder_session` in the row). The lock is takeable when it expired
 * by PostgreSQL's clock, or at once when that session no longer exists in `pg_stat_activity`: a
 * killed node's session ends with its process, so a standby need not wait for the lifetime. A
 * paused (SIGSTOP) or partitioned node keeps its session open: then expiry decides. Taking over
 * early is safe for the same reason as after expiry: the take-over waits for (or terminates) the
 * old epoch's writers, and the old epoch's next fence fails.
 */

/** The NOTIFY channel a release is announced on (payload: the cluster's lock key). */
const RELEASE_CHANNEL = "leasehold_ha_released";

/** The node no longer holds the HA lock (or never did): its write was refused and committed nothing. */
export class FencedError extends LeaseholdError {
  readonly status = 503;
  readonly code = "fenced";
  constructor(message = "this node is not the active node (it does not hold the HA lock)") {
    super(message);
  }
}

export interface HaLockOptions {
  /** The same `connection_url` as the storage; the lock keeps its own session and small pool so renewals never queue behind writes. */
  connectionUrl: string;
  /** `PostgresStorage.names`: the HA table and this cluster's row key. */
  names: PgNames;
  /** This node's id (unique per node, e.g. a UUID made at start). */
  nodeId: string;
  apiAddr: string;
  clusterAddr?: string;
  /** How long a renewal keeps the lock valid, by PostgreSQL's clock. */
  lifetimeMs?: number;
  /** Renew every... (default lifetime / 3). */
  renewIntervalMs?: number;
  /**
   * The node considers the lock lost at (start of its last successful renewal) + lifetime - margin,
   * by its own monotonic clock: before `valid_until` passes on PostgreSQL's clock, whatever the
   * round-trip time, as long as the two clocks' rates differ by less than margin / lifetime.
   */
  safetyMarginMs?: number;
  /** Between acquisition attempts and after a failed renewal (default lifetime / 10, at least 100 ms). */
  retryIntervalMs?: number;
  /** How long a take-over waits for the old epoch's open write transactions before terminating them. */
  takeoverGraceMs?: number;
  /** The node's own monotonic clock in ms (tests inject a skewed one). */
  now?: () => number;
}

export const HA_DEFAULT_LIFETIME_MS = 15_000;

/** Who holds the lock, as PostgreSQL sees it now. */
export interface LockHolder {
  nodeId: string;
  apiAddr: string;
  clusterAddr: string;
  epoch: number;
  /** When this holder acquired it (`active_time` of sys/leader). */
  acquiredAt: Date;
  validUntil: Date;
}

/** superseded: PostgreSQL shows another epoch or an expired row; expired: this node's own deadline passed first. */
export type LossReason = "superseded" | "expired";

/**
 * What the lock looked like when this node took it: `free` (nobody held it: first start of the
 * cluster, or the previous holder released it on step-down, seal or SIGTERM), `expired` (its
 * holder stopped renewing: paused, cut off, or too slow), `holder_gone` (its holder's session had
 * ended before expiry: a killed process).
 */
export type AcquisitionReason = "free" | "expired" | "holder_gone";

/** Why a renewal did not extend the lock: it failed (connection, timeout), PostgreSQL showed it lost, or it hung past the node's deadline. */
export type RenewalFailure = "error" | "lost" | "deadline";

export interface LockRun {
  /** Stops campaigning and renewing; does not release (call `release()` for a hand-over). */
  stop(): Promise<void>;
}

interface Held {
  epoch: number;
  /** Local monotonic time after which this node must not write. */
  deadline: number;
  /** Local monotonic time at which the last successful acquisition or renewal was sent. */
  renewedAt: number;
}

interface LockRow {
  holder: string;
  api_addr: string;
  cluster_addr: string;
  epoch: number;
  acquired_at: Date | null;
  valid_until: Date;
  valid: boolean;
  /** Expired by PostgreSQL's clock, or its holder's session is gone. */
  takeable: boolean;
}

/** Unref'd: a pending wait (a race against a deadline) must not keep the process alive. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class HaLock {
  readonly lifetimeMs: number;
  readonly renewIntervalMs: number;
  readonly safetyMarginMs: number;
  readonly retryIntervalMs: number;
  readonly takeoverGraceMs: number;
  private held?: Held;
  private closed?: Promise<void>;
  /** The dedicated session that takes and renews the lock (its name is `holder_session`). */
  private session?: Promise<pg.Client>;
  /** The LISTEN session of a campaigning node (listenForReleases). */
  private listener?: pg.Client;
  private onRelease?: () => void;
  /** Serialises the session's transactions (a pg.Client would interleave their statements). */
  private sessionQueue: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly key: string;
  private readonly sql;

  /** The epoch and reason of this node's last acquisition (for the failover metric). */
  lastAcquisition?: { epoch: number; reason: AcquisitionReason };

  private constructor(
    /** Reads of the row; also the member registry's heartbeats (src/cluster/members.ts), so a standby never writes through the fenced storage. */
    readonly pool: pg.Pool,
    private readonly opts: HaLockOptions,
  ) {
    this.lifetimeMs = opts.lifetimeMs ?? HA_DEFAULT_LIFETIME_MS;
    this.renewIntervalMs = opts.renewIntervalMs ?? Math.floor(this.lifetimeMs / 3);
    this.safetyMarginMs = opts.safetyMarginMs ?? Math.max(Math.floor(this.lifetimeMs / 10), 200);
    this.retryIntervalMs = opts.retryIntervalMs ?? Math.max(Math.floor(this.lifetimeMs / 10), 100);
    this.takeoverGraceMs = opts.takeoverGraceMs ?? 1000;
    if (this.renewIntervalMs + this.safetyMarginMs >= this.lifetimeMs) {
      throw new Error("HA lock: renew interval + safety margin must be shorter than the lock lifetime");
    }
    this.now = opts.now ?? (() => performance.now());
    this.key = opts.names.prefix;
    const t = opts.names.ha;
    const takeable = `(valid_until <= clock_timestamp() OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = holder_session))`;
    const cols = `holder, api_addr, cluster_addr, epoch, acquired_at, valid_until, valid_until > clock_timestamp() AS valid, ${takeable} AS takeable`;
    const life = "clock_timestamp() + $2 * interval '1 millisecond'";
    this.sql = {
      current: `SELECT ${cols} FROM ${t} WHERE lock_key = $1`,
      lockForTakeover: `SELECT ${cols} FROM ${t} WHERE lock_key = $1 FOR UPDATE`,
      take: `UPDATE ${t} SET holder = $3, api_addr = $4, cluster_addr = $5, epoch = epoch + 1, holder_session = current_setting('application_name'),
               acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), valid_until = ${life} WHERE lock_key = $1 RETURNING epoch`,
      // Also records the session: after a reconnect, the new one is the holder's.
      renew: `UPDATE ${t} SET renewed_at = clock_timestamp(), valid_until = ${life}, holder_session = current_setting('application_name')
               WHERE lock_key = $1 AND holder = $3 AND epoch = $4 AND valid_until > clock_timestamp()`,
      release: `UPDATE ${t} SET holder = '', api_addr = '', cluster_addr = '', holder_session = '', valid_until = '-infinity'
               WHERE lock_key = $1 AND holder = $2 AND epoch = $3`,
      fence: `SELECT 1 FROM ${t} WHERE lock_key = $1 AND epoch = $2 AND holder = $3 AND valid_until > clock_timestamp() FOR KEY SHARE`,
      // Only while the row is still takeable at the epoch the take-over saw: if someone else took
      // it meanwhile, the blockers are that holder's legitimate writers.
      terminateBlockers: `SELECT count(pg_terminate_backend(b))::int AS n FROM unnest(pg_blocking_pids($3)) AS b
               WHERE EXISTS (SELECT 1 FROM ${t} WHERE lock_key = $1 AND epoch = $2 AND ${takeable})`,
    };
  }

  /** Connects (the storage must have been opened once: its migrations create the table). */
  static async open(opts: HaLockOptions): Promise<HaLock> {
    if (!opts.nodeId) throw new Error("HA lock: a node id is required");
    const pool = new pg.Pool({
      connectionString: opts.connectionUrl,
      // Reads of the row, the session that terminates a take-over's blockers, and the member
      // registry's heartbeats and reads (taking and renewing run on the dedicated lock session).
      max: 4,
      types: pgTypes,
      application_name: "leasehold-ha",
      connectionTimeoutMillis: Math.min(opts.lifetimeMs ?? HA_DEFAULT_LIFETIME_MS, 10_000),
      keepAlive: true,
    });
    pool.on("error", () => undefined); // an idle connection dropped by the server: the next query reconnects
    const lock = new HaLock(pool, opts);
    try {
      // The row exists once the migration ran; a missing table is a configuration error worth saying.
      const { rowCount } = await pool.query(lock.sql.current, [lock.key]);
      if (rowCount !== 1) throw new Error(`no lock row for ${lock.key} in ${opts.names.ha}`);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(`HA lock (${opts.names.ha}): ${(err as Error).message}`, { cause: err });
    }
    return lock;
  }

  /** The epoch this node holds and may still write under, by its own clock; undefined otherwise. */
  get epoch(): number | undefined {
    return this.holds() ? this.held?.epoch : undefined;
  }

  /**
   * Seconds since this node last acquired or renewed the lock successfully (by its own monotonic
   * clock, from when that request was sent); undefined when it does not hold the lock.
   */
  secondsSinceRenewal(): number | undefined {
    if (!this.holds()) return undefined;
    return (this.now() - this.held!.renewedAt) / 1000;
  }

  /** Whether this node may still act as the holder: its last renewal + lifetime - margin has not passed. */
  holds(): boolean {
    return this.held !== undefined && this.now() < this.held.deadline;
  }

  /**
   * Tries once to take the lock: when it is free, expired by PostgreSQL's clock, or its holder's
   * session is gone. Returns the new epoch, or undefined when another node holds it. Idempotent
   * for the current holder.
   */
  async acquire(): Promise<number | undefined> {
    const seen = await this.row();
    if (!seen.takeable) {
      const mine = this.held && seen.holder === this.opts.nodeId && seen.epoch === this.held.epoch;
      return mine ? this.epoch : undefined;
    }
    return this.onSession(async (client) => {
      const sentAt = this.now();
      await client.query("BEGIN");
      try {
        // The ultimate bound on waiting for the old epoch's writers (terminated before that).
        await client.query(`SET LOCAL lock_timeout = ${Math.max(this.lifetimeMs, 3 * this.takeoverGraceMs)}`);
        const { rows: pid } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        const locked = client.query<LockRow>(this.sql.lockForTakeover, [this.key]);
        await this.unblock(locked, seen.epoch, pid[0].pid);
        const { rows } = await locked;
        if (!rows[0].takeable) {
          await client.query("ROLLBACK");
          return undefined; // another node took it first
        }
        const taken = await client.query<{ epoch: number }>(this.sql.take, [this.key, this.lifetimeMs, this.opts.nodeId, this.opts.apiAddr, this.opts.clusterAddr ?? ""]);
        await client.query("COMMIT");
        const epoch = taken.rows[0].epoch;
        this.held = { epoch, deadline: sentAt + this.lifetimeMs - this.safetyMarginMs, renewedAt: sentAt };
        const was = rows[0];
        this.lastAcquisition = { epoch, reason: !was.holder ? "free" : was.valid ? "holder_gone" : "expired" };
        return epoch;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => this.dropSession());
        if ((err as { code?: string }).code === "55P03") return undefined; // lock_timeout
        throw err;
      }
    });
  }

  /** While the take-over waits for the row, terminates what still blocks it after the grace period. */
  private async unblock(locked: Promise<unknown>, epoch: number, pid: number): Promise<void> {
    let settled = false;
    const done = locked.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      await Promise.race([done, sleep(this.takeoverGraceMs)]);
      if (settled) return;
      await this.pool.query(this.sql.terminateBlockers, [this.key, epoch, pid]).catch(() => undefined);
    }
  }

  /**
   * Extends `valid_until` if this node still holds the lock at its epoch and it has not expired.
   * True: renewed. False: lost (another epoch, a release, or expired by PostgreSQL's clock); this
   * node must stop writing. Throws on a connection error: the lock is then still held until
   * `holds()` turns false.
   */
  async renew(): Promise<boolean> {
    const held = this.held;
    if (!held) return false;
    return this.onSession(async (client) => {
      const sentAt = this.now();
      const { rowCount } = await client.query(this.sql.renew, [this.key, this.lifetimeMs, this.opts.nodeId, held.epoch]);
      if (this.held !== held) return false; // released or lost while the renewal was in flight
      if (rowCount !== 1) {
        this.held = undefined;
        return false;
      }
      held.deadline = Math.max(held.deadline, sentAt + this.lifetimeMs - this.safetyMarginMs);
      held.renewedAt = Math.max(held.renewedAt, sentAt);
      return true;
    });
  }

  /**
   * Hands the lock over (step-down, SIGTERM): waits (bounded) for this node's open write
   * transactions to end, then clears the holder, so another node can acquire at once. False when
   * this node did not hold it any more.
   */
  async release(): Promise<boolean> {
    const held = this.held;
    this.held = undefined; // no new write passes the local check from now on
    if (!held) return false;
    return this.onSession(async (client) => {
      await client.query("BEGIN");
      try {
        await client.query(`SET LOCAL lock_timeout = ${this.lifetimeMs}`);
        // FOR UPDATE waits for the writers holding the fence, so none is cut off by the successor.
        await client.query(this.sql.lockForTakeover, [this.key]);
        const { rowCount } = await client.query(this.sql.release, [this.key, this.opts.nodeId, held.epoch]);
        // Delivered at commit: the standbys listening campaign at once instead of at their next retry.
        if (rowCount === 1) await client.query("SELECT pg_notify($1, $2)", [RELEASE_CHANNEL, this.key]);
        await client.query("COMMIT");
        return rowCount === 1;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => this.dropSession());
        throw err;
      }
    });
  }

  /** Runs `fn` on the lock session, one at a time, (re)connecting it when needed. */
  private onSession<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = this.sessionQueue.then(async () => fn(await this.connectSession()));
    this.sessionQueue = run.catch(() => undefined);
    return run;
  }

  private connectSession(): Promise<pg.Client> {
    if (this.session) return this.session;
    const client = new pg.Client({
      connectionString: this.opts.connectionUrl,
      // Unique per session, so a dead session is recognisable in pg_stat_activity (visible to every role).
      application_name: `leasehold-ha-${randomBytes(8).toString("hex")}`,
      types: pgTypes,
      keepAlive: true,
      connectionTimeoutMillis: Math.min(this.lifetimeMs, 10_000),
    });
    const session = client.connect().then(() => client);
    const gone = () => {
      if (this.session === session) this.session = undefined;
    };
    client.on("error", gone);
    client.on("end", gone);
    session.catch(gone);
    this.session = session;
    return session;
  }

  /** Abandons the session (hung, or in an unknown state): PostgreSQL rolls back whatever it had open. */
  private dropSession(): void {
    const s = this.session;
    this.session = undefined;
    void s?.then((c) => c.end()).catch(() => undefined);
  }

  /** The current holder by PostgreSQL's clock, or undefined when the lock is free or expired. */
  async current(): Promise<LockHolder | undefined> {
    const r = await this.row();
    if (!r.valid || !r.holder) return undefined;
    return { nodeId: r.holder, apiAddr: r.api_addr, clusterAddr: r.cluster_addr, epoch: r.epoch, acquiredAt: r.acquired_at ?? new Date(0), validUntil: r.valid_until };
  }

  private async row(): Promise<LockRow> {
    const { rows } = await this.pool.query<LockRow>(this.sql.current, [this.key]);
    if (!rows[0]) throw new Error(`HA lock: the row for ${this.key} is gone from ${this.opts.names.ha}`);
    return rows[0];
  }

  /**
   * The write fence for `PostgresStorage.open({ fence })`, run first in every write transaction:
   * refuses when this node's own clock says the lock may be lost, and otherwise lets PostgreSQL
   * decide (epoch, holder and expiry by its clock), holding the row FOR KEY SHARE until commit so a
   * take-over waits for this transaction. Throws `FencedError`: the transaction commits nothing.
   */
  fenceFor(epoch: number): WriteFence {
    return async (tx) => {
      if (this.held?.epoch !== epoch || !this.holds()) throw new FencedError();
      const { rowCount } = await tx.query({ name: `ha-fence-${this.key}`, text: this.sql.fence, values: [this.key, epoch, this.opts.nodeId] });
      if (rowCount !== 1) throw new FencedError();
    };
  }

  /**
   * Campaigns (acquire every retry interval) until it holds the lock, calls `onAcquired`, renews
   * every renew interval (retrying sooner after an error), and calls `onLost` once when the lock is
   * lost: superseded or expired by PostgreSQL, or this node's own deadline passed without a
   * successful renewal (checked by a timer too, so a hung renewal cannot hide it). After `onLost`
   * has settled it campaigns again.
   */
  run(handlers: {
    onAcquired?(epoch: number): void | Promise<void>;
    onLost(reason: LossReason, epoch: number): void | Promise<void>;
    onError?(err: unknown): void;
    /** A renewal did not extend the lock (each attempt once; a failed one is retried until the deadline). */
    onRenewalFailed?(why: RenewalFailure): void;
  }): LockRun {
    let stopped = false;
    let wake: () => void = () => undefined;
    /** A release was announced while no nap was running: the next nap returns at once. */
    let poked = false;
    const nap = (ms: number) =>
      new Promise<void>((r) => {
        if (poked) {
          poked = false;
          return r();
        }
        const t = setTimeout(r, Math.max(ms, 0));
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    const loop = (async () => {
      while (!stopped) {
        const h = this.held;
        if (!h) {
          this.listenForReleases(() => {
            poked = true;
            wake();
          });
          try {
            const epoch = await this.acquire();
            if (epoch !== undefined) {
              await handlers.onAcquired?.(epoch);
              continue;
            }
          } catch (err) {
            handlers.onError?.(err);
          }
          await nap(this.retryIntervalMs);
          continue;
        }
        let reason: LossReason = "expired";
        if (this.holds()) {
          await nap(Math.min(this.renewIntervalMs, h.deadline - this.now()));
          if (stopped) break;
          if (this.held !== h) continue; // released by the node itself: no loss to report
          if (this.holds()) {
            // A renewal that hangs must not hide the deadline: race them.
            const outcome = await Promise.race([
              this.renew().then(
                (ok) => (ok ? "renewed" : "lost"),
                (err: unknown) => (handlers.onError?.(err), "error"),
              ),
              sleep(Math.max(h.deadline - this.now(), 0)).then(() => "deadline"),
            ]);
            if (outcome === "renewed") continue;
            handlers.onRenewalFailed?.(outcome as RenewalFailure);
            if (outcome === "error" && this.holds()) {
              await nap(Math.min(this.retryIntervalMs, h.deadline - this.now()));
              continue;
            }
            if (outcome === "lost") reason = "superseded";
            if (outcome === "deadline") this.dropSession(); // a hung renewal must not hold up the next campaign
          }
        }
        if (this.held === h) this.held = undefined;
        await handlers.onLost(reason, h.epoch);
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        wake();
        await loop;
        this.stopListening();
      },
    };
  }

  /**
   * While campaigning: a session LISTENing on the release channel, so a hand-over (step-down,
   * SIGTERM, seal) wakes this node at once. Best effort: when it cannot connect or drops, the
   * campaign's retry interval still finds the free lock, and the next round connects it again.
   */
  private listenForReleases(onRelease: () => void): void {
    this.onRelease = onRelease;
    if (this.listener || this.closed) return;
    const client = new pg.Client({ connectionString: this.opts.connectionUrl, application_name: "leasehold-ha-listen", keepAlive: true });
    this.listener = client;
    const drop = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
    };
    client.on("error", drop);
    client.on("end", drop);
    client.on("notification", (msg) => {
      if (msg.channel === RELEASE_CHANNEL && msg.payload === this.key) this.onRelease?.();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${RELEASE_CHANNEL}`))
      .catch(drop);
  }

  private stopListening(): void {
    const client = this.listener;
    this.listener = undefined;
    this.onRelease = undefined;
    client?.end().catch(() => undefined);
  }

  /** Closes the connections; does not release (a closed session makes the lock takeable at once). */
  close(): Promise<void> {
    this.stopListening();
    this.held = undefined;
    const s = this.session;
    this.session = undefined;
    return (this.closed ??= Promise.all([this.pool.end(), s?.then((c) => c.end()).catch(() => undefined)]).then(() => undefined));
  }
}
