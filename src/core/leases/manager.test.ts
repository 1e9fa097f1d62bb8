import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Backend } from "../../sdk/types.js";
import { SqliteStorage } from "../../storage/sqlite.js";
import type { LeaseStore } from "../../storage/types.js";
import { open as openSealed, seal as sealWith } from "../barrier.js";
import { ExpirationManager, type ExpirationManagerOptions } from "./manager.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fake external system per mount: credentials that exist, how long a revocation takes. */
interface FakeMount {
  live: Set<string>;
  revokeMs: number;
  revokeCalls: number;
  /** Runs at the start of each revoke (to look at the lease's row while the engine works). */
  onRevoke?: (leaseId: string) => Promise<void>;
}

function fakeBackend(m: FakeMount): Backend {
  return {
    paths: [],
    secretTypes: {
      creds: {
        revoke: async (lease) => {
          m.revokeCalls++;
          await m.onRevoke?.(lease.id);
          if (m.revokeMs) await sleep(m.revokeMs);
          m.live.delete(String(lease.internal.username));
        },
      },
    },
  };
}

/**
 * Counts the calls of each LeaseStore method on a real store (instrumentation, not a fake), and
 * can make the next call of a method fail as a lost database connection would, without running it.
 */
function countingStore(inner: LeaseStore) {
  const calls: Record<string, number> = {};
  const failNext = new Set<string>();
  const store = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        calls[prop] = (calls[prop] ?? 0) + 1;
        if (failNext.delete(prop)) return Promise.reject(new Error(`injected: connection lost during ${prop}`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const sum = (names: string[]) => names.reduce((n, k) => n + (calls[k] ?? 0), 0);
  return {
    store,
    failNext,
    reset: () => Object.keys(calls).forEach((k) => delete calls[k]),
    calls: () => ({ ...calls }),
    /** Write round trips (each one transaction: under HA, BEGIN + fence + statement + COMMIT). */
    writes: () => sum(["insert", "update", "delete", "updateMany", "deleteMany", "rewriteCreators"]),
    /** Point reads of lease rows. */
    reads: () => sum(["get", "getMany"]),
  };
}

/** An ExpirationManager over an in-memory SQLite lease table, with a counting `due()` query. */
function harness(mounts: Record<string, FakeMount>, opts: Partial<ExpirationManagerOptions> = {}, wrap: (s: LeaseStore) => LeaseStore = (s) => s) {
  const physical = new SqliteStorage({ path: ":memory:" });
  let dueQueries = 0;
  const inner = wrap(physical.leases);
  const store: LeaseStore = Object.assign(Object.create(inner) as LeaseStore, {
    due: (until: number, limit: number) => {
      dueQueries++;
      return inner.due(until, limit);
    },
  });
  const backends = new Map(Object.entries(mounts).map(([k, v]) => [k, fakeBackend(v)]));
  const manager = new ExpirationManager({
    store,
    cipher: { encrypt: (_p, b) => b, decrypt: (_p, b) => b },
    indexKeys: (() => {
      const keys = new Map<string, Buffer>();
      return { get: async (k: string) => keys.get(k), put: async (k: string, v: Buffer) => void keys.set(k, v) };
    })(),
    logger: pino({ level: "silent" }),
    backendOf: (m) => backends.get(m),
    revokeToken: async () => undefined,
    ttlsOf: () => ({ defaultLeaseTtl: 3600, maxLeaseTtl: 86_400 }),
    retry: { baseMs: 50, capMs: 200, maxAttempts: 3 },
    ...opts,
  });
  return { manager, physical, dueQueries: () => dueQueries };
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup) await c();
  cleanup = [];
});

async function issue(manager: ExpirationManager, mount: string, role: string, m: FakeMount, n: number, ttl = 1): Promise<number> {
  let expiry = 0;
  for (let i = 0; i < n; i++) {
    const username = `${mount}${role}-${m.live.size}-${i}`;
    const l = await manager.open(mount, `${mount}creds/${role}`, { type: "creds", ttl, renewable: true, internal: { username }, role }, null);
    await manager.activate(l.id, mount);
    m.live.add(username);
    expiry = Math.max(expiry, l.expireTime.getTime());
  }
  return expiry;
}

