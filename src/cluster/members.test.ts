/**
 * The HA member registry on a real PostgreSQL: heartbeats upsert one row per node, times come from
 * PostgreSQL's clock, rows not heard from within the expiry are left out and pruned, clusters that
 * share the ha_table see only their own members. Also the lock's bookkeeping the HA metrics read:
 * why each acquisition happened, and the time since the last renewal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, rand, sleep, type TestDatabase } from "../../test/database/helpers.js";
import { PostgresStorage } from "../storage/postgres.js";
import { HaLock } from "./lock.js";
import { MemberRegistry, type MemberInfo } from "./members.js";

let db: TestDatabase;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "hamembers");
});
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.().catch(() => undefined);
});
afterAll(async () => {
  await db?.drop();
});

/** A cluster of its own (its own kv table, hence its own key in the shared HA tables). */
async function cluster() {
  const storage = await PostgresStorage.open({ connectionUrl: db.url, table: `m_${rand()}` });
  cleanup.push(() => storage.close());
  const lock = async (id: string, lifetimeMs = 1500) => {
    const l = await HaLock.open({ connectionUrl: db.url, names: storage.names, nodeId: id, apiAddr: `http://${id}:8200`, clusterAddr: `https://${id}:8201`, lifetimeMs });
    cleanup.push(() => l.close());
    return l;
  };
  const registry = async (opts: { expiryMs?: number; now?: () => number } = {}) => {
    const l = await lock(`reader-${rand()}`);
    return new MemberRegistry({ pool: l.pool, names: storage.names, expiryMs: opts.expiryMs ?? 60_000, now: opts.now });
  };
  return { storage, lock, registry };
}

const info = (id: string): MemberInfo => ({ nodeId: id, hostname: `host-${id}`, apiAddr: `http://${id}:8200`, clusterAddr: `https://${id}:8201`, version: "0.1.0" });

describe("member registry", () => {
  it("a heartbeat upserts the node's row; started_at stays, last_echo moves, by PostgreSQL's clock", async () => {
    const { registry } = await cluster();
    const r = await registry();
    await r.heartbeat(info("a"));
    const [first] = await r.list();
    expect(first).toMatchObject({ nodeId: "a", hostname: "host-a", apiAddr: "http://a:8200", clusterAddr: "https://a:8201", version: "0.1.0" });
    expect(Math.abs(first.lastEcho.getTime() - Date.now())).toBeLessThan(5_000); // same machine: PostgreSQL's clock is ours
    expect(first.startedAt.getTime()).toBe(first.lastEcho.getTime());
    await sleep(30);
    await r.heartbeat({ ...info("a"), apiAddr: "http://a2:8200" });
    const [second] = await r.list();
    expect(second.startedAt.getTime()).toBe(first.startedAt.getTime());
    expect(second.lastEcho.getTime()).toBeGreaterThanOrEqual(first.lastEcho.getTime() + 25);
    expect(second.apiAddr).toBe("http://a2:8200");
    expect(await r.list()).toHaveLength(1);
  });

  it("lists every live node by api_addr; leave removes one at once", async () => {
    const { registry } = await cluster();
    const r = await registry();
    for (const id of ["c", "a", "b"]) await r.heartbeat(info(id));
    expect((await r.list()).map((m) => m.nodeId)).toEqual(["a", "b", "c"]);
    await r.leave("b");
    expect((await r.list()).map((m) => m.nodeId)).toEqual(["a", "c"]);
    await r.leave("b"); // idempotent
  });

  it("a node not heard from within the expiry is left out, then pruned; live ones stay", async () => {
    const { registry, storage } = await cluster();
    const r = await registry({ expiryMs: 400 });
    await r.heartbeat(info("dead"));
    await r.heartbeat(info("alive"));
    expect(await r.list()).toHaveLength(2);
    await sleep(250);
    await r.heartbeat(info("alive"));
    await sleep(250);
    // "dead" was last heard 500 ms ago, "alive" 250 ms ago.
    expect((await r.list()).map((m) => m.nodeId)).toEqual(["alive"]);
    const stored = async () => (await db.admin.query(`SELECT node_id FROM ${storage.names.haMembers} WHERE lock_key = $1 ORDER BY node_id`, [storage.names.prefix])).rows.map((x) => x.node_id);
    expect(await stored()).toEqual(["alive", "dead"]); // left out, still stored
    expect(await r.prune()).toBe(1);
    expect(await stored()).toEqual(["alive"]);
    expect(await r.prune()).toBe(0);
  });

  it("clusters sharing the ha_table see only their own members, and prune only their own", async () => {
    const one = await cluster();
    const two = await cluster();
    expect(one.storage.names.haMembers).toBe(two.storage.names.haMembers);
    const r1 = await one.registry({ expiryMs: 200 });
    const r2 = await two.registry();
    await r1.heartbeat(info("x"));
    await r2.heartbeat(info("x"));
    await r2.heartbeat(info("y"));
    expect((await r1.list()).map((m) => m.nodeId)).toEqual(["x"]);
    expect((await r2.list()).map((m) => m.nodeId)).toEqual(["x", "y"]);
    await sleep(300);
    expect(await r1.prune()).toBe(1);
    expect((await r2.list()).map((m) => m.nodeId)).toEqual(["x", "y"]);
  });

  it("measures the node's clock skew against PostgreSQL and the heartbeat's round trip, reported at the next heartbeat", async () => {
    const { registry } = await cluster();
    const ahead = await registry({ now: () => Date.now() + 5_000 });
    const exact = await registry();
    await ahead.heartbeat(info("ahead"));
    await exact.heartbeat(info("exact"));
    expect((await ahead.list()).every((m) => m.clockSkewMs === 0)).toBe(true); // nothing measured yet
    await ahead.heartbeat(info("ahead"));
    await exact.heartbeat(info("exact"));
    const [a, e] = await ahead.list();
    expect(a.nodeId).toBe("ahead");
    expect(a.clockSkewMs).toBeGreaterThan(4_500);
    expect(a.clockSkewMs).toBeLessThan(5_500);
    expect(Math.abs(e.clockSkewMs)).toBeLessThan(500);
    expect(e.echoDurationMs).toBeGreaterThanOrEqual(0);
    expect(e.echoDurationMs).toBeLessThan(2_000);
  });
});

