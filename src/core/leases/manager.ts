import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import { randomBase62 } from "../ids.js";
import { InternalError, NotFound, UserError, formatDuration, isLeaseholdError } from "../../sdk/index.js";
import type { Backend, LeaseHelper, LeaseSpec, OpenedLease } from "../../sdk/types.js";
import type { LeaseFilter, LeaseRow, LeaseStore } from "../../storage/types.js";
import { CreatorSealingStore, type IndexKeyStorage } from "./creator-store.js";
import { GroupCommit } from "./group-commit.js";
import { DeadlineHeap } from "./heap.js";

/** Encrypts lease internals at rest (the barrier). The lease id is authenticated with the data. */
export interface LeaseCipher {
  encrypt(path: string, plaintext: Buffer): Buffer;
  decrypt(path: string, ciphertext: Buffer): Buffer;
}

/** Who created a lease: copied from the token into the row (selectors, audit, listings). */
export interface LeaseCreator {
  tokenAccessor: string;
  authMount: string;
  displayName: string;
  metadata: Record<string, string>;
  entityId: string;
}

export interface RetryPolicy {
  /** First retry delay, ms. */
  baseMs: number;
  /** Longest delay between retries, ms. */
  capMs: number;
  /** After this many failed attempts the lease becomes irrevocable. */
  maxAttempts: number;
}

export interface ExpirationManagerOptions {
  store: LeaseStore;
  cipher: LeaseCipher;
  /**
   * Barrier storage for the key that HMACs the creator's accessor, display name and metadata in
   * the lease table (see CreatorSealingStore).
   */
  indexKeys: IndexKeyStorage;
  logger: Logger;
  /** The live backend of a mount, for its secret types. */
  backendOf(mount: string): Backend | undefined;
  /** Revokes the token behind a token lease (and through it, the token's own leases). */
  revokeToken(internal: Record<string, unknown>): Promise<void>;
  /** Mount TTLs (defaults already applied). */
  ttlsOf(mount: string): { defaultLeaseTtl: number; maxLeaseTtl: number };
  retry?: Partial<RetryPolicy>;
  /**
   * Revocations running at once per mount (default 64), so one slow database cannot stall the
   * others. High enough for a burst to reach an engine together (the PostgreSQL plugin drops the
   * roles of concurrent revocations in shared round trips); engines bound their own connections.
   */
  perMountConcurrency?: number;
  /** How many deadlines the in-memory window holds at most after a refill. */
  windowSize?: number;
  /** How far ahead a refill looks, ms. */
  horizonMs?: number;
  /** Called with counters as things happen (metrics). */
  events?: Partial<LeaseEvents>;
  /** Lease counting (quotas, the total-count warning): told about every row written and deleted; `admit` may refuse. */
  counts?: LeaseCountHooks;
  /** False = safety mode (`--no-revoke`, `disable_revocation`): nothing is revoked by time. Default true. */
  revocationEnabled?: boolean;
  /** How often the safety-mode warning repeats, ms (default 5 minutes). */
  revocationDisabledWarningMs?: number;
}

/**
 * Lease counting hooks. `admit` runs synchronously just before a lease row is written (after the
 * id is known, before anything is created) and may throw (`QuotaExceeded`) to refuse it;
 * `removed` runs just before a row is deleted, or when its write failed.
 */
export interface LeaseCountHooks {
  admit(id: string, kind: "secret" | "token"): void;
  removed(id: string, kind: "secret" | "token"): void;
}

export interface LeaseEvents {
  revoked(mount: string): void;
  revokeFailed(mount: string): void;
  irrevocable(mount: string): void;
  renewed(mount: string): void;
  created(mount: string): void;
}

export interface RevokeOutcome {
  id: string;
  ok: boolean;
  error?: string;
  /** revoke-force: removed although the engine failed. */
  forced?: boolean;
  /** There was no row to revoke (already revoked, or never written): nothing was asked of the engine. */
  missing?: boolean;
}

/**
 * How long a claimed revocation keeps its lease out of the clock's window (like a queue's visibility
 * timeout): long enough that leases waiting for a slot are not fetched again and again, short enough
 * that a crash mid-revocation is retried within a minute of restart.
 */
