/**
 * End to end: two `leasehold server` processes with `ha_enabled = true` on one PostgreSQL (the
 * embedded test server), each unsealing itself with the same static seal key, with
 * `disable_clustering = true`: no request forwarding, so the standby redirects (307) to the active
 * (Vault's behaviour without clustering; the fallback when forwarding fails). kill -9,
 * sys/step-down and SIGTERM of the active hand the lock over to the standby, which serves the data
 * and leases written before.
 *
 * Forwarding: ha-forwarding.test.ts; three nodes, SIGSTOP/SIGCONT, PostgreSQL restarts: ha-chaos.test.ts.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, freePort, type TestDatabase } from "../database/helpers.js";
import { killCliProcesses, spawnCli, waitForHealth, type CliProcess } from "../helpers/cli-process.js";
import { LeaseholdClient } from "../../src/client/client.js";
import { call } from "../helpers/server.js";

const START_TIMEOUT_MS = 45_000;
/** The lock's lifetime in these tests: a kill -9 is noticed at once (its session ends), a pause after this. */
const LOCK_LIFETIME = "2s";

let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "leasehold-e2e-ha-"));
const keyFile = join(dir, "seal.key");

interface Node {
  name: string;
  port: number;
  base: string;
  config: string;
  child?: CliProcess;
}

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "ha");
  writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
});

