import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.js";

/** A promise settled from outside, to hold a batch in flight. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** A batcher that doubles numbers and records every batch it was given. */
function doubler(maxBatch: number, hold?: Promise<void>) {
  const batches: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const gc = new GroupCommit<number, number>(async (xs) => {
    batches.push(xs);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (hold) await hold;
      else await new Promise<void>((r) => setImmediate(r));
      return xs.map((x) => x * 2);
    } finally {
      inFlight--;
    }
  }, maxBatch);
  return { gc, batches, maxInFlight: () => maxInFlight };
}

describe("GroupCommit", () => {
  it("starts a lone request at once, without waiting for a timer, and answers it alone", async () => {
    const { gc, batches } = doubler(500);
    let timerFired = false;
    setTimeout(() => (timerFired = true), 0);
    const answer = gc.submit(21);
    await Promise.resolve();
    expect(batches).toEqual([[21]]);
    expect(timerFired).toBe(false);
    expect(await answer).toBe(42);
  });

  it("puts what one synchronous loop submits in batches of at most the cap, in order, one batch at a time", async () => {
    const { gc, batches, maxInFlight } = doubler(500);
    const xs = Array.from({ length: 1_234 }, (_, i) => i);
    const answers = await Promise.all(xs.map((x) => gc.submit(x)));
    expect(answers).toEqual(xs.map((x) => x * 2));
    expect(batches.map((b) => b.length)).toEqual([500, 500, 234]);
    expect(batches.flat()).toEqual(xs);
    expect(maxInFlight()).toBe(1);
  });

  it("takes every request that arrived during a batch into the next one", async () => {
    const g = gate();
    const { gc, batches, maxInFlight } = doubler(10, g.opened);
    const first = gc.submit(1);
    await Promise.resolve();
    expect(batches).toEqual([[1]]);
    const later = [2, 3, 4].map((x) => gc.submit(x));
    await new Promise<void>((r) => setImmediate(r));
    expect(batches).toEqual([[1]]); // still writing the first batch
    expect(gc.waiting).toBe(3);
    g.open();
    expect(await first).toBe(2);
    expect(await Promise.all(later)).toEqual([4, 6, 8]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    expect(maxInFlight()).toBe(1);
    expect(gc.waiting).toBe(0);
  });

  it("rejects every request of a failed batch with its error, and goes on with the next batch", async () => {
    const seen: string[][] = [];
    const gc = new GroupCommit<string, string>(async (xs) => {
      seen.push(xs);
      if (xs.includes("bad")) throw new Error("connection refused");
      return xs.map((x) => x.toUpperCase());
    }, 2);
    const outcomes = await Promise.allSettled(["a", "bad", "c"].map((x) => gc.submit(x)));
    expect(outcomes).toEqual([
      { status: "rejected", reason: new Error("connection refused") },
      { status: "rejected", reason: new Error("connection refused") },
      { status: "fulfilled", value: "C" },
    ]);
    expect(seen).toEqual([["a", "bad"], ["c"]]);
    // The batcher is still usable after a failure.
    expect(await gc.submit("d")).toBe("D");
  });

  it("rejects a batch whose commit throws synchronously or answers the wrong number of results", async () => {
    const throwing = new GroupCommit<number, number>((() => {
      throw new Error("sync failure");
    }) as (xs: number[]) => Promise<number[]>, 5);
    await expect(throwing.submit(1)).rejects.toThrow("sync failure");
    const short = new GroupCommit<number, number>(async (xs) => xs.slice(1), 5);
    const both = await Promise.allSettled([short.submit(1), short.submit(2)]);
    expect(both.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    expect((both[0] as PromiseRejectedResult).reason.message).toMatch(/1 results for a batch of 2/);
  });

  it("refuses a cap that is not a positive integer", () => {
    expect(() => new GroupCommit<number, number>(async (xs) => xs, 0)).toThrow(/positive integer/);
    expect(() => new GroupCommit<number, number>(async (xs) => xs, 1.5)).toThrow(/positive integer/);
  });
});