const CLAIM_MS = 60_000;

/** Revocations of one mount waiting for a slot, at most, before the clock defers more. */
const MAX_QUEUED_PER_MOUNT = 5_000;

/**
 * The most leases one batched read, claim or delete of the revocation path takes (see
 * group-commit.ts). Large enough that a burst of 10,000 expiries is a few dozen transactions, small
 * enough that a batch stays short: on PostgreSQL the lease-count trigger updates one counter row
 * per changed lease, and one statement rewriting the same row thousands of times grows
 * quadratically (40,000 state changes in one statement took about 70 s here; 500 take milliseconds).
 */
const STORE_BATCH = 500;

const DEFAULT_RETRY: RetryPolicy = { baseMs: 1_000, capMs: 5 * 60_000, maxAttempts: 8 };

/** The lookup shape of `sys/leases/lookup`, plus our extras (state, revoke_attempts, revoke_error). */
export function describeLease(row: LeaseRow, now = Date.now()): Record<string, unknown> {
  return {
    id: row.id,
    issue_time: new Date(row.issue_time).toISOString(),
    expire_time: new Date(row.expire_time).toISOString(),
    last_renewal: row.last_renewal === null ? null : new Date(row.last_renewal).toISOString(),
    renewable: row.renewable === 1 && row.state === "active",
    ttl: Math.max(0, Math.round((row.expire_time - now) / 1000)),
    state: row.state,
    revoke_attempts: row.revoke_attempts,
    revoke_error: row.revoke_error ?? "",
  };
}

/**
 * The expiration manager: every secret handed out is a row here before it exists, and every row is
 * revoked by its deadline. Only a window of the soonest deadlines lives in memory (a min-heap filled
 * from the `due_at` index), woken by one timer; a cron tick refills it as a safety net.
 */
export class ExpirationManager {
  /** The lease table with the creator fields in clear (listing and counting go straight to it). */
  readonly store: LeaseStore;
  /** The same table as stored: for the paths that never look at the creator (no decryption). */
  private readonly raw: LeaseStore;
  private readonly sealed: CreatorSealingStore;
  private readonly retry: RetryPolicy;
  private readonly concurrency: number;
  private readonly windowSize: number;
  private readonly horizonMs: number;
  private heap = new DeadlineHeap();
  /** Every deadline at or before this instant is in the heap. */
  private horizon = 0;
  private timer?: NodeJS.Timeout;
  private cronTask?: ScheduledTask;
  private irrevocableTask?: ScheduledTask;
  private running = false;
  private ticking = false;
  /** Expiries dispatched by the clock and not finished yet. */
  private expiring = 0;
  private readonly inFlight = new Map<string, Promise<RevokeOutcome>>();
  /**
   * The revocation path's store round trips, batched while one is in flight (group commit): a
   * burst of expiries reads, claims and deletes its rows in a few transactions instead of one each.
   */
  private readonly batched = {
    reads: new GroupCommit<string, LeaseRow | undefined>(async (ids) => {
      const rows = new Map((await this.raw.getMany(ids)).map((r) => [r.id, r]));
      return ids.map((id) => rows.get(id));
    }, STORE_BATCH),
    claims: new GroupCommit<{ id: string; holdMs: number }, { error: unknown } | undefined>((claims) => this.writeClaims(claims), STORE_BATCH),
    deletes: new GroupCommit<string, boolean>(async (ids) => {
      const removed = new Set(await this.raw.deleteMany(ids));
      // An id asked for twice in one batch: only the first request removed the row.
      return ids.map((id) => removed.delete(id));
    }, STORE_BATCH),
  };
  private readonly queues = new Map<string, { active: number; waiting: (() => void)[] }>();
  /**
   * Safety mode (`--no-revoke`) when false: the clock revokes nothing and start-up reconciliation
   * of `pending` leases waits; operator revocations still run. Change it with `setExpiryEnabled`.
   */
  expiryEnabled = true;
  /** When the clock last started: `pending` leases issued before it are crash leftovers. */
  private startedAt = 0;
  private disabledWarning?: NodeJS.Timeout;

