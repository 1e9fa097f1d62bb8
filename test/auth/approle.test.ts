/**
 * AppRole through the real server: roles, role IDs, secret IDs (stored hashed, use-counted under
 * concurrency, expiring, CIDR-bound), the common token fields, renewal and revocation by prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import type { StorageView } from "../../src/sdk/index.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
const root = { token: "root" };

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};
const login = (body: Record<string, unknown>) => call(base, "POST", "auth/approle/login", { body });

async function newRole(name: string, body: Record<string, unknown> = {}): Promise<string> {
  await write(`auth/approle/role/${name}`, body);
  return (await call(base, "GET", `auth/approle/role/${name}/role-id`, root)).body.data.role_id as string;
}
async function newSecret(role: string, body: Record<string, unknown> = {}): Promise<{ secret_id: string; secret_id_accessor: string; secret_id_ttl: number; secret_id_num_uses: number }> {
  return (await write(`auth/approle/role/${role}/secret-id`, body)).body.data;
}

/** Every key and value under a storage view, decrypted (what a copy of the database would reveal with the barrier key). */
async function dump(view: StorageView, prefix = ""): Promise<string> {
  let out = "";
  for (const k of await view.list(prefix)) {
    if (k.endsWith("/")) out += await dump(view, prefix + k);
    else out += `${prefix}${k}=${(await view.get(prefix + k))?.toString("utf8")}\n`;
  }
  return out;
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await write("sys/auth/approle", { type: "approle" });
  await call(base, "PUT", "sys/policies/acl/app", { ...root, body: { policy: 'path "secret/data/app/*" { capabilities = ["read"] }' } });
});
afterAll(async () => {
  await server?.stop();
});

describe("approle roles and role IDs", () => {
  it("creates a role with Vault's defaults and reads it back", async () => {
    await write("auth/approle/role/Web", { token_policies: "app,Extra", token_ttl: "10m", token_max_ttl: "1h", secret_id_num_uses: 5, secret_id_ttl: "24h" });
    const r = await call(base, "GET", "auth/approle/role/web", root);
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({
      bind_secret_id: true,
      secret_id_bound_cidrs: [],
      secret_id_num_uses: 5,
      secret_id_ttl: 86400,
      local_secret_ids: false,
      token_policies: ["app", "extra"],
      policies: ["app", "extra"],
      token_ttl: 600,
      token_max_ttl: 3600,
      token_bound_cidrs: [],
      token_num_uses: 0,
      token_no_default_policy: false,
    });
    expect(r.body.data.role_id).toBeUndefined();
    const list = await call(base, "LIST", "auth/approle/role", root);
    expect(list.body.data.keys).toContain("web");
  });

  it("generates a UUID role ID, and sets a custom one that no other role may take", async () => {
    const id = (await call(base, "GET", "auth/approle/role/web/role-id", root)).body.data.role_id;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await write("auth/approle/role/custom-id", { role_id: "my-custom-role-id" });
    expect((await call(base, "GET", "auth/approle/role/custom-id/role-id", root)).body.data.role_id).toBe("my-custom-role-id");
    const taken = await call(base, "POST", "auth/approle/role/web/role-id", { ...root, body: { role_id: "my-custom-role-id" } });
    expect(taken.status).toBe(400);
    expect(taken.body.errors[0]).toBe("role_id already in use");
    await write("auth/approle/role/custom-id/role-id", { role_id: "renamed-role-id" });
    const secret = await newSecret("custom-id");
    expect((await login({ role_id: "my-custom-role-id", secret_id: secret.secret_id })).status).toBe(400);
    expect((await login({ role_id: "renamed-role-id", secret_id: secret.secret_id })).status).toBe(200);
  });

  it("refuses roles without any constraint, negative uses, bad CIDRs, root policies and batch tokens", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ bind_secret_id: false }, /at least one constraint should be enabled on the role/],
      [{ secret_id_num_uses: -1 }, /secret_id_num_uses cannot be negative/],
      [{ secret_id_bound_cidrs: "10.0.0.0/33" }, /secret_id_bound_cidrs: .* invalid prefix length/],
      [{ token_bound_cidrs: "not-an-ip" }, /token_bound_cidrs: .*not an IP address/],
      [{ token_policies: "root" }, /auth methods cannot create root tokens/],
      [{ token_type: "batch" }, /service tokens only/],
      [{ token_ttl: "2h", token_max_ttl: "1h" }, /"token_ttl" should not be greater than "token_max_ttl"/],
    ];
    for (const [body, msg] of cases) {
      const r = await call(base, "POST", "auth/approle/role/bad", { ...root, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors[0]).toMatch(msg);
    }
    expect((await call(base, "GET", "auth/approle/role/bad", root)).status).toBe(404);
  });
});

