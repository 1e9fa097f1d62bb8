import { describe, expect, it } from "vitest";
import { AbortError, Backoff, backoffDelay, sleep } from "./backoff.js";

describe("backoffDelay", () => {
  it("doubles from min per attempt, with equal jitter (half fixed, half random)", () => {
    // random() = 0 gives the fixed half, random() = 1 the whole ceiling.
    expect(backoffDelay(0, 100, 10_000, () => 0)).toBe(50);
    expect(backoffDelay(0, 100, 10_000, () => 1)).toBe(100);
    expect(backoffDelay(1, 100, 10_000, () => 0)).toBe(100);
    expect(backoffDelay(1, 100, 10_000, () => 1)).toBe(200);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(600); // ceiling 800: 400 + 0.5·400
  });

  it("caps the ceiling at max", () => {
    expect(backoffDelay(10, 100, 1_000, () => 1)).toBe(1_000);
    expect(backoffDelay(10, 100, 1_000, () => 0)).toBe(500);
  });

  it("stays finite for absurd attempt numbers", () => {
    const d = backoffDelay(5_000, 100, 60_000, () => 1);
    expect(d).toBe(60_000);
    expect(Number.isFinite(backoffDelay(5_000, 1, Number.MAX_SAFE_INTEGER, () => 1))).toBe(true);
  });

  it("always lies between half the ceiling and the ceiling with the default random", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(5_000, 250 * 2 ** attempt);
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(attempt, 250, 5_000);
        expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});

describe("Backoff", () => {
  it("hands out growing delays and counts them until reset", () => {
    const b = new Backoff(10, 80, () => 1);
    expect(b.attempts).toBe(0);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([10, 20, 40, 80, 80]);
    expect(b.attempts).toBe(5);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(10);
  });

  it("uses the injected random source", () => {
    const b = new Backoff(100, 1_000, () => 0);
    expect(b.next()).toBe(50);
    expect(b.next()).toBe(100);
    expect(b.minMs).toBe(100);
    expect(b.maxMs).toBe(1_000);
  });
});

describe("sleep", () => {
  it("resolves after about the given time", async () => {
    const started = performance.now();
    await sleep(30);
    // Timers may fire a millisecond early by rounding; never much earlier.
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it("treats a negative delay as zero", async () => {
    const started = performance.now();
    await sleep(-1_000);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("rejects at once with AbortError when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    const started = performance.now();
    const err = await sleep(60_000, ac.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).name).toBe("AbortError");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("rejects promptly with AbortError when the signal aborts while waiting", async () => {
    const ac = new AbortController();
    const started = performance.now();
    const pending = sleep(60_000, ac.signal);
    setTimeout(() => ac.abort(), 20);
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("removes its abort listener once it resolved (aborting later is harmless)", async () => {
    const ac = new AbortController();
    await sleep(1, ac.signal);
    // A leftover listener would call clearTimeout/reject on a settled promise: harmless, but
    // with many sleeps on one long-lived signal the listeners would pile up.
    let listeners = 0;
    const original = ac.signal.addEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...args: Parameters<AbortSignal["addEventListener"]>) => {
      listeners++;
      return original(...args);
    }) as AbortSignal["addEventListener"];
    const removed: unknown[] = [];
    const originalRemove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.removeEventListener = ((...args: Parameters<AbortSignal["removeEventListener"]>) => {
      removed.push(args[1]);
      return originalRemove(...args);
    }) as AbortSignal["removeEventListener"];
    await sleep(1, ac.signal);
    expect(listeners).toBe(1);
    expect(removed).toHaveLength(1);
    ac.abort();
  });

  it("does not keep the process alive unless asked (the timer is unref'd)", async () => {
    const seen: boolean[] = [];
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const t = realSetTimeout(fn, ms);
      const unref = t.unref.bind(t);
      t.unref = () => {
        seen.push(true);
        return unref();
      };
      return t;
    }) as typeof setTimeout;
    try {
      const a = sleep(1);
      const b = sleep(1, undefined, true);
      await Promise.all([a, b]);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    expect(seen).toEqual([true]);
  });
});

describe("AbortError", () => {
  it("is an Error named AbortError with a default message", () => {
    const e = new AbortError();
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("AbortError");
    expect(e.message).toBe("stopped");
    expect(new AbortError("why").message).toBe("why");
  });
});