  constructor(private readonly opts: ExpirationManagerOptions) {
    this.raw = opts.store;
    this.sealed = new CreatorSealingStore(opts.store, opts.cipher, opts.indexKeys);
    this.store = this.sealed;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.concurrency = opts.perMountConcurrency ?? 64;
    this.windowSize = opts.windowSize ?? 2_000;
    this.horizonMs = opts.horizonMs ?? 60_000;
    this.expiryEnabled = opts.revocationEnabled ?? true;
  }

  // ---- life cycle -------------------------------------------------------------------------

  /** Revokes leases left `pending` by a crash, then starts the clock (both wait while revocation is disabled). */
  async start(): Promise<void> {
    // Rows of an older version still hold creator fields in clear: the key to hide them exists only now.
    const converted = await this.sealed.convertLegacy();
    if (converted) this.opts.logger.info({ count: converted }, "sealed the creator fields (accessor, display name, metadata) of leases stored in clear");
    this.running = true;
    this.startedAt = Date.now();
    if (this.expiryEnabled) await this.reconcileLeftovers();
    else this.startDisabledWarnings();
    await this.refill();
    this.cronTask = cron.schedule("* * * * *", () => void this.refill().catch((err) => this.opts.logger.error({ err }, "lease refill failed")), { noOverlap: true });
    // Irrevocable leases get one more attempt every hour (an outage may have ended).
    this.irrevocableTask = cron.schedule(
      "17 * * * *",
      async () => {
        if (!this.expiryEnabled) return;
        const outcomes = await this.retryIrrevocable();
        const fixed = outcomes.filter((o) => o.ok).length;
        if (outcomes.length) this.opts.logger.warn({ retried: outcomes.length, revoked: fixed }, "retried irrevocable leases");
      },
      { noOverlap: true },
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopDisabledWarnings();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.cronTask?.stop();
    this.cronTask = undefined;
    await this.irrevocableTask?.stop();
    this.irrevocableTask = undefined;
    this.heap.clear();
    await Promise.allSettled([...this.inFlight.values()]);
    this.sealed.forget();
  }

  private async reconcileLeftovers(): Promise<void> {
    const reconciled = await this.reconcilePending();
    if (reconciled) this.opts.logger.warn({ count: reconciled }, "revoked pending leases left by an interrupted request");
  }

  /** Revokes `pending` leases issued before the clock started (those of requests still running are left alone). */
  private async reconcilePending(): Promise<number> {
    let n = 0;
    let after = "";
    for (;;) {
      const ids = await this.store.inState("pending", after, 500);
      if (!ids.length) return n;
      const rows = new Map((await this.raw.getMany(ids)).map((r) => [r.id, r]));
      for (const id of ids) {
        const row = rows.get(id);
        if (!row || row.state !== "pending" || row.issue_time >= this.startedAt) continue;
        await this.revoke(id);
        n++;
      }
      after = ids[ids.length - 1];
    }
  }

  // ---- safety mode ------------------------------------------------------------------------

  /**
   * Turns revocation by time on or off at runtime (`sys/leasehold/revocation`). Turning it on
   * revokes the `pending` leftovers whose reconciliation was deferred and restarts the clock at
   * once, so leases already past their deadline are revoked promptly.
   */
  async setExpiryEnabled(enabled: boolean): Promise<void> {
    if (this.expiryEnabled === enabled) return;
    this.expiryEnabled = enabled;
    if (!this.running) return;
    if (!enabled) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.heap.clear();
      this.horizon = 0;
      this.startDisabledWarnings();
      return;
    }
    this.stopDisabledWarnings();
    this.opts.logger.warn("lease revocation is enabled again: expired leases are being revoked");
    await this.refill();
    void this.reconcileLeftovers().catch((err) => this.opts.logger.error({ err }, "revoking pending leftovers failed; they are revoked at their deadline"));
  }

  private startDisabledWarnings(): void {
    this.warnDisabled();
    if (this.disabledWarning) return;
    this.disabledWarning = setInterval(() => this.warnDisabled(), this.opts.revocationDisabledWarningMs ?? 5 * 60_000);
    this.disabledWarning.unref?.();
  }

  private stopDisabledWarnings(): void {
    if (this.disabledWarning) clearInterval(this.disabledWarning);
    this.disabledWarning = undefined;
  }

