/**
 * Keeps one leased thing fresh — a secret's lease or a token — the way Vault's Go
 * `LifetimeWatcher` does, plus the replacement step it leaves to the caller:
 *
 * - a renewable lease is renewed at about two thirds of its remaining time (with jitter, so a
 *   fleet of agents does not renew in lockstep);
 * - when renewal stops extending it (max TTL reached, or a hard deadline such as the expiry of the
 *   token that created it comes first), or the lease is not renewable, a replacement is fetched at
 *   `threshold` (85-90%) of its lifetime and handed to `onReplaced`;
 * - a lease the server no longer knows (renewal refused with a 4xx) is replaced at once;
 * - unreachable server or 5xx: retried with backoff; past the expiry `onError` is told, with
 *   `expired: true`, at every failed attempt, and it keeps trying until stopped;
 * - something without a lease (KV) is fetched again every `staticIntervalMs` (if set) and
 *   `onReplaced` is called only when it changed.
 */
import { AbortError, Backoff, sleep } from "./backoff.js";
import { isRetryable } from "./client.js";

/** The lease part of a secret or token, in seconds (as Vault's envelopes carry it). */
export interface LeaseInfo {
  /** The lease id, or the token; only used in messages. */
  id: string;
  durationSeconds: number;
  renewable: boolean;
}

/**
 * A certificate answer (`pki/issue`, `pki/sign`) followed by its own expiry: never renewed,
 * replaced before NotAfter. Undefined when `data` is not a certificate with an expiration.
 */
export function certificateLifetime(data: Record<string, unknown> | null | undefined): LeaseInfo | undefined {
  if (!data || typeof data.expiration !== "number" || typeof data.certificate !== "string") return undefined;
  return { id: String(data.serial_number ?? "certificate"), durationSeconds: Math.max(0, data.expiration - Date.now() / 1000), renewable: false };
}

/**
 * The lifetime a keeper follows for a secret answer (the library's `watch` and the agent): its
 * lease when it has one, else a certificate's own expiry; undefined for a static secret, which is
 * re-read on an interval instead.
 */
export function secretLifetime(s: { lease_id: string; lease_duration: number; renewable: boolean; data: unknown }): LeaseInfo | undefined {
  if (s.lease_id && s.lease_duration > 0) return { id: s.lease_id, durationSeconds: s.lease_duration, renewable: s.renewable };
  return certificateLifetime(s.data && typeof s.data === "object" ? (s.data as Record<string, unknown>) : undefined);
}

/** What a renewal answered. `value`, when given, replaces the current value (a renewed secret's envelope). */
export interface Renewal<T> {
  durationSeconds: number;
  renewable: boolean;
  value?: T;
}

export interface LeaseKeeperEvents<T> {
  /** A renewal extended the lease; `expiresAt` is in ms since the epoch. */
  onRenewed?(value: T, expiresAt: number): void;
  /** A replacement was fetched; `previousExpiry` is when the previous value's lease ends. Awaited before the keeper moves on. */
  onReplaced?(next: T, previous: T, previousExpiry: number | undefined): void | Promise<void>;
  /** A renewal or fetch failed. `expired`: the current value's lease has run out (or will before a retry could help). */
  onError?(error: Error, info: { expired: boolean; willRetryInMs: number }): void;
}

export interface LeaseKeeperOptions<T> extends LeaseKeeperEvents<T> {
  initial: T;
  /** The lease of a value; undefined when it has none (static secrets, tokens without a TTL). */
  lease(value: T): LeaseInfo | undefined;
  renew(value: T, incrementSeconds: number, signal: AbortSignal): Promise<Renewal<T>>;
  /** Obtains a fresh value (a new secret, a new login). */
  fetch(signal: AbortSignal): Promise<T>;
  /** When the initial value was obtained (ms since the epoch); now by default. */
  obtainedAt?: number;
  /** A time the value cannot outlive whatever its lease says, e.g. the expiry of the token that created it. */
  deadline?(value: T): number | undefined;
  /** Fraction of a lease's lifetime after which a replacement is fetched (Vault's `lease_renewal_threshold`); 0.9 by default, less up to 0.05 of jitter. */
  threshold?: number;
  /** Re-fetch values without a lease this often; never when unset. */
  staticIntervalMs?: number;
  /** Compare two static values (default: JSON equality) to decide whether `onReplaced` is due. */
  same?(a: T, b: T): boolean;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Replace as soon as a renewal no longer extends the lease, instead of at `threshold`. Tokens
   * use it: the old token stays valid meanwhile, and new leases are not bound to a dying token.
   */
  replaceWhenCapped?: boolean;
  /** Keep the process alive while waiting (the agent); a library's keeper must not (default false). */
  keepAlive?: boolean;
  now?: () => number;
  random?: () => number;
}

