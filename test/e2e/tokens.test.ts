import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/** The `auth` block of a token-creating response. */
interface Auth {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  orphan: boolean;
  token_type: string;
  entity_id: string;
}

describe("auth/token end to end", () => {
  let server: RunningServer;
  let base: string;

  const create = async (token: string, body: Record<string, unknown> = {}, path = "auth/token/create"): Promise<Auth> => {
    const r = await call(base, "POST", path, { token, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.auth as Auth;
  };
  const lookupSelf = (token: string) => call(base, "GET", "auth/token/lookup-self", { token });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    // Lets a non-root token create children (and look itself up through default).
    const r = await call(base, "PUT", "sys/policies/acl/tokmaker", {
      token: "root",
      body: { policy: 'path "auth/token/create" { capabilities = ["update"] }\npath "auth/token/create-orphan" { capabilities = ["update"] }' },
    });
    expect(r.status).toBe(204);
    for (const name of ["app", "other"]) {
      const p = await call(base, "PUT", `sys/policies/acl/${name}`, { token: "root", body: { policy: `path "secret/data/${name}/*" { capabilities = ["read"] }` } });
      expect(p.status).toBe(204);
    }
  });
  afterAll(async () => {
    await server.stop();
  });

  it("creates a child token with the auth block Vault sends", async () => {
    const r = await call(base, "POST", "auth/token/create", { token: "root", body: { policies: ["app"], ttl: "1h", meta: { owner: "ci" } } });
    expect(r.status).toBe(200);
    expect(r.body.data).toBeNull();
    expect(r.body.lease_id).toBe("");
    const a = r.body.auth as Auth;
    expect(a.client_token).toMatch(/^lhs\.[A-Za-z0-9]{24}$/);
    expect(a.accessor).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(a.policies).toEqual(["app", "default"]);
    expect(a.token_policies).toEqual(["app", "default"]);
    expect(a.metadata).toEqual({ owner: "ci" });
    expect(a.lease_duration).toBe(3600);
    expect(a.renewable).toBe(true);
    expect(a.orphan).toBe(false);
    expect(a.token_type).toBe("service");
    expect(a.entity_id).toBe("");
  });

  it("creates orphans through no_parent and create-orphan", async () => {
    const viaFlag = await create("root", { policies: ["app"], no_parent: true });
    expect(viaFlag.orphan).toBe(true);
    const viaPath = await create("root", { policies: ["app"] }, "auth/token/create-orphan");
    expect(viaPath.orphan).toBe(true);
    expect((await lookupSelf(viaPath.client_token)).body.data.path).toBe("auth/token/create-orphan");
    // A non-root parent without sudo may not ask for no_parent.
    const parent = await create("root", { policies: ["tokmaker"] });
    const r = await call(base, "POST", "auth/token/create", { token: parent.client_token, body: { no_parent: true } });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/root or sudo/);
  });

  it("lookup-self reports every field Vault reports", async () => {
    const a = await create("root", { policies: ["app"], ttl: "2h", explicit_max_ttl: "3h", display_name: "web server", meta: { k: "v" } });
    const before = Date.now();
    const r = await lookupSelf(a.client_token);
    expect(r.status).toBe(200);
    const d = r.body.data;
    for (const k of ["accessor", "creation_time", "creation_ttl", "display_name", "expire_time", "explicit_max_ttl", "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl", "type"]) {
      expect(d, `missing ${k}`).toHaveProperty(k);
    }
    expect(d.accessor).toBe(a.accessor);
    expect(d.id).toBe(a.client_token);
    expect(d.display_name).toBe("token-web-server");
    expect(d.creation_ttl).toBe(7200);
    expect(d.explicit_max_ttl).toBe(10800);
    expect(d.ttl).toBeGreaterThanOrEqual(7190);
    expect(d.ttl).toBeLessThanOrEqual(7200);
    expect(Number.isInteger(d.creation_time)).toBe(true);
    expect(Math.abs(d.creation_time - before / 1000)).toBeLessThan(10);
    expect(new Date(d.issue_time).getTime()).toBeGreaterThan(before - 10_000);
    const expires = new Date(d.expire_time).getTime();
    expect(Math.abs(expires - (d.creation_time * 1000 + 7200_000))).toBeLessThan(2000);
    expect(d.meta).toEqual({ k: "v" });
    expect(d.num_uses).toBe(0);
    expect(d.orphan).toBe(false);
    expect(d.path).toBe("auth/token/create");
    expect(d.policies).toEqual(["app", "default"]);
    expect(d.renewable).toBe(true);
    expect(d.type).toBe("service");

    const root = await lookupSelf("root");
    expect(root.body.data.id).toBe("root");
    expect(root.body.data.policies).toEqual(["root"]);
    expect(root.body.data.ttl).toBe(0);
    expect(root.body.data.expire_time).toBeNull();
    expect(root.body.data.display_name).toBe("root");
    expect(root.body.data.orphan).toBe(true);
  });

  it("looks tokens up by token and by accessor (id hidden)", async () => {
    const a = await create("root", { policies: ["app"] });
    const byToken = await call(base, "POST", "auth/token/lookup", { token: "root", body: { token: a.client_token } });
    expect(byToken.status).toBe(200);
    expect(byToken.body.data.id).toBe(a.client_token);
    expect(byToken.body.data.accessor).toBe(a.accessor);

    const byAccessor = await call(base, "POST", "auth/token/lookup-accessor", { token: "root", body: { accessor: a.accessor } });
    expect(byAccessor.status).toBe(200);
    expect(byAccessor.body.data.id).toBe("");
    expect(byAccessor.body.data.accessor).toBe(a.accessor);
    expect(byAccessor.body.data.policies).toEqual(["app", "default"]);

    const unknown = await call(base, "POST", "auth/token/lookup-accessor", { token: "root", body: { accessor: "nosuchaccessor" } });
    expect(unknown.status).toBe(400);
    const badToken = await call(base, "POST", "auth/token/lookup", { token: "root", body: { token: "lhs.nosuchtoken" } });
    expect(badToken.status).toBe(403);
  });

  it("a non-root parent may only hand out a subset of its policies", async () => {
    const parent = await create("root", { policies: ["tokmaker", "app"] });
    const bad = await call(base, "POST", "auth/token/create", { token: parent.client_token, body: { policies: ["other"] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.join(" ")).toMatch(/subset/);
    expect(bad.body.errors.join(" ")).toContain("other");

    const ok = await create(parent.client_token, { policies: ["app"] });
    expect(ok.policies).toEqual(["app", "default"]);
    expect(ok.orphan).toBe(false);
    // No policies given: the parent's.
    const inherit = await create(parent.client_token);
    expect(inherit.policies).toEqual(["app", "default", "tokmaker"]);
    // root may hand out anything, even policies that do not exist (yet).
    const anything = await create("root", { policies: ["does-not-exist"] });
    expect(anything.policies).toEqual(["default", "does-not-exist"]);
    // A non-root parent cannot mint root.
    const rootChild = await call(base, "POST", "auth/token/create", { token: parent.client_token, body: { policies: ["root"] } });
    expect(rootChild.status).toBe(400);
  });

  it("adds default unless no_default_policy", async () => {
    expect((await create("root", { policies: ["app"] })).policies).toEqual(["app", "default"]);
    const nd = await create("root", { policies: ["app"], no_default_policy: true });
    expect(nd.policies).toEqual(["app"]);
    // Without default the token cannot even look itself up.
    expect((await lookupSelf(nd.client_token)).status).toBe(403);
  });

  it("renew-self honours the increment and caps at explicit_max_ttl with a warning", async () => {
    const a = await create("root", { policies: ["app"], ttl: "60s", explicit_max_ttl: "1h" });
    const r = await call(base, "POST", "auth/token/renew-self", { token: a.client_token, body: { increment: "10m" } });
    expect(r.status).toBe(200);
    expect(r.body.auth.lease_duration).toBe(600);
    expect(r.body.auth.client_token).toBe(a.client_token);
    expect(r.body.warnings).toBeNull();
    const ttl = (await lookupSelf(a.client_token)).body.data.ttl;
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);

    const capped = await call(base, "POST", "auth/token/renew-self", { token: a.client_token, body: { increment: 7200 } });
    expect(capped.status).toBe(200);
    expect(capped.body.auth.lease_duration).toBeGreaterThan(3590);
    expect(capped.body.auth.lease_duration).toBeLessThanOrEqual(3600);
    expect(capped.body.warnings).toHaveLength(1);
    expect(capped.body.warnings[0]).toMatch(/max_ttl/);

    // renew by token (root) works too
    const other = await call(base, "POST", "auth/token/renew", { token: "root", body: { token: a.client_token, increment: 120 } });
    expect(other.status).toBe(200);
    expect(other.body.auth.lease_duration).toBe(120);
  });

  it("a non-renewable token cannot be renewed", async () => {
    const a = await create("root", { policies: ["app"], ttl: "1h", renewable: false });
    expect(a.renewable).toBe(false);
    const r = await call(base, "POST", "auth/token/renew-self", { token: a.client_token, body: {} });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/not renewable/);
    // root never expires, so it cannot be renewed either
    expect((await call(base, "POST", "auth/token/renew-self", { token: "root", body: {} })).status).toBe(400);
  });

  it("a token with num_uses=2 works twice and then is gone", async () => {
    const a = await create("root", { policies: ["app"], num_uses: 2 });
    const first = await lookupSelf(a.client_token);
    expect(first.status).toBe(200);
    expect(first.body.data.num_uses).toBe(1);
    expect((await lookupSelf(a.client_token)).status).toBe(200);
    const third = await lookupSelf(a.client_token);
    expect(third.status).toBe(403);
    expect(third.body).toEqual({ errors: ["permission denied"] });
    // Also gone by accessor.
    expect((await call(base, "POST", "auth/token/lookup-accessor", { token: "root", body: { accessor: a.accessor } })).status).toBe(400);
  });

  it("revoking a token revokes its whole tree", async () => {
    const parent = await create("root", { policies: ["tokmaker"] });
    const child = await create(parent.client_token, { policies: ["tokmaker"] });
    const grandchild = await create(child.client_token, {});
    // create-orphan needs no sudo (only no_parent does): this token survives the revocation.
    const orphan = await create(child.client_token, {}, "auth/token/create-orphan");
    expect(orphan.orphan).toBe(true);
    for (const t of [parent, child, grandchild]) expect((await lookupSelf(t.client_token)).status).toBe(200);

    const r = await call(base, "POST", "auth/token/revoke", { token: "root", body: { token: parent.client_token } });
    expect(r.status).toBe(204);
    for (const t of [parent, child, grandchild]) {
      const l = await lookupSelf(t.client_token);
      expect(l.status).toBe(403);
      expect(l.body).toEqual({ errors: ["permission denied"] });
    }
    expect((await lookupSelf(orphan.client_token)).status).toBe(200);
  });

  it("revoke-self revokes the caller and its children", async () => {
    const parent = await create("root", { policies: ["tokmaker"] });
    const child = await create(parent.client_token, {});
    expect((await call(base, "POST", "auth/token/revoke-self", { token: parent.client_token })).status).toBe(204);
    expect((await lookupSelf(parent.client_token)).status).toBe(403);
    expect((await lookupSelf(child.client_token)).status).toBe(403);
  });

  it("revoke-orphan keeps the children alive as orphans", async () => {
    const parent = await create("root", { policies: ["tokmaker"] });
    const child = await create(parent.client_token, {});
    const grandchild = await create(child.client_token, {});
    expect((await lookupSelf(child.client_token)).body.data.orphan).toBe(false);

    const r = await call(base, "POST", "auth/token/revoke-orphan", { token: "root", body: { token: parent.client_token } });
    expect(r.status).toBe(204);
    expect((await lookupSelf(parent.client_token)).status).toBe(403);
    const c = await lookupSelf(child.client_token);
    expect(c.status).toBe(200);
    expect(c.body.data.orphan).toBe(true);
    const g = await lookupSelf(grandchild.client_token);
    expect(g.status).toBe(200);
    expect(g.body.data.orphan).toBe(false);

    // revoke-orphan is sudo-protected: a token holding only update on it is refused.
    await call(base, "PUT", "sys/policies/acl/orphaner", { token: "root", body: { policy: 'path "auth/token/revoke-orphan" { capabilities = ["update"] }' } });
    const noSudo = await create("root", { policies: ["orphaner"] });
    const denied = await call(base, "POST", "auth/token/revoke-orphan", { token: noSudo.client_token, body: { token: child.client_token } });
    expect(denied.status).toBe(403);
    expect((await lookupSelf(child.client_token)).status).toBe(200);
  });

  it("revokes by accessor", async () => {
    const a = await create("root", { policies: ["app"] });
    const r = await call(base, "POST", "auth/token/revoke-accessor", { token: "root", body: { accessor: a.accessor } });
    expect(r.status).toBe(204);
    expect((await lookupSelf(a.client_token)).status).toBe(403);
    const again = await call(base, "POST", "auth/token/revoke-accessor", { token: "root", body: { accessor: a.accessor } });
    expect(again.status).toBe(400);
  });

  it("LIST auth/token/accessors is for root (sudo) only", async () => {
    const a = await create("root", { policies: ["app"] });
    const list = await call(base, "LIST", "auth/token/accessors", { token: "root" });
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toContain(a.accessor);
    // the root token is there too
    const rootAccessor = (await lookupSelf("root")).body.data.accessor;
    expect(list.body.data.keys).toContain(rootAccessor);
    const viaQuery = await call(base, "GET", "auth/token/accessors?list=true", { token: "root" });
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.body.data.keys).toEqual(list.body.data.keys);

    expect((await call(base, "LIST", "auth/token/accessors", { token: a.client_token })).status).toBe(403);
    await call(base, "PUT", "sys/policies/acl/acc-nosudo", { token: "root", body: { policy: 'path "auth/token/accessors" { capabilities = ["list"] }' } });
    const noSudo = await create("root", { policies: ["acc-nosudo"] });
    expect((await call(base, "LIST", "auth/token/accessors", { token: noSudo.client_token })).status).toBe(403);
  });

  it("creates tokens through a token role", async () => {
    const w = await call(base, "POST", "auth/token/roles/r", { token: "root", body: { allowed_policies: ["app"], orphan: true, token_explicit_max_ttl: "2h" } });
    expect(w.status).toBe(204);
    const read = await call(base, "GET", "auth/token/roles/r", { token: "root" });
    expect(read.status).toBe(200);
    expect(read.body.data.allowed_policies).toEqual(["app"]);
    expect(read.body.data.orphan).toBe(true);
    expect(read.body.data.token_explicit_max_ttl).toBe(7200);
    const list = await call(base, "LIST", "auth/token/roles", { token: "root" });
    expect(list.body.data.keys).toEqual(["r"]);

    const a = await create("root", {}, "auth/token/create/r");
    expect(a.policies).toEqual(["app", "default"]);
    expect(a.orphan).toBe(true);
    const d = (await lookupSelf(a.client_token)).body.data;
    expect(d.path).toBe("auth/token/create/r");
    expect(d.role).toBe("r");
    expect(d.explicit_max_ttl).toBe(7200);

    const outside = await call(base, "POST", "auth/token/create/r", { token: "root", body: { policies: ["other"] } });
    expect(outside.status).toBe(400);
    expect(outside.body.errors[0]).toMatch(/allowed policies/);

    const unknownRole = await call(base, "POST", "auth/token/create/nope", { token: "root", body: {} });
    expect(unknownRole.status).toBe(400);

    expect((await call(base, "DELETE", "auth/token/roles/r", { token: "root" })).status).toBe(204);
    expect((await call(base, "GET", "auth/token/roles/r", { token: "root" })).status).toBe(404);
  });

  it("an expired token is refused, and so are its children", async () => {
    const a = await create("root", { policies: ["tokmaker"], ttl: "1s" });
    expect(a.lease_duration).toBe(1);
    const child = await create(a.client_token, { ttl: "1h" });
    expect((await lookupSelf(child.client_token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    // The child is checked first: its parent's expiry must revoke it too.
    const c = await lookupSelf(child.client_token);
    expect(c.status).toBe(403);
    const r = await lookupSelf(a.client_token);
    expect(r.status).toBe(403);
    expect(r.body).toEqual({ errors: ["permission denied"] });
  });

  it("accepts Authorization: Bearer like X-Vault-Token", async () => {
    const a = await create("root", { policies: ["app"] });
    const r = await call(base, "GET", "auth/token/lookup-self", { headers: { Authorization: `Bearer ${a.client_token}` } });
    expect(r.status).toBe(200);
    expect(r.body.data.id).toBe(a.client_token);
    const lower = await call(base, "GET", "auth/token/lookup-self", { headers: { authorization: `bearer ${a.client_token}` } });
    expect(lower.status).toBe(200);
    // X-Vault-Token wins when both are sent
    const both = await call(base, "GET", "auth/token/lookup-self", { token: "root", headers: { Authorization: `Bearer ${a.client_token}` } });
    expect(both.body.data.id).toBe("root");
    // Basic auth is not a token
    const basic = await call(base, "GET", "auth/token/lookup-self", { headers: { Authorization: "Basic cm9vdDpyb290" } });
    expect(basic.status).toBe(403);
  });

  it("refuses requests without a token or with an unknown one", async () => {
    const variants: Record<string, string>[] = [{}, { "X-Vault-Token": "" }, { "X-Vault-Token": "lhs.unknown" }, { Authorization: "Bearer " }];
    for (const headers of variants) {
      const res = await fetch(`${base}/v1/auth/token/lookup-self`, { headers });
      expect(res.status).toBe(403);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ errors: ["permission denied"] });
    }
    const create403 = await call(base, "POST", "auth/token/create", { body: {} });
    expect(create403.status).toBe(403);
    expect(create403.body).toEqual({ errors: ["permission denied"] });
  });
});
