import { Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import { QuotaExceeded } from "../sdk/errors.js";
import type { StorageView } from "../sdk/types.js";
import type { LeaseStore } from "../storage/types.js";

/**
 * Lease-count quotas (Vault Enterprise's `sys/quotas/lease-count`) and the total-lease warning.
 *
 * Counting is in memory, as in Vault: every quota holds the number of secret leases under its
 * path, taken from the lease table when the quota is written and at every unseal, then kept
 * current by the expiration manager, which calls `admit` synchronously just before it writes a
 * lease row (so the check and the increment cannot interleave with another request) and
 * `removed` just before a row is deleted. A request never scans the lease table.
 *
 * Choices (differences from Vault):
 * - Only secret leases count. Token leases (logins, `auth/token/create`) are neither counted nor
 *   refused by a quota; Vault counts login leases too.
 * - Every quota whose path covers a new lease must have room (Vault applies only the most
 *   specific one). A quota on `tl/` and one on `tl/creds/app` both limit `tl/creds/app`.
 * - There are no namespaces: `inheritable` is accepted and reported, and only a global quota
 *   (empty path) may be inheritable (it is by default, as a root-namespace quota is in Vault).
 */

export const DEFAULT_LEASE_COUNT_WARNING_THRESHOLD = 500_000;
/** The refusal message (Vault's `quotas.ErrLeaseCountQuotaExceeded`). */
export const LEASE_COUNT_QUOTA_EXCEEDED = "lease count quota exceeded";
/** After a warning, the total must fall below this share of the threshold before the next crossing warns again. */
const REARM_RATIO = 0.9;

/** A lease-count quota as stored under `sys/quotas/lease-count/<name>`. */
export interface LeaseCountQuotaConfig {
  name: string;
  /** "" (global), a mount (`tl/`), a path inside a mount (`tl/creds/app`), or a trailing glob (`tl/creds/app-*`). */
  path: string;
  maxLeases: number;
  inheritable: boolean;
}

/** Vault's read shape. */
export interface LeaseCountQuotaView {
  name: string;
  path: string;
  type: "lease-count";
  max_leases: number;
  counts: number;
  inheritable: boolean;
  role: string;
}

interface LiveQuota {
  config: LeaseCountQuotaConfig;
  /** Lease ids under the quota start with this. */
  prefix: string;
  count: number;
  /** Changes to `count` since the quota went live (to fold changes made while a recount ran). */
  changes: number;
}

/**
 * The id prefix of the leases a quota path covers. Lease ids are `<request path>/<random>`, so
 * `tl/creds/app` covers ids starting `tl/creds/app/` (that role and paths below it, not
 * `tl/creds/apple`), and a trailing `*` makes it a plain string prefix.
 */
export function quotaPrefix(path: string): string {
  if (path === "") return "";
  if (path.endsWith("*")) return path.slice(0, -1);
  return `${path.replace(/\/+$/, "")}/`;
}

export interface LeaseQuotasOptions {
  /** Barrier view `sys/quotas/`. */
  storage: StorageView;
  store: LeaseStore;
  logger: Logger;
  /** Total leases (all kinds) above which a warning is logged once per crossing. */
  warningThreshold?: number;
}

export class LeaseQuotas {
  private readonly quotas = new Map<string, LiveQuota>();
  private total = 0;
  private totalChanges = 0;
  private aboveThreshold = false;
  /** Bumped at every load/reset: a recount started before it must not write into newer state. */
  private epoch = 0;
  readonly warningThreshold: number;
  /** The background count of all leases started by the last `load` (tests await it). */
  totalCounted: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LeaseQuotasOptions) {
    this.warningThreshold = opts.warningThreshold ?? DEFAULT_LEASE_COUNT_WARNING_THRESHOLD;
  }

  // ---- life cycle -------------------------------------------------------------------------

  /** At unseal: reads every quota and counts the leases under each; the grand total is counted in the background. */
  async load(): Promise<void> {
    this.reset();
    const epoch = this.epoch;
    for (const key of await this.opts.storage.list("lease-count/")) {
      const stored = await this.opts.storage.getJSON<LeaseCountQuotaConfig>(`lease-count/${key}`);
      if (!stored || epoch !== this.epoch) continue;
      const live = this.install(stored);
      await this.recount(live);
    }
    this.totalCounted = this.countTotal(epoch).catch((err) => this.opts.logger.error({ err }, "counting leases failed; the lease count warning may be late"));
    if (this.quotas.size) this.opts.logger.info({ quotas: this.quotas.size }, "lease count quotas loaded");
  }

  /** At seal: forgets everything (reloaded at the next unseal). */
  reset(): void {
    this.epoch++;
    this.quotas.clear();
    this.total = 0;
    this.totalChanges = 0;
    this.aboveThreshold = false;
  }

  private async countTotal(epoch: number): Promise<void> {
    const before = this.totalChanges;
    const n = await this.opts.store.count({});
    if (epoch !== this.epoch) return;
    this.total = n + (this.totalChanges - before);
    this.checkThreshold();
  }

  private async recount(live: LiveQuota): Promise<void> {
    const before = live.changes;
    const n = await this.opts.store.count({ kind: "secret", ...(live.prefix ? { pathPrefix: live.prefix } : {}) });
    if (this.quotas.get(live.config.name) !== live) return;
    live.count = n + (live.changes - before);
  }

  private install(config: LeaseCountQuotaConfig): LiveQuota {
    const live: LiveQuota = { config, prefix: quotaPrefix(config.path), count: 0, changes: 0 };
    this.quotas.set(config.name, live);
    return live;
  }

  // ---- counting (called by the expiration manager) ----------------------------------------

  /**
   * A lease row is about to be written. Synchronous on purpose: the check and the increment
   * happen in one turn of the event loop, so concurrent requests cannot both take the last slot.
   * Throws `QuotaExceeded` (429) when a quota covering a secret lease is full.
   */
  admit(id: string, kind: "secret" | "token"): void {
    if (kind === "secret" && this.quotas.size) {
      const hits: LiveQuota[] = [];
      for (const q of this.quotas.values()) {
        if (!id.startsWith(q.prefix)) continue;
        if (q.count >= q.config.maxLeases) {
          this.opts.logger.debug({ quota: q.config.name, path: q.config.path, max_leases: q.config.maxLeases, counts: q.count }, "request refused by a lease count quota");
          throw new QuotaExceeded(LEASE_COUNT_QUOTA_EXCEEDED);
        }
        hits.push(q);
      }
      for (const q of hits) {
        q.count++;
        q.changes++;
      }
    }
    this.total++;
    this.totalChanges++;
    this.checkThreshold();
  }

  /** A lease row is being deleted (or its write failed after `admit`). */
  removed(id: string, kind: "secret" | "token"): void {
    if (kind === "secret") {
      for (const q of this.quotas.values()) {
        if (!id.startsWith(q.prefix)) continue;
        q.count = Math.max(0, q.count - 1);
        q.changes--;
      }
    }
    this.total = Math.max(0, this.total - 1);
    this.totalChanges--;
    this.checkThreshold();
  }

  /** Total leases as counted (all kinds). */
  get totalLeases(): number {
    return this.total;
  }

  private checkThreshold(): void {
    const t = this.warningThreshold;
    if (!this.aboveThreshold && this.total >= t) {
      this.aboveThreshold = true;
      this.opts.logger.warn(
        { leases: this.total, threshold: t },
        `the number of leases passed the warning threshold (lease_count_warning_threshold = ${t}); look for clients that do not reuse or revoke their credentials, and consider lease count quotas (sys/quotas/lease-count)`,
      );
    } else if (this.aboveThreshold && this.total < t * REARM_RATIO) {
      this.aboveThreshold = false;
      this.opts.logger.info({ leases: this.total, threshold: t }, "the number of leases is back under the warning threshold");
    }
  }

  // ---- the API ----------------------------------------------------------------------------

  names(): string[] {
    return [...this.quotas.keys()].sort();
  }

  get(name: string): LeaseCountQuotaView | undefined {
    const q = this.quotas.get(name);
    return q && view(q);
  }

  /** Creates or replaces a quota; its count is taken from the lease table (Vault: "populated with the current count"). */
  async put(config: LeaseCountQuotaConfig): Promise<LeaseCountQuotaView> {
    await this.opts.storage.putJSON(`lease-count/${config.name}`, config);
    const old = this.quotas.get(config.name);
    if (old && quotaPrefix(old.config.path) === quotaPrefix(config.path)) {
      old.config = config; // same leases: keep the live count
      return view(old);
    }
    const live = this.install(config);
    await this.recount(live);
    return view(live);
  }

  /** Deletes a quota; true when it existed. */
  async delete(name: string): Promise<boolean> {
    await this.opts.storage.delete(`lease-count/${name}`);
    return this.quotas.delete(name);
  }

  /** Prometheus gauges: each quota's count and limit. */
  registerMetrics(registry: Registry): void {
    // prom-client's collect() binds `this` to the gauge.
    const quotas = this.quotas;
    new Gauge({
      name: "leasehold_lease_count_quota_leases",
      help: "Leases counted against each lease count quota",
      labelNames: ["name", "path"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const q of quotas.values()) this.set({ name: q.config.name, path: q.config.path }, q.count);
      },
    });
    new Gauge({
      name: "leasehold_lease_count_quota_max_leases",
      help: "The limit of each lease count quota",
      labelNames: ["name", "path"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const q of quotas.values()) this.set({ name: q.config.name, path: q.config.path }, q.config.maxLeases);
      },
    });
  }
}

function view(q: LiveQuota): LeaseCountQuotaView {
  return { name: q.config.name, path: q.config.path, type: "lease-count", max_leases: q.config.maxLeases, counts: q.count, inheritable: q.config.inheritable, role: "" };
}
