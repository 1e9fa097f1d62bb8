import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Requests shaped as Python's hvac and npm's hashi-vault-js send them (issue 16, items 1 and 9):
 * hvac sends `null` for every parameter its caller leaves out, and repeats URL parameters in the
 * body. Vault reads a null as "not given" and knows URL parameters as fields.
 */
describe("Vault clients' request shapes", () => {
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("sys.enable_secrets_engine() with hvac's nulls enables the engine with the defaults", async () => {
    const r = await root("POST", "sys/mounts/hvac-kv", { type: "kv", description: null, config: null, options: null, plugin_name: null, local: false, seal_wrap: false });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    const tune = await root("GET", "sys/mounts/hvac-kv/tune");
    expect(tune.status).toBe(200);
    expect(tune.body.data.max_lease_ttl).toBeGreaterThan(0);
    // Nulls inside the config block are "not given" too.
    expect((await root("POST", "sys/mounts/hvac-kv2", { type: "kv", options: { version: "2" }, config: { default_lease_ttl: null, max_lease_ttl: "2h" } })).status).toBe(204);
    expect((await root("GET", "sys/mounts/hvac-kv2/tune")).body.data.max_lease_ttl).toBe(7200);
    // A wrong type is still a 400: null only means "not given".
    expect((await root("POST", "sys/mounts/hvac-bad", { type: "kv", config: { max_lease_ttl: "soon" } })).status).toBe(400);
  });

  it("a KV secret keeps the nulls it holds (free-form data is not a field)", async () => {
    expect((await root("POST", "hvac-kv2/data/app", { data: { a: null, b: "x" }, options: null })).status).toBe(200);
    expect((await root("GET", "hvac-kv2/data/app")).body.data.data).toEqual({ a: null, b: "x" });
  });

  it("AppRole: generate_secret_id() without metadata and login() on a bind_secret_id=false role", async () => {
    expect((await root("POST", "sys/auth/approle", { type: "approle", description: null, config: null, plugin_name: null, local: false, seal_wrap: false })).status).toBe(204);
    expect((await root("POST", "auth/approle/role/ci", { token_policies: ["default"], token_ttl: null, secret_id_ttl: null, token_max_ttl: null })).status).toBe(204);
    const gen = await root("POST", "auth/approle/role/ci/secret-id", { metadata: null, cidr_list: null, token_bound_cidrs: null, wrap_ttl: null });
    expect(gen.status, JSON.stringify(gen.body)).toBe(200);
    const roleId = (await root("GET", "auth/approle/role/ci/role-id")).body.data.role_id as string;
    expect((await call(base, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: gen.body.data.secret_id } })).status).toBe(200);

    expect((await root("POST", "auth/approle/role/nobind", { bind_secret_id: false, secret_id_bound_cidrs: ["127.0.0.1/32"], token_policies: ["default"] })).status).toBe(204);
    const nobindId = (await root("GET", "auth/approle/role/nobind/role-id")).body.data.role_id as string;
    const login = await call(base, "POST", "auth/approle/login", { body: { role_id: nobindId, secret_id: null } });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.auth.policies).toEqual(["default"]);
  });

  it("renew_lease() without an increment, and revoke_prefix() with the prefix repeated in the body", async () => {
    expect((await root("POST", "sys/mounts/hvac-pki", { type: "pki", config: { max_lease_ttl: "24h" } })).status).toBe(204);
    expect((await root("POST", "hvac-pki/root/generate/internal", { common_name: "hvac", key_type: "ec", ttl: "24h" })).status).toBe(200);
    // hashi-vault-js's PKI role call leaves optional fields null.
    const role = await root("POST", "hvac-pki/roles/web", { allow_any_name: true, key_type: "ec", max_ttl: "1h", generate_lease: true, ttl: null, allowed_domains: null, key_usage: null });
    expect(role.status, JSON.stringify(role.body)).toBeLessThan(300);
    const cert = await root("POST", "hvac-pki/issue/web", { common_name: "a.example", ttl: "10m", alt_names: null, ip_sans: null });
    expect(cert.status, JSON.stringify(cert.body)).toBe(200);

    const renew = await root("PUT", "sys/leases/renew", { lease_id: cert.body.lease_id, increment: null });
    // PKI leases are not renewable: the answer is the engine's refusal, not a validation error.
    expect(renew.status).toBe(400);
    expect(renew.body.errors.join(" ")).not.toMatch(/increment/);

    const revoke = await root("PUT", "sys/leases/revoke-prefix/hvac-pki/issue/web", { prefix: "hvac-pki/issue/web" });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(204);
    expect((await root("PUT", "sys/leases/lookup", { lease_id: cert.body.lease_id })).status).toBe(400);
    // A field that is really unknown still gets Vault's warning.
    const unknown = await root("PUT", "sys/leases/revoke-prefix/hvac-pki/issue/web", { prefix: "hvac-pki/issue/web", bogus: 1 });
    expect(unknown.status).toBe(200);
    expect(unknown.body.warnings.join(" ")).toContain("unrecognized parameters: [bogus]");
  });

  it("?list= takes Go's ParseBool forms (hvac sends list=True); other values are a 400", async () => {
    expect((await root("POST", "hvac-kv/app", { k: "v" })).status).toBe(204);
    for (const v of ["1", "t", "T", "TRUE", "true", "True"]) {
      const r = await call(base, "GET", `hvac-kv/?list=${v}`, { token: "root" });
      expect(r.status, v).toBe(200);
      expect(r.body.data.keys, v).toEqual(["app"]);
    }
    for (const v of ["0", "f", "F", "FALSE", "false", "False"]) {
      // A false form reads the key instead of listing.
      expect((await call(base, "GET", `hvac-kv/app?list=${v}`, { token: "root" })).body.data, v).toEqual({ k: "v" });
    }
    for (const v of ["yes", "2", "tRUE"]) expect((await call(base, "GET", `hvac-kv/?list=${v}`, { token: "root" })).status, v).toBe(400);
  });
});
