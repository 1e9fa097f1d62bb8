/**
 * End to end: three `leasehold server` processes with `ha_enabled` on one PostgreSQL. Every
 * unsealed node heartbeats its row in the member registry; sys/ha-status (served by the active,
 * reached through any node) lists them all with exactly one active node; `leasehold operator
 * members` and `leasehold status` print them as `vault` does; the HA metrics show on the active.
 * A SIGKILLed node stays listed until the expiry (3 lock lifetimes: 6 s here), then drops out and
 * its row is pruned; a SIGTERMed node removes its row at once.
 */
import { mkdtempSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../database/helpers.js";
import { createHaCluster, type HaCluster, type HaClusterNode } from "../helpers/ha-cluster.js";
import { call, startTestServer } from "../helpers/server.js";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";

/** The lock lifetime of these nodes; a member not heard from for 3 of them drops out. */
const LIFETIME_MS = 2_000;
const EXPIRY_MS = 3 * LIFETIME_MS;

let db: TestDatabase;
let cluster: HaCluster;
let root = "";
const home = mkdtempSync(join(tmpdir(), "lh-ha-members-cli-"));

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "hamembers_e2e");
  cluster = await createHaCluster({ dbUrl: db.url, nodes: 3, lockLifetime: `${LIFETIME_MS / 1000}s` });
}, 30_000);

afterAll(async () => {
  await cluster?.destroy();
  await db?.drop();
});

interface HaNodeJson {
  hostname: string;
  api_address: string;
  cluster_address: string;
  active_node: boolean;
  last_echo: string | null;
  version: string;
  clock_skew_ms: number;
  echo_duration_ms: number;
  node_id: string;
  started_at: string;
}

