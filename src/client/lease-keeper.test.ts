import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionError, PermissionDeniedError, ServerError, BadRequestError } from "./errors.js";
import { LeaseKeeper, certificateLifetime, renewalDelayMs, replacementTime, secretLifetime, type LeaseKeeperOptions, type Renewal } from "./lease-keeper.js";

/**
 * The keeper's schedule runs on vitest's fake clock (setTimeout and Date are both faked), with
 * `random` injected: leases of an hour take no real time, and the assertions are on exact
 * simulated instants, so a loaded machine cannot make them flaky.
 */

interface Value {
  name: string;
  /** Lease duration in seconds; 0 for none. */
  ttl: number;
  renewable: boolean;
  /** A hard deadline (ms since the epoch), e.g. the expiry of the creating token. */
  deadline?: number;
  data?: string;
}

const T0 = 1_700_000_000_000;
const S = 1_000;

class Harness {
  readonly renews: Array<{ at: number; value: Value; increment: number }> = [];
  readonly fetches: number[] = [];
  readonly renewed: Array<{ at: number; value: Value; expiresAt: number }> = [];
  readonly replaced: Array<{ at: number; next: Value; previous: Value; previousExpiry: number | undefined }> = [];
  readonly errors: Array<{ at: number; error: Error; expired: boolean; willRetryInMs: number }> = [];
  /** What the next renewals answer (the last one repeats); a function result or an error to throw. */
  renewScript: Array<(v: Value, increment: number) => Renewal<Value> | Error> = [(v, inc) => ({ durationSeconds: inc, renewable: true })];
  fetchScript: Array<() => Value | Error> = [];
  fetched = 0;
  keeper!: LeaseKeeper<Value>;

  start(initial: Value, options: Partial<LeaseKeeperOptions<Value>> = {}): LeaseKeeper<Value> {
    this.keeper = new LeaseKeeper<Value>({
      initial,
      lease: (v) => (v.ttl > 0 ? { id: v.name, durationSeconds: v.ttl, renewable: v.renewable } : undefined),
      deadline: (v) => v.deadline,
      renew: async (v, increment) => {
        this.renews.push({ at: Date.now(), value: v, increment });
        const step = this.renewScript[Math.min(this.renews.length - 1, this.renewScript.length - 1)];
        const result = step(v, increment);
        if (result instanceof Error) throw result;
        return result;
      },
      fetch: async () => {
        this.fetches.push(Date.now());
        const step = this.fetchScript[Math.min(this.fetched++, this.fetchScript.length - 1)];
        if (!step) return { name: `fetched-${this.fetched}`, ttl: initial.ttl, renewable: initial.renewable };
        const result = step();
        if (result instanceof Error) throw result;
        return result;
      },
      onRenewed: (value, expiresAt) => this.renewed.push({ at: Date.now(), value, expiresAt }),
      onReplaced: (next, previous, previousExpiry) => {
        this.replaced.push({ at: Date.now(), next, previous, previousExpiry });
      },
      onError: (error, info) => this.errors.push({ at: Date.now(), error, ...info }),
      now: () => Date.now(),
      random: () => 0.5,
      ...options,
    }).start();
    return this.keeper;
  }
}

/** Moves the fake clock to `T0 + ms`, running every timer and promise continuation due on the way. */
async function at(ms: number): Promise<void> {
  const delta = T0 + ms - Date.now();
  if (delta < 0) throw new Error(`the clock is already past T0+${ms}`);
  await vi.advanceTimersByTimeAsync(delta);
}

const serverError = () => new ServerError({ status: 500, errors: ["database unavailable"], method: "PUT", url: "http://x/v1/sys/leases/renew" });
const refused = () => new ConnectionError("connection refused", { address: "http://x", code: "ECONNREFUSED" });

let h: Harness;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  h = new Harness();
});
afterEach(async () => {
  await h.keeper?.stop();
  vi.useRealTimers();
});

