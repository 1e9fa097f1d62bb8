import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { Counter, Gauge } from "prom-client";
import type { Core, HaController, HaLeader } from "../core/core.js";
import { VERSION } from "../core/version.js";
import { StandbyError } from "../sdk/errors.js";
import type { PgNames, WriteFence } from "../storage/postgres-schema.js";
import { FencedError, HaLock, type AcquisitionReason, type LockRun, type RenewalFailure } from "./lock.js";
import { MEMBER_EXPIRY_LIFETIMES, MemberRegistry, type MemberInfo } from "./members.js";

/**
 * One node of an HA cluster on PostgreSQL: campaigns for the HA lock while unsealed, makes the
 * core active when it holds the lock and standby when it loses it, and fences every write of the
 * storage with the epoch it holds.
 *
 * A standby serves nothing itself: it forwards requests to the active (src/cluster/forwarding.ts)
 * or redirects clients to the active node's api_addr (src/server/app.ts), and writes nothing.
 *
 * The fence: the storage is opened with `fence`, which reads the epoch this node holds *now*
 * (undefined on a standby: every write fails with FencedError before touching a table) and runs the
 * lock's `fenceFor(epoch)` inside the write's transaction. A deposed active whose lock expired or was
 * taken over fails its next write and commits nothing; the lock's run loop notices the loss at its
 * next renewal (or its own deadline) and the node steps down.
 *
 * Membership: while unsealed, the node heartbeats its row in the member registry (members.ts) every
 * lifetime / 3, on the lock's pool; the active also prunes the rows not heard from for 3 lifetimes.
 * `members()` answers sys/ha-status from it.
 *
 * Metrics (on the core's registry): `leasehold_core_active`, `leasehold_ha_failovers_total{reason}`
 * (acquisitions of the lock by this node, by what it found: `free`, `expired`, `holder_gone`),
 * `leasehold_ha_lock_age_seconds` (seconds since this node's last successful acquisition or renewal
 * while it holds the lock, NaN otherwise: approaching the lifetime means a failover is near), and
 * `leasehold_ha_lock_renewal_failures_total{reason}` (`error`, `lost`, `deadline`).
 */
export interface HaNodeOptions {
  connectionUrl: string;
  apiAddr: string;
  clusterAddr?: string;
  /** Lock lifetime (default 15 s). */
  lifetimeMs?: number;
  logger: Logger;
  /** Runs after the core became active, under the lock (the cluster listener's certificate is made here); a failure steps down. */
  onActive?: () => Promise<void>;
}

/** Wording with "standby": the client library fails over to another address on such a 503. */
const FENCED_MESSAGE = "node is in standby mode: it does not hold the HA lock (another node is active)";

export class HaNode implements HaController {
  readonly nodeId = randomUUID();
  private lock?: HaLock;
  private core?: Core;
  /** The epoch of the lock this node holds and has become active under; undefined on a standby. */
  private epoch?: number;
  private campaign?: LockRun;
  private campaignTimer?: NodeJS.Timeout;
  private closed = false;
  /** Serialises take-over, loss, step-down and seal: each runs after the previous has settled. */
  private transitions: Promise<unknown> = Promise.resolve();
  private registry?: MemberRegistry;
  /** The heartbeat loop while unsealed; `stopHeartbeat` clears it. */
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatRun?: Promise<void>;
  private heartbeatFailing = false;
  private heartbeatStopped = false;
  private failovers?: Counter<"reason">;
  private countedEpoch?: number;
  private renewalFailures?: Counter<"reason">;

  constructor(private readonly opts: HaNodeOptions) {}

  /** For `PostgresStorage.open({ fence })`: every write transaction runs it first. */
  readonly fence: WriteFence = async (tx) => {
    const epoch = this.epoch;
    if (epoch === undefined || !this.lock) throw new FencedError(FENCED_MESSAGE);
    try {
      await this.lock.fenceFor(epoch)(tx);
    } catch (err) {
      if (err instanceof FencedError) throw new FencedError(FENCED_MESSAGE);
      throw err;
    }
  };

