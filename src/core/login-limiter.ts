import { QuotaExceeded } from "../sdk/errors.js";
import { normaliseAddress } from "../sdk/cidr.js";

/** Per-client-address token buckets for login requests. `rate` per second, up to `burst` at once. */
export class LoginLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();
  private sweepAt = 0;

  constructor(private readonly rate: number, private readonly burst: number) {}

  get enabled(): boolean {
    return this.rate > 0;
  }

  /** Takes one login from the address's bucket; throws 429 when it is empty. */
  take(address: string, now = Date.now()): void {
    if (!this.enabled) return;
    const key = normaliseAddress(address);
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      throw new QuotaExceeded(`login rate limit exceeded for ${key}: retry later`);
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    if (now > this.sweepAt) this.sweep(now);
  }

  /** Forgets full buckets now and then, so memory follows active clients only. */
  private sweep(now: number): void {
    this.sweepAt = now + 60_000;
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
  }
}