describe("renewalDelayMs", () => {
  it("is two thirds of the remaining time plus up to a tenth of jitter", () => {
    expect(renewalDelayMs(3_000, () => 0)).toBeCloseTo(2_000, 6);
    expect(renewalDelayMs(3_000, () => 1)).toBeCloseTo(2_300, 6);
    for (let i = 0; i < 200; i++) {
      const d = renewalDelayMs(60_000);
      expect(d).toBeGreaterThanOrEqual(40_000);
      expect(d).toBeLessThanOrEqual(46_000);
    }
  });

  it("is never negative", () => {
    expect(renewalDelayMs(-5_000, () => 0.5)).toBe(0);
    expect(renewalDelayMs(0, () => 1)).toBe(0);
  });
});

describe("replacementTime", () => {
  it("is threshold, less up to 0.05 of jitter, of the way from obtainedAt to expiresAt", () => {
    expect(replacementTime(1_000, 11_000, 0.9, () => 0)).toBeCloseTo(10_000, 6);
    expect(replacementTime(1_000, 11_000, 0.9, () => 1)).toBeCloseTo(9_500, 6);
    expect(replacementTime(0, 10_000, 0.7, () => 0.5)).toBeCloseTo(6_750, 6);
    for (let i = 0; i < 200; i++) {
      const t = replacementTime(0, 100_000, 0.9);
      expect(t).toBeGreaterThanOrEqual(85_000);
      expect(t).toBeLessThanOrEqual(90_000);
    }
  });

  it("clamps the fraction between 0.5 and 0.99", () => {
    expect(replacementTime(0, 10_000, 0.1, () => 0)).toBeCloseTo(5_000, 6);
    expect(replacementTime(0, 10_000, 1.5, () => 0)).toBeCloseTo(9_900, 6);
    expect(replacementTime(0, 10_000, 1, () => 0)).toBeLessThan(10_000);
  });
});