  /** Connects the lock once the storage has created its tables, and binds the core. */
  async open(names: PgNames, core: Core): Promise<void> {
    this.core = core;
    this.lock = await HaLock.open({ connectionUrl: this.opts.connectionUrl, names, nodeId: this.nodeId, apiAddr: this.opts.apiAddr, clusterAddr: this.opts.clusterAddr, lifetimeMs: this.opts.lifetimeMs });
    this.registry = new MemberRegistry({ pool: this.lock.pool, names, expiryMs: MEMBER_EXPIRY_LIFETIMES * this.lock.lifetimeMs });
    const self = this;
    const registers = [core.metrics.registry];
    new Gauge({
      name: "leasehold_core_active",
      help: "1 while this node is the active node of its HA cluster (holds the lock and has loaded its state), 0 on a standby",
      registers,
      collect() {
        this.set(self.isActive ? 1 : 0);
      },
    });
    this.failovers = new Counter({
      name: "leasehold_ha_failovers_total",
      help: "Times this node took the HA lock, by what it found: free (first start, or the previous active handed over), expired (the holder stopped renewing), holder_gone (the holder's session ended: a killed process)",
      labelNames: ["reason"],
      registers,
    });
    this.renewalFailures = new Counter({
      name: "leasehold_ha_lock_renewal_failures_total",
      help: "Renewals of the HA lock by this node that did not extend it: error (connection, timeout; retried), lost (PostgreSQL shows another holder or expiry), deadline (hung past the node's own deadline)",
      labelNames: ["reason"],
      registers,
    });
    for (const r of ["free", "expired", "holder_gone"] satisfies AcquisitionReason[]) this.failovers.inc({ reason: r }, 0);
    for (const r of ["error", "lost", "deadline"] satisfies RenewalFailure[]) this.renewalFailures.inc({ reason: r }, 0);
    new Gauge({
      name: "leasehold_ha_lock_age_seconds",
      help: "Seconds since this node last acquired or renewed the HA lock (it renews every lifetime/3); NaN while it does not hold it. Near the lock lifetime, the node is about to lose the lock",
      registers,
      collect() {
        this.set(self.lock?.secondsSinceRenewal() ?? Number.NaN);
      },
    });
  }

  /** This node as the member registry shows it. */
  private get memberInfo(): MemberInfo {
    return { nodeId: this.nodeId, hostname: hostname(), apiAddr: this.opts.apiAddr, clusterAddr: this.opts.clusterAddr ?? "", version: VERSION };
  }

  /** Counts an acquisition that made (or is making) this node active, once per epoch. */
  private countAcquisition(epoch: number): void {
    const a = this.lock?.lastAcquisition;
    if (a?.epoch !== epoch || this.countedEpoch === epoch) return;
    this.countedEpoch = epoch;
    this.failovers?.inc({ reason: a.reason });
  }

  get isActive(): boolean {
    return this.epoch !== undefined && this.core !== undefined && !this.core.sealed && !this.core.standby;
  }

  private get log(): Logger {
    return this.opts.logger;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.transitions.then(fn);
    this.transitions = run.catch(() => undefined);
    return run;
  }

  // ---- HaController (called by the core) ----

  async beforeInitialize(): Promise<void> {
    const lock = this.lock!;
    const epoch = await lock.acquire();
    if (epoch === undefined) throw new StandbyError("node is in standby mode: another node holds the HA lock; initialize through the active node");
    this.countAcquisition(epoch);
    this.epoch = epoch;
    // Sealed: only marks the core active; the unseal that init performs loads its state.
    await this.core!.becomeActive();
  }