/** sys/ha-status through `n` (a standby hands the request to the active: a redirect fetch follows with the token, or forwarding). */
async function haStatus(n: HaClusterNode, token = root): Promise<HaNodeJson[]> {
  const r = await call(n.base, "GET", "sys/ha-status", { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.nodes).toEqual(r.body.data.nodes); // Vault's clients read it at the top level too
  return r.body.data.nodes;
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function cli(argv: string[], addr: string) {
  const io = memoryIo({ env: { LEASEHOLD_ADDR: addr, LEASEHOLD_TOKEN: root }, homeDir: home });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

/** The samples of one metric from the node's Prometheus text: labels (as written) → value. */
async function metric(n: HaClusterNode, name: string): Promise<Map<string, number>> {
  const res = await fetch(`${n.base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": root }, redirect: "manual" });
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? "", Number(m[3]));
  }
  return out;
}

const storedMembers = async () => (await db.admin.query<{ api_addr: string }>("SELECT api_addr FROM leasehold_ha_locks_members ORDER BY api_addr")).rows.map((r) => r.api_addr);

describe("HA members: sys/ha-status, operator members, status rows, metrics", () => {
  let active: HaClusterNode;
  let standbys: HaClusterNode[];

  it("sys/ha-status lists every node from any node, exactly one active, with Vault's fields", { timeout: 180_000 }, async () => {
    root = await cluster.startAll();
    active = (await cluster.waitForActive(15_000)).node;
    standbys = cluster.nodes.filter((n) => n !== active);

    // Standbys heartbeat from their unseal on: all three appear within a heartbeat or two.
    const nodes = await until("three members", 10_000, async () => {
      const list = await haStatus(active);
      return list.length === 3 ? list : undefined;
    });
    expect(nodes.filter((n) => n.active_node)).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ active_node: true, api_address: active.base, cluster_address: `https://127.0.0.1:${active.clusterPort}`, last_echo: null, clock_skew_ms: 0 });
    expect(nodes.map((n) => n.api_address).sort()).toEqual(cluster.nodes.map((n) => n.base).sort());
    for (const n of nodes) {
      const node = cluster.nodes.find((c) => c.base === n.api_address)!;
      expect(n).toMatchObject({ hostname: hostname(), cluster_address: `https://127.0.0.1:${node.clusterPort}`, version: "0.1.0" });
      expect(n.node_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(Date.now() - Date.parse(n.started_at)).toBeLessThan(120_000);
      expect(Math.abs(n.clock_skew_ms)).toBeLessThan(1_000); // one machine, one clock
      expect(n.echo_duration_ms).toBeGreaterThanOrEqual(0);
      if (!n.active_node) {
        // A standby's last heartbeat: within the heartbeat interval (lifetime / 3), plus slack for a busy machine.
        const age = Date.now() - Date.parse(n.last_echo!);
        expect(age).toBeGreaterThan(-1_000);
        expect(age).toBeLessThan(EXPIRY_MS);
      }
    }

    // The same answer through each standby (the active answers).
    for (const s of standbys) {
      const via = await haStatus(s);
      expect(via.map((n) => [n.api_address, n.active_node])).toEqual(nodes.map((n) => [n.api_address, n.active_node]));
    }

    // Access as in Vault: `read` on sys/ha-status; no token, or a token without it, is refused.
    expect((await call(active.base, "GET", "sys/ha-status")).status).toBe(403);
    expect((await call(active.base, "PUT", "sys/policies/acl/members", { token: root, body: { policy: 'path "sys/ha-status" { capabilities = ["read"] }' } })).status).toBe(204);
    const reader = (await call(active.base, "POST", "auth/token/create", { token: root, body: { policies: ["members"] } })).body.auth.client_token;
    const nobody = (await call(active.base, "POST", "auth/token/create", { token: root, body: { policies: ["default"] } })).body.auth.client_token;
    expect(await haStatus(active, reader)).toHaveLength(3);
    expect((await call(active.base, "GET", "sys/ha-status", { token: nobody })).status).toBe(403);

    expect(await storedMembers()).toEqual(cluster.nodes.map((n) => n.base).sort());
  });

  it("operator members prints Vault's table and -format=json the API's nodes, through any node", { timeout: 60_000 }, async () => {
    const table = await cli(["operator", "members"], standbys[0].base);
    expect(table.code, table.err).toBe(0);
    const lines = table.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Host Name +API Address +Cluster Address +Active Node +Version +Last Echo$/);
    expect(lines[1]).toMatch(/^-+ +-+ +-+ +-+ +-+ +-+$/);
    expect(lines).toHaveLength(5);
    const activeRow = new RegExp(`^${hostname()} +${active.base} +https://127\\.0\\.0\\.1:${active.clusterPort} +true +0\\.1\\.0 +n/a$`);
    expect(lines.filter((l) => activeRow.test(l))).toHaveLength(1);
    for (const s of standbys) {
      expect(lines.some((l) => new RegExp(`^${hostname()} +${s.base} +https://127\\.0\\.0\\.1:${s.clusterPort} +false +0\\.1\\.0 +\\d{4}-\\d\\d-\\d\\dT\\S+Z$`).test(l)), table.out).toBe(true);
    }

    const json = await cli(["operator", "members", "-format=json"], active.base);
    expect(json.code, json.err).toBe(0);
    const parsed = JSON.parse(json.out) as { nodes: HaNodeJson[] };
    expect(parsed.nodes).toHaveLength(3);
    expect(parsed.nodes.filter((n) => n.active_node).map((n) => n.api_address)).toEqual([active.base]);
  });

  it("status shows the HA rows: active with Active Since, standby with the Active Node Address", { timeout: 60_000 }, async () => {
    const onActive = await cli(["status"], active.base);
    expect(onActive.code, onActive.err).toBe(0);
    expect(onActive.out).toMatch(/\nHA Enabled +true\n/);
    expect(onActive.out).toMatch(new RegExp(`\\nHA Cluster +https://127\\.0\\.0\\.1:${active.clusterPort}\\nHA Mode +active\\nActive Since +(\\S+)\\n`));
    const since = /\nActive Since +(\S+)\n/.exec(onActive.out)![1];
    expect(Date.now() - Date.parse(since)).toBeLessThan(180_000);
    expect(onActive.out).not.toContain("Active Node Address");

    const onStandby = await cli(["status"], standbys[0].base);
    expect(onStandby.code, onStandby.err).toBe(0);
    expect(onStandby.out).toMatch(new RegExp(`\\nHA Enabled +true\\nHA Cluster +https://127\\.0\\.0\\.1:${active.clusterPort}\\nHA Mode +standby\\nActive Node Address +${active.base.replace(/\./g, "\\.")}\\n`));
    expect(onStandby.out).not.toContain("Active Since");

    const json = JSON.parse((await cli(["status", "-format=json"], standbys[0].base)).out);
    expect(json).toMatchObject({ sealed: false, ha_enabled: true, leader_address: active.base, leader_cluster_address: `https://127.0.0.1:${active.clusterPort}` });
    expect(json.is_self).toBeUndefined();
    const jsonActive = JSON.parse((await cli(["status", "-format=json"], active.base)).out);
    expect(jsonActive).toMatchObject({ ha_enabled: true, is_self: true, active_time: since });
  });

  it("the active exports the HA metrics with plausible values", { timeout: 60_000 }, async () => {
    // The first node took the free lock at sys/init; nobody else has held it.
    const failovers = await metric(active, "leasehold_ha_failovers_total");
    expect(Object.fromEntries(failovers)).toEqual({ '{reason="free"}': 1, '{reason="expired"}': 0, '{reason="holder_gone"}': 0 });
    const age = (await metric(active, "leasehold_ha_lock_age_seconds")).get("")!;
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(LIFETIME_MS / 1000); // renewed every lifetime / 3
    const failures = await metric(active, "leasehold_ha_lock_renewal_failures_total");
    expect(Object.fromEntries(failures)).toEqual({ '{reason="error"}': 0, '{reason="lost"}': 0, '{reason="deadline"}': 0 });
    expect((await metric(active, "leasehold_core_active")).get("")).toBe(1);
  });

  it("a killed active: a standby takes over (failovers counts it), the dead node stays listed until the expiry, then drops out and is pruned", { timeout: 120_000 }, async () => {
    const killed = active;
    killed.signal("SIGKILL");
    const killedAt = Date.now();
    await killed.stopped();
    const next = (await cluster.waitForActive(15_000, [killed])).node;
    active = next;
    standbys = cluster.nodes.filter((n) => n !== next && n !== killed);

    const failovers = Object.fromEntries(await metric(next, "leasehold_ha_failovers_total"));
    // Its session ended with the process: taken at once ("holder_gone"), or after expiry on a very slow machine.
    expect(failovers['{reason="free"}']).toBe(0);
    expect(failovers['{reason="holder_gone"}'] + failovers['{reason="expired"}']).toBe(1);

    // Not yet expired: still listed, no longer active; the new active is.
    const during = await haStatus(next);
    if (Date.now() - killedAt < EXPIRY_MS - 1_000) {
      expect(during.find((n) => n.api_address === killed.base)).toMatchObject({ active_node: false });
    }
    expect(during.filter((n) => n.active_node).map((n) => n.api_address)).toEqual([next.base]);

    const goneAfter = await until("the killed node drops out", EXPIRY_MS + 10_000, async () => {
      const list = await haStatus(next);
      return list.some((n) => n.api_address === killed.base) ? undefined : Date.now() - killedAt;
    });
    // Its last heartbeat was at most one interval (lifetime / 3) before the kill.
    expect(goneAfter).toBeGreaterThan(EXPIRY_MS - LIFETIME_MS / 3 - 500);
    expect(goneAfter).toBeLessThan(EXPIRY_MS + 5_000);
    console.info(`take-over reason ${JSON.stringify(failovers)}; the killed node dropped out of sys/ha-status ${goneAfter} ms after SIGKILL (expiry ${EXPIRY_MS} ms)`);
    const left = await haStatus(next);
    expect(left.map((n) => n.api_address).sort()).toEqual([next.base, standbys[0].base].sort());
    // The active prunes the row at its next heartbeat.
    await until("the dead row pruned", 5_000, async () => ((await storedMembers()).includes(killed.base) ? undefined : true));
  });

  it("a node shut down cleanly (SIGTERM) leaves the list at once", { timeout: 60_000 }, async () => {
    const leaving = standbys[0];
    leaving.signal("SIGTERM");
    const at = Date.now();
    await leaving.stopped();
    const list = await haStatus(active);
    expect(list.map((n) => n.api_address)).toEqual([active.base]);
    expect(Date.now() - at).toBeLessThan(EXPIRY_MS); // well before it would have expired
    expect(await storedMembers()).toEqual([active.base]);
  });
});

describe("without ha_enabled", () => {
  it("sys/ha-status lists the node alone as active, and status prints no HA rows", { timeout: 60_000 }, async () => {
    const server = await startTestServer({ rootTokenId: "root" });
    try {
      const r = await call(server.url, "GET", "sys/ha-status", { token: "root" });
      expect(r.status).toBe(200);
      expect(r.body.data.nodes).toEqual([{ hostname: hostname(), api_address: "", cluster_address: "", active_node: true, last_echo: null, version: "0.1.0", clock_skew_ms: 0, echo_duration_ms: 0 }]);
      const io = memoryIo({ env: { LEASEHOLD_ADDR: server.url, LEASEHOLD_TOKEN: "root" }, homeDir: home });
      expect(await runCli(["status"], io)).toBe(0);
      expect(io.out()).toMatch(/\nHA Enabled +false\n/);
      expect(io.out()).not.toMatch(/HA Mode|HA Cluster|Active/);
    } finally {
      await server.stop();
    }
  });
});
