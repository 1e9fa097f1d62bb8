import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Issue 15, item 9: `sys/mounts/*` reaches secrets engines only. Auth methods are disabled and
 * tuned at `sys/auth/*`, a root path (sudo), and disabling one revokes the tokens it issued. The
 * `sys/mounts/auth/<name>/tune` alias Vault keeps for compatibility then needs sudo too.
 */
describe("sys/mounts cannot act on auth methods without sudo", () => {
  let server: RunningServer;
  let base: string;
  let mountsAll: string;
  let mountsSudo: string;
  let authSudo: string;
  const root = { token: "root" };

  const token = async (policy: string): Promise<string> => {
    const r = await call(base, "POST", "auth/token/create", { token: "root", body: { policies: [policy], ttl: "10m" } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.auth.client_token as string;
  };
  const policy = async (name: string, text: string) => expect((await call(base, "PUT", `sys/policies/acl/${name}`, { ...root, body: { policy: text } })).status).toBe(204);
  const ok = async (method: string, path: string, body?: unknown) => {
    const r = await call(base, method, path, { ...root, body });
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
    return r;
  };

  /** An approle mount at `auth/<name>/` with a role, and a token logged in through it. */
  const approleLogin = async (name: string): Promise<string> => {
    await ok("POST", `sys/auth/${name}`, { type: "approle" });
    await ok("POST", `auth/${name}/role/web`, { token_policies: "app", token_ttl: "1h" });
    const roleId = (await ok("GET", `auth/${name}/role/web/role-id`)).body.data.role_id as string;
    const secretId = (await ok("POST", `auth/${name}/role/web/secret-id`)).body.data.secret_id as string;
    const login = await call(base, "POST", `auth/${name}/login`, { body: { role_id: roleId, secret_id: secretId } });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    return login.body.auth.client_token as string;
  };
  const selfLookup = (t: string) => call(base, "GET", "auth/token/lookup-self", { token: t });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
    base = server.url;
    const all = '["create", "read", "update", "delete", "list", "patch"]';
    await policy("mounts-all", `path "sys/mounts" { capabilities = ${all} }\npath "sys/mounts/*" { capabilities = ${all} }`);
    await policy("mounts-sudo", `path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`);
    await policy("auth-sudo", `path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`);
    await policy("app", `path "secret/data/app/*" { capabilities = ["read"] }`);
    mountsAll = await token("mounts-all");
    mountsSudo = await token("mounts-sudo");
    authSudo = await token("auth-sudo");
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("DELETE sys/mounts/auth/<name> is refused; the auth mount and its tokens keep working", async () => {
    const loggedIn = await approleLogin("corp");
    expect((await selfLookup(loggedIn)).status).toBe(200);

    const del = await call(base, "DELETE", "sys/mounts/auth/corp", { token: mountsAll });
    expect(del.status).toBe(400);
    // Not even with sudo on sys/mounts/*, nor as root: that path is not where auth methods are disabled.
    expect((await call(base, "DELETE", "sys/mounts/auth/corp", { token: mountsSudo })).status).toBe(400);
    expect((await call(base, "DELETE", "sys/mounts/auth/corp", root)).status).toBe(400);

    const listed = await call(base, "GET", "sys/auth", root);
    expect(Object.keys(listed.body.data)).toContain("corp/");
    expect((await selfLookup(loggedIn)).status).toBe(200);
    expect((await call(base, "GET", "auth/corp/role/web/role-id", root)).status).toBe(200);
  });

  it("tuning an auth mount through sys/mounts/auth/<name>/tune needs sudo", async () => {
    await approleLogin("tuned");
    const before = (await call(base, "GET", "sys/auth/tuned/tune", root)).body.data;

    expect((await call(base, "POST", "sys/mounts/auth/tuned/tune", { token: mountsAll, body: { default_lease_ttl: "1s", max_lease_ttl: "2s", description: "hijacked" } })).status).toBe(403);
    expect((await call(base, "GET", "sys/mounts/auth/tuned/tune", { token: mountsAll })).status).toBe(403);
    expect((await call(base, "GET", "sys/auth/tuned/tune", root)).body.data).toEqual(before);

    // Vault's compatibility alias still works, with sudo.
    const tuned = await call(base, "POST", "sys/mounts/auth/tuned/tune", { token: mountsSudo, body: { description: "tuned with sudo" } });
    expect(tuned.status, JSON.stringify(tuned.body)).toBe(204);
    expect((await call(base, "GET", "sys/mounts/auth/tuned/tune", { token: mountsSudo })).body.data.description).toBe("tuned with sudo");
  });

  it("the same token tunes and disables a secrets mount (positive control)", async () => {
    await ok("POST", "sys/mounts/kv-ops", { type: "kv", options: { version: "2" } });
    await ok("POST", "kv-ops/data/x", { data: { k: "v" } });
    const tune = await call(base, "POST", "sys/mounts/kv-ops/tune", { token: mountsAll, body: { default_lease_ttl: "30m", description: "tuned" } });
    expect(tune.status, JSON.stringify(tune.body)).toBe(204);
    const read = await call(base, "GET", "sys/mounts/kv-ops/tune", { token: mountsAll });
    expect(read.status).toBe(200);
    expect(read.body.data).toMatchObject({ default_lease_ttl: 1800, description: "tuned" });
    expect((await call(base, "DELETE", "sys/mounts/kv-ops", { token: mountsAll })).status).toBe(204);
    expect(Object.keys((await call(base, "GET", "sys/mounts", root)).body.data)).not.toContain("kv-ops/");
  });

  it("without sudo, sys/auth/<name> cannot be disabled; with sudo it is, and the tokens it issued are revoked", async () => {
    const loggedIn = await approleLogin("gone");
    const other = await approleLogin("stays");
    await policy("auth-nosudo", `path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "list"] }`);
    expect((await call(base, "DELETE", "sys/auth/gone", { token: await token("auth-nosudo") })).status).toBe(403);
    expect((await selfLookup(loggedIn)).status).toBe(200);

    expect((await call(base, "DELETE", "sys/auth/gone", { token: authSudo })).status).toBe(204);
    expect(Object.keys((await call(base, "GET", "sys/auth", root)).body.data)).not.toContain("gone/");
    expect((await selfLookup(loggedIn)).status).toBe(403);
    // Only that mount's tokens.
    expect((await selfLookup(other)).status).toBe(200);
  });

  it("the built-in token auth mount is refused before anything is revoked", async () => {
    const t = await token("app");
    expect((await call(base, "DELETE", "sys/auth/token", root)).status).toBe(400);
    expect((await selfLookup(t)).status).toBe(200);
  });
});
