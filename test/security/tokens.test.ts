import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Token creation and revocation under attack (issue 15, items 1-4, 6, 7). Every attack sits next to
 * the legitimate request it resembles, which must still work.
 */
describe("security: tokens", () => {
  let server: RunningServer;
  let base: string;
  type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON

  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });
  const policy = async (name: string, rules: string) => expect((await root("PUT", `sys/policies/acl/${name}`, { policy: rules })).status).toBe(204);
  const create = async (body: Body, token = "root", path = "auth/token/create"): Promise<{ token: string; accessor: string; body: Body }> => {
    const r = await call(base, "POST", path, { token, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { token: r.body.auth.client_token, accessor: r.body.auth.accessor, body: r.body };
  };
  const lookupSelf = async (token: string) => call(base, "GET", "auth/token/lookup-self", { token });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    await policy("app", 'path "secret/data/app/*" { capabilities = ["read"] }');
    await policy("admin", 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }');
    await policy("ci-only", 'path "auth/token/create/ci" { capabilities = ["update"] }');
    await policy("creator", 'path "auth/token/create" { capabilities = ["update"] }\npath "auth/token/create/*" { capabilities = ["deny"] }');
    await policy("sudo-creator", 'path "auth/token/create*" { capabilities = ["update", "sudo"] }');
    await policy("role-creator", 'path "auth/token/create/*" { capabilities = ["update"] }');
    expect((await root("POST", "auth/token/roles/ci", { orphan: false })).status).toBe(204);
    expect((await root("POST", "secret/data/app/config", { data: { k: "v" } })).status).toBe(200);
  });
  afterAll(async () => {
    await server.stop();
  });

  describe("item 1: a role without allowed_policies never mints root or policies the parent lacks", () => {
    it("refuses root and foreign policies through create/ci; the parent's own policies still work", async () => {
      const attacker = await create({ policies: ["ci-only", "app"], ttl: "1h" });
      const asRoot = await call(base, "POST", "auth/token/create/ci", { token: attacker.token, body: { policies: ["root"] } });
      expect(asRoot.status).toBe(400);
      expect(asRoot.body.errors.join(" ")).toMatch(/subset of parent|root tokens may not be created/);
      const foreign = await call(base, "POST", "auth/token/create/ci", { token: attacker.token, body: { policies: ["admin"] } });
      expect(foreign.status).toBe(400);
      // Positive control: a subset of its own policies through the role.
      const child = await create({ policies: ["app"] }, attacker.token, "auth/token/create/ci");
      expect(child.body.auth.policies).toEqual(["app", "default"]);
      expect((await call(base, "GET", "secret/data/app/config", { token: child.token })).status).toBe(200);
    });

    it("sudo lifts the subset rule but never grants root, on create, create-orphan and create/:role", async () => {
      const sudo = await create({ policies: ["sudo-creator"], ttl: "1h" });
      for (const path of ["auth/token/create", "auth/token/create-orphan", "auth/token/create/ci"]) {
        const r = await call(base, "POST", path, { token: sudo.token, body: { policies: ["root"] } });
        expect(r.status, path).toBe(400);
        expect(r.body.errors.join(" ")).toContain("root tokens may not be created without parent token being root");
        // Positive control: a policy the sudo caller does not hold itself.
        const ok = await create({ policies: ["app"] }, sudo.token, path);
        expect(ok.body.auth.policies, path).toEqual(["app", "default"]);
      }
    });

    it("a role whose allowed_policies is root still needs a root parent", async () => {
      expect((await root("POST", "auth/token/roles/with-root", { allowed_policies: ["root"] })).status).toBe(204);
      expect((await root("POST", "auth/token/roles/app-only", { allowed_policies: ["app"] })).status).toBe(204);
      const caller = await create({ policies: ["role-creator"], ttl: "1h" });
      for (const body of [{ policies: ["root"] }, {}]) {
        const r = await call(base, "POST", "auth/token/create/with-root", { token: caller.token, body });
        expect(r.status).toBe(400);
        expect(r.body.errors).toEqual(["root tokens may not be created without parent token being root"]);
      }
      // Positive controls: the root parent may; the same caller may through a role without root.
      expect((await create({}, "root", "auth/token/create/with-root")).body.auth.policies).toEqual(["root"]);
      expect((await create({}, caller.token, "auth/token/create/app-only")).body.auth.policies).toEqual(["app", "default"]);
    });

    it("an auth method's role cannot carry root", async () => {
      expect((await root("POST", "sys/auth/approle", { type: "approle" })).status).toBe(204);
      const evil = await root("POST", "auth/approle/role/evil", { token_policies: ["root"], bind_secret_id: false, secret_id_bound_cidrs: ["127.0.0.1/32"] });
      expect(evil.status).toBe(400);
      expect(evil.body.errors.join(" ")).toContain("auth methods cannot create root tokens");
      expect((await root("POST", "auth/approle/role/good", { token_policies: ["app"], bind_secret_id: false, secret_id_bound_cidrs: ["127.0.0.1/32"] })).status).toBe(204);
      const roleId = (await root("GET", "auth/approle/role/good/role-id")).body.data.role_id as string;
      const good = await call(base, "POST", "auth/approle/login", { body: { role_id: roleId } });
      expect(good.status).toBe(200);
      expect(good.body.auth.policies).toEqual(["app", "default"]);
    });
  });

  describe("item 2: role_name in the body of create does not reach a role", () => {
    it("a token denied on create/* gets no role through create; create/:role works where the ACL allows it", async () => {
      expect((await root("POST", "auth/token/roles/wide", { allowed_policies: ["admin"], orphan: true, token_period: "24h" })).status).toBe(204);
      const attacker = await create({ policies: ["creator"], ttl: "1h" });
      const viaCreate = await call(base, "POST", "auth/token/create", { token: attacker.token, body: { role_name: "wide", policies: ["admin"] } });
      expect(viaCreate.status).toBe(400);
      const plain = await call(base, "POST", "auth/token/create", { token: attacker.token, body: { role_name: "wide" } });
      expect(plain.status).toBe(200);
      const looked = await lookupSelf(plain.body.auth.client_token);
      expect(looked.body.data.role).toBeUndefined();
      expect(looked.body.data.orphan).toBe(false);
      expect(looked.body.data.period).toBeUndefined();
      expect(looked.body.data.policies).toEqual(["creator", "default"]);
      const viaOrphan = await call(base, "POST", "auth/token/create-orphan", { token: "root", body: { role_name: "wide" } });
      expect(viaOrphan.status).toBe(200);
      expect((await lookupSelf(viaOrphan.body.auth.client_token)).body.data.role).toBeUndefined();
      // The role's own path is still denied for the attacker, and works for a caller allowed there.
      expect((await call(base, "POST", "auth/token/create/wide", { token: attacker.token, body: {} })).status).toBe(403);
      const allowed = await create({ policies: ["role-creator"], ttl: "1h" });
      const viaRole = await create({}, allowed.token, "auth/token/create/wide");
      expect(viaRole.body.auth.policies).toEqual(["admin", "default"]);
      expect((await lookupSelf(viaRole.token)).body.data.role).toBe("wide");
    });
  });

  describe("item 3: the last use of a num_uses token", () => {
    it("is stored as revocation-pending, never as unlimited, and refuses every lookup while it runs", async () => {
      const { token } = await create({ policies: ["app"], num_uses: 1, ttl: "1h" });
      const entry = (await server.core.tokens.lookup(token))!;
      expect(entry.numUses).toBe(1);
      expect(await server.core.tokens.consumeUse(entry)).toBe(true);
      expect(entry.numUses).toBe(-1);
      expect(await server.core.tokens.lookup(token)).toBeUndefined();
      // Over HTTP too, many times (the cache must not hold it).
      for (let i = 0; i < 3; i++) expect((await call(base, "GET", "secret/data/app/config", { token })).status).toBe(403);
      // Positive control: a token with two uses has one left after the first.
      const two = await create({ policies: ["app"], num_uses: 2, ttl: "1h" });
      expect((await call(base, "GET", "secret/data/app/config", { token: two.token })).status).toBe(200);
      expect((await call(base, "GET", "secret/data/app/config", { token: two.token })).status).toBe(200);
      expect((await call(base, "GET", "secret/data/app/config", { token: two.token })).status).toBe(403);
    });

    it("25 parallel requests during the one slow use of a num_uses=1 token all fail", async () => {
      expect((await root("POST", "sys/mounts/pki-slow", { type: "pki", config: { max_lease_ttl: "24h" } })).status).toBe(204);
      expect((await root("POST", "pki-slow/root/generate/internal", { common_name: "slow", key_type: "ec", ttl: "24h" })).status).toBe(200);
      expect((await root("POST", "pki-slow/roles/rsa", { allow_any_name: true, key_type: "rsa", key_bits: 4096, max_ttl: "1h" })).status).toBeLessThan(300);
      await policy("issuer", 'path "pki-slow/issue/rsa" { capabilities = ["update"] }\npath "secret/data/app/*" { capabilities = ["read"] }');
      const { token } = await create({ policies: ["issuer"], num_uses: 1, ttl: "1h" });
      const slow = call(base, "POST", "pki-slow/issue/rsa", { token, body: { common_name: "slow.example" } });
      await new Promise((r) => setTimeout(r, 20));
      const others = await Promise.all(Array.from({ length: 25 }, () => call(base, "GET", "secret/data/app/config", { token })));
      expect(others.map((r) => r.status)).toEqual(Array(25).fill(403));
      expect((await slow).status).toBe(200);
      expect((await call(base, "GET", "secret/data/app/config", { token })).status).toBe(403);
    }, 60_000);
  });

  describe("item 4: revocation stops the token first", () => {
    it("a token whose ancestor is marked revocation-pending is refused before the walk reaches it", async () => {
      await policy("parenting", 'path "auth/token/create" { capabilities = ["update"] }');
      const parent = await create({ policies: ["app", "parenting"], ttl: "1h" });
      const child = await create({ policies: ["app"] }, parent.token);
      expect((await lookupSelf(child.token)).status).toBe(200);
      const entry = (await server.core.tokens.getByToken(parent.token))!;
      // What revokeTree stores before it walks the tree.
      entry.numUses = -1;
      await server.core.barrier.view("sys/token/").putJSON(`id/${entry.hmac}`, entry);
      server.core.tokens.invalidateAll();
      expect((await lookupSelf(child.token)).status).toBe(403);
      expect((await call(base, "GET", "secret/data/app/config", { token: child.token })).status).toBe(403);
      // An interrupted revocation is finished by revoking again, by token or accessor.
      expect((await root("POST", "auth/token/revoke", { token: parent.token })).status).toBe(204);
      expect(await server.core.tokens.getByToken(child.token)).toBeUndefined();
      // Positive control: a sibling tree is untouched.
      const other = await create({ policies: ["app", "parenting"], ttl: "1h" });
      expect((await call(base, "GET", "secret/data/app/config", { token: (await create({ policies: ["app"] }, other.token)).token })).status).toBe(200);
    });
  });

  describe("item 6: use-limited tokens create no children", () => {
    it("refuses children of a num_uses token, on every create path; an unlimited token may", async () => {
      await policy("limited", 'path "auth/token/create*" { capabilities = ["update", "sudo"] }');
      for (const path of ["auth/token/create", "auth/token/create-orphan", "auth/token/create/ci"]) {
        const limited = await create({ policies: ["limited"], num_uses: 5, ttl: "1h" });
        const r = await call(base, "POST", path, { token: limited.token, body: { policies: ["limited"] } });
        expect(r.status, path).toBe(400);
        expect(r.body.errors).toEqual(["restricted use token cannot generate child tokens"]);
      }
      const unlimited = await create({ policies: ["limited"], ttl: "1h" });
      expect((await create({ policies: ["limited"] }, unlimited.token)).body.auth.policies).toEqual(["default", "limited"]);
    });
  });

  describe("item 7: a role's limits bind the caller, and periods are capped", () => {
    it("renewable=false, token_num_uses and token_period of a role cannot be raised by the caller", async () => {
      expect((await root("POST", "auth/token/roles/strict", { allowed_policies: ["app"], renewable: false, token_num_uses: 3, token_period: "1h" })).status).toBe(204);
      const caller = await create({ policies: ["role-creator"], ttl: "1h" });
      const r = await create({ renewable: true, num_uses: 0 }, caller.token, "auth/token/create/strict");
      expect(r.body.auth.renewable).toBe(false);
      expect(r.body.auth.num_uses).toBe(3);
      expect(r.body.auth.lease_duration).toBe(3600);
      expect((await create({ num_uses: 10 }, caller.token, "auth/token/create/strict")).body.auth.num_uses).toBe(3);
      // Less is fine.
      expect((await create({ num_uses: 2 }, caller.token, "auth/token/create/strict")).body.auth.num_uses).toBe(2);
      // A period in the request needs sudo, role or not.
      const period = await call(base, "POST", "auth/token/create/strict", { token: caller.token, body: { period: "8760h" } });
      expect(period.status).toBe(400);
      expect(period.body.errors).toEqual(["root or sudo privileges required to create periodic token"]);
      // With sudo, the lesser of role and request wins.
      const sudo = await create({ policies: ["sudo-creator"], ttl: "1h" });
      const lesser = await create({ period: "8760h" }, sudo.token, "auth/token/create/strict");
      expect(lesser.body.auth.lease_duration).toBe(3600);
      expect(lesser.body.warnings.join(" ")).toContain("using the lesser value");
      // Positive control: a renewable role's token is renewable.
      expect((await root("POST", "auth/token/roles/loose", { allowed_policies: ["app"] })).status).toBe(204);
      expect((await create({}, caller.token, "auth/token/create/loose")).body.auth.renewable).toBe(true);
    });

    it("a period is capped by the mount's max TTL with a warning, at creation and renewal", async () => {
      const maxTtl = (await root("GET", "sys/auth/token/tune")).body.data.max_lease_ttl as number;
      const r = await create({ policies: ["app"], period: "8760h" });
      expect(r.body.auth.lease_duration).toBe(maxTtl);
      expect(r.body.warnings.join(" ")).toMatch(/period of "8760h0m0s" exceeded the effective max_ttl/);
      const renewed = await call(base, "POST", "auth/token/renew-self", { token: r.token, body: { increment: "8760h" } });
      expect(renewed.status).toBe(200);
      expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(maxTtl);
      // Positive control: a period under the max is kept as asked.
      expect((await create({ policies: ["app"], period: "2h" })).body.auth.lease_duration).toBe(7200);
    });

    it("an expiring root token cannot create a non-expiring one", async () => {
      const expiringRoot = await create({ policies: ["root"], ttl: "1h" });
      const r = await call(base, "POST", "auth/token/create", { token: expiringRoot.token, body: { policies: ["root"] } });
      expect(r.status).toBe(400);
      expect(r.body.errors).toEqual(["expiring root tokens cannot create non-expiring root tokens"]);
      expect((await create({ policies: ["root"], ttl: "10m" }, expiringRoot.token)).body.auth.lease_duration).toBe(600);
    });

    it("a child of a CIDR-bound parent stays bound", async () => {
      await policy("bound-creator", 'path "auth/token/create" { capabilities = ["update"] }\npath "secret/data/app/*" { capabilities = ["read"] }');
      expect((await root("POST", "auth/token/roles/bound", { token_bound_cidrs: ["127.0.0.1/32"], allowed_policies: ["bound-creator"] })).status).toBe(204);
      const bound = await create({}, "root", "auth/token/create/bound");
      const child = await create({ policies: ["bound-creator"] }, bound.token);
      expect((await server.core.tokens.getByToken(child.token))!.boundCidrs).toEqual(["127.0.0.1/32"]);
      // Positive control: from the bound address, the child works.
      expect((await call(base, "GET", "secret/data/app/config", { token: child.token })).status).toBe(200);
      // A role bound elsewhere refuses loopback.
      expect((await root("POST", "auth/token/roles/far", { token_bound_cidrs: ["10.0.0.0/8"], allowed_policies: ["app"] })).status).toBe(204);
      expect((await call(base, "GET", "secret/data/app/config", { token: (await create({}, "root", "auth/token/create/far")).token })).status).toBe(403);
    });
  });
});
