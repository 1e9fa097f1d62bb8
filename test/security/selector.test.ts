/**
 * Issue 15, item 18: the lease selector's `path_prefix` was a raw string prefix, so
 * `tl/creds/ro` also selected `tl/creds/ro2/...`. It now follows `sys/leases/revoke-prefix`'s
 * whole-segment rule (the same function). Positive controls: `tl/creds/ro/`, `tl/creds` and an
 * exact lease id still select what they name.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let control: LeasingEngineControl;
const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
const ro: string[] = [];
const ro2: string[] = [];

async function issue(role: string, n: number, into: string[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await root("GET", `tl/creds/${role}?ttl=1h`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    into.push(r.body.lease_id);
  }
}

const dryRun = async (path_prefix: string) => {
  const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { path_prefix }, dry_run: true });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as { matched: number; leases: string[] };
};

const listed = async (path_prefix: string) => {
  const r = await root("GET", `sys/leasehold/leases?path_prefix=${encodeURIComponent(path_prefix)}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.data.leases as { lease_id: string }[]).map((l) => l.lease_id).sort();
};

beforeAll(async () => {
  const engine = leasingEngine();
  control = engine.control;
  server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
  expect((await root("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
  await issue("ro", 3, ro);
  await issue("ro2", 2, ro2);
});

afterAll(async () => {
  await server?.stop();
});

describe("selector path_prefix names whole path segments", () => {
  it("counts and lists only ro's leases for path_prefix tl/creds/ro; the positive forms still select theirs", async () => {
    const attack = await dryRun("tl/creds/ro");
    expect(attack.matched).toBe(3);
    expect([...attack.leases].sort()).toEqual([...ro].sort());
    expect(await listed("tl/creds/ro")).toEqual([...ro].sort());

    expect((await dryRun("tl/creds/ro/")).matched).toBe(3);
    expect((await dryRun("tl/creds")).matched).toBe(5);
    expect(await listed("tl/creds")).toEqual([...ro, ...ro2].sort());
    // Exactly a lease id: that lease.
    expect((await dryRun(ro2[0])).leases).toEqual([ro2[0]]);
    expect(await listed(ro2[0])).toEqual([ro2[0]]);
  });

  it("revokes only ro's leases for path_prefix tl/creds/ro", async () => {
    expect(control.issued.size).toBe(5);
    const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { path_prefix: "tl/creds/ro" } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.revoked).toBe(3);
    expect(control.issued.size).toBe(2);
    for (const id of ro) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(400);
    for (const id of ro2) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(200);
    // The rest still goes with the mount-level prefix.
    expect((await root("POST", "sys/leasehold/leases/revoke", { selector: { path_prefix: "tl/creds" } })).body.data.revoked).toBe(2);
    expect(control.issued.size).toBe(0);
  });
});
