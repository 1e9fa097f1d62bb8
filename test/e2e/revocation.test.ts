/**
 * End to end: safety mode (`leasehold server -no-revoke`, `disable_revocation = true`). Nothing
 * is revoked by time and start-up reconciliation waits; operator revocations still work;
 * `POST sys/leasehold/revocation {enabled: true}` resumes expiry at once.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { loadServerConfig } from "../../src/server/config.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
  return Date.now() - start;
}

describe("safety mode: -no-revoke", () => {
  let server: RunningServer;
  let control: LeasingEngineControl;
  const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
  const metric = async () => {
    const r = await root("GET", "sys/metrics?format=prometheus");
    expect(r.status).toBe(200);
    return /^leasehold_lease_revocation_enabled (\d)$/m.exec(String(r.body))?.[1];
  };

  beforeAll(async () => {
    const engine = leasingEngine();
    control = engine.control;
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin], noRevoke: true });
    expect((await root("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("reports revocation as disabled, in the API and as a gauge", async () => {
    const r = await root("GET", "sys/leasehold/revocation");
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ enabled: false });
    expect(await metric()).toBe("0");
  });

  it("keeps expired leases; operator revocation still works; turning revocation on revokes them within ~1-2 s", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await root("GET", "tl/creds/app?ttl=1s");
      expect(r.status).toBe(200);
      ids.push(r.body.lease_id);
    }
    await sleep(2000);
    expect(control.issued.size).toBe(4);
    const listed = await root("LIST", "sys/leases/lookup/tl/creds/app/");
    expect(listed.status).toBe(200);
    expect(listed.body.data.keys).toHaveLength(4);
    const lookup = await root("PUT", "sys/leases/lookup", { lease_id: ids[0] });
    expect(lookup.status).toBe(200);
    expect(lookup.body.data.ttl).toBe(0);

    // Operator commands: synchronous, and queued (sync=false) which must not wait for the stopped clock.
    expect((await root("PUT", "sys/leases/revoke", { lease_id: ids[0] })).status).toBe(204);
    expect(control.issued.size).toBe(3);
    expect((await root("PUT", "sys/leases/revoke", { lease_id: ids[1], sync: false })).status).toBe(202);
    await waitFor(() => control.issued.size === 2, 1500);

    const on = await root("POST", "sys/leasehold/revocation", { enabled: true });
    expect(on.status).toBe(200);
    expect(on.body.data).toEqual({ enabled: true });
    const took = await waitFor(() => control.issued.size === 0, 2500);
    expect(took).toBeLessThan(2500);
    expect((await root("LIST", "sys/leases/lookup/tl/creds/app/")).status).toBe(404);
    expect(await metric()).toBe("1");
  });

  it("turning revocation off at runtime stops expiry again", async () => {
    expect((await root("POST", "sys/leasehold/revocation", { enabled: "false" })).body.data).toEqual({ enabled: false });
    const r = await root("GET", "tl/creds/db?ttl=1s");
    expect(r.status).toBe(200);
    await sleep(1800);
    expect(control.issued.size).toBe(1);
    expect((await root("POST", "sys/leasehold/revocation", { enabled: true })).status).toBe(200);
    await waitFor(() => control.issued.size === 0, 2500);
  });

  it("defers the revocation of pending leftovers until revocation is on, sparing pending leases of requests in flight", async () => {
    expect((await root("POST", "sys/leasehold/revocation", { enabled: false })).status).toBe(200);
    const core = server.core;
    // A leftover: pending since before the clock started (a crash mid-request), due in an hour.
    const leftoverId = "tl/creds/crashed/leftover0000000000000000";
    const now = Date.now();
    control.issued.set("u-crashed", now + 3_600_000);
    await core.leases.store.insert({
      id: leftoverId, kind: "secret", mount: "tl/", path: "tl/creds/crashed", role: "crashed", secret_type: "creds",
      internal: core.barrier.encrypt(`lease/${leftoverId}`, Buffer.from(JSON.stringify({ username: "u-crashed" }))),
      issue_time: now - 60 * 60_000, expire_time: now + 3_600_000, max_expire_time: now + 3_600_000, last_renewal: null, renewable: 1,
      token_accessor: "", auth_mount: "", display_name: "", metadata: "{}", entity_id: "", state: "pending", revoke_attempts: 0, revoke_error: null, due_at: now + 3_600_000,
    });
    // A request in flight: its lease is pending too, but was opened after start-up.
    control.issued.set("u-inflight", now + 3_600_000);
    const inflight = await core.leases.open("tl/", "tl/creds/inflight", { type: "creds", ttl: 3600, renewable: true, internal: { username: "u-inflight" } }, null);

    await sleep(300);
    expect(control.issued.has("u-crashed")).toBe(true);
    expect((await root("POST", "sys/leasehold/revocation", { enabled: true })).status).toBe(200);
    await waitFor(() => !control.issued.has("u-crashed"), 2000);
    expect(await core.leases.get(leftoverId)).toBeUndefined();
    expect((await core.leases.get(inflight.id))?.state).toBe("pending");
    expect(control.issued.has("u-inflight")).toBe(true);
    await core.leases.revoke(inflight.id);
  });

  it("needs sudo to switch; reading does not", async () => {
    const pol = 'path "sys/leasehold/revocation" { capabilities = ["read", "update"] }';
    expect((await root("PUT", "sys/policies/acl/switch", { policy: pol })).status).toBe(204);
    const t = (await root("POST", "auth/token/create", { policies: ["switch"] })).body.auth.client_token as string;
    expect((await call(server.url, "GET", "sys/leasehold/revocation", { token: t })).body.data).toEqual({ enabled: true });
    const denied = await call(server.url, "POST", "sys/leasehold/revocation", { token: t, body: { enabled: false } });
    expect(denied.status).toBe(403);
    expect(server.core.leases.expiryEnabled).toBe(true);
    expect((await root("POST", "sys/leasehold/revocation", {})).status).toBe(400);
  });
});

describe("safety mode from the config file", () => {
  it("disable_revocation = true starts the configured server with revocation off", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lh-norevoke-"));
    const config = loadServerConfig(
      `storage "sqlite" { path = "${join(dir, "lh.db")}" }\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\ndisable_revocation = true\n`,
      "lh.hcl",
    );
    const server = await startConfiguredServer(config, pino({ level: "silent" }));
    try {
      expect(server.core.leases.expiryEnabled).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it("without it, revocation is on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lh-norevoke-"));
    const config = loadServerConfig(`storage "sqlite" { path = "${join(dir, "lh.db")}" }\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n`, "lh.hcl");
    const server = await startConfiguredServer(config, pino({ level: "silent" }));
    try {
      expect(server.core.leases.expiryEnabled).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