  private warnDisabled(): void {
    void this.store
      .due(Date.now(), 10_001)
      .then((rows) => rows.length, () => undefined)
      .then((overdue) =>
        this.opts.logger.warn(
          { overdue_leases: overdue === undefined ? undefined : overdue > 10_000 ? ">10000" : overdue },
          "LEASE REVOCATION IS DISABLED (--no-revoke / disable_revocation): expired leases are NOT revoked and their credentials stay valid. " +
            'Turn it back on with `POST sys/leasehold/revocation {"enabled": true}` once the restored data is checked.',
        ),
      );
  }

  // ---- creation ---------------------------------------------------------------------------

  /** A per-request helper: engines open pending leases through it. */
  helperFor(mount: string, path: string, creator: LeaseCreator | null, opened: string[]): LeaseHelper {
    return {
      open: async (spec) => {
        const lease = await this.open(mount, path, spec, creator);
        opened.push(lease.id);
        return lease;
      },
    };
  }

  /** Persists a `pending` lease; its deadline is its expiry, so even a lost activation is revoked in time. */
  async open(mount: string, path: string, spec: LeaseSpec, creator: LeaseCreator | null, kind: "secret" | "token" = "secret"): Promise<OpenedLease> {
    const ttls = this.opts.ttlsOf(mount);
    const now = Date.now();
    const maxTtl = Math.min(spec.maxTtl || ttls.maxLeaseTtl, ttls.maxLeaseTtl);
    const ttl = Math.min(spec.ttl || ttls.defaultLeaseTtl, maxTtl);
    if (ttl <= 0) throw new UserError("lease TTL must be positive");
    const id = `${path.replace(/\/+$/, "")}/${randomBase62(24)}`;
    const row: LeaseRow = {
      id,
      kind,
      mount,
      path,
      role: spec.role ?? "",
      secret_type: spec.type,
      internal: this.seal(id, spec.internal),
      issue_time: now,
      expire_time: now + ttl * 1000,
      max_expire_time: now + maxTtl * 1000,
      last_renewal: null,
      renewable: spec.renewable ? 1 : 0,
      token_accessor: creator?.tokenAccessor ?? "",
      auth_mount: creator?.authMount ?? "",
      display_name: creator?.displayName ?? "",
      metadata: JSON.stringify(creator?.metadata ?? {}),
      entity_id: creator?.entityId ?? "",
      state: "pending",
      revoke_attempts: 0,
      revoke_error: null,
      due_at: now + ttl * 1000,
    };
    await this.insertRow(row);
    this.schedule(id, row.due_at!);
    return {
      id,
      ttl,
      renewable: spec.renewable,
      expireTime: new Date(row.expire_time),
      update: async (internal) => {
        await this.store.update(id, { internal: this.seal(id, internal) });
      },
    };
  }

  /** A token's own lease (`auth/<mount>/login/<random>`, `auth/token/create/<random>`): expiry revokes the token. */
  async openTokenLease(t: { hmac: string; path: string; authMount: string; creationTime: number; expireTime: number; renewable: boolean; creator: LeaseCreator }): Promise<string> {
    const id = `${t.path.replace(/\/+$/, "")}/${randomBase62(24)}`;
    await this.insertRow({
      id,
      kind: "token",
      mount: t.authMount,
      path: t.path,
      role: "",
      secret_type: "token",
      internal: this.seal(id, { hmac: t.hmac }),
      issue_time: t.creationTime,
      expire_time: t.expireTime,
      max_expire_time: t.expireTime,
      last_renewal: null,
      renewable: t.renewable ? 1 : 0,
      token_accessor: t.creator.tokenAccessor,
      auth_mount: t.creator.authMount,
      display_name: t.creator.displayName,
      metadata: JSON.stringify(t.creator.metadata),
      entity_id: t.creator.entityId,
      state: "active",
      revoke_attempts: 0,
      revoke_error: null,
      due_at: t.expireTime,
    });
    this.schedule(id, t.expireTime);
    this.opts.events?.created?.(t.authMount);
    return id;
  }