describe("ExpirationManager window", () => {
  it("revokes more leases than the in-memory window holds, on time", async () => {
    const m: FakeMount = { live: new Set(), revokeMs: 0, revokeCalls: 0 };
    const { manager, physical } = harness({ "a/": m }, { windowSize: 10 });
    cleanup.push(async () => { await manager.stop(); await physical.close(); });
    await manager.start();
    const expiry = await issue(manager, "a/", "r", m, 100);
    await sleep(Math.max(0, expiry - Date.now() - 100));
    expect(m.live.size).toBe(100);
    const deadline = Date.now() + 3_000;
    while (m.live.size && Date.now() < deadline) await sleep(10);
    expect(m.live.size).toBe(0);
    expect(Date.now() - expiry).toBeLessThan(1_000);
    expect(m.revokeCalls).toBe(100);
  });

  /** 24 due leases on a slow mount (2 at a time, 150 ms each: 1.8 s of work), 3 on a fast one 50 ms later. */
  async function slowAndFast() {
    const slow: FakeMount = { live: new Set(), revokeMs: 150, revokeCalls: 0 };
    const fast: FakeMount = { live: new Set(), revokeMs: 0, revokeCalls: 0 };
    const h = harness({ "slow/": slow, "fast/": fast }, { windowSize: 10, perMountConcurrency: 2 });
    cleanup.push(async () => { await h.manager.stop(); await h.physical.close(); });
    // Issued before start(), so the window is filled from the table (as after a restart, or a refill
    // on a busy server): it holds slow/ deadlines only, and fast/ is beyond its horizon.
    await issue(h.manager, "slow/", "r", slow, 24);
    await sleep(50);
    const fastExpiry = await issue(h.manager, "fast/", "r", fast, 3);
    await h.manager.start();
    return { ...h, slow, fast, fastExpiry };
  }

  it("does not spin on leases already queued for a revocation slot", async () => {
    const { manager, dueQueries, slow } = await slowAndFast();
    const before = dueQueries();
    await sleep(1_500);
    expect(slow.live.size).toBeGreaterThan(0); // still busy
    expect(dueQueries() - before).toBeLessThan(50);
    expect(manager.queueDepth).toBeGreaterThan(0);
  });

  // KNOWN BUG (manager.ts, tick/arm "refill when the burst drains"): the window is refilled only once
  // every expiry it dispatched has finished, so while a slow mount works through a full window of
  // due leases, another mount's leases outside the window wait (here ~0.75 s, one window's worth; with windowSize 2000,
  // 8 slots and a 10 s connect timeout, ~40 minutes). Remove `.fails` once fixed.
  it("a slow mount with more due leases than the window does not starve another mount", async () => {
    const { fast, slow, fastExpiry } = await slowAndFast();
    const deadline = fastExpiry + 1_500;
    while (fast.live.size && Date.now() < deadline) await sleep(5);
    expect(fast.live.size, "fast/ leases still alive 1.5 s after expiry").toBe(0);
    expect(Date.now() - fastExpiry).toBeLessThan(300);
    expect(slow.live.size).toBeGreaterThan(0);
  });
});

