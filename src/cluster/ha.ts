import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { Gauge } from "prom-client";
import type { Core, HaController, HaLeader } from "../core/core.js";
import { StandbyError } from "../sdk/errors.js";
import type { PgNames, WriteFence } from "../storage/postgres-schema.js";
import { FencedError, HaLock, type LockRun } from "./lock.js";

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
    const self = this;
    new Gauge({
      name: "leasehold_core_active",
      help: "1 while this node is the active node of its HA cluster (holds the lock and has loaded its state), 0 on a standby",
      registers: [core.metrics.registry],
      collect() {
        this.set(self.isActive ? 1 : 0);
      },
    });
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
    this.epoch = epoch;
    // Sealed: only marks the core active; the unseal that init performs loads its state.
    await this.core!.becomeActive();
  }

  unsealed(): void {
    // After sys/init on this node (it took the lock before unsealing): the active's set-up runs now.
    if (this.epoch !== undefined) void this.serial(() => this.runOnActive(this.epoch!));
    if (!this.closed && !this.campaign && !this.campaignTimer) this.startCampaign();
  }

  private async runOnActive(epoch: number): Promise<void> {
    if (this.epoch !== epoch || !this.opts.onActive) return;
    await this.opts.onActive().catch((err: unknown) => this.log.error({ err }, "setting up the active node failed"));
  }

  async sealed(): Promise<void> {
    // Never inside `serial`: the campaign loop may be waiting there (onAcquired), and stopping it waits for the loop.
    await this.stopCampaign();
    await this.serial(() => this.giveUp("sealed"));
  }

  async leader(): Promise<HaLeader | undefined> {
    const h = await this.lock!.current();
    // This node's own row while it is not active (stepping down, or its lock about to expire): no active node to send anyone to.
    if (!h || (h.nodeId === this.nodeId && this.epoch !== h.epoch)) return undefined;
    return { isSelf: h.nodeId === this.nodeId && this.epoch === h.epoch, apiAddr: h.apiAddr, clusterAddr: h.clusterAddr, activeTime: h.acquiredAt };
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
    });
  }

  private async takeOver(epoch: number): Promise<void> {
    if (this.closed || this.core!.sealed) {
      await this.lock!.release().catch(() => undefined);
      return;
    }
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
  }

  /** Stops campaigning, releases the lock if held, closes the lock's connections. */
  async close(): Promise<void> {
    await this.stepDownForShutdown();
    await this.lock?.close();
  }
}
