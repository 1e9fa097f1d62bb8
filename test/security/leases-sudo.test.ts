import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Issue 15, item 12: listing lease ids (`LIST sys/leases/lookup/<prefix>`) and the irrevocable
 * leases (`GET sys/leases`) need sudo, as in Vault (`leases/lookup/*` and `leases` are root paths
 * of its sys backend). A path that only looks like `lookup/` must not reach the listing.
 */
describe("sys/leases listings need sudo", () => {
  let server: RunningServer;
  let base: string;
  let control: LeasingEngineControl;
  let plain: string;
  let sudo: string;
  let leaseId: string;

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const token = async (policy: string): Promise<string> => {
    const r = await call(base, "POST", "auth/token/create", { token: "root", body: { policies: [policy], ttl: "10m" } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.auth.client_token as string;
  };

  beforeAll(async () => {
    const engine = leasingEngine();
    control = engine.control;
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin], leaseRetry: { baseMs: 50, capMs: 100, maxAttempts: 2 } });
    base = server.url;
    expect((await call(base, "POST", "sys/mounts/database", { token: "root", body: { type: "test-leases" } })).status).toBe(204);
    // Every capability on every sys/leases path, sudo only for the second policy.
    const policy = (caps: string[]) => `path "sys/leases" { capabilities = ${JSON.stringify(caps)} }\npath "sys/leases/*" { capabilities = ${JSON.stringify(caps)} }`;
    expect((await call(base, "PUT", "sys/policies/acl/leases-plain", { token: "root", body: { policy: policy(["create", "read", "update", "delete", "list"]) } })).status).toBe(204);
    expect((await call(base, "PUT", "sys/policies/acl/leases-sudo", { token: "root", body: { policy: policy(["create", "read", "update", "delete", "list", "sudo"]) } })).status).toBe(204);
    plain = await token("leases-plain");
    sudo = await token("leases-sudo");
    const issued = await call(base, "GET", "database/creds/ro?ttl=1h", { token: "root" });
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    leaseId = issued.body.lease_id as string;
    expect(leaseId.startsWith("database/creds/ro/")).toBe(true);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("LIST sys/leases/lookupdatabase/creds/ro/ does not list lease ids (no slash after lookup)", async () => {
    const attack = await call(base, "LIST", "sys/leases/lookupdatabase/creds/ro/", { token: plain });
    expect(attack.status).not.toBe(200);
    expect(JSON.stringify(attack.body ?? "")).not.toContain(leaseId.split("/").pop()!);
    // Not even a sudo token reaches a listing there: the path is simply not a route.
    expect((await call(base, "LIST", "sys/leases/lookupdatabase/creds/ro/", { token: sudo })).status).toBe(404);
  });

  it("LIST sys/leases/lookup/<prefix> needs sudo; a sudo token lists the ids", async () => {
    expect((await call(base, "LIST", "sys/leases/lookup/database/creds/ro/", { token: plain })).status).toBe(403);
    expect((await call(base, "GET", "sys/leases/lookup/database/creds/ro?list=true", { token: plain })).status).toBe(403);
    const listed = await call(base, "LIST", "sys/leases/lookup/database/creds/ro/", { token: sudo });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.data.keys).toContain(leaseId.split("/").pop());
  });

  it("a single lease is still looked up by id without sudo (Vault's sys/leases/lookup)", async () => {
    const r = await call(base, "PUT", "sys/leases/lookup", { token: plain, body: { lease_id: leaseId } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.id).toBe(leaseId);
  });

  it("GET sys/leases?type=irrevocable needs sudo; a sudo token reads the list", async () => {
    // Make one lease irrevocable, so the listing has something to leak.
    expect((await call(base, "POST", "database/config", { token: "root", body: { fail_revoke: true } })).status).toBe(204);
    const doomed = await call(base, "GET", "database/creds/irr?ttl=1s", { token: "root" });
    expect(doomed.status).toBe(200);
    const doomedId = doomed.body.lease_id as string;
    const until = Date.now() + 10_000;
    for (;;) {
      const d = (await call(base, "PUT", "sys/leases/lookup", { token: "root", body: { lease_id: doomedId } })).body.data;
      if (d?.state === "irrevocable") break;
      if (Date.now() > until) throw new Error("lease never became irrevocable");
      await sleep(50);
    }
    control.failRevoke = false;

    const attack = await call(base, "GET", "sys/leases?type=irrevocable", { token: plain });
    expect(attack.status).toBe(403);
    expect(JSON.stringify(attack.body)).not.toContain(doomedId);
    const allowed = await call(base, "GET", "sys/leases?type=irrevocable", { token: sudo });
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
    expect(allowed.body.data.leases.map((l: { lease_id: string }) => l.lease_id)).toContain(doomedId);
  });
});
