/**
 * End to end: lease-count quotas (`sys/quotas/lease-count`, Vault Enterprise's API) on the dev
 * server with the test leasing engine. A refused request answers 429 and creates nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

describe("lease count quotas", () => {
  let server: RunningServer;
  let control: LeasingEngineControl;
  const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
  const creds = (role: string) => root("GET", `tl/creds/${role}?ttl=1h`);
  const leaseCount = async () => (await root("GET", "sys/leases/count")).body.data.by_mount["tl/"] ?? 0;

  beforeAll(async () => {
    const engine = leasingEngine();
    control = engine.control;
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
    expect((await root("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    for (const name of server.core.quotas.names()) await root("DELETE", `sys/quotas/lease-count/${name}`);
    expect((await root("PUT", "sys/leases/revoke-prefix/tl")).status).toBe(204);
    expect(control.issued.size).toBe(0);
  });

  it("LIST is a 404 with no quota, and lists names once created", async () => {
    const none = await root("LIST", "sys/quotas/lease-count");
    expect(none.status).toBe(404);
    expect(none.body).toEqual({ errors: [] });
    expect((await root("POST", "sys/quotas/lease-count/b", { path: "tl/", max_leases: 5 })).status).toBe(204);
    expect((await root("POST", "sys/quotas/lease-count/a", { path: "", max_leases: 100 })).status).toBe(204);
    const list = await root("LIST", "sys/quotas/lease-count");
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toEqual(["a", "b"]);
  });

  it("a quota of 3 on tl/: the 4th request is a 429 and creates nothing; deleting the quota lifts it", async () => {
    expect((await root("POST", "sys/quotas/lease-count/tl", { path: "tl", max_leases: 3 })).status).toBe(204);
    const got = await root("GET", "sys/quotas/lease-count/tl");
    expect(got.status).toBe(200);
    expect(got.body.data).toEqual({ name: "tl", path: "tl/", type: "lease-count", max_leases: 3, counts: 0, inheritable: false, role: "" });

    for (let i = 0; i < 3; i++) expect((await creds("app")).status).toBe(200);
    const refused = await creds("app");
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ errors: ["lease count quota exceeded"] });
    expect(control.issued.size).toBe(3);
    expect(await leaseCount()).toBe(3); // no pending row left behind either
    expect((await creds("db")).status).toBe(429); // the whole mount is covered
    expect((await root("GET", "sys/quotas/lease-count/tl")).body.data.counts).toBe(3);

    // The simple form (the engine creates the credential, then the core opens the lease): refused, and the credential revoked.
    const simple = await root("GET", "tl/static/x");
    expect(simple.status).toBe(429);
    expect([...control.issued.keys()].filter((u) => u.startsWith("s-"))).toEqual([]);
    expect(control.issued.size).toBe(3);

    expect((await root("DELETE", "sys/quotas/lease-count/tl")).status).toBe(204);
    expect((await root("GET", "sys/quotas/lease-count/tl")).status).toBe(404);
    expect((await creds("app")).status).toBe(200);
    expect(control.issued.size).toBe(4);
  });

  it("a quota on tl/creds/app limits that role only; revoking a lease frees room", async () => {
    expect((await root("POST", "sys/quotas/lease-count/app", { path: "tl/creds/app", max_leases: 2 })).status).toBe(204);
    const first = await creds("app");
    expect(first.status).toBe(200);
    expect((await creds("app")).status).toBe(200);
    expect((await creds("app")).status).toBe(429);
    for (let i = 0; i < 3; i++) expect((await creds("db")).status).toBe(200);
    expect(control.issued.size).toBe(5);

    expect((await root("PUT", "sys/leases/revoke", { lease_id: first.body.lease_id })).status).toBe(204);
    expect((await root("GET", "sys/quotas/lease-count/app")).body.data.counts).toBe(1);
    expect((await creds("app")).status).toBe(200);
    expect((await creds("app")).status).toBe(429);
  });

  it("concurrent requests cannot overshoot the quota", async () => {
    expect((await root("POST", "sys/quotas/lease-count/tl", { path: "tl/", max_leases: 3 })).status).toBe(204);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => creds(`r${i % 4}`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(9);
    expect(control.issued.size).toBe(3);
  });

  it("a quota written over existing leases counts them (and warns when already over)", async () => {
    for (let i = 0; i < 3; i++) expect((await creds("app")).status).toBe(200);
    const r = await root("POST", "sys/quotas/lease-count/tl", { path: "tl/", max_leases: 2 });
    expect(r.status).toBe(200);
    expect(r.body.warnings.join(" ")).toContain("3 leases already exist");
    expect((await root("GET", "sys/quotas/lease-count/tl")).body.data.counts).toBe(3);
    expect((await creds("app")).status).toBe(429);
    // Raising max_leases keeps the count.
    expect((await root("POST", "sys/quotas/lease-count/tl", { max_leases: 4 })).status).toBe(204);
    expect((await root("GET", "sys/quotas/lease-count/tl")).body.data).toMatchObject({ path: "tl/", max_leases: 4, counts: 3 });
    expect((await creds("app")).status).toBe(200);
    expect((await creds("app")).status).toBe(429);
  });

  it("global quotas cover every mount; token leases are not counted", async () => {
    expect((await root("POST", "sys/quotas/lease-count/global", { max_leases: 1 })).status).toBe(204);
    expect((await root("GET", "sys/quotas/lease-count/global")).body.data).toMatchObject({ path: "", inheritable: true, counts: 0 });
    expect((await root("POST", "auth/token/create", { policies: ["default"] })).status).toBe(200);
    expect((await creds("app")).status).toBe(200);
    expect((await creds("db")).status).toBe(429);
    expect((await root("POST", "auth/token/create", { policies: ["default"] })).status).toBe(200);
  });

  it("quotas survive a seal and unseal, recounted from the lease table", async () => {
    expect((await root("POST", "sys/quotas/lease-count/tl", { path: "tl/", max_leases: 2 })).status).toBe(204);
    expect((await creds("app")).status).toBe(200);
    await server.core.sealNow();
    await server.core.submitUnsealKey(Buffer.from(server.unsealKey!, "base64").toString("hex"));
    expect(server.core.sealed).toBe(false);
    expect((await root("GET", "sys/quotas/lease-count/tl")).body.data).toMatchObject({ max_leases: 2, counts: 1 });
    expect((await creds("app")).status).toBe(200);
    expect((await creds("app")).status).toBe(429);
  });

  it("refuses bad input with 400s naming the problem", async () => {
    const bad = async (body: unknown, name = "q") => {
      const r = await root("POST", `sys/quotas/lease-count/${name}`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      return String(r.body.errors[0]);
    };
    expect(await bad({ path: "tl/" })).toContain("max_leases is required");
    expect(await bad({ path: "tl/", max_leases: 0 })).toContain("max_leases must be a positive integer");
    expect(await bad({ path: "tl/", max_leases: "lots" })).toContain("max_leases");
    expect(await bad({ path: "nope/", max_leases: 1 })).toContain("no mount at that path");
    expect(await bad({ path: "tl/*/x", max_leases: 1 })).toContain("glob");
    expect(await bad({ path: "tl/", max_leases: 1, inheritable: true })).toContain("inheritable");
    expect(await bad({ path: "tl/", max_leases: 1, role: "web" })).toContain("role is not supported");
    expect(await bad({ path: "tl/", max_leases: 1 }, "bad%20name")).toContain("invalid quota name");
    expect(server.core.quotas.names()).toEqual([]);
  });

  it("a trailing glob covers paths sharing the prefix", async () => {
    expect((await root("POST", "sys/quotas/lease-count/g", { path: "tl/creds/ap*", max_leases: 1 })).status).toBe(204);
    expect((await creds("app")).status).toBe(200);
    expect((await creds("apple")).status).toBe(429);
    expect((await creds("db")).status).toBe(200);
  });
});
