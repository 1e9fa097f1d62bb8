import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Backend } from "../../sdk/types.js";
import { SqliteStorage } from "../../storage/sqlite.js";
import type { LeaseStore } from "../../storage/types.js";
import { ExpirationManager, type ExpirationManagerOptions } from "./manager.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fake external system per mount: credentials that exist, how long a revocation takes. */
interface FakeMount {
  live: Set<string>;
  revokeMs: number;
  revokeCalls: number;
}

function fakeBackend(m: FakeMount): Backend {
  return {
    paths: [],
    secretTypes: {
      creds: {
        revoke: async (lease) => {
          m.revokeCalls++;
          if (m.revokeMs) await sleep(m.revokeMs);
          m.live.delete(String(lease.internal.username));
        },
      },
    },
  };
}

/** An ExpirationManager over an in-memory SQLite lease table, with a counting `due()` query. */
function harness(mounts: Record<string, FakeMount>, opts: Partial<ExpirationManagerOptions> = {}) {
  const physical = new SqliteStorage({ path: ":memory:" });
  let dueQueries = 0;
  const inner = physical.leases;
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