  unsealed(): void {
    // After sys/init on this node (it took the lock before unsealing): the active's set-up runs now.
    if (this.epoch !== undefined) void this.serial(() => this.runOnActive(this.epoch!));
    if (!this.closed && !this.campaign && !this.campaignTimer) this.startCampaign();
    if (!this.closed) this.startHeartbeat();
  }

  private async runOnActive(epoch: number): Promise<void> {
    if (this.epoch !== epoch || !this.opts.onActive) return;
    await this.opts.onActive().catch((err: unknown) => this.log.error({ err }, "setting up the active node failed"));
  }

  async sealed(): Promise<void> {
    // Never inside `serial`: the campaign loop may be waiting there (onAcquired), and stopping it waits for the loop.
    await this.stopCampaign();
    await this.serial(() => this.giveUp("sealed"));
    await this.leaveRegistry();
  }

  async leader(): Promise<HaLeader | undefined> {
    const h = await this.lock!.current();
    // This node's own row while it is not active (stepping down, or its lock about to expire): no active node to send anyone to.
    if (!h || (h.nodeId === this.nodeId && this.epoch !== h.epoch)) return undefined;
    return { isSelf: h.nodeId === this.nodeId && this.epoch === h.epoch, apiAddr: h.apiAddr, clusterAddr: h.clusterAddr, activeTime: h.acquiredAt };
  }

  async members(): ReturnType<HaController["members"]> {
    const registry = this.registry!;
    let [rows, holder] = await Promise.all([registry.list(), this.lock!.current()]);
    // The active always lists itself, even before its first heartbeat landed.
    if (holder?.nodeId === this.nodeId && !rows.some((r) => r.nodeId === this.nodeId)) {
      await registry.heartbeat(this.memberInfo);
      rows = await registry.list();
    }
    const members = rows.map((r) => ({ ...r, activeNode: r.nodeId === holder?.nodeId }));
    return [...members.filter((m) => m.activeNode), ...members.filter((m) => !m.activeNode)];
  }

  // ---- the member registry's heartbeat ----

  private startHeartbeat(): void {
    if (this.heartbeatTimer || this.heartbeatRun || !this.registry) return;
    const interval = Math.max(Math.floor(this.lock!.lifetimeMs / 3), 100);
    const beat = () => {
      this.heartbeatTimer = undefined;
      this.heartbeatRun = this.heartbeat().finally(() => {
        this.heartbeatRun = undefined;
        if (!this.closed && this.core && !this.core.sealed && !this.heartbeatStopped) {
          this.heartbeatTimer = setTimeout(beat, interval);
          this.heartbeatTimer.unref();
        }
      });
    };
    this.heartbeatStopped = false;
    beat();
  }

  /** One heartbeat; the active also prunes dead members. Failures are logged once per streak: the next beat retries. */
  private async heartbeat(): Promise<void> {
    try {
      await this.registry!.heartbeat(this.memberInfo);
      if (this.isActive) {
        const pruned = await this.registry!.prune();
        if (pruned > 0) this.log.info({ pruned, expiry_ms: this.registry!.expiryMs }, "removed HA members not heard from within the expiry");
      }
      if (this.heartbeatFailing) this.log.info("HA member heartbeat works again");
      this.heartbeatFailing = false;
    } catch (err) {
      if (!this.heartbeatFailing) this.log.warn({ err: (err as Error).message }, "HA member heartbeat failed; retrying (this node drops out of sys/ha-status if it keeps failing)");
      this.heartbeatFailing = true;
    }
  }

  private async stopHeartbeat(): Promise<void> {
    this.heartbeatStopped = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.heartbeatRun;
  }

