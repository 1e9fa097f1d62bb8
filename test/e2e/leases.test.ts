import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinPlugins } from "../../plugins/index.js";
import { Core, type CoreRequest } from "../../src/core/core.js";
import type { PluginFactory } from "../../src/sdk/types.js";
import type { RunningServer } from "../../src/server/run.js";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

const RETRY = { baseMs: 50, capMs: 200, maxAttempts: 3 };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `fn` returns something truthy; fails with `what` after `timeoutMs`. */
async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 5_000, everyMs = 15): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A dev server with the test engine mounted at `tl/` (and more engines/mounts on demand). */
async function leaseServer(mounts: Record<string, string> = {}, extra: PluginFactory[] = [], revocationConcurrency?: number): Promise<{ server: RunningServer; base: string; control: LeasingEngineControl }> {
  const { plugin, control } = leasingEngine();
  const server = await startTestServer({ rootTokenId: "root", extraPlugins: [plugin, ...extra], leaseRetry: RETRY, leaseRevocationConcurrency: revocationConcurrency });
  const base = server.url;
  for (const [path, type] of Object.entries({ tl: "test-leases", ...mounts })) {
    const r = await call(base, "POST", `sys/mounts/${path}`, { token: "root", body: { type } });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
  }
  return { server, base, control };
}

const issue = (base: string, role: string, query = "ttl=2s&max_ttl=10s&renewable=true", token = "root", mount = "tl") =>
  call(base, "GET", `${mount}/creds/${role}${query ? `?${query}` : ""}`, { token });

async function issueOk(base: string, role: string, query?: string, token?: string, mount?: string): Promise<{ leaseId: string; username: string; duration: number; renewable: boolean }> {
  const r = await issue(base, role, query, token, mount);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { leaseId: r.body.lease_id, username: r.body.data.username, duration: r.body.lease_duration, renewable: r.body.renewable };
}

const lookup = (base: string, leaseId: string) => call(base, "PUT", "sys/leases/lookup", { token: "root", body: { lease_id: leaseId } });

/**
 * Waits for a revoked lease's row to go: the engine revokes the credential first and the row is
 * deleted after it, so right after the credential disappears the row can still be there (a
 * round trip on PostgreSQL with busy cores).
 */
const leaseGone = (base: string, leaseId: string) => waitFor(async () => (await lookup(base, leaseId)).status === 400, `lease ${leaseId} to be deleted after its credential`, 1_000);

/** Leases of one mount in the table (any state), via `sys/leases/count`. */
async function mountCount(base: string, mount = "tl/"): Promise<number> {
  const r = await call(base, "GET", "sys/leases/count", { token: "root" });
  expect(r.status).toBe(200);
  return (r.body.data.by_mount as Record<string, number>)[mount] ?? 0;
}

// ---------------------------------------------------------------------------------------------

