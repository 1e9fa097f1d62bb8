/**
 * The HA lock on a real PostgreSQL: one holder at a time, renewals, expiry by PostgreSQL's clock,
 * hand-over, and the write fence that keeps a deposed node from committing anything.
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, createTestDatabase, rand, sleep, type TestDatabase } from "../../test/database/helpers.js";
import { PostgresStorage } from "../storage/postgres.js";
import { FencedError, HaLock, type HaLockOptions } from "./lock.js";

let db: TestDatabase;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "halock");
});
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.().catch(() => undefined);
});
afterAll(async () => {
  await db?.drop();
});

/** A cluster of its own (its own kv table, hence its own lock row) for each test. */
async function cluster() {
  const table = `ha_${rand()}`;
  const storage = await PostgresStorage.open({ connectionUrl: db.url, table });
  cleanup.push(() => storage.close());
  const node = async (id: string, opts: Partial<HaLockOptions> = {}) => {
    const lock = await HaLock.open({ connectionUrl: db.url, names: storage.names, nodeId: id, apiAddr: `https://${id}:8200`, clusterAddr: `https://${id}:8201`, lifetimeMs: 1500, ...opts });
    cleanup.push(() => lock.close());
    return lock;
  };
  /** A store whose writes are fenced by `lock` at `epoch`, as the active node will open it. */
  const fencedStore = async (lock: HaLock, epoch: number) => {
    const s = await PostgresStorage.open({ connectionUrl: db.url, table, fence: lock.fenceFor(epoch), maxParallel: 4 });
    cleanup.push(() => s.close());
    return s;
  };
  const stored = async (key: string) => (await db.admin.query(`SELECT value FROM ${storage.names.kv} WHERE key = $1`, [key])).rows[0]?.value?.toString();
  return { storage, node, fencedStore, stored };
}

const v = (s: string) => Buffer.from(s);
const fails = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

/** An open transaction that passed `lock`'s fence (holding the row FOR KEY SHARE), as a writer in flight. */
async function openFencedTx(lock: HaLock, epoch: number): Promise<pg.Client> {
  const c = await connect(db.url);
  cleanup.push(() => c.end());
  await c.query("BEGIN");
  await lock.fenceFor(epoch)(c);
  return c;
}