describe("creator fields at rest", () => {
  /** A legacy row as an older version wrote it: accessor, display name and metadata in clear. */
  const legacy = (key: Buffer, id: string, accessor: string, metadata: Record<string, string>) => ({
    id, kind: "secret" as const, mount: "a/", path: id.slice(0, id.lastIndexOf("/")), role: "r", secret_type: "creds",
    internal: sealWith(key, 1, `lease/${id}`, Buffer.from(JSON.stringify({ username: id }))), issue_time: Date.now(), expire_time: Date.now() + 3_600_000, max_expire_time: Date.now() + 3_600_000,
    last_renewal: null, renewable: 1 as const, token_accessor: accessor, auth_mount: "auth/userpass/", display_name: `userpass-${metadata.username ?? ""}`,
    metadata: JSON.stringify(metadata), entity_id: "", state: "active" as const, revoke_attempts: 0, revoke_error: null, due_at: Date.now() + 3_600_000,
  });

  it("converts rows stored in clear at start, leaving no clear copy in the file, and selectors still find them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "leasehold-creator-"));
    const path = join(dir, "l.db");
    const physical = new SqliteStorage({ path });
    const key = randomBytes(32);
    const keys = new Map<string, Buffer>();
    const m: FakeMount = { live: new Set(), revokeMs: 0, revokeCalls: 0 };
    const manager = new ExpirationManager({
      store: physical.leases,
      // AES-GCM as the barrier does it, so the file shows what a real store holds.
      cipher: { encrypt: (p, b) => sealWith(key, 1, p, b), decrypt: (p, b) => openSealed(key, p, b) },
      indexKeys: { get: async (k) => keys.get(k), put: async (k, v) => void keys.set(k, v) },
      logger: pino({ level: "silent" }),
      backendOf: () => fakeBackend(m),
      revokeToken: async () => undefined,
      ttlsOf: () => ({ defaultLeaseTtl: 3600, maxLeaseTtl: 86_400 }),
    });
    cleanup.push(async () => { await manager.stop(); await physical.close(); rmSync(dir, { recursive: true, force: true }); });
    const accessor = `acc${randomBytes(8).toString("hex")}`;
    const other = `acc${randomBytes(8).toString("hex")}`;
    const user = `alice${randomBytes(6).toString("hex")}`;
    await physical.leases.insert(legacy(key, "a/creds/r/one", accessor, { username: user, host: "h1" }));
    await physical.leases.insert(legacy(key, "a/creds/r/two", accessor, { username: user, host: "h2" }));
    await physical.leases.insert(legacy(key, "a/creds/r/three", other, { username: "bob", host: "h1" }));
    for (const id of ["one", "two", "three"]) m.live.add(`a/creds/r/${id}`);
    physical.db.pragma("wal_checkpoint(TRUNCATE)");
    const bytes = () => [path, `${path}-wal`].filter(existsSync).map((p) => readFileSync(p));
    // The attack this closes: the clear values were in the file.
    expect(bytes().some((b) => b.includes(accessor) && b.includes(user))).toBe(true);

    await manager.start();
    for (const b of bytes()) {
      expect(b.includes(accessor)).toBe(false);
      expect(b.includes(user)).toBe(false);
    }
    expect(await physical.leases.legacyCreators(10)).toEqual([]);
    // Shown in clear through the manager's view.
    const row = await manager.store.get("a/creds/r/one");
    expect(row?.token_accessor).toBe(accessor);
    expect(row?.display_name).toBe(`userpass-${user}`);
    expect(JSON.parse(row!.metadata)).toEqual({ username: user, host: "h1" });
    // Selectors match on HMACs.
    expect(await manager.store.select({ tokenAccessor: accessor }, "", 10)).toEqual(["a/creds/r/one", "a/creds/r/two"]);
    expect(await manager.store.select({ metadata: { host: "h1" } }, "", 10)).toEqual(["a/creds/r/one", "a/creds/r/three"]);
    expect(await manager.store.select({ metadata: { host: "h1", username: user } }, "", 10)).toEqual(["a/creds/r/one"]);
    expect(await manager.store.count({ displayName: `userpass-${user}` })).toBe(2);
    expect(await manager.store.count({ metadata: { host: "h" } })).toBe(0);
    // A new lease is written sealed from the start.
    const l = await manager.open("a/", "a/creds/r", { type: "creds", ttl: 60, renewable: true, internal: { username: "new" }, role: "r" }, {
      tokenAccessor: accessor, authMount: "auth/userpass/", displayName: `userpass-${user}`, metadata: { username: user, host: "h3" }, entityId: "",
    });
    const raw = await physical.leases.get(l.id);
    expect(raw?.token_accessor).not.toContain(accessor);
    expect(raw?.metadata).not.toContain(user);
    expect(raw?.creator).toBeInstanceOf(Buffer);
    // Revoking the token's leases finds all three (two converted, one new).
    await manager.revokeByToken(accessor);
    expect(await manager.store.count({ mount: "a/" })).toBe(1);
    expect(await manager.store.select({ mount: "a/" }, "", 10)).toEqual(["a/creds/r/three"]);
    expect([...m.live]).toEqual(["a/creds/r/three"]);
  });
});