afterAll(async () => {
  await killCliProcesses();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function node(name: string): Promise<Node> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const config = join(dir, `${name}.hcl`);
  writeFileSync(
    config,
    `storage "postgresql" {\n  connection_url   = "${db.url}"\n  ha_enabled       = "true"\n  ha_lock_lifetime = "${LOCK_LIFETIME}"\n}\n\n` +
      `listener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n\n` +
      `seal "static" {\n  key_file = "${keyFile}"\n}\n\napi_addr     = "${base}"\ncluster_addr = "https://127.0.0.1:${port + 1}"\ndisable_clustering = true\nlog_level    = "warn"\n`,
  );
  return { name, port, base, config };
}

async function start(n: Node): Promise<number> {
  n.child = spawnCli(["server", `-config=${n.config}`]);
  return (await waitForHealth(n.base, n.child, START_TIMEOUT_MS)).status;
}

/** sys/health's status, or 0 when the node does not answer. */
async function health(n: Node): Promise<number> {
  try {
    return (await call(n.base, "GET", "sys/health")).status;
  } catch {
    return 0;
  }
}

/** Polls until `n` is active (sys/health 200); returns the ms it took from `since`. */
async function activeWithin(n: Node, since: number, timeoutMs: number): Promise<number> {
  for (;;) {
    if ((await health(n)) === 200) return Date.now() - since;
    if (Date.now() - since > timeoutMs) throw new Error(`${n.name} not active within ${timeoutMs} ms:\nstderr: ${n.child?.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function leader(n: Node) {
  const r = await call(n.base, "GET", "sys/leader");
  expect(r.status).toBe(200);
  return r.body as { ha_enabled: boolean; is_self: boolean; active_time: string; leader_address: string; leader_cluster_address: string; performance_standby: boolean };
}

/** A gauge's value from the node's Prometheus metrics (an active node serves them). */
async function metric(n: Node, name: string, token = rootToken): Promise<number | undefined> {
  const text = await fetch(`${n.base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": token } }).then((r) => r.text());
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

let rootToken = "";

describe("two nodes on one PostgreSQL, ha_enabled", () => {
  let a: Node;
  let b: Node;
  let root = "";
  let leaseId = "";
  const secret = `ha-${randomBytes(6).toString("hex")}`;
  const measured: Record<string, number> = {};

  it("exactly one is active; sys/leader agrees on both; the standby redirects to the active", { timeout: 120_000 }, async () => {
    a = await node("a");
    b = await node("b");
    expect(await start(a)).toBe(501); // not initialised yet
    const init = await call(a.base, "PUT", "sys/init", { body: { recovery_shares: 1, recovery_threshold: 1 } });
    expect(init.status, JSON.stringify(init.body)).toBe(200);
    root = init.body.root_token;
    rootToken = root;
    await activeWithin(a, Date.now(), 10_000);
    expect(await start(b)).toBe(429);

    // Status: 200 vs 429; standbyok makes the standby 200 (readiness probes), standbycode is honoured.
    const ha = await call(a.base, "GET", "sys/health");
    const hb = await call(b.base, "GET", "sys/health");
    expect([ha.status, hb.status]).toEqual([200, 429]);
    expect(ha.body).toMatchObject({ initialized: true, sealed: false, standby: false });
    expect(hb.body).toMatchObject({ initialized: true, sealed: false, standby: true });
    expect((await call(b.base, "GET", "sys/health?standbyok=true")).status).toBe(200);
    expect((await call(b.base, "GET", "sys/health?standbycode=472")).status).toBe(472);
    expect((await call(b.base, "GET", "sys/seal-status")).body).toMatchObject({ sealed: false, type: "static" });

    const la = await leader(a);
    const lb = await leader(b);
    expect(la).toMatchObject({ ha_enabled: true, is_self: true, leader_address: a.base, leader_cluster_address: `https://127.0.0.1:${a.port + 1}`, performance_standby: false });
    expect(lb).toMatchObject({ ha_enabled: true, is_self: false, leader_address: a.base, leader_cluster_address: `https://127.0.0.1:${a.port + 1}`, active_time: "0001-01-01T00:00:00Z" });
    expect(Date.parse(la.active_time)).toBeGreaterThan(Date.now() - 120_000);
    expect(await metric(a, "leasehold_core_active")).toBe(1);

    // Through the active: a KV secret and a leased certificate.
    expect((await call(a.base, "POST", "sys/mounts/secret", { token: root, body: { type: "kv", options: { version: "2" } } })).status).toBe(204);
    expect((await call(a.base, "POST", "secret/data/app", { token: root, body: { data: { password: secret } } })).status).toBe(200);
    expect((await call(a.base, "GET", "secret/data/app", { token: root })).body.data.data).toEqual({ password: secret });
    expect((await call(a.base, "POST", "sys/mounts/pki", { token: root, body: { type: "pki" } })).status).toBe(204);
    expect((await call(a.base, "POST", "pki/root/generate/internal", { token: root, body: { common_name: "ha.example", ttl: "24h" } })).status).toBe(200);
    expect((await call(a.base, "POST", "pki/roles/web", { token: root, body: { allowed_domains: "example.com", allow_subdomains: true, max_ttl: "1h", generate_lease: true } })).status).toBeLessThan(300);
    const cert = await call(a.base, "POST", "pki/issue/web", { token: root, body: { common_name: "app.example.com", ttl: "30m" } });
    expect(cert.status, JSON.stringify(cert.body)).toBe(200);
    leaseId = cert.body.lease_id;
    expect(leaseId).toMatch(/^pki\/issue\/web\//);

    // The standby: 307 to the same path and query on the active's api_addr, without reading anything.
    const res = await fetch(`${b.base}/v1/secret/data/app?version=1`, { headers: { "X-Vault-Token": root }, redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe(`${a.base}/v1/secret/data/app?version=1`);
    await res.arrayBuffer();
    // A write keeps its method and body through the redirect (fetch follows 307 with both).
    const followed = await fetch(`${b.base}/v1/secret/data/app`, { method: "POST", headers: { "X-Vault-Token": root, "Content-Type": "application/json" }, body: JSON.stringify({ data: { password: secret, via: "standby" } }) });
    expect(followed.status).toBe(200);
    expect(followed.url).toBe(`${a.base}/v1/secret/data/app`);
    expect((await call(a.base, "GET", "secret/data/app", { token: root })).body.data.data).toEqual({ password: secret, via: "standby" });
    // Unauthenticated or not, a standby serves nothing itself (a bad token is redirected too, not refused).
    const anon = await fetch(`${b.base}/v1/sys/mounts`, { redirect: "manual" });
    expect(anon.status).toBe(307);
    await anon.arrayBuffer();
    // The client library (and so the CLI and the agent) follows the standby's redirect, as Vault's client does.
    const client = new LeaseholdClient({ address: b.base, token: root });
    try {
      expect((await client.read<{ data: { via: string } }>("secret/data/app"))?.data?.data.via).toBe("standby");
      expect(await client.write("secret/data/client", { data: { through: "standby" } })).toBeDefined();
      expect((await call(a.base, "GET", "secret/data/client", { token: root })).body.data.data).toEqual({ through: "standby" });
    } finally {
      client.close();
    }
  });

  it("kill -9 of the active: the standby is active within seconds, with the data and the lease", { timeout: 60_000 }, async () => {
    const killedAt = Date.now();
    a.child!.proc.kill("SIGKILL");
    expect((await a.child!.exited).signal).toBe("SIGKILL");
    measured.kill9 = await activeWithin(b, killedAt, 10_000);
    expect(measured.kill9).toBeLessThan(5_000);
    expect((await leader(b)).is_self).toBe(true);
    expect(await metric(b, "leasehold_core_active")).toBe(1);
    expect((await call(b.base, "GET", "secret/data/app", { token: root })).body.data.data).toEqual({ password: secret, via: "standby" });
    const lookup = await call(b.base, "PUT", "sys/leases/lookup", { token: root, body: { lease_id: leaseId } });
    expect(lookup.status, JSON.stringify(lookup.body)).toBe(200);
    expect(lookup.body.data.id).toBe(leaseId);
    expect(lookup.body.data.ttl).toBeGreaterThan(0);
    // New writes through the new active.
    expect((await call(b.base, "POST", "secret/data/after", { token: root, body: { data: { n: "1" } } })).status).toBe(200);

    // The old node comes back as a standby pointing at the new active.
    expect(await start(a)).toBe(429);
    expect(await leader(a)).toMatchObject({ is_self: false, leader_address: b.base });
    const res = await fetch(`${a.base}/v1/secret/data/after`, { headers: { "X-Vault-Token": root }, redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe(`${b.base}/v1/secret/data/after`);
    await res.arrayBuffer();
  });

  it("sys/step-down hands over; it needs a root (sudo) token", { timeout: 60_000 }, async () => {
    // A token without sudo is refused and nothing changes.
    const plain = await call(b.base, "POST", "auth/token/create", { token: root, body: { policies: ["default"], ttl: "10m" } });
    expect(plain.status).toBe(200);
    expect((await call(b.base, "PUT", "sys/step-down", { token: plain.body.auth.client_token })).status).toBe(403);
    expect(await health(b)).toBe(200);

    const asked = Date.now();
    expect((await call(b.base, "PUT", "sys/step-down", { token: root })).status).toBe(204);
    measured.stepDown = await activeWithin(a, asked, 10_000);
    expect(measured.stepDown).toBeLessThan(2_000);
    expect(await health(b)).toBe(429);
    expect(await leader(b)).toMatchObject({ is_self: false, leader_address: a.base });
    expect((await call(a.base, "GET", "secret/data/after", { token: root })).body.data.data).toEqual({ n: "1" });
  });

  it("SIGTERM of the active releases the lock before exit: the standby takes over at once", { timeout: 60_000 }, async () => {
    // b campaigns again once its step-down pause (the lock lifetime) is over.
    await new Promise((r) => setTimeout(r, 2_500));
    const termAt = Date.now();
    a.child!.proc.kill("SIGTERM");
    measured.sigterm = await activeWithin(b, termAt, 10_000);
    expect(await a.child!.exited).toEqual({ code: 0, signal: null });
    expect(measured.sigterm).toBeLessThan(2_000);
    expect((await call(b.base, "GET", "secret/data/app", { token: root })).body.data.data).toEqual({ password: secret, via: "standby" });
    const lookup = await call(b.base, "PUT", "sys/leases/lookup", { token: root, body: { lease_id: leaseId } });
    expect(lookup.status).toBe(200);
    // eslint-disable-next-line no-console -- the failover times are part of the report
    console.log(`HA failover (ms): ${JSON.stringify(measured)}`);
  });

  it("with no node active, a standby answers 503 with 'standby' (clients fail over)", { timeout: 60_000 }, async () => {
    // a is stopped; b steps down and campaigns again only after its pause: nobody is active meanwhile.
    expect((await call(b.base, "PUT", "sys/step-down", { token: root })).status).toBe(204);
    const r = await call(b.base, "GET", "secret/data/app", { token: root });
    expect(r.status).toBe(503);
    expect(r.body.errors[0]).toMatch(/standby/);
    // And it takes the free lock back by itself after the pause.
    await activeWithin(b, Date.now(), 10_000);
    expect((await call(b.base, "GET", "secret/data/app", { token: root })).status).toBe(200);
  });
});