describe("LeaseKeeper renewal", () => {
  it("renews at about two thirds of the TTL, not before 0.6 of it, asking for the lease's duration", async () => {
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(0.6 * 3_600 * S);
    expect(h.renews).toHaveLength(0);
    await at(0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(1);
    const first = h.renews[0];
    // random() = 0.5: 2/3 + 0.05 of the TTL.
    expect(first.at - T0).toBe(Math.round((2 / 3 + 0.05) * 3_600 * S));
    expect(first.increment).toBe(3_600);
    expect(first.value.name).toBe("db");
    expect(h.renewed).toHaveLength(1);
    expect(h.renewed[0].expiresAt).toBe(first.at + 3_600 * S);
    expect(h.keeper.expiry).toBe(first.at + 3_600 * S);
    expect(h.fetches).toHaveLength(0);
    expect(h.errors).toHaveLength(0);
  });

  it.each([0, 1])("keeps the renewal between 2/3 and 0.77 of the remaining time (random() = %i)", async (r) => {
    h.start({ name: "db", ttl: 600, renewable: true }, { random: () => r });
    await at(600 * S);
    expect(h.renews.length).toBeGreaterThanOrEqual(1);
    const fraction = (h.renews[0].at - T0) / (600 * S);
    expect(fraction).toBeGreaterThanOrEqual(2 / 3 - 0.001);
    expect(fraction).toBeLessThanOrEqual(0.77);
  });

  it("keeps renewing an uncapped lease, each time at about two thirds of what is left", async () => {
    h.start({ name: "db", ttl: 300, renewable: true });
    await at(3 * 300 * S);
    expect(h.renews.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < h.renews.length; i++) {
      const gap = h.renews[i].at - h.renews[i - 1].at;
      expect(gap).toBeGreaterThanOrEqual(0.6 * 300 * S);
      expect(gap).toBeLessThanOrEqual(0.8 * 300 * S);
    }
    expect(h.fetches).toHaveLength(0);
  });

  it("counts the remaining time from obtainedAt", async () => {
    // Obtained 40 minutes ago with a one-hour TTL: 20 minutes left.
    h.start({ name: "db", ttl: 3_600, renewable: true }, { obtainedAt: T0 - 2_400 * S });
    expect(h.keeper.expiry).toBe(T0 + 1_200 * S);
    await at(1_200 * S);
    expect(h.renews.length).toBeGreaterThanOrEqual(1);
    const delay = h.renews[0].at - T0;
    expect(delay).toBeGreaterThanOrEqual(0.6 * 1_200 * S);
    expect(delay).toBeLessThanOrEqual(0.8 * 1_200 * S);
  });

  it("takes the value a renewal answers as the current one", async () => {
    h.renewScript = [(v) => ({ durationSeconds: 3_600, renewable: true, value: { ...v, name: "renewed-envelope" } })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(0.8 * 3_600 * S);
    expect(h.keeper.current.name).toBe("renewed-envelope");
    expect(h.renewed[0].value.name).toBe("renewed-envelope");
  });

  it("retries a failed renewal with backoff, reporting each failure, and recovers", async () => {
    h.renewScript = [serverError, refused, (v, inc) => ({ durationSeconds: inc, renewable: true })];
    h.start({ name: "db", ttl: 3_600, renewable: true }, { minBackoffMs: 10 * S, maxBackoffMs: 60 * S });
    await at(0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(3);
    expect(h.errors).toHaveLength(2);
    expect(h.errors[0].error).toBeInstanceOf(ServerError);
    expect(h.errors[1].error).toBeInstanceOf(ConnectionError);
    // Equal jitter with random() = 0.5: 3/4 of 10 s, then of 20 s.
    expect(h.errors.map((e) => e.willRetryInMs)).toEqual([7_500, 15_000]);
    expect(h.errors.every((e) => !e.expired)).toBe(true);
    expect(h.renews[1].at - h.renews[0].at).toBe(7_500);
    expect(h.renews[2].at - h.renews[1].at).toBe(15_000);
    expect(h.renewed).toHaveLength(1);
    expect(h.fetches).toHaveLength(0);
    // The backoff starts over after a success.
    h.renewScript = [...h.renewScript, serverError, (v, inc) => ({ durationSeconds: inc, renewable: true })];
    await at(h.renews[2].at - T0 + 0.8 * 3_600 * S);
    expect(h.errors.length).toBeGreaterThanOrEqual(3);
    expect(h.errors[2].willRetryInMs).toBe(7_500);
  });

  it("gives up renewing and fetches a replacement when retries would run past the threshold", async () => {
    h.renewScript = [serverError];
    h.start({ name: "db", ttl: 100, renewable: true }, { minBackoffMs: 10 * S, maxBackoffMs: 10 * S });
    await at(100 * S);
    expect(h.renews.length).toBeGreaterThanOrEqual(2);
    expect(h.fetches).toHaveLength(1);
    // Replaced before the lease ran out, and no renewal was tried after the threshold (90 s).
    expect(h.fetches[0]).toBeLessThan(T0 + 100 * S);
    expect(h.renews.every((r) => r.at < T0 + 90 * S)).toBe(true);
    expect(h.replaced).toHaveLength(1);
    expect(h.replaced[0].previous.name).toBe("db");
    expect(h.replaced[0].previousExpiry).toBe(T0 + 100 * S);
  });
});

describe("LeaseKeeper replacement", () => {
  it("replaces a lease whose renewal was capped (max TTL) after the threshold and before it expires", async () => {
    // Asked for an hour, granted 10 minutes: the max TTL is near.
    h.renewScript = [() => ({ durationSeconds: 600, renewable: true })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    // The renewal comes at 2580 s (random() = 0.5).
    await at(2_600 * S);
    expect(h.renews).toHaveLength(1);
    const expiry = h.renews[0].at + 600 * S;
    expect(h.keeper.expiry).toBe(expiry);
    expect(h.fetches).toHaveLength(0);
    await at(expiry - T0);
    // One renewal only: a capped lease is not renewed again but replaced.
    expect(h.renews).toHaveLength(1);
    expect(h.fetches).toHaveLength(1);
    const lifetime = expiry - T0;
    expect(h.fetches[0]).toBeGreaterThanOrEqual(T0 + 0.85 * lifetime);
    expect(h.fetches[0]).toBeLessThan(expiry);
    expect(h.replaced).toHaveLength(1);
    expect(h.replaced[0].previous.name).toBe("db");
    expect(h.replaced[0].next.name).toBe("fetched-1");
    expect(h.replaced[0].previousExpiry).toBe(expiry);
    expect(h.keeper.current.name).toBe("fetched-1");
  });

  it("treats a renewal that stops being renewable, or grants nothing, as capped", async () => {
    h.renewScript = [(v, inc) => ({ durationSeconds: inc, renewable: false })];
    h.start({ name: "a", ttl: 600, renewable: true });
    // Renewed at 430 s for 600 s more, but no longer renewable: replaced before 1030 s.
    await at(1_030 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.fetches).toHaveLength(1);
    expect(h.fetches[0]).toBeGreaterThan(h.renews[0].at);
    expect(h.replaced[0].previousExpiry).toBe(h.renews[0].at + 600 * S);

    await h.keeper.stop();
    const g = new Harness();
    h = g;
    const startAt = Date.now();
    g.renewScript = [() => ({ durationSeconds: 0, renewable: true })];
    g.start({ name: "b", ttl: 600, renewable: true });
    await at(startAt - T0 + 600 * S);
    expect(g.renews).toHaveLength(1);
    // Granting 0 s does not move the expiry; the replacement comes before the original one.
    expect(g.fetches).toHaveLength(1);
    expect(g.fetches[0]).toBeLessThan(startAt + 600 * S);
    expect(g.replaced[0].previousExpiry).toBe(startAt + 600 * S);
  });

  it("renews the replacement on its own schedule", async () => {
    h.renewScript = [() => ({ durationSeconds: 600, renewable: true }), (v, inc) => ({ durationSeconds: inc, renewable: true })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(0.8 * 3_600 * S + 600 * S);
    expect(h.replaced).toHaveLength(1);
    const replacedAt = h.fetches[0];
    await at(replacedAt - T0 + 0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(2);
    expect(h.renews[1].value.name).toBe("fetched-1");
    expect(h.renews[1].at - replacedAt).toBe(Math.round((2 / 3 + 0.05) * 3_600 * S));
  });

  it.each([
    [0, 0.9],
    [1, 0.85],
  ])("replaces a non-renewable lease at 0.85-0.9 of its lifetime (random() = %i → %d)", async (r, fraction) => {
    h.start({ name: "cert", ttl: 1_000, renewable: false }, { random: () => r });
    await at(0.84 * 1_000 * S);
    expect(h.fetches).toHaveLength(0);
    await at(0.91 * 1_000 * S);
    expect(h.fetches).toHaveLength(1);
    expect(h.fetches[0] - T0).toBe(Math.round(fraction * 1_000 * S));
    expect(h.renews).toHaveLength(0);
    expect(h.replaced[0].previousExpiry).toBe(T0 + 1_000 * S);
  });

  it("honours a lower threshold", async () => {
    h.start({ name: "cert", ttl: 1_000, renewable: false }, { threshold: 0.7, random: () => 0 });
    await at(0.69 * 1_000 * S);
    expect(h.fetches).toHaveLength(0);
    await at(0.71 * 1_000 * S);
    expect(h.fetches).toHaveLength(1);
  });

  it("replaces before a deadline that comes before the lease's expiry, without renewing", async () => {
    // A renewable lease of an hour, created by a token that expires in 10 minutes.
    const deadline = T0 + 600 * S;
    h.fetchScript = [() => ({ name: "next", ttl: 3_600, renewable: true, deadline: T0 + 100_000 * S })];
    h.start({ name: "db", ttl: 3_600, renewable: true, deadline });
    expect(h.keeper.expiry).toBe(deadline);
    await at(600 * S);
    expect(h.renews).toHaveLength(0);
    expect(h.fetches).toHaveLength(1);
    expect(h.fetches[0]).toBeGreaterThanOrEqual(T0 + 0.85 * 600 * S);
    expect(h.fetches[0]).toBeLessThan(deadline);
    expect(h.replaced[0].previousExpiry).toBe(deadline);
    // The replacement has no near deadline: it is renewed as usual.
    await at(600 * S + 0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.renews[0].value.name).toBe("next");
  });

  it("reports the deadline as the expiry in onRenewed when it comes first after a renewal", async () => {
    let deadline: number | undefined;
    h.renewScript = [(v, inc) => {
      deadline = Date.now() + 100 * S; // the token's end came into view
      return { durationSeconds: inc, renewable: true };
    }];
    h.start({ name: "db", ttl: 600, renewable: true }, { deadline: () => deadline });
    await at(0.8 * 600 * S);
    expect(h.renewed).toHaveLength(1);
    expect(h.renewed[0].expiresAt).toBe(deadline);
  });

  it("replaces at once when the server refuses the renewal (4xx)", async () => {
    h.renewScript = [() => new BadRequestError({ status: 400, errors: ["lease not found"], method: "PUT", url: "u" })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.fetches).toHaveLength(1);
    // No waiting for a threshold: same instant as the refused renewal.
    expect(h.fetches[0]).toBe(h.renews[0].at);
    expect(h.errors).toHaveLength(1);
    expect(h.errors[0].error).toBeInstanceOf(BadRequestError);
    expect(h.errors[0]).toMatchObject({ expired: false, willRetryInMs: 0 });
    expect(h.replaced).toHaveLength(1);
    expect(h.keeper.current.name).toBe("fetched-1");
  });

  it("a 403 on renewal is a refusal too, not retried", async () => {
    h.renewScript = [() => new PermissionDeniedError({ status: 403, errors: ["permission denied"], method: "PUT", url: "u" })];
    h.start({ name: "db", ttl: 3_600, renewable: true }, { minBackoffMs: 10 * S });
    await at(0.8 * 3_600 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.fetches).toEqual([h.renews[0].at]);
  });

  it("retries failed fetches with backoff and reports expired: true once the lease has run out", async () => {
    h.fetchScript = [refused];
    h.start({ name: "cert", ttl: 100, renewable: false }, { minBackoffMs: 4 * S, maxBackoffMs: 4 * S });
    await at(120 * S);
    // First fetch at 87.5 s, then every 3 s (3/4 of 4 s).
    expect(h.fetches[0]).toBe(T0 + 87_500);
    expect(h.fetches.length).toBeGreaterThanOrEqual(8);
    expect(h.errors.length).toBe(h.fetches.length);
    for (const e of h.errors) {
      expect(e.error).toBeInstanceOf(ConnectionError);
      expect(e.willRetryInMs).toBe(3_000);
      expect(e.expired).toBe(e.at >= T0 + 100 * S);
    }
    expect(h.errors.some((e) => e.expired)).toBe(true);
    expect(h.errors.some((e) => !e.expired)).toBe(true);
    expect(h.replaced).toHaveLength(0);
    // The server comes back: the keeper recovers with a fresh value.
    h.fetchScript = [() => ({ name: "recovered", ttl: 100, renewable: false })];
    h.fetched = 0;
    await at(125 * S);
    expect(h.replaced).toHaveLength(1);
    expect(h.replaced[0].next.name).toBe("recovered");
    expect(h.keeper.current.name).toBe("recovered");
    expect(h.keeper.expiry).toBeGreaterThan(Date.now());
  });

  it("awaits onReplaced before moving on", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    h.start(
      { name: "cert", ttl: 100, renewable: false },
      {
        onReplaced: () => {
          calls++;
          return gate;
        },
      },
    );
    await at(1_000 * S);
    // Stuck in the first onReplaced: no further fetch although ten lifetimes went by.
    expect(calls).toBe(1);
    expect(h.fetches).toHaveLength(1);
    release();
    await at(1_000 * S + 100 * S);
    expect(h.fetches.length).toBeGreaterThanOrEqual(2);
  });
});

describe("LeaseKeeper: finalExpiry, replaceWhenCapped, replaceSoon", () => {
  it("finalExpiry is undefined while renewal can extend the lease, the expiry once capped", async () => {
    h.renewScript = [() => ({ durationSeconds: 600, renewable: true })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    expect(h.keeper.finalExpiry).toBeUndefined();
    await at(2_600 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.keeper.finalExpiry).toBe(h.renews[0].at + 600 * S);
  });

  it("finalExpiry is known from the start for a lease that is not renewable", () => {
    h.start({ name: "cert", ttl: 100, renewable: false });
    expect(h.keeper.finalExpiry).toBe(T0 + 100 * S);
  });

  it("with replaceWhenCapped, a capped renewal is followed by a replacement at once", async () => {
    h.renewScript = [() => ({ durationSeconds: 600, renewable: true })];
    h.start({ name: "token", ttl: 3_600, renewable: true }, { replaceWhenCapped: true });
    await at(2_600 * S);
    expect(h.renews).toHaveLength(1);
    expect(h.fetches).toEqual([h.renews[0].at]);
    expect(h.replaced[0].previousExpiry).toBe(h.renews[0].at + 600 * S);
  });

  it("a refusal because of the max TTL is replaced without reporting an error", async () => {
    h.renewScript = [() => new BadRequestError({ status: 400, errors: ["lease is past its max_ttl"], method: "PUT", url: "u" })];
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(0.8 * 3_600 * S);
    expect(h.fetches).toEqual([h.renews[0].at]);
    expect(h.errors).toHaveLength(0);
  });

  it("replaceSoon ends the wait, fetches now and resolves once the replacement is in place", async () => {
    h.start({ name: "db", ttl: 3_600, renewable: true });
    await at(100 * S);
    const done = h.keeper.replaceSoon();
    let resolved = false;
    void done.then(() => (resolved = true));
    await at(100 * S + 1);
    expect(h.fetches).toEqual([T0 + 100 * S]);
    expect(resolved).toBe(true);
    expect(h.keeper.current.name).toBe("fetched-1");
    // (Today the woken renewal wait also renews the old lease once before the fetch: reported.)
    expect(h.renews.length).toBeLessThanOrEqual(1);
  });

  it("replaceSoon resolves when the keeper stops instead, and at once on a stopped keeper", async () => {
    h.fetchScript = [refused];
    h.start({ name: "db", ttl: 3_600, renewable: true }, { minBackoffMs: 600 * S, maxBackoffMs: 600 * S });
    const done = h.keeper.replaceSoon();
    await at(1);
    expect(h.fetches).toHaveLength(1);
    await h.keeper.stop();
    await expect(done).resolves.toBeUndefined();
    await expect(h.keeper.replaceSoon()).resolves.toBeUndefined();
  });
});

describe("LeaseKeeper without a lease", () => {
  it("re-fetches on the static interval and calls onReplaced only when the value changed", async () => {
    const kv = (data: string): Value => ({ name: "kv", ttl: 0, renewable: false, data });
    h.fetchScript = [() => kv("v1"), () => kv("v1"), () => kv("v2"), () => kv("v2")];
    h.start(kv("v1"), { staticIntervalMs: 60 * S });
    expect(h.keeper.expiry).toBeUndefined();
    await at(59 * S);
    expect(h.fetches).toHaveLength(0);
    await at(61 * S);
    expect(h.fetches).toHaveLength(1);
    expect(h.replaced).toHaveLength(0);
    await at(121 * S);
    expect(h.fetches).toHaveLength(2);
    expect(h.replaced).toHaveLength(0);
    await at(181 * S);
    expect(h.fetches).toHaveLength(3);
    expect(h.replaced).toHaveLength(1);
    expect(h.replaced[0].previous.data).toBe("v1");
    expect(h.replaced[0].next.data).toBe("v2");
    expect(h.replaced[0].previousExpiry).toBeUndefined();
    expect(h.keeper.current.data).toBe("v2");
    await at(241 * S);
    expect(h.fetches).toHaveLength(4);
    expect(h.replaced).toHaveLength(1);
    expect(h.renews).toHaveLength(0);
  });

  it("uses the given `same` to compare", async () => {
    let n = 0;
    // Each fetch differs in `name` but `same` only looks at `data`.
    h.fetchScript = [() => ({ name: `kv-${++n}`, ttl: 0, renewable: false, data: "x" })];
    h.start({ name: "kv", ttl: 0, renewable: false, data: "x" }, { staticIntervalMs: 10 * S, same: (a, b) => a.data === b.data });
    await at(55 * S);
    expect(h.fetches).toHaveLength(5);
    expect(h.replaced).toHaveLength(0);
  });

  it("reports failed static fetches as not expired and keeps going", async () => {
    h.fetchScript = [refused, () => ({ name: "kv", ttl: 0, renewable: false, data: "new" })];
    h.start({ name: "kv", ttl: 0, renewable: false, data: "old" }, { staticIntervalMs: 10 * S, minBackoffMs: 2 * S, maxBackoffMs: 2 * S });
    await at(15 * S);
    expect(h.errors).toHaveLength(1);
    expect(h.errors[0]).toMatchObject({ expired: false, willRetryInMs: 1_500 });
    expect(h.replaced).toHaveLength(1);
    expect(h.replaced[0].next.data).toBe("new");
  });

  it("never fetches without a static interval", async () => {
    h.start({ name: "kv", ttl: 0, renewable: false });
    await at(100_000 * S);
    expect(h.fetches).toHaveLength(0);
    expect(h.renews).toHaveLength(0);
    await h.keeper.stop();
    expect(h.keeper.stopped).toBe(true);
  });
});

describe("LeaseKeeper.stop", () => {
  it("stops the schedule: nothing is renewed or fetched afterwards", async () => {
    h.start({ name: "db", ttl: 60, renewable: true });
    await at(30 * S);
    await h.keeper.stop();
    expect(h.keeper.stopped).toBe(true);
    await at(10_000 * S);
    expect(h.renews).toHaveLength(0);
    expect(h.fetches).toHaveLength(0);
    expect(h.errors).toHaveLength(0);
  });

  it("ends a backoff wait between failed fetches", async () => {
    h.fetchScript = [refused];
    h.start({ name: "cert", ttl: 10, renewable: false }, { minBackoffMs: 600 * S, maxBackoffMs: 600 * S });
    await at(10 * S);
    expect(h.fetches).toHaveLength(1);
    await h.keeper.stop();
    await at(10_000 * S);
    expect(h.fetches).toHaveLength(1);
    expect(h.errors).toHaveLength(1);
  });

  it("aborts a renewal in flight through its signal, without reporting an error", async () => {
    let seen: AbortSignal | undefined;
    const keeper = h.start(
      { name: "db", ttl: 60, renewable: true },
      {
        renew: (_v, _inc, signal) => {
          seen = signal;
          return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
        },
      },
    );
    await at(50 * S);
    expect(seen?.aborted).toBe(false);
    await keeper.stop();
    expect(seen?.aborted).toBe(true);
    expect(h.errors).toHaveLength(0);
    expect(h.fetches).toHaveLength(0);
  });

  it("is prompt on the real clock too, and start() is idempotent", async () => {
    vi.useRealTimers();
    let fetches = 0;
    const keeper = new LeaseKeeper<Value>({
      initial: { name: "db", ttl: 3_600, renewable: true },
      lease: (v) => ({ id: v.name, durationSeconds: v.ttl, renewable: v.renewable }),
      renew: async () => ({ durationSeconds: 3_600, renewable: true }),
      fetch: async () => {
        fetches++;
        return { name: "x", ttl: 1, renewable: false };
      },
    });
    expect(keeper.start()).toBe(keeper);
    keeper.start();
    const started = performance.now();
    await keeper.stop();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(fetches).toBe(0);
    await keeper.stop(); // twice is fine
  });
});

describe("LeaseKeeper on the real clock", () => {
  it("renews a 1 s lease after about 2/3 of it and replaces it once capped", async () => {
    vi.useRealTimers();
    const events: Array<[string, number]> = [];
    const t0 = Date.now();
    let renewals = 0;
    const keeper = new LeaseKeeper<Value>({
      initial: { name: "a", ttl: 1, renewable: true },
      lease: (v) => ({ id: v.name, durationSeconds: v.ttl, renewable: v.renewable }),
      // The first renewal is granted in full, the second is refused as past the max TTL.
      renew: async () => (++renewals === 1 ? { durationSeconds: 1, renewable: true } : { durationSeconds: 0, renewable: false }),
      fetch: async () => ({ name: "b", ttl: 60, renewable: false }),
      onRenewed: () => events.push(["renewed", Date.now() - t0]),
      onReplaced: () => {
        events.push(["replaced", Date.now() - t0]);
      },
    }).start();
    try {
      const deadline = Date.now() + 4_000;
      while (!events.some(([e]) => e === "replaced") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const renewed = events.find(([e]) => e === "renewed");
      const replaced = events.find(([e]) => e === "replaced");
      expect(renewed).toBeDefined();
      // Not before 0.6 of the TTL; the upper bound is generous for a loaded machine.
      expect(renewed![1]).toBeGreaterThanOrEqual(600);
      expect(renewals).toBe(2);
      expect(replaced).toBeDefined();
      expect(keeper.current.name).toBe("b");
    } finally {
      await keeper.stop();
    }
  });
});

describe("the lifetime a keeper follows", () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(now);
  });
  afterEach(() => vi.useRealTimers());

  it("is the lease when the secret has one (a leased certificate included)", () => {
    const s = { lease_id: "database/creds/ro/abc", lease_duration: 300, renewable: true, data: { username: "u" } };
    expect(secretLifetime(s)).toEqual({ id: "database/creds/ro/abc", durationSeconds: 300, renewable: true });
    const leasedCert = { lease_id: "pki/issue/web/x", lease_duration: 60, renewable: false, data: { certificate: "PEM", expiration: now / 1000 + 3600 } };
    expect(secretLifetime(leasedCert)).toEqual({ id: "pki/issue/web/x", durationSeconds: 60, renewable: false });
  });

  it("is a certificate's own expiry when it has no lease, never renewable", () => {
    const cert = { lease_id: "", lease_duration: 0, renewable: false, data: { certificate: "PEM", serial_number: "1a:2b", expiration: now / 1000 + 3600 } };
    expect(secretLifetime(cert)).toEqual({ id: "1a:2b", durationSeconds: 3600, renewable: false });
    expect(certificateLifetime({ certificate: "PEM", expiration: now / 1000 - 5 })).toEqual({ id: "certificate", durationSeconds: 0, renewable: false });
  });

  it("is none for a static secret (re-read on an interval instead)", () => {
    expect(secretLifetime({ lease_id: "", lease_duration: 0, renewable: false, data: { data: { password: "x" } } })).toBeUndefined();
    expect(secretLifetime({ lease_id: "", lease_duration: 0, renewable: false, data: null })).toBeUndefined();
    expect(certificateLifetime({ expiration: 123 })).toBeUndefined();
  });
});