describe("acquisition", () => {
  it("exactly one of several racing nodes acquires; the others see its addresses", async () => {
    const { node } = await cluster();
    const nodes = await Promise.all(["a", "b", "c", "d", "e"].map((id) => node(id)));
    const epochs = await Promise.all(nodes.map((n) => n.acquire()));
    const winners = epochs.flatMap((e, i) => (e === undefined ? [] : [i]));
    expect(winners).toHaveLength(1);
    const w = winners[0];
    expect(epochs[w]).toBe(1);
    for (const [i, n] of nodes.entries()) {
      const holder = await n.current();
      expect(holder).toMatchObject({ nodeId: ["a", "b", "c", "d", "e"][w], apiAddr: `https://${["a", "b", "c", "d", "e"][w]}:8200`, clusterAddr: `https://${["a", "b", "c", "d", "e"][w]}:8201`, epoch: 1 });
      expect(holder?.acquiredAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(n.holds()).toBe(i === w);
    }
  });

  it("the holder renews and nobody else can take it while it is valid", async () => {
    const { node } = await cluster();
    const a = await node("a");
    const b = await node("b");
    expect(await a.acquire()).toBe(1);
    const until = performance.now() + 3 * a.lifetimeMs; // twice past the lifetime of the first acquisition
    let nextRenew = performance.now() + a.renewIntervalMs;
    while (performance.now() < until) {
      if (performance.now() >= nextRenew) {
        expect(await a.renew()).toBe(true);
        nextRenew += a.renewIntervalMs;
      }
      expect(await b.acquire()).toBeUndefined();
      await sleep(50);
    }
    expect(a.holds()).toBe(true);
    expect((await b.current())?.nodeId).toBe("a");
    expect((await b.current())?.epoch).toBe(1);
  });
});

describe("expiry and the fence", () => {
  it("a holder that stops renewing loses it to the other node with epoch + 1; its writes commit nothing, the new holder's do", async () => {
    const { node, fencedStore, stored } = await cluster();
    // A's own clock is frozen: it believes its lock is still good (a paused process, a clock
    // jump), so only PostgreSQL's side of the fence can stop it.
    const a = await node("a", { now: () => 0 });
    const b = await node("b");
    const e = await a.acquire();
    expect(e).toBe(1);
    expect(await b.acquire()).toBeUndefined(); // control: A's session is alive and the lock unexpired
    const aStore = await fencedStore(a, 1);
    await aStore.put("before", v("a1")); // positive control: the holder writes
    expect(await stored("before")).toBe("a1");

    await sleep(a.lifetimeMs + 200); // A "pauses" past the lifetime
    expect(await b.acquire()).toBe(2);
    expect(a.holds()).toBe(true); // A still thinks it holds it...

    const err = await fails(aStore.put("after", v("from-a")));
    expect(err).toBeInstanceOf(FencedError); // ...but PostgreSQL refuses its write
    expect(await fails(aStore.batch([{ key: "after2", value: v("from-a") }]))).toBeInstanceOf(FencedError);
    expect(await stored("after")).toBeUndefined();
    expect(await stored("after2")).toBeUndefined();
    expect(await a.renew()).toBe(false); // and its renewal reports the loss
    expect(a.holds()).toBe(false);

    const bStore = await fencedStore(b, 2);
    await bStore.put("after", v("from-b"));
    expect(await stored("after")).toBe("from-b");
    expect((await a.current())?.nodeId).toBe("b");
  });

  it("a node stops writing on its own clock before valid_until passes on PostgreSQL's", async () => {
    const { node, fencedStore, stored } = await cluster();
    const a = await node("a", { lifetimeMs: 2000, safetyMarginMs: 1000 });
    expect(await a.acquire()).toBe(1);
    const s = await fencedStore(a, 1);
    await s.put("k", v("1"));
    await sleep(1200); // past lifetime - margin, not past the lifetime
    expect((await a.current())?.nodeId).toBe("a"); // PostgreSQL still says A holds it
    expect(a.holds()).toBe(false);
    expect(await fails(s.put("k", v("2")))).toBeInstanceOf(FencedError);
    expect(await stored("k")).toBe("1");
  });

  it("a take-over waits for the old epoch's open write and terminates it when it hangs: it commits nothing", async () => {
    const { node, storage, stored } = await cluster();
    const a = await node("a", { lifetimeMs: 1000, now: () => 0 });
    const b = await node("b", { takeoverGraceMs: 300 });
    expect(await a.acquire()).toBe(1);
    // A passed the fence, wrote, and froze before COMMIT (SIGSTOP in mid-transaction).
    const tx = await openFencedTx(a, 1);
    await tx.query(`INSERT INTO ${storage.names.kv} (key, value) VALUES ('paused', 'x')`);
    expect(await a.renew()).toBe(true); // a newer row version: the writer's key-share lock carries over to it
    await sleep(a.lifetimeMs + 100);
    const t0 = performance.now();
    expect(await b.acquire()).toBe(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250); // it did wait for the writer
    expect(await fails(tx.query("COMMIT"))).toBeInstanceOf(Error); // A's session was terminated
    expect(await stored("paused")).toBeUndefined();
  });
});

describe("a dead holder session", () => {
  it("makes the lock takeable at once, before valid_until; the old epoch is fenced", async () => {
    const { node, fencedStore, storage, stored } = await cluster();
    const a = await node("a", { lifetimeMs: 30_000 });
    const b = await node("b", { lifetimeMs: 30_000 });
    expect(await a.acquire()).toBe(1);
    const aStore = await fencedStore(a, 1);
    await aStore.put("k", v("a"));
    expect(await b.acquire()).toBeUndefined(); // control: the holder's session is alive

    // The holder's process dies (kill -9): PostgreSQL ends its session; nothing else happens.
    const killed = await db.admin.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = (SELECT holder_session FROM ${storage.names.ha} WHERE lock_key = $1)`,
      [storage.names.prefix],
    );
    expect(killed.rows).toEqual([{ ok: true }]);
    await sleep(100);
    const t0 = performance.now();
    expect(await b.acquire()).toBe(2);
    expect(performance.now() - t0).toBeLessThan(1000); // not the 30 s lifetime
    expect(await fails(aStore.put("k", v("a-after")))).toBeInstanceOf(FencedError);
    expect(await stored("k")).toBe("a");
    expect(await a.renew()).toBe(false); // A, if alive, reconnects and learns it lost the lock
  });
});

describe("hand-over", () => {
  it("release lets another node acquire at once, after the holder's in-flight write committed", async () => {
    const { node, fencedStore, storage, stored } = await cluster();
    const a = await node("a", { lifetimeMs: 10_000 });
    const b = await node("b", { lifetimeMs: 10_000 });
    expect(await a.acquire()).toBe(1);
    expect(await b.acquire()).toBeUndefined(); // control: held, long lifetime
    const aStore = await fencedStore(a, 1);

    const tx = await openFencedTx(a, 1); // a write in flight during the step-down
    await tx.query(`INSERT INTO ${storage.names.kv} (key, value) VALUES ('inflight', 'x')`);
    let releaseDone = false;
    const released = a.release().finally(() => (releaseDone = true));
    await sleep(200);
    expect(releaseDone).toBe(false); // the release waits for the write in flight...
    await tx.query("COMMIT"); // ...which commits
    expect(await released).toBe(true);
    expect(await stored("inflight")).toBe("x");

    const t0 = performance.now();
    expect(await b.acquire()).toBe(2);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await fails(aStore.put("late", v("a")))).toBeInstanceOf(FencedError);
    expect(await stored("late")).toBeUndefined();
    expect(await a.release()).toBe(false); // not the holder any more
    expect((await a.current())?.nodeId).toBe("b");
  });
});

describe("PostgreSQL's clock is authoritative", () => {
  it("a node whose clock is far ahead or behind cannot take an unexpired lock", async () => {
    const { node } = await cluster();
    const a = await node("a", { lifetimeMs: 5000 });
    const ahead = await node("ahead", { now: () => performance.now() + 3_600_000 });
    const behind = await node("behind", { now: () => performance.now() - 3_600_000 });
    const realDateNow = Date.now;
    try {
      Date.now = () => realDateNow() + 3_600_000; // whatever the node's wall clock says
      expect(await a.acquire()).toBe(1);
      expect(await ahead.acquire()).toBeUndefined();
      expect(await behind.acquire()).toBeUndefined();
    } finally {
      Date.now = realDateNow;
    }
    expect(await a.release()).toBe(true);
    expect(await ahead.acquire()).toBe(2); // control: the skewed node can acquire a free lock
    expect(ahead.holds()).toBe(true);
  });
});

describe("renewal under write load", () => {
  it("is not blocked by open write transactions holding the fence (FOR KEY SHARE), where FOR SHARE would block it", async () => {
    const { node, storage } = await cluster();
    const a = await node("a", { lifetimeMs: 10_000 });
    expect(await a.acquire()).toBe(1);
    const writers = await Promise.all(Array.from({ length: 5 }, () => openFencedTx(a, 1)));
    for (const [i, w] of writers.entries()) await w.query(`INSERT INTO ${storage.names.kv} (key, value) VALUES ($1, 'x')`, [`w${i}`]);

    let t0 = performance.now();
    expect(await a.renew()).toBe(true);
    expect(performance.now() - t0).toBeLessThan(300);

    // Control: one transaction holding the row FOR SHARE does block the renewal until it ends.
    const sharer = await connect(db.url);
    cleanup.push(() => sharer.end());
    await sharer.query("BEGIN");
    await sharer.query(`SELECT 1 FROM ${storage.names.ha} WHERE lock_key = $1 FOR SHARE`, [storage.names.prefix]);
    t0 = performance.now();
    const renewal = a.renew();
    await sleep(700);
    await sharer.query("COMMIT");
    expect(await renewal).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(650);

    for (const w of writers) await w.query("COMMIT");
    const n = await db.admin.query(`SELECT count(*)::int AS n FROM ${storage.names.kv} WHERE key LIKE 'w%'`);
    expect(n.rows[0].n).toBe(5);
  });
});

describe("run()", () => {
  it("campaigns, renews, reports a loss when superseded and when its own deadline passes during a hung renewal", async () => {
    const { node, storage } = await cluster();
    const a = await node("a", { lifetimeMs: 1200 });
    const b = await node("b", { lifetimeMs: 1200 });
    const events: string[] = [];
    const runA = a.run({ onAcquired: (e) => void events.push(`a+${e}`), onLost: (r, e) => void events.push(`a-${e}:${r}`) });
    cleanup.push(() => runA.stop());
    await sleep(200);
    const runB = b.run({ onAcquired: (e) => void events.push(`b+${e}`), onLost: (r, e) => void events.push(`b-${e}:${r}`) });
    cleanup.push(() => runB.stop());
    await sleep(3 * 1200); // A keeps it by renewing, B campaigns in vain
    expect(events).toEqual(["a+1"]);

    // A's renewals stop reaching PostgreSQL in time (here: its row expires under it): B takes over
    // and A learns it at its next renewal.
    await db.admin.query(`UPDATE ${storage.names.ha} SET valid_until = clock_timestamp() - interval '1 second' WHERE lock_key = $1`, [storage.names.prefix]);
    await sleep(1200);
    expect(events.slice(0, 3).sort()).toEqual(["a+1", "a-1:superseded", "b+2"]);
    expect(a.holds()).toBe(false);

    // B's renewal hangs (a row lock held elsewhere): its own deadline reports the loss anyway.
    const sharer = await connect(db.url);
    cleanup.push(() => sharer.end());
    await sharer.query("BEGIN");
    await sharer.query(`SELECT 1 FROM ${storage.names.ha} WHERE lock_key = $1 FOR SHARE`, [storage.names.prefix]);
    await sleep(1200 + 300);
    expect(events).toContain("b-2:expired");
    expect(b.holds()).toBe(false);
    await sharer.query("ROLLBACK");
  });
  it("a release wakes a campaigning node at once (NOTIFY), long before its retry interval", async () => {
    const { node } = await cluster();
    const a = await node("a", { lifetimeMs: 10_000 });
    const b = await node("b", { lifetimeMs: 10_000, retryIntervalMs: 8_000 });
    expect(await a.acquire()).toBe(1);
    let acquiredAt = 0;
    const runB = b.run({ onAcquired: () => void (acquiredAt = performance.now()), onLost: () => undefined });
    cleanup.push(() => runB.stop());
    await sleep(500); // B tried once, found it held, and naps for 8 s; its LISTEN session is up
    const releasedAt = performance.now();
    expect(await a.release()).toBe(true);
    for (let i = 0; i < 40 && !acquiredAt; i++) await sleep(50);
    expect(acquiredAt, "B did not take the released lock within 2 s").toBeGreaterThan(0);
    expect(acquiredAt - releasedAt).toBeLessThan(1_000);
    expect(b.epoch).toBe(2);
  });
});
