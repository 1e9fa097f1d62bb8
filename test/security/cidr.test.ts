import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Issue 15, item 13: a bound-CIDR typo must not fail open. `10.0.0.1/` used to read as `/0`
 * (every address) and `" 8"`, `"0x10"`, `"1e1"` passed as prefix lengths. Every field that binds
 * tokens or secret IDs to addresses now refuses what Go's net.ParseCIDR / net.ParseIP refuse,
 * and well-formed blocks still bind. The test client connects from 127.0.0.1.
 */

/** Entries that are not an address or a block. Each was accepted before, most as something wider. */
const BAD = [
  "10.0.0.1/", // read as /0: every address
  "10.0.0.0/ 8",
  "10.0.0.0/0x10",
  "10.0.0.0/1e1",
  "10.0.0.0/+8",
  "10.0.0.0/8.5",
  "10.0.0.0/08",
  "10.0.0.0/33",
  "::1/129",
  "010.0.0.1/32",
  "10.0.0.1:8200",
  "fe80::1%eth0/64",
  "1::2::3",
  "example.com",
];

let server: RunningServer;
let base: string;
const root = { token: "root" };

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  expect((await call(base, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
});
afterAll(async () => {
  await server?.stop();
});

describe("token roles: token_bound_cidrs", () => {
  it("refuses each malformed entry with 400 naming it, and keeps the stored role", async () => {
    expect((await call(base, "POST", "auth/token/roles/x", { ...root, body: { token_bound_cidrs: ["192.168.0.0/16"] } })).status).toBe(204);
    for (const bad of BAD) {
      const r = await call(base, "POST", "auth/token/roles/x", { ...root, body: { token_bound_cidrs: ["127.0.0.1/32", bad] } });
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0], bad).toContain(`token_bound_cidrs: ${JSON.stringify(bad)}`);
    }
    // The comma-separated form goes through the same parser.
    expect((await call(base, "POST", "auth/token/roles/x", { ...root, body: { token_bound_cidrs: "127.0.0.1/32,10.0.0.1/" } })).status).toBe(400);
    const read = await call(base, "GET", "auth/token/roles/x", root);
    expect(read.body.data.token_bound_cidrs).toEqual(["192.168.0.0/16"]);
  });

  it("positive control: well-formed blocks are accepted and bind the tokens made from the role", async () => {
    const roleWith = async (name: string, cidrs: string[]) => {
      const w = await call(base, "POST", `auth/token/roles/${name}`, { ...root, body: { token_bound_cidrs: cidrs } });
      expect(w.status, JSON.stringify(w.body)).toBe(204);
      const c = await call(base, "POST", `auth/token/create/${name}`, root);
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      return c.body.auth.client_token as string;
    };
    const lookupSelf = (token: string) => call(base, "GET", "auth/token/lookup-self", { token });

    expect((await lookupSelf(await roleWith("loopback", ["127.0.0.1/32"]))).status).toBe(200);
    expect((await lookupSelf(await roleWith("loopback-bare", ["127.0.0.1"]))).status).toBe(200);
    expect((await lookupSelf(await roleWith("loopback-mapped", ["::ffff:127.0.0.0/104"]))).status).toBe(200);
    expect((await lookupSelf(await roleWith("ten", ["10.0.0.0/8"]))).status).toBe(403);
    expect((await lookupSelf(await roleWith("v6-everything", ["::/0"]))).status).toBe(403);
  });
});

describe("AppRole: secret_id_bound_cidrs, token_bound_cidrs, cidr_list", () => {
  it("refuses each malformed entry with 400 on the role and on its secret IDs", async () => {
    expect((await call(base, "POST", "auth/approle/role/web", { ...root, body: { secret_id_bound_cidrs: ["127.0.0.0/8"], token_bound_cidrs: ["127.0.0.0/8"] } })).status).toBe(204);
    for (const bad of BAD) {
      for (const field of ["secret_id_bound_cidrs", "bound_cidr_list", "token_bound_cidrs", "bound_cidrs"]) {
        const r = await call(base, "POST", "auth/approle/role/web", { ...root, body: { [field]: ["127.0.0.1/32", bad] } });
        expect(r.status, `${field}: ${bad}`).toBe(400);
        expect(r.body.errors[0], `${field}: ${bad}`).toContain(JSON.stringify(bad));
      }
      for (const field of ["cidr_list", "token_bound_cidrs"]) {
        const r = await call(base, "POST", "auth/approle/role/web/secret-id", { ...root, body: { [field]: [bad] } });
        expect(r.status, `secret-id ${field}: ${bad}`).toBe(400);
      }
    }
    const read = await call(base, "GET", "auth/approle/role/web", root);
    expect(read.body.data.secret_id_bound_cidrs).toEqual(["127.0.0.0/8"]);
    expect(read.body.data.token_bound_cidrs).toEqual(["127.0.0.0/8"]);
  });

  it("positive control: well-formed blocks are accepted and decide who logs in", async () => {
    const loginWith = async (name: string, body: Record<string, unknown>) => {
      const w = await call(base, "POST", `auth/approle/role/${name}`, { ...root, body });
      expect(w.status, JSON.stringify(w.body)).toBe(204);
      const roleId = (await call(base, "GET", `auth/approle/role/${name}/role-id`, root)).body.data.role_id as string;
      const s = await call(base, "POST", `auth/approle/role/${name}/secret-id`, root);
      expect(s.status, JSON.stringify(s.body)).toBe(200);
      return call(base, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: s.body.data.secret_id } });
    };
    expect((await loginWith("near", { secret_id_bound_cidrs: ["127.0.0.1/32"] })).status).toBe(200);
    expect((await loginWith("near-token", { token_bound_cidrs: "127.0.0.1, ::1" })).status).toBe(200);
    expect((await loginWith("far", { secret_id_bound_cidrs: ["10.0.0.0/8"] })).status).toBe(400);
    expect((await loginWith("far-token", { token_bound_cidrs: ["10.0.0.0/8"] })).status).toBe(403);

    // A secret ID's blocks must lie inside the role's, and are checked with the same parser.
    const inside = await call(base, "POST", "auth/approle/role/near/secret-id", { ...root, body: { cidr_list: ["127.0.0.1"] } });
    expect(inside.status, JSON.stringify(inside.body)).toBe(200);
    const outside = await call(base, "POST", "auth/approle/role/near/secret-id", { ...root, body: { cidr_list: ["127.0.0.0/24"] } });
    expect(outside.status).toBe(400);
    expect(outside.body.errors[0]).toMatch(/subset/);
  });
});