  /** Forgets a token lease whose token is already gone. */
  async dropTokenLease(id: string): Promise<void> {
    await this.deleteRow(id, "token");
  }

  /** Writes a lease row; the counters admit it first (a full quota refuses it: nothing is written). */
  private async insertRow(row: LeaseRow): Promise<void> {
    this.opts.counts?.admit(row.id, row.kind);
    try {
      await this.store.insert(row);
    } catch (err) {
      this.opts.counts?.removed(row.id, row.kind);
      throw err;
    }
  }

  /** Deletes a lease row, telling the counters when a row really goes (a token's revocation may already have dropped it). */
  private async deleteRow(id: string, kind: "secret" | "token"): Promise<void> {
    // The counters hear about each row once: only the delete that removed it reports.
    if ((await this.batched.deletes.submit(id)) && this.opts.counts) this.opts.counts.removed(id, kind);
  }

  /**
   * Claims a lease for revocation: state `revoking`, due again `holdMs` from now (the retry
   * deadline if this attempt never finishes). Batched with the other claims in flight.
   */
  private async claim(id: string, holdMs: number): Promise<void> {
    const failed = await this.batched.claims.submit({ id, holdMs });
    if (failed) throw failed.error;
  }

  /** One batch of claims: one write per distinct hold (a burst's first attempts all share one). */
  private async writeClaims(claims: { id: string; holdMs: number }[]): Promise<({ error: unknown } | undefined)[]> {
    // The deadline counts from the write, not from the request: time spent queued is not taken from the hold.
    const now = Date.now();
    const byHold = new Map<number, string[]>();
    for (const c of claims) {
      const ids = byHold.get(c.holdMs);
      if (ids) ids.push(c.id);
      else byHold.set(c.holdMs, [c.id]);
    }
    // Each group's outcome is its own: a failed group does not report committed ones as failed.
    const failures = new Map<number, { error: unknown }>();
    for (const [holdMs, ids] of byHold) {
      try {
        await this.raw.updateMany(ids, { state: "revoking", due_at: now + holdMs });
      } catch (error) {
        failures.set(holdMs, { error });
      }
    }
    return claims.map((c) => failures.get(c.holdMs));
  }

  /** Marks a pending lease active: the credential may now be handed out. */
  async activate(id: string, mount: string): Promise<void> {
    await this.store.update(id, { state: "active" });
    this.opts.events?.created?.(mount);
  }

  private seal(id: string, internal: Record<string, unknown>): Buffer {
    return this.opts.cipher.encrypt(`lease/${id}`, Buffer.from(JSON.stringify(internal), "utf8"));
  }

  private unseal(row: LeaseRow): Record<string, unknown> {
    return JSON.parse(this.opts.cipher.decrypt(`lease/${row.id}`, row.internal).toString("utf8")) as Record<string, unknown>;
  }

  // ---- lookup -----------------------------------------------------------------------------

  async get(id: string): Promise<LeaseRow | undefined> {
    return this.store.get(id);
  }

  async require(id: string): Promise<LeaseRow> {
    const row = await this.store.get(id);
    if (!row) throw new UserError("invalid lease ID");
    return row;
  }

  /**
   * Vault's prefix rule (`sys/leases/revoke-prefix`, `revoke-force`, the selectors' `path_prefix`):
   * a prefix names whole path segments, so `tl/creds/app` means `tl/creds/app/` and never reaches
   * `tl/creds/app2/...` (nor `auth/token/create` reach `auth/token/create-orphan/...`); a prefix
   * that is exactly a lease id names that lease.
   */
  async resolvePrefix(prefix: string): Promise<{ exact?: string; prefix: string }> {
    if (prefix === "" || prefix.endsWith("/")) return { prefix };
    if (await this.raw.get(prefix)) return { exact: prefix, prefix };
    return { prefix: prefix + "/" };
  }

  // ---- renewal ----------------------------------------------------------------------------