describe("store round trips of revocation (group commit)", () => {
  /** Lease counters that remember every report. */
  function recordingCounts() {
    const removed: string[] = [];
    return { removed, hooks: { admit: () => undefined, removed: (id: string) => void removed.push(id) } };
  }

  /** `n` leases of `a/` issued before start() and all due by now, as after a restart or a refill. */
  async function burst(n: number, opts: Partial<ExpirationManagerOptions> = {}) {
    const m: FakeMount = { live: new Set(), revokeMs: 0, revokeCalls: 0 };
    let counting!: ReturnType<typeof countingStore>;
    const counts = recordingCounts();
    const h = harness({ "a/": m }, { counts: counts.hooks, windowSize: 5_000, ...opts }, (s) => (counting = countingStore(s)).store);
    cleanup.push(async () => { await h.manager.stop(); await h.physical.close(); });
    const expiry = await issue(h.manager, "a/", "r", m, n);
    const ids = (await h.physical.leases.select({ mount: "a/" }, "", n + 1)).sort();
    expect(ids).toHaveLength(n);
    await sleep(Math.max(0, expiry - Date.now() + 20));
    counting.reset();
    return { ...h, m, counting, counts, ids };
  }

  async function revokedAll(h: { m: FakeMount; physical: SqliteStorage }, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    while ((h.m.live.size || (await h.physical.leases.count({}))) && Date.now() < deadline) await sleep(10);
    expect(h.m.live.size).toBe(0);
    expect(await h.physical.leases.count({})).toBe(0);
  }

  it("revokes a burst of expiries in a few batched writes, claiming each lease before its engine revoke and deleting it after", async () => {
    const n = 1_500;
    const h = await burst(n);
    // What the engine sees: every lease is claimed (revoking, with a retry deadline a minute out)
    // when its revoke starts, and its row is still there.
    const wrong: string[] = [];
    h.m.onRevoke = async (id) => {
      const row = await h.physical.leases.get(id);
      if (!row || row.state !== "revoking" || row.due_at === null || row.due_at < Date.now() + 50_000) wrong.push(`${id}: ${JSON.stringify(row && { state: row.state, due_at: row.due_at })}`);
    };
    await h.manager.start();
    await revokedAll(h);
    expect(wrong).toEqual([]);
    expect(h.m.revokeCalls).toBe(n);
    // Without batching this is 2n writes (a claim and a delete per lease) and n reads.
    const calls = h.counting.calls();
    expect(h.counting.writes(), JSON.stringify(calls)).toBeLessThanOrEqual(n / 50);
    expect(h.counting.reads(), JSON.stringify(calls)).toBeLessThanOrEqual(n / 100);
    expect(calls.update ?? 0).toBe(0);
    expect(calls.delete ?? 0).toBe(0);
    // The counters heard about each removed row exactly once.
    expect([...h.counts.removed].sort()).toEqual(h.ids);
  });

  it("costs a lone revocation one read, one claim and one delete, as before batching", async () => {
    const h = await burst(1, { revocationEnabled: false });
    await h.manager.start();
    h.counting.reset();
    const outcome = await h.manager.revoke(h.ids[0]);
    expect(outcome).toEqual({ id: h.ids[0], ok: true });
    expect(h.counting.calls()).toEqual({ getMany: 1, updateMany: 1, deleteMany: 1 });
    expect(h.m.live.size).toBe(0);
    expect(h.counts.removed).toEqual(h.ids);
  });

  it("batches the writes of an operator's bulk revocation too", async () => {
    const h = await burst(600, { revocationEnabled: false });
    await h.manager.start();
    h.counting.reset();
    const result = await h.manager.revokeMatching({ mount: "a/" });
    expect(result).toMatchObject({ matched: 600, revoked: 600, failed: [] });
    expect(h.counting.writes(), JSON.stringify(h.counting.calls())).toBeLessThanOrEqual(20);
    expect([...h.counts.removed].sort()).toEqual(h.ids);
    expect(await h.physical.leases.count({})).toBe(0);
  });

  it("loses no lease when a batched claim or delete fails: its leases are retried, revoked once more, and counted once", async () => {
    const n = 400;
    let failedRevocations = 0;
    const h = await burst(n, { events: { revokeFailed: () => void failedRevocations++ } });
    // The first claim batch fails as a dropped connection would: nothing of it is written, so its
    // leases stay active and due, as after a failed single claim, for the next refill of the window.
    h.counting.failNext.add("updateMany");
    await h.manager.start();
    await sleep(300);
    expect(h.counting.calls().updateMany).toBe(1);
    expect(h.m.revokeCalls).toBe(0);
    expect(await h.physical.leases.count({ state: "active" })).toBe(n);
    expect((await h.physical.leases.due(Date.now(), n + 1)).length).toBe(n);

    // Next, the first delete batch fails: a failed delete is a failed revocation (retried after a
    // backoff; the engine's revoke runs again, it is idempotent).
    h.counting.failNext.add("deleteMany");
    await h.manager.refill();
    await revokedAll(h);
    expect(failedRevocations).toBeGreaterThan(0);
    expect(h.m.revokeCalls).toBe(n + failedRevocations);
    expect(h.counting.calls().deleteMany).toBeGreaterThanOrEqual(2);
    expect([...h.counts.removed].sort()).toEqual(h.ids);
  });
});