describe("leases: envelope, lookup, persist-before-hand-out, renewal, prefixes and aliases", () => {
  let server: RunningServer;
  let base: string;
  let control: LeasingEngineControl;

  beforeAll(async () => {
    ({ server, base, control } = await leaseServer());
  });
  afterAll(async () => {
    await server.stop();
  });

  it("answers with a lease envelope and a Vault-shaped lookup", async () => {
    const before = Date.now();
    const r = await issue(base, "app");
    expect(r.status).toBe(200);
    expect(r.body.lease_id).toMatch(/^tl\/creds\/app\/[A-Za-z0-9]{16,}$/);
    expect(r.body.lease_duration).toBe(2);
    expect(r.body.renewable).toBe(true);
    expect(r.body.data.username).toMatch(/^u-app-\d+$/);
    expect(control.issued.has(r.body.data.username)).toBe(true);

    const l = await lookup(base, r.body.lease_id);
    expect(l.status).toBe(200);
    const d = l.body.data;
    expect(d.id).toBe(r.body.lease_id);
    expect(Object.keys(d)).toEqual(expect.arrayContaining(["id", "issue_time", "expire_time", "last_renewal", "renewable", "ttl"]));
    const issued = Date.parse(d.issue_time);
    expect(issued).toBeGreaterThanOrEqual(before - 5);
    expect(issued).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(d.expire_time) - issued).toBe(2_000);
    expect(d.last_renewal).toBeNull();
    expect(d.renewable).toBe(true);
    expect([1, 2]).toContain(d.ttl);
    expect(d.state).toBe("active");
    expect(d.revoke_attempts).toBe(0);
    expect(d.revoke_error).toBe("");
    // The credential handed out expires with the lease.
    expect(control.issued.get(r.body.data.username)).toBe(Date.parse(d.expire_time));
  });

  it("refuses to look up an unknown lease with a 400", async () => {
    const r = await lookup(base, "tl/creds/app/doesnotexist");
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body.errors)).toMatch(/invalid lease/);
    expect((await call(base, "PUT", "sys/leases/lookup", { token: "root", body: {} })).status).toBe(400);
  });

  it("the simple form: the core opens the lease for the handler", async () => {
    const r = await call(base, "GET", "tl/static/web", { token: "root" });
    expect(r.status).toBe(200);
    expect(r.body.lease_id).toMatch(/^tl\/static\/web\/[A-Za-z0-9]+$/);
    expect(r.body.lease_duration).toBe(60);
    expect(r.body.renewable).toBe(false);
    const l = await lookup(base, r.body.lease_id);
    expect(l.body.data.state).toBe("active");
    expect(l.body.data.renewable).toBe(false);
  });

  it("a lease opened with renewable=false is looked up as not renewable", async () => {
    const r = await issue(base, "fixed", "ttl=1h&renewable=false");
    expect(r.status).toBe(200);
    expect((await lookup(base, r.body.lease_id)).body.data.renewable).toBe(false);
  });

  // KNOWN BUG (src/core/core.ts, renderResponse call in handle()): for a lease the engine opened
  // itself (`resp.lease`), the envelope says `renewable: resp.secret?.renewable ?? true`, i.e. always
  // true. Remove `.fails` once the core takes `renewable` from the opened lease.
  it("a lease opened with renewable=false says renewable: false in the envelope", async () => {
    const r = await issue(base, "fixed", "ttl=1h&renewable=false");
    expect(r.status).toBe(200);
    expect(r.body.renewable).toBe(false);
  });

  it("persist before hand-out: a handler failing after opening its lease leaves no credential and no row", async () => {
    const n = await mountCount(base);
    const calls = control.revokeCalls;
    const issuedBefore = control.issued.size;
    const r = await issue(base, "broken", "ttl=1h&fail_after_open=true");
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.lease_id ?? "").toBe("");
    expect(control.revokeCalls).toBe(calls + 1); // the pending lease was revoked through the engine
    expect(control.issued.size).toBe(issuedBefore);
    expect(await mountCount(base)).toBe(n);
    expect((await call(base, "LIST", "sys/leases/lookup/tl/creds/broken/", { token: "root" })).status).toBe(404);
  });

  describe("renewal", () => {
    it("honours the increment, and the clock follows the new deadline", async () => {
      const { leaseId, username } = await issueOk(base, "renew");
      await sleep(500);
      const r = await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: leaseId, increment: "4s" } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.lease_id).toBe(leaseId);
      expect(r.body.lease_duration).toBe(4);
      expect(r.body.renewable).toBe(true);
      expect(r.body.warnings).toBeNull();
      const l = (await lookup(base, leaseId)).body.data;
      expect(l.last_renewal).not.toBeNull();
      const newExpiry = Date.parse(l.expire_time);
      expect(newExpiry - Date.parse(l.last_renewal)).toBe(4_000);
      expect(control.issued.get(username)).toBe(newExpiry); // the engine's renew ran first
      // Past the original 2 s deadline the lease and its credential are still there...
      await sleep(Math.max(0, Date.parse(l.issue_time) + 2_600 - Date.now()));
      expect((await lookup(base, leaseId)).status).toBe(200);
      expect(control.issued.has(username)).toBe(true);
      // ...and they go at the new one.
      await waitFor(() => !control.issued.has(username), "the renewed lease to be revoked", 5_000);
      expect(Date.now()).toBeGreaterThanOrEqual(newExpiry);
      expect(Date.now() - newExpiry).toBeLessThan(1_500);
      await leaseGone(base, leaseId);
    });

    it("caps the increment by max_ttl measured from issue time, with a warning", async () => {
      const { leaseId } = await issueOk(base, "capped", "ttl=2s&max_ttl=5s&renewable=true");
      await sleep(1_100);
      const r = await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: leaseId, increment: 60 } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect([3, 4]).toContain(r.body.lease_duration);
      expect(r.body.warnings).toHaveLength(1);
      expect(r.body.warnings[0]).toMatch(/max_ttl/);
      const l = (await lookup(base, leaseId)).body.data;
      expect(Date.parse(l.expire_time)).toBeLessThanOrEqual(Date.parse(l.issue_time) + 5_000);
      await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: leaseId } });
    });

    it("refuses leases that are not renewable, revoked, or whose engine refuses", async () => {
      const fixed = await issueOk(base, "fixed", "ttl=1h&renewable=false");
      const r1 = await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: fixed.leaseId } });
      expect(r1.status).toBe(400);
      expect(JSON.stringify(r1.body.errors)).toMatch(/not renewable/);

      const gone = await issueOk(base, "gone", "ttl=1h");
      expect((await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: gone.leaseId } })).status).toBe(204);
      expect((await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: gone.leaseId } })).status).toBe(400);

      const refused = await issueOk(base, "refused", "ttl=1h&max_ttl=2h");
      const before = (await lookup(base, refused.leaseId)).body.data;
      const credExpiry = control.issued.get(refused.username);
      const renewCalls = control.renewCalls;
      expect((await call(base, "POST", "tl/config", { token: "root", body: { fail_renew: true } })).status).toBe(204);
      try {
        const r = await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: refused.leaseId, increment: "90m" } });
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBe(500);
        expect(JSON.stringify(r.body.errors)).toMatch(/renewal refused by the external system/);
      } finally {
        await call(base, "POST", "tl/config", { token: "root", body: { fail_renew: false } });
      }
      expect(control.renewCalls).toBe(renewCalls + 1);
      const after = (await lookup(base, refused.leaseId)).body.data;
      expect(after.expire_time).toBe(before.expire_time);
      expect(after.last_renewal).toBeNull();
      expect(after.state).toBe("active");
      expect(control.issued.get(refused.username)).toBe(credExpiry);
    });
  });

  describe("revocation by id and prefix, aliases, listing, sudo", () => {
    it("revoke-prefix on a role revokes only that role (not app2, not db)", async () => {
      const app = [await issueOk(base, "app", "ttl=1h"), await issueOk(base, "app", "ttl=1h")];
      const app2 = await issueOk(base, "app2", "ttl=1h");
      const db = await issueOk(base, "db", "ttl=1h");
      const r = await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/app", { token: "root" });
      expect(r.status, JSON.stringify(r.body)).toBe(204);
      for (const a of app) {
        expect((await lookup(base, a.leaseId)).status).toBe(400);
        expect(control.issued.has(a.username)).toBe(false);
      }
      expect((await lookup(base, app2.leaseId)).status).toBe(200);
      expect(control.issued.has(app2.username)).toBe(true);
      expect((await lookup(base, db.leaseId)).status).toBe(200);
      expect(control.issued.has(db.username)).toBe(true);
      // A full lease id as the prefix names exactly that lease.
      expect((await call(base, "PUT", `sys/leases/revoke-prefix/${app2.leaseId}`, { token: "root" })).status).toBe(204);
      expect((await lookup(base, app2.leaseId)).status).toBe(400);
      expect(control.issued.has(app2.username)).toBe(false);
      expect((await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/db/", { token: "root" })).status).toBe(204);
      expect((await lookup(base, db.leaseId)).status).toBe(400);
    });

    it("legacy aliases: sys/renew, sys/revoke/<id>, sys/revoke-prefix/<prefix>", async () => {
      const a = await issueOk(base, "legacy", "ttl=1h&max_ttl=2h");
      const renewed = await call(base, "PUT", "sys/renew", { token: "root", body: { lease_id: a.leaseId, increment: 120 } });
      expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
      expect(renewed.body.lease_duration).toBe(120);
      const renewedByPath = await call(base, "PUT", `sys/leases/renew/${a.leaseId}`, { token: "root", body: { increment: 130 } });
      expect(renewedByPath.status).toBe(200);
      expect(renewedByPath.body.lease_duration).toBe(130);
      expect((await call(base, "PUT", `sys/revoke/${a.leaseId}`, { token: "root" })).status).toBe(204);
      expect((await lookup(base, a.leaseId)).status).toBe(400);
      expect(control.issued.has(a.username)).toBe(false);
      // Revoking an unknown lease is a success, as in Vault.
      expect((await call(base, "PUT", `sys/revoke/${a.leaseId}`, { token: "root" })).status).toBe(204);

      const b = [await issueOk(base, "legacy2", "ttl=1h"), await issueOk(base, "legacy2", "ttl=1h")];
      expect((await call(base, "PUT", "sys/revoke-prefix/tl/creds/legacy2", { token: "root" })).status).toBe(204);
      for (const l of b) expect(control.issued.has(l.username)).toBe(false);
    });

    it("sync=false answers 202 and the lease is revoked shortly after", async () => {
      const a = await issueOk(base, "later", "ttl=1h");
      const r = await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: a.leaseId, sync: false } });
      expect(r.status).toBe(202);
      await waitFor(() => !control.issued.has(a.username), "the queued revocation", 1_000);
      await leaseGone(base, a.leaseId);

      const b = await issueOk(base, "later2", "ttl=1h");
      const p = await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/later2", { token: "root", body: { sync: false } });
      expect(p.status).toBe(202);
      await waitFor(() => !control.issued.has(b.username), "the queued prefix revocation", 1_000);
    });

    it("LIST sys/leases/lookup walks the lease tree", async () => {
      const a1 = await issueOk(base, "list-a", "ttl=1h");
      const a2 = await issueOk(base, "list-a", "ttl=1h");
      await issueOk(base, "list-b", "ttl=1h");
      const roles = await call(base, "LIST", "sys/leases/lookup/tl/creds/", { token: "root" });
      expect(roles.status).toBe(200);
      expect(roles.body.data.keys).toEqual(expect.arrayContaining(["list-a/", "list-b/"]));
      expect((roles.body.data.keys as string[]).every((k) => k.endsWith("/"))).toBe(true);
      const leases = await call(base, "LIST", "sys/leases/lookup/tl/creds/list-a/", { token: "root" });
      expect(leases.status).toBe(200);
      expect([...leases.body.data.keys].sort()).toEqual([a1.leaseId, a2.leaseId].map((id) => id.slice("tl/creds/list-a/".length)).sort());
      // Without the trailing slash too (GET ?list=true).
      const q = await call(base, "GET", "sys/leases/lookup/tl/creds/list-a?list=true", { token: "root" });
      expect(q.status).toBe(200);
      expect(q.body.data.keys).toHaveLength(2);
      const top = await call(base, "LIST", "sys/leases/lookup/tl/", { token: "root" });
      expect(top.body.data.keys).toEqual(expect.arrayContaining(["creds/"]));
      expect((await call(base, "LIST", "sys/leases/lookup/tl/creds/nothing-here/", { token: "root" })).status).toBe(404);
      await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/list-a", { token: "root" });
      await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/list-b", { token: "root" });
    });

    it("revoke-prefix, revoke-force and lookup listing need sudo", async () => {
      const pol = (name: string, caps: string[]) =>
        call(base, "PUT", `sys/policies/acl/${name}`, { token: "root", body: { policy: `path "sys/leases/*" { capabilities = ${JSON.stringify(caps)} }` } });
      expect((await pol("lease-ops", ["update", "list"])).status).toBe(204);
      expect((await pol("lease-ops-sudo", ["update", "list", "sudo"])).status).toBe(204);
      const tok = async (policy: string) => (await call(base, "POST", "auth/token/create", { token: "root", body: { policies: [policy], ttl: "10m" } })).body.auth.client_token as string;
      const plain = await tok("lease-ops");
      const sudo = await tok("lease-ops-sudo");

      const a = await issueOk(base, "sudo", "ttl=1h");
      expect((await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/sudo", { token: plain })).status).toBe(403);
      expect((await call(base, "PUT", "sys/leases/revoke-force/tl/creds/sudo", { token: plain })).status).toBe(403);
      expect((await call(base, "LIST", "sys/leases/lookup/tl/creds/", { token: plain })).status).toBe(403);
      expect(control.issued.has(a.username)).toBe(true);
      // Without sudo, a single lease may still be looked up, renewed and revoked.
      expect((await call(base, "PUT", "sys/leases/lookup", { token: plain, body: { lease_id: a.leaseId } })).status).toBe(200);
      expect((await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/sudo", { token: sudo })).status).toBe(204);
      expect(control.issued.has(a.username)).toBe(false);
      const b = await issueOk(base, "sudo", "ttl=1h");
      expect((await call(base, "PUT", "sys/leases/revoke", { token: plain, body: { lease_id: b.leaseId } })).status).toBe(204);
      expect(control.issued.has(b.username)).toBe(false);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: failed revocations are retried, then irrevocable, never lost", () => {
  let server: RunningServer;
  let base: string;
  let control: LeasingEngineControl;

  beforeAll(async () => {
    ({ server, base, control } = await leaseServer());
  });
  afterAll(async () => {
    await server.stop();
  });

  it("retries an expiring lease with backoff, then marks it irrevocable and reports it everywhere", async () => {
    const a = await issueOk(base, "irr", "ttl=1s");
    const b = await issueOk(base, "irr", "ttl=1s");
    const expiry = Date.parse((await lookup(base, a.leaseId)).body.data.expire_time);
    // Slow failures so every intermediate state is observable.
    expect((await call(base, "POST", "tl/config", { token: "root", body: { fail_revoke: true, revoke_delay_ms: 80 } })).status).toBe(204);
    const calls = control.revokeCalls;
    const seen: { attempts: number; state: string; error: string; at: number }[] = [];
    await waitFor(
      async () => {
        const d = (await lookup(base, a.leaseId)).body.data;
        seen.push({ attempts: d.revoke_attempts, state: d.state, error: d.revoke_error, at: Date.now() });
        return d.state === "irrevocable";
      },
      "the lease to become irrevocable",
      5_000,
      10,
    );
    await waitFor(async () => (await lookup(base, b.leaseId)).body.data.state === "irrevocable", "the second lease to become irrevocable");
    // Nothing happened before the deadline, attempts grew one by one, the error is kept.
    expect(seen.filter((s) => s.at < expiry).every((s) => s.state === "active" && s.attempts === 0)).toBe(true);
    const attempts = [...new Set(seen.map((s) => s.attempts))];
    expect(attempts).toEqual([0, 1, 2, 3]);
    for (const s of seen.filter((x) => x.attempts === 1 || x.attempts === 2)) {
      expect(s.state).toBe("revoking");
      expect(s.error).toBe("external system unreachable");
    }
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ attempts: 3, state: "irrevocable", error: "external system unreachable" });
    const firstRetry = seen.find((s) => s.attempts === 1)!.at;
    expect(last.at - firstRetry).toBeGreaterThanOrEqual(RETRY.baseMs / 2); // at least one backoff in between
    expect(control.revokeCalls - calls).toBe(6); // 3 attempts x 2 leases
    // Irrevocable means the clock leaves it alone.
    await sleep(400);
    expect(control.revokeCalls - calls).toBe(6);
    const lk = (await lookup(base, a.leaseId)).body.data;
    expect(lk.renewable).toBe(false);
    expect((await call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: a.leaseId } })).status).toBe(400);

    const list = await call(base, "GET", "sys/leases?type=irrevocable", { token: "root" });
    expect(list.status).toBe(200);
    expect(list.body.data.lease_count).toBe(2);
    const entry = (list.body.data.leases as { lease_id: string; error: string; mount_id: string; expire_time: string }[]).find((l) => l.lease_id === a.leaseId);
    expect(entry).toBeDefined();
    expect(entry!.error).toBe("external system unreachable");
    expect(entry!.mount_id).toMatch(/^test-leases_/);
    expect(entry!.expire_time).toBe(new Date(expiry).toISOString());
    const count = await call(base, "GET", "sys/leases/count?type=irrevocable", { token: "root" });
    expect(count.body.data.lease_count).toBe(2);
    expect(count.body.data.by_state.irrevocable).toBe(2);
    const metrics = await fetch(`${base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": "root" } });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/leasehold_leases\{mount="tl\/",state="irrevocable"\} 2/);
    expect(text).toMatch(/leasehold_leases_became_irrevocable_total\{mount="tl\/"\} 2/);

    // The operator fixes the system and retries one...
    expect((await call(base, "POST", "tl/config", { token: "root", body: { fail_revoke: false, revoke_delay_ms: 0 } })).status).toBe(204);
    expect(control.issued.has(a.username)).toBe(true);
    expect((await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: a.leaseId } })).status).toBe(204);
    expect(control.issued.has(a.username)).toBe(false);
    expect((await lookup(base, a.leaseId)).status).toBe(400);
    // ...and gives up on the other: force removes the record, with a warning.
    expect((await call(base, "POST", "tl/config", { token: "root", body: { fail_revoke: true } })).status).toBe(204);
    const forced = await call(base, "PUT", "sys/leases/revoke-force/tl/", { token: "root" });
    expect(forced.status, JSON.stringify(forced.body)).toBe(200);
    expect(forced.body.warnings).toHaveLength(1);
    expect(forced.body.warnings[0]).toContain(b.leaseId);
    expect((await lookup(base, b.leaseId)).status).toBe(400);
    expect(control.issued.has(b.username)).toBe(true); // force: the record goes, the engine failed
    expect((await call(base, "GET", "sys/leases/count?type=irrevocable", { token: "root" })).body.data.lease_count).toBe(0);
    expect((await call(base, "POST", "tl/config", { token: "root", body: { fail_revoke: false } })).status).toBe(204);
  });

  it("revoke-prefix while the engine fails answers 500 naming the count, and loses nothing", async () => {
    const leases = [await issueOk(base, "pfx", "ttl=1h"), await issueOk(base, "pfx", "ttl=1h"), await issueOk(base, "pfx", "ttl=1h")];
    await issueOk(base, "other", "ttl=1h");
    // The synchronous attempt of each lease fails, the retries succeed: however late the answer
    // arrives (a busy machine, a slower store), no retry can use up the attempts meanwhile.
    const callsBefore = control.revokeCalls;
    for (const l of leases) control.failRevokeOnce.add(l.username);
    const r = await call(base, "PUT", "sys/leases/revoke-prefix/tl/creds/pfx", { token: "root" });
    expect(r.status).toBe(500);
    const msg = JSON.stringify(r.body.errors);
    expect(msg).toMatch(/3 of 3 leases under tl\/creds\/pfx/);
    expect(msg).toMatch(/external system unreachable/);
    for (const l of leases) {
      const row = await server.core.leases.get(l.leaseId);
      // Never gone while its credential lives (a quick retry may already have revoked both).
      if (control.issued.has(l.username)) expect(row, "the row must survive a failed revocation").toBeDefined();
    }
    expect(control.failRevokeOnce.size).toBe(0);
    // The retries now succeed on their own.
    await waitFor(() => leases.every((l) => !control.issued.has(l.username)), "retried revocations", 2_000);
    expect(control.revokeCalls - callsBefore).toBe(6); // 3 failed, 3 retried
    for (const l of leases) await leaseGone(base, l.leaseId);
    expect(await mountCount(base)).toBe(1); // only role "other"
  });

  it("a failed synchronous revoke of one lease is a 500 and the lease stays for retry", async () => {
    const a = await issueOk(base, "one", "ttl=1h");
    control.failRevokeOnce.add(a.username); // the synchronous attempt fails, the retry succeeds
    const r = await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: a.leaseId } });
    expect(r.status).toBe(500);
    const row = await server.core.leases.get(a.leaseId);
    if (control.issued.has(a.username)) {
      // Not retried yet (a quick retry may already have revoked both credential and row).
      expect(row?.state).toBe("revoking");
      expect(row?.revoke_attempts).toBe(1);
    }
    expect(control.failRevokeOnce.size).toBe(0);
    await waitFor(() => !control.issued.has(a.username), "the retry", 2_000);
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: token trees", () => {
  let server: RunningServer;
  let base: string;
  let control: LeasingEngineControl;

  const createToken = async (token: string, body: Record<string, unknown>, path = "auth/token/create") => {
    const r = await call(base, "POST", path, { token, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.auth as { client_token: string; accessor: string };
  };

  beforeAll(async () => {
    ({ server, base, control } = await leaseServer());
    const p = await call(base, "PUT", "sys/policies/acl/lessee", {
      token: "root",
      body: { policy: 'path "tl/creds/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }' },
    });
    expect(p.status).toBe(204);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("revoking a parent token revokes its child and the child's leases", async () => {
    const parent = await createToken("root", { policies: ["lessee"], ttl: "1h" });
    const child = await createToken(parent.client_token, { policies: ["lessee"], ttl: "1h" });
    const bystander = await createToken("root", { policies: ["lessee"], ttl: "1h" });
    const parentLease = await issueOk(base, "tree", "ttl=1h", parent.client_token);
    const childLeases = [await issueOk(base, "tree", "ttl=1h", child.client_token), await issueOk(base, "tree", "ttl=1h", child.client_token)];
    const other = await issueOk(base, "tree", "ttl=1h", bystander.client_token);
    const calls = control.revokeCalls;

    const r = await call(base, "POST", "auth/token/revoke", { token: "root", body: { token: parent.client_token } });
    expect(r.status).toBe(204);
    expect(control.revokeCalls - calls).toBe(3);
    for (const l of [parentLease, ...childLeases]) {
      expect(control.issued.has(l.username)).toBe(false);
      expect((await lookup(base, l.leaseId)).status).toBe(400);
    }
    expect((await call(base, "GET", "auth/token/lookup-self", { token: child.client_token })).status).toBe(403);
    expect(control.issued.has(other.username)).toBe(true);
    expect((await lookup(base, other.leaseId)).status).toBe(200);
    // The tokens' own leases are gone too.
    const tokenLeases = await call(base, "LIST", "sys/leases/lookup/auth/token/create/", { token: "root" });
    expect(tokenLeases.status).toBe(200);
    expect(tokenLeases.body.data.keys).toHaveLength(1); // the bystander's
  });

  it("a token expiring takes its leases with it, whatever their own TTL", async () => {
    const t = await createToken("root", { policies: ["lessee"], ttl: "2s" });
    const tokenExpiry = Date.parse((await call(base, "GET", "auth/token/lookup-self", { token: t.client_token })).body.data.expire_time);
    const l = await issueOk(base, "short-token", "ttl=1h", t.client_token);
    expect(l.duration).toBe(3600);
    await sleep(Math.max(0, tokenExpiry - Date.now() - 300));
    expect(control.issued.has(l.username)).toBe(true); // not before the token's deadline
    // Nobody touches the token: its own lease fires on the clock.
    await waitFor(() => !control.issued.has(l.username), "the token's expiry to revoke its lease", 3_000);
    expect(Date.now()).toBeGreaterThanOrEqual(tokenExpiry);
    expect(Date.now() - tokenExpiry).toBeLessThan(1_500);
    await leaseGone(base, l.leaseId);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: t.client_token })).status).toBe(403);
  });

  it("revoke-prefix auth/token/create revokes every token created there (and only there)", async () => {
    const made = [await createToken("root", { policies: ["lessee"] }), await createToken("root", { policies: ["lessee"], ttl: "1h" })];
    const leases = [await issueOk(base, "pfx-token", "ttl=1h", made[0].client_token), await issueOk(base, "pfx-token", "ttl=1h", made[1].client_token)];
    const orphan = await createToken("root", { policies: ["lessee"], ttl: "1h" }, "auth/token/create-orphan");
    const r = await call(base, "PUT", "sys/leases/revoke-prefix/auth/token/create", { token: "root" });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    for (const t of made) expect((await call(base, "GET", "auth/token/lookup-self", { token: t.client_token })).status).toBe(403);
    for (const l of leases) expect(control.issued.has(l.username)).toBe(false);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: orphan.client_token })).status).toBe(200);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: "root" })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: disabling a mount revokes its leases first", () => {
  it("keeps the mount (and its leases) while revocation fails, disables it once it succeeds", async () => {
    const { server, base, control } = await leaseServer();
    try {
      const leases = [await issueOk(base, "m", "ttl=1h"), await issueOk(base, "m", "ttl=1h")];
      control.failRevoke = true;
      const r = await call(base, "DELETE", "sys/mounts/tl", { token: "root" });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(JSON.stringify(r.body.errors)).toMatch(/2 of 2 leases under tl\//);
      const mounts = await call(base, "GET", "sys/mounts", { token: "root" });
      expect(mounts.body.data["tl/"]).toBeDefined();
      expect(await mountCount(base)).toBe(2);
      for (const l of leases) expect(control.issued.has(l.username)).toBe(true);
      // Still usable meanwhile.
      expect((await issue(base, "m", "ttl=1h")).status).toBe(200);

      control.failRevoke = false;
      const ok = await call(base, "DELETE", "sys/mounts/tl", { token: "root" });
      expect(ok.status, JSON.stringify(ok.body)).toBe(204);
      expect((await call(base, "GET", "sys/mounts", { token: "root" })).body.data["tl/"]).toBeUndefined();
      expect(control.issued.size).toBe(0);
      expect(await mountCount(base)).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: per-mount revocation concurrency", () => {
  it("a slow engine on one mount does not delay expiry on another", async () => {
    const second = leasingEngine("test-leases-2");
    const { server, base, control } = await leaseServer({ tl2: "test-leases-2" }, [second.plugin], 8);
    try {
      expect((await call(base, "POST", "tl/config", { token: "root", body: { revoke_delay_ms: 300 } })).status).toBe(204);
      const slow = await Promise.all(Array.from({ length: 40 }, () => issueOk(base, "slow", "ttl=1s")));
      const fast = await Promise.all(Array.from({ length: 5 }, () => issueOk(base, "fast", "ttl=1s", "root", "tl2")));
      const fastExpiry = Math.max(...fast.map((f) => second.control.issued.get(f.username)!));
      const slowExpiry = Math.max(...slow.map((s) => control.issued.get(s.username)!));
      await waitFor(() => second.control.issued.size === 0, "tl2's leases to be revoked", 3_000, 5);
      const fastDone = Date.now();
      expect(fastDone - fastExpiry).toBeLessThan(250);
      expect(control.issued.size).toBeGreaterThan(0); // tl/ is still busy with its slow revocations
      await waitFor(() => control.issued.size === 0, "tl's leases to be revoked", 5_000);
      // 40 leases, 8 at once (this server's limit), 300 ms each: five rounds.
      expect(Date.now() - slowExpiry).toBeGreaterThanOrEqual(1_200);
    } finally {
      await server.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: expiry at scale", () => {
  it("revokes 2000 leases on time: none early, all within ~2 s after expiry", async () => {
    const { server, control } = await leaseServer();
    try {
      const core = server.core;
      const N = 2_000;
      const t0 = Date.now();
      const leases: { leaseId: string; username: string }[] = [];
      for (let i = 0; i < N; i += 200) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(200, N - i) }, () =>
            // 6 s: issuing 2000 must end before the first expiry; on PostgreSQL with busy cores it took 2-3 s.
            core.handle({ op: "read", path: "tl/creds/bulk", data: { ttl: "6s" }, token: "root", connection: { remoteAddress: "127.0.0.1" } }),
          ),
        );
        for (const r of batch) {
          expect(r.status).toBe(200);
          leases.push({ leaseId: String(r.body!.lease_id), username: String((r.body!.data as { username: string }).username) });
        }
      }
      const issueMs = Date.now() - t0;
      const expiry = new Map(leases.map((l) => [l.username, control.issued.get(l.username)!]));
      const firstExpiry = Math.min(...expiry.values());
      const lastExpiry = Math.max(...expiry.values());
      expect(await mountCount(server.url)).toBe(N);

      // Watch the "external system": when did each credential disappear, relative to its expiry?
      const goneAt = new Map<string, number>();
      const watch = setInterval(() => {
        const now = Date.now();
        for (const u of expiry.keys()) if (!goneAt.has(u) && !control.issued.has(u)) goneAt.set(u, now);
      }, 5);
      try {
        await sleep(Math.max(0, firstExpiry - Date.now() - 100));
        const now = Date.now();
        const missing = [...expiry].filter(([u, exp]) => exp > now && !control.issued.has(u));
        expect(missing, "nothing is revoked before its expiry").toEqual([]);
        if (now < firstExpiry) expect(control.issued.size).toBe(N);
        await waitFor(() => goneAt.size === N, `${N} leases to be revoked`, 10_000, 10);
      } finally {
        clearInterval(watch);
      }
      const allGone = Math.max(...goneAt.values());
      const early = [...goneAt].filter(([u, at]) => at < expiry.get(u)!);
      expect(early, "credentials revoked before their expiry").toEqual([]);
      const lag = allGone - lastExpiry;
      const worst = Math.max(...[...goneAt].map(([u, at]) => at - expiry.get(u)!));
      // eslint-disable-next-line no-console -- the measurement is part of the report
      console.log(`[leases] issued ${N} in ${issueMs} ms; expiries spread over ${lastExpiry - firstExpiry} ms; all revoked ${lag} ms after the last expiry; worst single lease ${worst} ms late (5 ms sampling)`);
      expect(lag).toBeLessThan(2_000);
      // The row goes just after its credential (revoked first, then deleted): give the last deletes a moment.
      await waitFor(async () => (await mountCount(server.url)) === 0, "the last lease rows to be deleted", 2_000);
      expect(control.issued.size).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("leases: restart and crash recovery (file-backed)", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-leases-"));
  const { plugin, control } = leasingEngine();
  let keyHex = "";

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A Core over `file`: initialised on first use, unsealed; mounts `tl/` on a fresh store. */
  async function boot(file: string): Promise<{ core: Core; physical: SqliteStorage }> {
    const physical = new SqliteStorage({ path: join(dir, file) });
    const core = new Core({ physical, plugins: [...builtinPlugins, plugin], logger: pino({ level: "silent" }), defaultLeaseTtl: 3600, maxLeaseTtl: 86_400, leaseRetry: RETRY });
    const fresh = !(await core.seal.isInitialized());
    if (fresh) {
      const { keys } = await core.initialize(1, 1, "root");
      keyHex = keys[0].toString("hex");
    }
    await core.submitUnsealKey(keyHex);
    if (fresh) await core.mounts.enable("secrets", "tl/", { type: "test-leases" });
    return { core, physical };
  }

  const req = (op: CoreRequest["op"], path: string, data: Record<string, unknown> = {}): CoreRequest => ({ op, path, data, token: "root", connection: { remoteAddress: "127.0.0.1" } });

  /** A crash: the process stops using the Core. Only its timers are stopped (a dead process has none); nothing is written. */
  async function crash(c: { core: Core; physical: SqliteStorage }): Promise<void> {
    await c.core.leases.stop();
    await c.physical.close();
  }

  it("a restart keeps every lease and its deadline, and revokes them on time", async () => {
    let c = await boot("restart.db");
    const issued: { id: string; username: string; expire: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.core.handle(req("read", "tl/creds/keep", { ttl: "3s" }));
      const id = String(r.body!.lease_id);
      const lk = await c.core.handle(req("write", "sys/leases/lookup", { lease_id: id }));
      issued.push({ id, username: String((r.body!.data as { username: string }).username), expire: String((lk.body!.data as { expire_time: string }).expire_time) });
    }
    await c.core.shutdown();
    c = await boot("restart.db");
    try {
      const list = await c.core.handle(req("list", "sys/leases/lookup/tl/creds/keep/"));
      expect((list.body!.data as { keys: string[] }).keys).toHaveLength(5);
      for (const l of issued) {
        const lk = await c.core.handle(req("write", "sys/leases/lookup", { lease_id: l.id }));
        expect((lk.body!.data as { expire_time: string }).expire_time).toBe(l.expire);
        expect((lk.body!.data as { state: string }).state).toBe("active");
      }
      const expiry = Math.max(...issued.map((l) => Date.parse(l.expire)));
      const firstExpiry = Math.min(...issued.map((l) => Date.parse(l.expire)));
      await sleep(Math.max(0, firstExpiry - Date.now() - 150));
      expect(issued.every((l) => control.issued.has(l.username))).toBe(true);
      await waitFor(() => issued.every((l) => !control.issued.has(l.username)), "the restored leases to expire", 4_000);
      expect(Date.now() - expiry).toBeLessThan(1_000);
      expect((await c.core.leases.store.stats()).byMount["tl/"] ?? 0).toBe(0);
    } finally {
      await c.core.shutdown();
    }
  });

  it("after a crash, leases are kept, a pending one is revoked at start-up, an interrupted revocation is retried", async () => {
    let c = await boot("crash.db");
    const kept = await c.core.handle(req("read", "tl/creds/kept", { ttl: "1h" }));
    const keptUser = String((kept.body!.data as { username: string }).username);
    // A request that died between persisting its lease and answering: the credential exists, the row is pending.
    const pending = await c.core.leases.open("tl/", "tl/creds/crashed", { type: "creds", ttl: 3600, renewable: true, internal: { username: "u-crashed" }, role: "crashed" }, null);
    control.issued.set("u-crashed", pending.expireTime.getTime());
    // A revocation that died half-way: state revoking, retry due shortly.
    const half = await c.core.handle(req("read", "tl/creds/half", { ttl: "1h" }));
    const halfId = String(half.body!.lease_id);
    const halfUser = String((half.body!.data as { username: string }).username);
    await c.core.leases.store.update(halfId, { state: "revoking", revoke_attempts: 1, revoke_error: "connection reset", due_at: Date.now() + 200 });
    await crash(c);

    const calls = control.revokeCalls;
    c = await boot("crash.db");
    try {
      // Start-up reconciliation ran before unseal returned.
      expect(control.issued.has("u-crashed")).toBe(false);
      expect(control.revokeCalls).toBeGreaterThanOrEqual(calls + 1);
      expect(await c.core.leases.get(pending.id)).toBeUndefined();
      expect(await c.core.leases.store.count({ state: "pending" })).toBe(0);
      // The interrupted revocation is picked up by the clock.
      await waitFor(() => !control.issued.has(halfUser), "the interrupted revocation to be retried", 2_000);
      expect(await c.core.leases.get(halfId)).toBeUndefined();
      // The active lease survives with its credential.
      expect(control.issued.has(keptUser)).toBe(true);
      const lk = await c.core.handle(req("write", "sys/leases/lookup", { lease_id: String(kept.body!.lease_id) }));
      expect((lk.body!.data as { state: string }).state).toBe("active");
    } finally {
      await c.core.shutdown();
    }
  });
});