  /** Sealed or shutting down: no more heartbeats, and the row goes at once (it would expire anyway). */
  private async leaveRegistry(): Promise<void> {
    await this.stopHeartbeat();
    await this.registry?.leave(this.nodeId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "removing this node from the HA members failed; its row expires by itself"));
  }

  /**
   * `sys/step-down`: stops renewing, goes standby (lease manager and cron stopped first), releases
   * the lock (after this node's open write transactions end), and campaigns again only after a
   * pause, so another node takes over (Vault sleeps 10 s).
   */
  async stepDown(): Promise<void> {
    if (this.epoch === undefined) return; // a standby: nothing to hand over (as in Vault)
    await this.stopCampaign();
    await this.serial(async () => {
      await this.giveUp("step-down");
      if (!this.closed) {
        const pause = Math.min(this.lock!.lifetimeMs, 10_000);
        this.campaignTimer = setTimeout(() => {
          this.campaignTimer = undefined;
          if (!this.closed && this.core && !this.core.sealed) this.startCampaign();
        }, pause);
        this.campaignTimer.unref();
      }
    });
  }

  // ---- the campaign ----

  private startCampaign(): void {
    const lock = this.lock!;
    this.campaign = lock.run({
      onAcquired: (epoch) => this.serial(() => this.takeOver(epoch)),
      onLost: (reason, epoch) =>
        this.serial(async () => {
          if (this.epoch !== epoch) return;
          this.log.warn({ reason, epoch }, "lost the HA lock: stepping down to standby");
          this.epoch = undefined;
          await this.core!.becomeStandby();
        }),
      onError: (err) => this.log.warn({ err: (err as Error).message }, "HA lock: campaign or renewal failed; retrying"),
      onRenewalFailed: (why) => this.renewalFailures?.inc({ reason: why }),
    });
  }

  private async takeOver(epoch: number): Promise<void> {
    if (this.closed || this.core!.sealed) {
      await this.lock!.release().catch(() => undefined);
      return;
    }
    this.countAcquisition(epoch);
    this.epoch = epoch;
    try {
      await this.core!.becomeActive();
      await this.opts.onActive?.();
      this.log.info({ epoch, node_id: this.nodeId, api_addr: this.opts.apiAddr }, "acquired the HA lock: this node is active");
    } catch (err) {
      this.log.error({ err, epoch }, "becoming active failed: releasing the HA lock");
      this.epoch = undefined;
      await this.core!.becomeStandby().catch(() => undefined);
      await this.lock!.release().catch(() => undefined);
      // Not at once again: let another node try.
      await new Promise((r) => setTimeout(r, this.lock!.lifetimeMs / 3).unref());
    }
  }

  private async stopCampaign(): Promise<void> {
    if (this.campaignTimer) clearTimeout(this.campaignTimer);
    this.campaignTimer = undefined;
    const c = this.campaign;
    this.campaign = undefined;
    await c?.stop();
  }

  /**
   * Drains the requests in flight (new ones get 503 "standby"), then standby (nothing more is
   * written), then the lock released so a standby takes over at once.
   */
  private async giveUp(why: string): Promise<void> {
    if (this.epoch !== undefined && this.lock?.holds()) await this.core?.drain(Math.min(this.lock.lifetimeMs / 2, 5_000));
    const had = this.epoch;
    this.epoch = undefined;
    await this.core?.becomeStandby().catch((err: unknown) => this.log.warn({ err }, "going standby failed"));
    if (had !== undefined) {
      const released = await this.lock!.release().catch((err: unknown) => (this.log.warn({ err: (err as Error).message }, "releasing the HA lock failed; it expires by itself"), false));
      this.log.info({ why, epoch: had, released }, "gave up the HA lock");
    }
  }

  /**
   * SIGTERM: stops campaigning for good, goes standby and releases the lock before anything else
   * shuts down, so a standby takes over at once instead of after the lock's lifetime.
   */
  async stepDownForShutdown(): Promise<void> {
    this.closed = true;
    await this.stopCampaign();
    await this.serial(() => this.giveUp("shutdown"));
    await this.leaveRegistry();
  }

  /** Stops campaigning, releases the lock if held, closes the lock's connections. */
  async close(): Promise<void> {
    await this.stepDownForShutdown();
    await this.lock?.close();
  }
}