/** A renewal refused because the lease is at its max TTL: expected, so replaced without an error. */
const AT_MAX_TTL = /max[ _]ttl/i;

/** The part of the remaining time to wait before renewing: about two thirds, plus up to a tenth of jitter. */
export function renewalDelayMs(remainingMs: number, random: () => number = Math.random): number {
  return Math.max(0, remainingMs * (2 / 3 + random() * 0.1));
}

/** When to fetch a replacement: `threshold` (less up to 0.05 of jitter) of the way from `obtainedAt` to `expiresAt`. */
export function replacementTime(obtainedAt: number, expiresAt: number, threshold: number, random: () => number = Math.random): number {
  const fraction = Math.min(0.99, Math.max(0.5, threshold - random() * 0.05));
  return obtainedAt + (expiresAt - obtainedAt) * fraction;
}

/** Runs the renew/replace loop for one value until `stop()`. */
export class LeaseKeeper<T> {
  private value: T;
  private obtainedAt: number;
  private expiresAt: number | undefined;
  /** The lease can no longer be extended (max TTL, deadline, not renewable). */
  private capped = false;
  /** The server refused a renewal: fetch a replacement without waiting. */
  private replaceNow = false;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: LeaseKeeperOptions<T>) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.value = options.initial;
    this.obtainedAt = options.obtainedAt ?? this.now();
    this.resetLease();
    this.backoff = new Backoff(options.minBackoffMs ?? 1_000, options.maxBackoffMs ?? 60_000, this.random);
  }

  /** The value in use now (the latest replacement). */
  get current(): T {
    return this.value;
  }

  /** When the current value's lease ends (ms since the epoch, capped by the deadline); undefined without a lease. */
  get expiry(): number | undefined {
    return this.effectiveExpiry();
  }

  /** The expiry once renewal can no longer move it (max TTL reached, not renewable); undefined while it can. */
  get finalExpiry(): number | undefined {
    return this.capped ? this.effectiveExpiry() : undefined;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Starts the loop (idempotent). */
  start(): this {
    this.loop ??= this.run().catch((err: unknown) => {
      if (!(err instanceof AbortError)) this.options.onError?.(asError(err), { expired: false, willRetryInMs: -1 });
    });
    return this;
  }

  /** Stops at once: pending waits end, no further renewals or fetches start. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    for (const resolve of this.replaced.splice(0)) resolve();
  }

  private resetLease(): void {
    const lease = this.options.lease(this.value);
    this.expiresAt = lease ? this.obtainedAt + lease.durationSeconds * 1000 : undefined;
    this.capped = !lease || !lease.renewable || lease.durationSeconds <= 0;
    if (lease && lease.durationSeconds <= 0) this.expiresAt = undefined;
  }

  private effectiveExpiry(): number | undefined {
    const deadline = this.options.deadline?.(this.value);
    if (this.expiresAt === undefined) return deadline;
    return deadline === undefined ? this.expiresAt : Math.min(deadline, this.expiresAt);
  }

  /** Ends the current wait early (`replaceSoon`, `reschedule`). */
  private wake: (() => void) | undefined;
  private replaced: Array<() => void> = [];

  /** Waits `ms` (forever when undefined); resolves true when woken early, rejects with AbortError on stop. */
  private wait(ms: number | undefined): Promise<boolean> {
    const timer = new AbortController();
    const stop = () => timer.abort();
    this.abort.signal.addEventListener("abort", stop, { once: true });
    return new Promise<boolean>((resolve, reject) => {
      this.wake = () => {
        resolve(true);
        timer.abort();
      };
      if (this.abort.signal.aborted) return reject(new AbortError());
      if (ms === undefined) {
        timer.signal.addEventListener("abort", () => (this.abort.signal.aborted ? reject(new AbortError()) : resolve(true)), { once: true });
        return;
      }
      sleep(ms, timer.signal, this.options.keepAlive ?? false).then(
        () => resolve(false),
        (err: unknown) => (this.abort.signal.aborted ? reject(err) : resolve(true)),
      );
    }).finally(() => {
      this.wake = undefined;
      this.abort.signal.removeEventListener("abort", stop);
    });
  }

  /**
   * Fetches a replacement now rather than at its time; resolves once the next replacement is in
   * place (or the keeper stops).
   */
  replaceSoon(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.replaced.push(resolve));
    this.capped = true;
    this.replaceNow = true;
    this.wake?.();
    return done;
  }

  /** Re-plans the next step now: call when the deadline may have changed (the creating token was replaced). */
  reschedule(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const expiry = this.effectiveExpiry();
      if (expiry === undefined) {
        // Nothing expires: re-read on the static interval, or wait to be woken or stopped.
        const woken = await this.wait(this.options.staticIntervalMs);
        if (woken && !this.replaceNow) continue;
        await this.replace({ onlyIfChanged: !this.replaceNow });
        continue;
      }
      const deadlineFirst = this.expiresAt !== undefined && expiry < this.expiresAt;
      if (!this.capped && !deadlineFirst) {
        const woken = await this.wait(renewalDelayMs(expiry - this.now(), this.random));
        if (woken && !this.replaceNow) continue;
        if (!this.replaceNow) await this.renewOnce();
      } else {
        if (!this.replaceNow) {
          const at = replacementTime(this.obtainedAt, expiry, this.options.threshold ?? 0.9, this.random);
          const woken = await this.wait(at - this.now());
          if (woken && !this.replaceNow) continue;
        }
        await this.replace({ onlyIfChanged: false });
      }
    }
  }

  /** Runs a caller's callback; what it throws is reported, never taken for a failed renewal or fetch. */
  private async notify(callback: () => void | Promise<void>): Promise<void> {
    try {
      await callback();
    } catch (err) {
      this.options.onError?.(asError(err), { expired: false, willRetryInMs: -1 });
    }
  }

  private async renewOnce(): Promise<void> {
    const lease = this.options.lease(this.value);
    if (!lease) return;
    const requested = lease.durationSeconds;
    const before = this.expiresAt ?? 0;
    for (;;) {
      try {
        const renewal = await this.options.renew(this.value, requested, this.abort.signal);
        const renewedAt = this.now();
        if (renewal.value !== undefined) this.value = renewal.value;
        const newExpiry = renewedAt + renewal.durationSeconds * 1000;
        // Not extended any more: the max TTL caps it (Vault answers the time left, shorter than asked).
        if (!renewal.renewable || renewal.durationSeconds <= 0 || renewal.durationSeconds < requested || newExpiry <= before) {
          this.capped = true;
          if (this.options.replaceWhenCapped) this.replaceNow = true;
        }
        this.expiresAt = renewal.durationSeconds > 0 ? newExpiry : this.expiresAt;
        this.backoff.reset();
        await this.notify(() => this.options.onRenewed?.(this.value, this.effectiveExpiry() ?? newExpiry));
        return;
      } catch (err) {
        if (this.abort.signal.aborted) throw new AbortError();
        if (!isRetryable(err)) {
          // The server refuses: the lease is gone or may not be renewed. Replace now.
          if (!AT_MAX_TTL.test(asError(err).message)) this.options.onError?.(asError(err), { expired: false, willRetryInMs: 0 });
          this.capped = true;
          this.replaceNow = true;
          return;
        }
        const expiry = this.effectiveExpiry() ?? 0;
        const delay = this.backoff.next();
        const replaceBy = replacementTime(this.obtainedAt, expiry, this.options.threshold ?? 0.9, () => 0);
        this.options.onError?.(asError(err), { expired: this.now() >= expiry, willRetryInMs: delay });
        if (this.now() + delay >= replaceBy) {
          // Renewal has not worked in time: go for a replacement instead.
          this.capped = true;
          return;
        }
        await this.wait(delay);
      }
    }
  }

  private async replace({ onlyIfChanged }: { onlyIfChanged: boolean }): Promise<void> {
    const signal = this.abort.signal;
    for (;;) {
      try {
        const next = await this.options.fetch(signal);
        const previous = this.value;
        const previousExpiry = this.effectiveExpiry();
        this.backoff.reset();
        const same = this.options.same ?? ((a: T, b: T) => JSON.stringify(a) === JSON.stringify(b));
        this.value = next;
        this.obtainedAt = this.now();
        this.replaceNow = false;
        this.resetLease();
        if (!onlyIfChanged || !same(previous, next)) await this.notify(() => this.options.onReplaced?.(next, previous, previousExpiry));
        for (const resolve of this.replaced.splice(0)) resolve();
        return;
      } catch (err) {
        if (signal.aborted) throw new AbortError();
        const delay = this.backoff.next();
        const expiry = this.effectiveExpiry();
        this.options.onError?.(asError(err), { expired: expiry !== undefined && this.now() >= expiry, willRetryInMs: delay });
        await this.wait(delay);
      }
    }
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