describe("the lock's bookkeeping for the HA metrics", () => {
  it("records why each acquisition happened: free, holder_gone (killed session), expired, free again after a release", async () => {
    const { lock, storage } = await cluster();
    const a = await lock("a", 1500);
    const e1 = await a.acquire();
    expect(a.lastAcquisition).toEqual({ epoch: e1, reason: "free" });

    // a's lock session dies (a killed process): b takes over before expiry.
    await a.close();
    const b = await lock("b", 1500);
    const e2 = await b.acquire();
    expect(e2).toBe(e1! + 1);
    expect(b.lastAcquisition).toEqual({ epoch: e2, reason: "holder_gone" });

    // b's row expires by PostgreSQL's clock while its session lives on (a paused node).
    await db.admin.query(`UPDATE ${storage.names.ha} SET valid_until = clock_timestamp() - interval '1 second' WHERE lock_key = $1`, [storage.names.prefix]);
    const c = await lock("c", 1500);
    const e3 = await c.acquire();
    expect(c.lastAcquisition).toEqual({ epoch: e3, reason: "expired" });

    // A clean hand-over leaves the lock free.
    expect(await c.release()).toBe(true);
    const d = await lock("d", 1500);
    const e4 = await d.acquire();
    expect(d.lastAcquisition).toEqual({ epoch: e4, reason: "free" });
  });

  it("the seconds since the last renewal grow between renewals, drop after one, and are undefined without the lock", async () => {
    const { lock } = await cluster();
    const a = await lock("a", 3000);
    expect(a.secondsSinceRenewal()).toBeUndefined();
    await a.acquire();
    await sleep(300);
    const before = a.secondsSinceRenewal()!;
    expect(before).toBeGreaterThanOrEqual(0.29);
    expect(before).toBeLessThan(2);
    expect(await a.renew()).toBe(true);
    expect(a.secondsSinceRenewal()!).toBeLessThan(before);
    await a.release();
    expect(a.secondsSinceRenewal()).toBeUndefined();
  });

  it("run() reports a renewal that finds the lock lost", async () => {
    const { lock, storage } = await cluster();
    const a = await lock("a", 1500);
    const failures: string[] = [];
    let lost = false;
    const run = a.run({ onLost: () => void (lost = true), onRenewalFailed: (why) => failures.push(why) });
    cleanup.push(() => run.stop());
    for (let i = 0; i < 50 && a.epoch === undefined; i++) await sleep(20);
    expect(a.epoch).toBeDefined();
    // Another epoch in the row: the next renewal finds the lock lost.
    await db.admin.query(`UPDATE ${storage.names.ha} SET epoch = epoch + 10 WHERE lock_key = $1`, [storage.names.prefix]);
    for (let i = 0; i < 100 && !lost; i++) await sleep(20);
    expect(lost).toBe(true);
    expect(failures[0]).toBe("lost");
  });
});