describe("approle secret IDs", () => {
  it("issues a secret ID, lists its accessor, looks it up by secret and by accessor, never storing it in clear", async () => {
    const roleId = await newRole("lookup", { secret_id_ttl: "1h", secret_id_num_uses: 10 });
    const s = await newSecret("lookup", { metadata: '{"team":"payments"}', num_uses: 4, ttl: "30m" });
    expect(s.secret_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.secret_id_accessor).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.secret_id_ttl).toBe(1800);
    expect(s.secret_id_num_uses).toBe(4);

    const list = await call(base, "LIST", "auth/approle/role/lookup/secret-id", root);
    expect(list.body.data.keys).toEqual([s.secret_id_accessor]);

    const bySecret = await call(base, "POST", "auth/approle/role/lookup/secret-id/lookup", { ...root, body: { secret_id: s.secret_id } });
    expect(bySecret.status).toBe(200);
    expect(bySecret.body.data).toMatchObject({ secret_id_accessor: s.secret_id_accessor, secret_id_num_uses: 4, secret_id_ttl: 1800, metadata: { team: "payments" }, cidr_list: [], token_bound_cidrs: [] });
    expect(Date.parse(bySecret.body.data.expiration_time) - Date.parse(bySecret.body.data.creation_time)).toBe(1800_000);
    expect(JSON.stringify(bySecret.body)).not.toContain(s.secret_id);
    const byAccessor = await call(base, "POST", "auth/approle/role/lookup/secret-id-accessor/lookup", { ...root, body: { secret_id_accessor: s.secret_id_accessor } });
    expect(byAccessor.body.data).toEqual(bySecret.body.data);

    const ok = await login({ role_id: roleId, secret_id: s.secret_id });
    expect(ok.status).toBe(200);
    expect(ok.body.auth.metadata).toEqual({ role_name: "lookup", team: "payments" });
    expect((await call(base, "POST", "auth/approle/role/lookup/secret-id/lookup", { ...root, body: { secret_id: s.secret_id } })).body.data.secret_id_num_uses).toBe(3);

    const stored = await dump(server.core.mounts.get("auth/approle/")!.storage);
    expect(stored).toContain(s.secret_id_accessor);
    expect(stored).not.toContain(s.secret_id);
  });

  it("bounds a secret ID's uses and TTL by the role's", async () => {
    await newRole("bounded", { secret_id_num_uses: 3, secret_id_ttl: "10m" });
    const tooMany = await call(base, "POST", "auth/approle/role/bounded/secret-id", { ...root, body: { num_uses: 4 } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errors[0]).toBe("num_uses cannot be higher than the role's secret_id_num_uses");
    const unlimited = await call(base, "POST", "auth/approle/role/bounded/secret-id", { ...root, body: { num_uses: 0 } });
    expect(unlimited.status).toBe(400);
    const tooLong = await call(base, "POST", "auth/approle/role/bounded/secret-id", { ...root, body: { ttl: "1h" } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors[0]).toBe("ttl cannot be longer than the role's secret_id_ttl");
    expect((await newSecret("bounded")).secret_id_num_uses).toBe(3);
  });

  it("registers a custom secret ID once", async () => {
    const roleId = await newRole("pushed");
    const r = await write("auth/approle/role/pushed/custom-secret-id", { secret_id: "pushed-secret-value-1" });
    expect(r.body.data.secret_id).toBe("pushed-secret-value-1");
    const dup = await call(base, "POST", "auth/approle/role/pushed/custom-secret-id", { ...root, body: { secret_id: "pushed-secret-value-1" } });
    expect(dup.status).toBe(400);
    expect(dup.body.errors[0]).toBe("SecretID is already registered");
    expect((await login({ role_id: roleId, secret_id: "pushed-secret-value-1" })).status).toBe(200);
  });

  it("destroys secret IDs by value and by accessor", async () => {
    const roleId = await newRole("destroy");
    const a = await newSecret("destroy");
    const b = await newSecret("destroy");
    expect((await call(base, "POST", "auth/approle/role/destroy/secret-id/destroy", { ...root, body: { secret_id: a.secret_id } })).status).toBe(204);
    expect((await call(base, "POST", "auth/approle/role/destroy/secret-id-accessor/destroy", { ...root, body: { secret_id_accessor: b.secret_id_accessor } })).status).toBe(204);
    expect((await login({ role_id: roleId, secret_id: a.secret_id })).status).toBe(400);
    expect((await login({ role_id: roleId, secret_id: b.secret_id })).status).toBe(400);
    // Vault answers an unknown secret ID lookup with 204, an unknown accessor with an error.
    expect((await call(base, "POST", "auth/approle/role/destroy/secret-id/lookup", { ...root, body: { secret_id: a.secret_id } })).status).toBe(204);
    expect((await call(base, "POST", "auth/approle/role/destroy/secret-id-accessor/lookup", { ...root, body: { secret_id_accessor: b.secret_id_accessor } })).status).toBe(404);
    expect((await call(base, "LIST", "auth/approle/role/destroy/secret-id", root)).status).toBe(404);
  });

  it("expires secret IDs after their TTL, and tidy removes them", async () => {
    const roleId = await newRole("expiring");
    const s = await newSecret("expiring", { ttl: 1 });
    const keep = await newSecret("expiring", { ttl: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await login({ role_id: roleId, secret_id: s.secret_id })).status).toBe(400);
    const tidy = await write("auth/approle/tidy/secret-id");
    expect(tidy.body.data.removed).toBeGreaterThanOrEqual(1);
    expect((await call(base, "POST", "auth/approle/role/expiring/secret-id-accessor/lookup", { ...root, body: { secret_id_accessor: keep.secret_id_accessor } })).status).toBe(404);
  });

  it("deleting a role deletes its secret IDs and frees its role ID", async () => {
    const roleId = await newRole("gone");
    const s = await newSecret("gone");
    expect((await call(base, "DELETE", "auth/approle/role/gone", root)).status).toBe(204);
    expect((await login({ role_id: roleId, secret_id: s.secret_id })).status).toBe(400);
    expect(await dump(server.core.mounts.get("auth/approle/")!.storage, "secret-id/gone/")).toBe("");
    await write("auth/approle/role/reuse", { role_id: roleId });
  });
});

describe("approle login", () => {
  it("mints an orphan token with the role's policies and token fields, under auth/approle/login", async () => {
    const roleId = await newRole("tokens", { token_policies: "app", token_ttl: "15m", token_max_ttl: "1h", token_num_uses: 3, token_explicit_max_ttl: "2h" });
    const s = await newSecret("tokens");
    const r = await login({ role_id: roleId, secret_id: s.secret_id });
    expect(r.status).toBe(200);
    expect(r.body.data).toBeNull();
    const a = r.body.auth;
    expect(a).toMatchObject({ policies: ["app", "default"], token_policies: ["app", "default"], metadata: { role_name: "tokens" }, lease_duration: 900, renewable: true, orphan: true, token_type: "service", num_uses: 3 });
    const self = await call(base, "GET", "auth/token/lookup-self", { token: a.client_token });
    expect(self.body.data).toMatchObject({ path: "auth/approle/login", display_name: "approle", orphan: true, explicit_max_ttl: 7200, policies: ["app", "default"] });
    // lookup-self used one of the three uses; two more, then the token is gone.
    expect((await call(base, "GET", "auth/token/lookup-self", { token: a.client_token })).status).toBe(200);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: a.client_token })).status).toBe(200);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: a.client_token })).status).toBe(403);
  });

  it("honours token_no_default_policy and token_period", async () => {
    const roleId = await newRole("periodic", { token_policies: "app", token_no_default_policy: true, token_period: "20m" });
    const r = await login({ role_id: roleId, secret_id: (await newSecret("periodic")).secret_id });
    expect(r.body.auth.policies).toEqual(["app"]);
    expect(r.body.auth.lease_duration).toBe(1200);
    // Without `default` the token may not even look itself up; root looks at it.
    expect((await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token })).status).toBe(403);
    const looked = await call(base, "POST", "auth/token/lookup", { ...root, body: { token: r.body.auth.client_token } });
    expect(looked.body.data.period).toBe(1200);
  });

  it("refuses bad credentials and malformed input with 400, bad credentials with Vault's single message", async () => {
    const roleId = await newRole("creds");
    const s = await newSecret("creds");
    const wrongSecret = await login({ role_id: roleId, secret_id: "00000000-0000-4000-8000-000000000000" });
    expect(wrongSecret).toEqual({ status: 400, body: { errors: ["invalid role or secret ID"] } });
    const wrongRole = await login({ role_id: "no-such-role-id", secret_id: s.secret_id });
    expect(wrongRole).toEqual({ status: 400, body: { errors: ["invalid role or secret ID"] } });
    // A secret ID of another role does not open this one.
    const otherId = await newRole("creds-other");
    expect((await login({ role_id: otherId, secret_id: s.secret_id })).status).toBe(400);
    expect(await login({ secret_id: s.secret_id })).toEqual({ status: 400, body: { errors: ["missing role_id"] } });
    expect(await login({ role_id: roleId })).toEqual({ status: 400, body: { errors: ["missing secret_id"] } });
    const metrics = await fetch(`${base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": "root" } }).then((x) => x.text());
    const failures = Number(/leasehold_login_failures_total\{auth_mount="auth\/approle\/"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(failures).toBeGreaterThanOrEqual(5);
  });

  it("num_uses=1 under 10 concurrent logins: exactly one succeeds", async () => {
    const roleId = await newRole("once");
    const s = await newSecret("once", { num_uses: 1 });
    const results = await Promise.all(Array.from({ length: 10 }, () => login({ role_id: roleId, secret_id: s.secret_id })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400)).toHaveLength(9);
    expect((await call(base, "POST", "auth/approle/role/once/secret-id/lookup", { ...root, body: { secret_id: s.secret_id } })).status).toBe(204);
  });

  it("num_uses=3 under 10 concurrent logins: exactly three succeed", async () => {
    const roleId = await newRole("thrice");
    const s = await newSecret("thrice", { num_uses: 3 });
    const results = await Promise.all(Array.from({ length: 10 }, () => login({ role_id: roleId, secret_id: s.secret_id })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
  });

  it("secret_id_bound_cidrs on the role: 127.0.0.1/32 allows, 10.0.0.0/8 refuses", async () => {
    const allowedId = await newRole("cidr-ok", { secret_id_bound_cidrs: "127.0.0.1/32" });
    expect((await login({ role_id: allowedId, secret_id: (await newSecret("cidr-ok")).secret_id })).status).toBe(200);
    const refusedId = await newRole("cidr-no", { secret_id_bound_cidrs: ["10.0.0.0/8"] });
    const s = await newSecret("cidr-no", { num_uses: 1 });
    const r = await login({ role_id: refusedId, secret_id: s.secret_id });
    expect(r.status).toBe(400);
    // A refused login consumes nothing.
    expect((await call(base, "POST", "auth/approle/role/cidr-no/secret-id/lookup", { ...root, body: { secret_id: s.secret_id } })).body.data.secret_id_num_uses).toBe(1);
  });

  it("cidr_list on a secret ID binds that secret ID, and must lie within the role's blocks", async () => {
    const roleId = await newRole("secret-cidr");
    const far = await newSecret("secret-cidr", { cidr_list: "10.0.0.0/8", num_uses: 1 });
    expect((await login({ role_id: roleId, secret_id: far.secret_id })).status).toBe(400);
    expect((await call(base, "POST", "auth/approle/role/secret-cidr/secret-id/lookup", { ...root, body: { secret_id: far.secret_id } })).body.data.secret_id_num_uses).toBe(1);
    const near = await newSecret("secret-cidr", { cidr_list: ["127.0.0.0/8"] });
    expect((await login({ role_id: roleId, secret_id: near.secret_id })).status).toBe(200);

    await newRole("narrow", { secret_id_bound_cidrs: "127.0.0.0/8" });
    const outside = await call(base, "POST", "auth/approle/role/narrow/secret-id", { ...root, body: { cidr_list: "10.0.0.0/8" } });
    expect(outside.status).toBe(400);
    expect(outside.body.errors[0]).toMatch(/^failed to verify the CIDR restrictions set on the secret ID/);
    const wider = await call(base, "POST", "auth/approle/role/narrow/secret-id", { ...root, body: { cidr_list: "127.0.0.0/7" } });
    expect(wider.status).toBe(400);
    expect((await call(base, "POST", "auth/approle/role/narrow/secret-id", { ...root, body: { cidr_list: "127.0.0.1/32" } })).status).toBe(200);
  });

  it("token_bound_cidrs: 10.0.0.0/8 refuses the login, 127.0.0.1/32 binds a working token", async () => {
    const refusedId = await newRole("tok-cidr-no", { token_bound_cidrs: "10.0.0.0/8" });
    expect((await login({ role_id: refusedId, secret_id: (await newSecret("tok-cidr-no")).secret_id })).status).toBe(403);
    const okId = await newRole("tok-cidr-ok", { token_bound_cidrs: "127.0.0.1/32" });
    const r = await login({ role_id: okId, secret_id: (await newSecret("tok-cidr-ok")).secret_id });
    expect(r.status).toBe(200);
    const self = await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.status).toBe(200);
    // The binding travels with the token: the core refuses it from any other address.
    const entry = await server.core.tokens.lookup(r.body.auth.client_token);
    expect(entry?.boundCidrs).toEqual(["127.0.0.1/32"]);
  });

  it("bind_secret_id=false logs in with the role ID alone (behind a CIDR binding)", async () => {
    const roleId = await newRole("no-secret", { bind_secret_id: false, secret_id_bound_cidrs: "127.0.0.1/32" });
    expect((await login({ role_id: roleId })).status).toBe(200);
    const gen = await call(base, "POST", "auth/approle/role/no-secret/secret-id", root);
    expect(gen.status).toBe(400);
  });

  it("renewal works while the role's policies hold, and is refused once they change", async () => {
    const roleId = await newRole("renew", { token_policies: "app", token_ttl: "10m", token_max_ttl: "1h" });
    const token = (await login({ role_id: roleId, secret_id: (await newSecret("renew")).secret_id })).body.auth.client_token;
    const renewed = await call(base, "POST", "auth/token/renew-self", { token, body: { increment: "20m" } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.auth.lease_duration).toBe(1200);
    await write("auth/approle/role/renew", { token_policies: "app,extra" });
    const refused = await call(base, "POST", "auth/token/renew-self", { token, body: {} });
    expect(refused.status).toBe(403);
    expect(refused.body.errors).toEqual(["policies have changed, not renewing"]);
  });

  it("revoking the prefix auth/approle/login revokes every token the mount issued", async () => {
    const roleId = await newRole("revoked");
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) tokens.push((await login({ role_id: roleId, secret_id: (await newSecret("revoked")).secret_id })).body.auth.client_token);
    for (const t of tokens) expect((await call(base, "GET", "auth/token/lookup-self", { token: t })).status).toBe(200);
    expect((await call(base, "PUT", "sys/leases/revoke-prefix/auth/approle/login", root)).status).toBe(204);
    for (const t of tokens) expect((await call(base, "GET", "auth/token/lookup-self", { token: t })).status).toBe(403);
    expect((await call(base, "GET", "auth/token/lookup-self", root)).status).toBe(200);
  });
});

describe("login rate limit", () => {
  it("answers 429 once an address exceeds its login burst, counting refused logins too", async () => {
    const limited = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1, burst: 3 } });
    try {
      expect((await call(limited.url, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(limited.url, "POST", "auth/approle/login", { body: { role_id: "guess", secret_id: "guess" } })).status);
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      // Management paths are not logins.
      expect((await call(limited.url, "LIST", "auth/approle/role", root)).status).toBe(404);
    } finally {
      await limited.stop();
    }
  });
});
