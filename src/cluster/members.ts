import type { PgNames, Queryable } from "../storage/postgres-schema.js";

/**
 * The HA member registry: one row per unsealed node of a cluster in `<ha_table>_members`, keyed
 * like the lock row (the cluster's `lock_key`) and the node's id. Every unsealed node, active or
 * standby, heartbeats its row every `lifetime / 3` on the HA lock's own pool (a standby cannot
 * write through the fenced storage, and must not), and deletes it on a clean shutdown or seal.
 *
 * Times (`last_echo`, `started_at`) are PostgreSQL's clock, like the lock's, so nodes with skewed
 * clocks still agree on who is alive. A row not heard from for `expiryMs` (3 lock lifetimes by
 * default: 45 s with the default 15 s lifetime, 6 s with 2 s) is left out of every answer, and the
 * active node deletes it at its next heartbeat: a killed or partitioned node drops out by itself.
 *
 * Nothing secret is stored: addresses, host name, version and timings only.
 */

/** What a node says about itself at each heartbeat. */
export interface MemberInfo {
  nodeId: string;
  hostname: string;
  apiAddr: string;
  clusterAddr: string;
  version: string;
}

/** A live member as read back (sys/ha-status). */
export interface Member extends MemberInfo {
  /** The last heartbeat, by PostgreSQL's clock. */
  lastEcho: Date;
  /** The first heartbeat since this node last unsealed, by PostgreSQL's clock. */
  startedAt: Date;
  /** The node's clock minus PostgreSQL's, measured at its previous heartbeat (ms). */
  clockSkewMs: number;
  /** Round trip of the node's previous heartbeat to PostgreSQL (ms). */
  echoDurationMs: number;
}

/** Rows older than this many lock lifetimes are dead. */
export const MEMBER_EXPIRY_LIFETIMES = 3;

interface MemberRow {
  node_id: string;
  hostname: string;
  api_addr: string;
  cluster_addr: string;
  version: string;
  last_echo: Date;
  started_at: Date;
  clock_skew_ms: number;
  echo_duration_ms: number;
}

/** Where the registry lives and when a member counts as dead. */
export interface MemberRegistryOptions {
  /** The HA lock's pool (`HaLock.pool`): never the fenced storage. */
  pool: Queryable;
  names: PgNames;
  /** A row not heard from for this long is dead (left out, then pruned). */
  expiryMs: number;
  /** The node's wall clock in ms (tests inject a skewed one). */
  now?: () => number;
}

/** One node's view of its cluster's member rows: its own heartbeat and leave, everyone's list, the active's prune. */
export class MemberRegistry {
  private readonly key: string;
  private readonly now: () => number;
  private readonly sql;
  /** Measured at the previous heartbeat, sent with the next one. */
  private measured = { clockSkewMs: 0, echoDurationMs: 0 };

  constructor(private readonly opts: MemberRegistryOptions) {
    this.key = opts.names.prefix;
    this.now = opts.now ?? Date.now;
    const t = opts.names.haMembers;
    const alive = `last_echo > clock_timestamp() - $2 * interval '1 millisecond'`;
    this.sql = {
      // started_at is kept across heartbeats; a node that unsealed again starts a new row (see `leave`).
      heartbeat: `INSERT INTO ${t} AS m (lock_key, node_id, hostname, api_addr, cluster_addr, version, started_at, last_echo, clock_skew_ms, echo_duration_ms)
                  VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), clock_timestamp(), $7, $8)
                  ON CONFLICT (lock_key, node_id) DO UPDATE SET hostname = EXCLUDED.hostname, api_addr = EXCLUDED.api_addr, cluster_addr = EXCLUDED.cluster_addr,
                    version = EXCLUDED.version, last_echo = EXCLUDED.last_echo, clock_skew_ms = EXCLUDED.clock_skew_ms, echo_duration_ms = EXCLUDED.echo_duration_ms
                  RETURNING (extract(epoch FROM m.last_echo) * 1000)::float8 AS echo_ms`,
      leave: `DELETE FROM ${t} WHERE lock_key = $1 AND node_id = $2`,
      list: `SELECT node_id, hostname, api_addr, cluster_addr, version, last_echo, started_at, clock_skew_ms, echo_duration_ms
             FROM ${t} WHERE lock_key = $1 AND ${alive} ORDER BY api_addr, node_id`,
      prune: `DELETE FROM ${t} WHERE lock_key = $1 AND NOT (${alive})`,
    };
  }

  get expiryMs(): number {
    return this.opts.expiryMs;
  }

  /**
   * Upserts this node's row with `last_echo` = PostgreSQL's now, and measures the round trip and
   * the clock skew (this node's clock at the middle of the round trip minus PostgreSQL's) for the
   * next heartbeat to report.
   */
  async heartbeat(self: MemberInfo): Promise<void> {
    const sent = this.now();
    const { rows } = await this.opts.pool.query<{ echo_ms: number }>(this.sql.heartbeat, [
      this.key,
      self.nodeId,
      self.hostname,
      self.apiAddr,
      self.clusterAddr,
      self.version,
      this.measured.clockSkewMs,
      this.measured.echoDurationMs,
    ]);
    const received = this.now();
    const echoMs = rows[0]?.echo_ms;
    if (typeof echoMs === "number") {
      this.measured = { clockSkewMs: Math.round((sent + received) / 2 - echoMs), echoDurationMs: Math.round(received - sent) };
    }
  }

  /** Removes this node's row (clean shutdown, seal). */
  async leave(nodeId: string): Promise<void> {
    await this.opts.pool.query(this.sql.leave, [this.key, nodeId]);
  }

  /** The members heard from within the expiry, by api_addr. */
  async list(): Promise<Member[]> {
    const { rows } = await this.opts.pool.query<MemberRow>(this.sql.list, [this.key, this.opts.expiryMs]);
    return rows.map((r) => ({
      nodeId: r.node_id,
      hostname: r.hostname,
      apiAddr: r.api_addr,
      clusterAddr: r.cluster_addr,
      version: r.version,
      lastEcho: r.last_echo,
      startedAt: r.started_at,
      clockSkewMs: r.clock_skew_ms,
      echoDurationMs: r.echo_duration_ms,
    }));
  }

  /** Deletes the rows not heard from within the expiry (the active does this); returns how many. */
  async prune(): Promise<number> {
    const { rowCount } = await this.opts.pool.query(this.sql.prune, [this.key, this.opts.expiryMs]);
    return rowCount ?? 0;
  }
}