  /**
   * Vault's rules: `increment` is the new TTL from now (0 = the lease's original TTL), capped so
   * the lease never passes its max TTL measured from issue time. The engine renews first.
   */
  async renew(id: string, increment: number): Promise<{ row: LeaseRow; ttl: number; warnings: string[] }> {
    const row = await this.require(id);
    if (row.kind === "token") throw new UserError("lease is a token: renew it with auth/token/renew");
    if (row.state === "irrevocable") throw new UserError("lease is irrevocable: it cannot be renewed");
    if (row.state !== "active") throw new UserError("lease is being revoked: it cannot be renewed");
    if (!row.renewable) throw new UserError("lease is not renewable");
    const now = Date.now();
    if (row.expire_time <= now) throw new UserError("lease expired");
    const remainingMax = Math.floor((row.max_expire_time - now) / 1000);
    if (remainingMax <= 0) throw new UserError("lease has reached its max TTL and cannot be renewed");
    const original = Math.round((row.expire_time - (row.last_renewal ?? row.issue_time)) / 1000);
    const requested = increment > 0 ? increment : original;
    const ttl = Math.min(requested, remainingMax);
    const warnings = ttl < requested ? [`TTL of "${formatDuration(requested)}" exceeded the effective max_ttl of "${formatDuration(ttl)}"; TTL value is capped accordingly`] : [];
    const expireTime = now + ttl * 1000;
    const secretType = this.opts.backendOf(row.mount)?.secretTypes?.[row.secret_type];
    if (!secretType) throw new UserError(`lease ${id} cannot be renewed: its engine at ${row.mount} is not available`);
    if (secretType.renew) {
      try {
        await secretType.renew({ id, internal: this.unseal(row), ttl, expireTime: new Date(expireTime) });
      } catch (err) {
        // An engine's own typed errors (e.g. 404 for a vanished credential) pass through; anything else
        // says why, as revocation failures do, instead of a bare "internal error". The lease is unchanged.
        if (isLeaseholdError(err)) throw err;
        throw new InternalError(`lease ${id} could not be renewed by its engine: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const patch = { expire_time: expireTime, last_renewal: now, due_at: expireTime };
    await this.store.update(id, patch);
    this.schedule(id, expireTime);
    this.opts.events?.renewed?.(row.mount);
    return { row: { ...row, ...patch }, ttl, warnings };
  }

  /** Moves a token lease's deadline after a token renewal. */
  async extendTokenLease(id: string, expireTime: number): Promise<void> {
    await this.store.update(id, { expire_time: expireTime, max_expire_time: expireTime, last_renewal: Date.now(), due_at: expireTime });
    this.schedule(id, expireTime);
  }

  // ---- revocation -------------------------------------------------------------------------

  private backoff(attempt: number): number {
    const exp = Math.min(this.retry.capMs, this.retry.baseMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  /** Revokes one lease now (idempotent; concurrent calls for the same id share one attempt). */
  revoke(id: string, opts: { force?: boolean; onClaimed?: () => void; row?: LeaseRow } = {}): Promise<RevokeOutcome> {
    const existing = this.inFlight.get(id);
    if (existing && !opts.force) {
      opts.onClaimed?.();
      return existing;
    }
    const p = this.revokeOnce(id, opts.force === true, opts.onClaimed, opts.row).finally(() => {
      if (this.inFlight.get(id) === p) this.inFlight.delete(id);
    });
    this.inFlight.set(id, p);
    return p;
  }

  private async revokeOnce(id: string, force: boolean, onClaimed?: () => void, known?: LeaseRow): Promise<RevokeOutcome> {
    // The raw row: revocation needs neither the creator nor the cost of opening it.
    const row = known ?? (await this.batched.reads.submit(id));
    if (!row) {
      onClaimed?.();
      return { id, ok: true, missing: true };
    }
    // Claim the lease before waiting for a slot: the attempt is recorded (a crash mid-revocation is
    // retried at this deadline) and the clock's window no longer sees it as due, so leases of
    // other mounts behind it are dispatched while this mount's queue drains.
    try {
      await this.claim(id, Math.max(CLAIM_MS, this.backoff(row.revoke_attempts + 1)));
    } finally {
      onClaimed?.();
    }
    // Only the engine's revoke holds one of the mount's slots: the store writes after it are ours,
    // and a burst's deletes then meet in a few batches instead of trickling out a slot at a time.
    const engine = await this.limited(row.mount, () => this.revokeInEngine(id, row).then(() => undefined, (error: unknown) => ({ error })));
    try {
      if (engine) throw engine.error;
      await this.deleteRow(id, row.kind);
      this.opts.events?.revoked?.(row.mount);
      return { id, ok: true };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.opts.events?.revokeFailed?.(row.mount);
      if (force) {
        await this.deleteRow(id, row.kind);
        this.opts.logger.warn({ lease_id: id, err: message }, "lease force-revoked: the engine failed, the record was removed anyway");
        return { id, ok: true, forced: true, error: message };
      }
      const attempts = row.revoke_attempts + 1;
      if (attempts >= this.retry.maxAttempts) {
        await this.store.update(id, { state: "irrevocable", revoke_attempts: attempts, revoke_error: message, due_at: null });
        this.opts.events?.irrevocable?.(row.mount);
        this.opts.logger.error({ lease_id: id, attempts, err: message }, "lease is irrevocable: revocation failed too many times; retry with sys/leases/revoke or remove with revoke-force");
      } else {
        const due = Date.now() + this.backoff(attempts);
        await this.store.update(id, { state: "revoking", revoke_attempts: attempts, revoke_error: message, due_at: due });
        this.schedule(id, due);
        this.opts.logger.warn({ lease_id: id, attempts, err: message, retry_at: new Date(due).toISOString() }, "lease revocation failed; will retry");
      }
      return { id, ok: false, error: message };
    }
  }

  /** The engine's (or the token store's) revoke of one lease; idempotent on their side. */
  private async revokeInEngine(id: string, row: LeaseRow): Promise<void> {
    if (row.kind === "token") {
      await this.opts.revokeToken(this.unseal(row));
      return;
    }
    const backend = this.opts.backendOf(row.mount);
    if (!backend) throw new Error(`no engine is mounted at ${row.mount}`);
    const secretType = backend.secretTypes?.[row.secret_type];
    if (!secretType) throw new Error(`engine at ${row.mount} has no secret type ${JSON.stringify(row.secret_type)}`);
    await secretType.revoke({ id, internal: this.unseal(row) });
  }

  /** Queues a revocation (sync=false): the lease is due now and the clock takes it from there. */
  async revokeLater(id: string): Promise<void> {
    const row = await this.require(id);
    const now = Date.now();
    await this.store.update(id, { due_at: now, state: row.state === "irrevocable" ? "revoking" : row.state });
    this.schedule(id, now);
    // Safety mode stops the clock, not the operator: revoke in the background.
    if (!this.expiryEnabled) void this.revoke(id);
  }

  /** Revokes every lease matching a filter; `onProgress` hears about each batch. */
  async revokeMatching(
    filter: LeaseFilter,
    opts: { force?: boolean; onProgress?: (done: number) => void } = {},
  ): Promise<{ matched: number; revoked: number; failed: RevokeOutcome[]; forced: RevokeOutcome[] }> {
    let matched = 0;
    let revoked = 0;
    const failed: RevokeOutcome[] = [];
    const forced: RevokeOutcome[] = [];
    let after = "";
    for (;;) {
      const ids = await this.store.select(filter, after, 500);
      if (!ids.length) break;
      after = ids[ids.length - 1];
      matched += ids.length;
      const outcomes = await Promise.all(ids.map((id) => this.revoke(id, { force: opts.force })));
      for (const o of outcomes) {
        if (!o.ok) failed.push(o);
        else {
          revoked++;
          if (o.forced) forced.push(o);
        }
      }
      opts.onProgress?.(matched);
      // Failed leases stay in the table (retrying): page past them rather than loop on them.
    }
    return { matched, revoked, failed, forced };
  }

  /** Revokes the leases a token created (its own token lease excluded). */
  async revokeByToken(accessor: string): Promise<void> {
    if (!accessor) return;
    await this.revokeMatching({ tokenAccessor: accessor, kind: "secret" });
  }

  // ---- scheduling -------------------------------------------------------------------------

  /** Tells the clock about a (new or moved) deadline. */
  schedule(id: string, due: number): void {
    if (!this.running) return;
    if (due <= this.horizon) {
      this.heap.push(id, due);
      this.arm();
    }
  }

  /** Reloads the window of soonest deadlines from the index. */
  async refill(): Promise<void> {
    if (!this.running || !this.expiryEnabled) return;
    const now = Date.now();
    const rows = await this.store.due(now + this.horizonMs, this.windowSize);
    this.heap.clear();
    for (const r of rows) this.heap.push(r.id, r.due_at);
    this.horizon = rows.length < this.windowSize ? now + this.horizonMs : rows[rows.length - 1].due_at;
    this.arm();
  }

  private arm(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.expiryEnabled) return; // safety mode: no clock (setExpiryEnabled restarts it)
    const top = this.heap.peek()?.due;
    // While a burst of expiries is being revoked, the window is refilled when it drains (see expire()).
    if (top === undefined && this.expiring > 0) return;
    const next = Math.min(top ?? Infinity, this.horizon);
    const delay = Math.max(0, Math.min(next - Date.now(), 2 ** 31 - 1));
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    if (this.ticking || !this.running) return;
    this.ticking = true;
    try {
      if (this.expiryEnabled) {
        const now = Date.now();
        const due = new Set<string>();
        while (this.heap.size && this.heap.peek()!.due <= now) due.add(this.heap.pop()!.id);
        for (const id of due) {
          this.expiring++;
          let done = false;
          // The window is refilled once every dispatched lease is claimed (not revoked): see expire().
          const claimed = () => {
            if (done) return;
            done = true;
            if (--this.expiring === 0) this.arm();
          };
          void this.expire(id, now, claimed).finally(claimed);
        }
      }
      if (this.expiring === 0 && (Date.now() >= this.horizon || !this.heap.size)) await this.refill();
    } catch (err) {
      this.opts.logger.error({ err }, "expiration tick failed");
    } finally {
      this.ticking = false;
      this.arm();
    }
  }

  /** A deadline fired: check the row still wants action now (it may have been renewed), then revoke. */
  private async expire(id: string, now: number, claimed: () => void): Promise<void> {
    try {
      if (this.inFlight.has(id)) return;
      const row = await this.batched.reads.submit(id);
      if (!row || row.due_at === null || row.due_at > now || row.state === "irrevocable") return;
      // Bound the memory a stalled mount can take: past this many queued revocations, look again in a second.
      if (this.waitingOn(row.mount) >= MAX_QUEUED_PER_MOUNT) {
        await this.store.update(id, { due_at: now + 1_000 });
        this.schedule(id, now + 1_000);
        return;
      }
      await this.revoke(id, { onClaimed: claimed, row });
    } catch (err) {
      this.opts.logger.error({ err, lease_id: id }, "expiring a lease failed");
    }
  }

  /** Runs `fn` with at most `perMountConcurrency` revocations per mount at once. */
  private async limited<T>(mount: string, fn: () => Promise<T>): Promise<T> {
    let q = this.queues.get(mount);
    if (!q) this.queues.set(mount, (q = { active: 0, waiting: [] }));
    if (q.active >= this.concurrency) await new Promise<void>((resolve) => q!.waiting.push(resolve));
    q.active++;
    try {
      return await fn();
    } finally {
      q.active--;
      q.waiting.shift()?.();
      if (q.active === 0 && !q.waiting.length) this.queues.delete(mount);
    }
  }

  private waitingOn(mount: string): number {
    const q = this.queues.get(mount);
    return q ? q.waiting.length : 0;
  }

  /** Queue depth across mounts (metrics). */
  get queueDepth(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.active + q.waiting.length;
    return n;
  }

  /** Retries every irrevocable lease once (periodic job and operator retry). */
  async retryIrrevocable(): Promise<RevokeOutcome[]> {
    const out: RevokeOutcome[] = [];
    let after = "";
    for (;;) {
      const ids = await this.store.inState("irrevocable", after, 500);
      if (!ids.length) return out;
      after = ids[ids.length - 1];
      for (const id of ids) {
        await this.store.update(id, { revoke_attempts: this.retry.maxAttempts - 1 });
        out.push(await this.revoke(id));
      }
    }
  }

  /** For tests and `sys/leases/lookup`: a lease that does not exist is Vault's 400 `invalid lease`. */
  static notFound(): never {
    throw new NotFound();
  }
}
