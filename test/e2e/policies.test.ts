import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

describe("ACL policies end to end", () => {
  let server: RunningServer;
  let base: string;

  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });
  const putPolicy = async (name: string, policy: string) => {
    const r = await root("PUT", `sys/policies/acl/${name}`, { policy });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
  };
  const tokenWith = async (...policies: string[]): Promise<string> => {
    const r = await root("POST", "auth/token/create", { policies });
    expect(r.status).toBe(200);
    return r.body.auth.client_token as string;
  };

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("stores HCL and JSON policies and reads them back as written", async () => {
    const hcl = '# app readers\npath "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n';
    await putPolicy("hcl-pol", hcl);
    const r = await root("GET", "sys/policies/acl/hcl-pol");
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ name: "hcl-pol", policy: hcl });
    expect(r.body.name).toBe("hcl-pol");
    expect(r.body.policy).toBe(hcl);

    const json = JSON.stringify({ path: { "secret/data/json/*": { capabilities: ["read"] } } });
    await putPolicy("json-pol", json);
    const j = await root("GET", "sys/policies/acl/json-pol");
    expect(j.body.data).toEqual({ name: "json-pol", policy: json });
    expect(j.body.policy).toBe(json);

    // Names are case-insensitive and stored lower-cased
    await putPolicy("MixedCase", 'path "x/*" { capabilities = ["read"] }');
    const m = await root("GET", "sys/policies/acl/mixedcase");
    expect(m.status).toBe(200);
    expect(m.body.data.name).toBe("mixedcase");

    // The JSON policy works for a token
    await root("POST", "secret/data/json/k", { data: { v: 1 } });
    const t = await tokenWith("json-pol");
    const read = await call(base, "GET", "secret/data/json/k", { token: t });
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ v: 1 });
  });

  it("lists policies with LIST and the legacy sys/policy", async () => {
    const list = await root("LIST", "sys/policies/acl");
    expect(list.status).toBe(200);
    expect(list.body.data.keys).toEqual(["default", "hcl-pol", "json-pol", "mixedcase"]);
    const q = await root("GET", "sys/policies/acl?list=true");
    expect(q.body.data.keys).toEqual(list.body.data.keys);

    const legacy = await root("GET", "sys/policy");
    expect(legacy.status).toBe(200);
    expect(legacy.body.keys).toEqual(["default", "hcl-pol", "json-pol", "mixedcase", "root"]);
    expect(legacy.body.policies).toEqual(legacy.body.keys);
    expect(legacy.body.data.policies).toEqual(legacy.body.keys);

    // Legacy write/read with `rules`
    const w = await root("PUT", "sys/policy/legacy", { rules: 'path "legacy/*" { policy = "read" }' });
    expect(w.status).toBe(204);
    const r = await root("GET", "sys/policy/legacy");
    expect(r.body.name).toBe("legacy");
    expect(r.body.rules).toBe('path "legacy/*" { policy = "read" }');
    expect(r.body.data).toEqual({ name: "legacy", rules: 'path "legacy/*" { policy = "read" }' });
    const caps = await root("POST", "sys/capabilities", { token: await tokenWith("legacy"), paths: ["legacy/x"] });
    expect(caps.body.capabilities).toEqual(["list", "read"]);
  });

  it("deletes policies, but never default or root", async () => {
    await putPolicy("doomed", 'path "a" { capabilities = ["read"] }');
    expect((await root("DELETE", "sys/policies/acl/doomed")).status).toBe(204);
    const gone = await root("GET", "sys/policies/acl/doomed");
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ errors: [] });
    expect((await root("LIST", "sys/policies/acl")).body.data.keys).not.toContain("doomed");

    for (const name of ["default", "root"]) {
      const d = await root("DELETE", `sys/policies/acl/${name}`);
      expect(d.status).toBe(400);
      expect(d.body.errors[0]).toContain(`cannot delete the ${name} policy`);
      const legacy = await root("DELETE", `sys/policy/${name}`);
      expect(legacy.status).toBe(400);
    }
    expect((await root("GET", "sys/policies/acl/default")).status).toBe(200);
    // root cannot be overwritten either
    const w = await root("PUT", "sys/policies/acl/root", { policy: 'path "*" { capabilities = ["deny"] }' });
    expect(w.status).toBe(400);
  });

  it("refuses invalid policies with a message naming the problem, storing nothing", async () => {
    const cases: { text: string; mentions: RegExp }[] = [
      { text: 'path "secret/*" { capabilities = ["read"', mentions: /line|expected|unterminated|end of input/i },
      { text: 'path "secret/*" { capabilities = ["reed"] }', mentions: /unknown capability "reed"/ },
      { text: 'path "secret/*" { capabilitiez = ["read"] }', mentions: /unknown key "capabilitiez"/ },
      { text: 'path "sec*ret/x" { capabilities = ["read"] }', mentions: /"\*" is only allowed as the last character/ },
      { text: 'path "secret/*" { capabilities = "read" }', mentions: /capabilities must be a list/ },
      { text: 'path "secret/*" { capabilities = ["read"] mfa_methods = ["m"] }', mentions: /mfa_methods is not supported/ },
      { text: '{"path": {"secret/*": {"capabilities": ["fly"]}}}', mentions: /unknown capability "fly"/ },
      { text: '{"path": ', mentions: /json|unexpected|end/i },
      { text: "   ", mentions: /policy/ },
    ];
    for (const [i, c] of cases.entries()) {
      const name = `bad-${i}`;
      const r = await root("PUT", `sys/policies/acl/${name}`, { policy: c.text });
      expect(r.status, `${c.text} → ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.errors.join("\n")).toMatch(c.mentions);
      expect((await root("GET", `sys/policies/acl/${name}`)).status).toBe(404);
    }
    // An invalid update leaves the existing policy as it was.
    const good = 'path "keep/*" { capabilities = ["read"] }';
    await putPolicy("keep", good);
    expect((await root("PUT", "sys/policies/acl/keep", { policy: 'path "keep/*" { capabilities = ["bogus"] }' })).status).toBe(400);
    expect((await root("GET", "sys/policies/acl/keep")).body.data.policy).toBe(good);
    // Missing policy text and bad names.
    expect((await root("PUT", "sys/policies/acl/nopolicy", {})).status).toBe(400);
    expect((await root("PUT", "sys/policies/acl/bad%20name", { policy: good })).status).toBe(400);
    const list = (await root("LIST", "sys/policies/acl")).body.data.keys as string[];
    expect(list.filter((k) => k.startsWith("bad") || k === "nopolicy")).toEqual([]);
  });

  it("enforces read-but-not-write on secret/data/app/*", async () => {
    await putPolicy("app-read", 'path "secret/data/app/*" { capabilities = ["read"] }');
    expect((await root("POST", "secret/data/app/db", { data: { password: "pw" } })).status).toBe(200);
    const t = await tokenWith("app-read");
    const r = await call(base, "GET", "secret/data/app/db", { token: t });
    expect(r.status).toBe(200);
    expect(r.body.data.data).toEqual({ password: "pw" });
    for (const [method, body] of [["POST", { data: { password: "x" } }], ["PUT", { data: { password: "x" } }], ["DELETE", undefined], ["PATCH", { data: { a: 1 } }]] as const) {
      const w = await call(base, method, "secret/data/app/db", { token: t, body, headers: method === "PATCH" ? { "Content-Type": "application/merge-patch+json" } : {} });
      expect(w.status, method).toBe(403);
      expect(w.body).toEqual({ errors: ["permission denied"] });
    }
    // outside the glob
    expect((await call(base, "GET", "secret/data/other", { token: t })).status).toBe(403);
    // "secret/data/app/*" does not match "secret/data/app" itself... but does match "secret/data/app/" prefix
    expect((await call(base, "GET", "secret/data/app", { token: t })).status).toBe(403);
    // the value was not changed
    expect((await root("GET", "secret/data/app/db")).body.data.metadata.version).toBe(1);
  });

  it("a deny on a more specific path beats a broad allow", async () => {
    await putPolicy("broad", 'path "secret/data/team/*" { capabilities = ["read", "create", "update"] }');
    await putPolicy("narrow-deny", 'path "secret/data/team/private*" { capabilities = ["deny"] }\npath "secret/data/team/exact" { capabilities = ["deny"] }');
    for (const k of ["public", "private", "private-2", "exact"]) expect((await root("POST", `secret/data/team/${k}`, { data: { k } })).status).toBe(200);
    const t = await tokenWith("broad", "narrow-deny");
    expect((await call(base, "GET", "secret/data/team/public", { token: t })).status).toBe(200);
    for (const k of ["private", "private-2", "exact"]) {
      expect((await call(base, "GET", `secret/data/team/${k}`, { token: t })).status, k).toBe(403);
      expect((await call(base, "POST", `secret/data/team/${k}`, { token: t, body: { data: { x: 1 } } })).status, k).toBe(403);
    }
    // Deny on the SAME pattern from another policy beats the allow.
    await putPolicy("same-deny", 'path "secret/data/team/*" { capabilities = ["deny"] }');
    const t2 = await tokenWith("broad", "same-deny");
    expect((await call(base, "GET", "secret/data/team/public", { token: t2 })).status).toBe(403);
    // The broad policy alone grants without the deny.
    const t3 = await tokenWith("broad");
    expect((await call(base, "GET", "secret/data/team/private", { token: t3 })).status).toBe(200);
  });

  it("`+` matches exactly one segment", async () => {
    await putPolicy("plus", 'path "secret/data/+/config" { capabilities = ["read"] }');
    for (const k of ["svc1/config", "svc2/config", "svc1/sub/config", "svc1/other"]) expect((await root("POST", `secret/data/${k}`, { data: { k } })).status).toBe(200);
    const t = await tokenWith("plus");
    expect((await call(base, "GET", "secret/data/svc1/config", { token: t })).status).toBe(200);
    expect((await call(base, "GET", "secret/data/svc2/config", { token: t })).body.data.data).toEqual({ k: "svc2/config" });
    expect((await call(base, "GET", "secret/data/svc1/sub/config", { token: t })).status).toBe(403);
    expect((await call(base, "GET", "secret/data/svc1/other", { token: t })).status).toBe(403);
  });

  it("sys/internal/ui/mounts shows a token only the mounts it can do something under, as Vault does", async () => {
    await root("POST", "sys/mounts/hidden-kv", { type: "kv", options: { version: "2" } });
    await putPolicy("ui-mounts", 'path "secret/data/app/*" { capabilities = ["read"] }');
    const token = await tokenWith("ui-mounts");
    const list = await call(base, "GET", "sys/internal/ui/mounts", { token });
    expect(list.status).toBe(200);
    // sys/ too: the default policy grants paths under it (sys/capabilities-self, sys/leases/renew, ...).
    expect(Object.keys(list.body.data.secret).sort()).toEqual(["secret/", "sys/"]);
    const one = await call(base, "GET", "sys/internal/ui/mounts/secret/app/x", { token });
    expect(one.status).toBe(200);
    expect(one.body.data).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" } });
    // A mount it has no access under answers like one that does not exist, so mounts cannot be probed.
    const hidden = await call(base, "GET", "sys/internal/ui/mounts/hidden-kv/x", { token });
    const missing = await call(base, "GET", "sys/internal/ui/mounts/nowhere/x", { token });
    expect(hidden.status).toBe(403);
    expect(missing.status).toBe(403);
    expect(hidden.body.errors[0]).toMatch(/preflight capability check returned 403/);
    expect(Object.keys((await root("GET", "sys/internal/ui/mounts")).body.data.secret)).toContain("hidden-kv/");
  });

  it("answers sys/capabilities-self and sys/capabilities", async () => {
    await putPolicy("caps", 'path "secret/data/caps/*" { capabilities = ["read", "list", "update"] }\npath "secret/data/caps/no" { capabilities = ["deny"] }');
    const t = await tokenWith("caps");
    const self = await call(base, "POST", "sys/capabilities-self", { token: t, body: { paths: ["secret/data/caps/a"] } });
    expect(self.status).toBe(200);
    expect(self.body.capabilities).toEqual(["list", "read", "update"]);
    expect(self.body.data.capabilities).toEqual(["list", "read", "update"]);
    expect(self.body["secret/data/caps/a"]).toEqual(["list", "read", "update"]);

    const multi = await call(base, "POST", "sys/capabilities-self", { token: t, body: { paths: ["secret/data/caps/a", "secret/data/caps/no", "sys/mounts", "auth/token/lookup-self"] } });
    expect(multi.body.data).toEqual({
      "secret/data/caps/a": ["list", "read", "update"],
      "secret/data/caps/no": ["deny"],
      "sys/mounts": ["deny"],
      "auth/token/lookup-self": ["read"],
    });

    const byRoot = await root("POST", "sys/capabilities", { token: t, paths: ["secret/data/caps/b"] });
    expect(byRoot.status).toBe(200);
    expect(byRoot.body.capabilities).toEqual(["list", "read", "update"]);
    const rootSelf = await root("POST", "sys/capabilities-self", { paths: ["anything/at/all"] });
    expect(rootSelf.body.capabilities).toEqual(["root"]);
    // sys/capabilities (about another token) is not in default
    expect((await call(base, "POST", "sys/capabilities", { token: t, body: { token: t, paths: ["x"] } })).status).toBe(403);
    expect((await root("POST", "sys/capabilities", { token: "lhs.bogus", paths: ["x"] })).status).toBe(403);
    expect((await call(base, "POST", "sys/capabilities-self", { token: t, body: {} })).status).toBe(400);
  });

  it("sudo-protected paths need sudo besides the capability", async () => {
    await putPolicy("nosudo", 'path "sys/audit" { capabilities = ["read", "list"] }\npath "auth/token/accessors" { capabilities = ["list"] }\npath "auth/token/accessors/" { capabilities = ["list"] }');
    await putPolicy("withsudo", 'path "sys/audit" { capabilities = ["read", "sudo"] }\npath "auth/token/accessors" { capabilities = ["list", "sudo"] }');
    const without = await tokenWith("nosudo");
    const withSudo = await tokenWith("withsudo");

    const a1 = await call(base, "GET", "sys/audit", { token: without });
    expect(a1.status).toBe(403);
    expect(a1.body).toEqual({ errors: ["permission denied"] });
    const a2 = await call(base, "GET", "sys/audit", { token: withSudo });
    expect(a2.status).toBe(200);
    expect(a2.body.data).toEqual({});

    expect((await call(base, "LIST", "auth/token/accessors", { token: without })).status).toBe(403);
    const l = await call(base, "LIST", "auth/token/accessors", { token: withSudo });
    expect(l.status).toBe(200);
    expect(Array.isArray(l.body.data.keys)).toBe(true);
    expect(l.body.data.keys.length).toBeGreaterThanOrEqual(3);
    // sudo alone does not grant the operation
    await putPolicy("sudoonly", 'path "sys/audit" { capabilities = ["sudo"] }');
    expect((await call(base, "GET", "sys/audit", { token: await tokenWith("sudoonly") })).status).toBe(403);
  });

  it("distinguishes create from update on KV", async () => {
    await putPolicy("upd-only", 'path "secret/data/cu/*" { capabilities = ["update", "read"] }');
    await putPolicy("create-only", 'path "secret/data/cu/*" { capabilities = ["create", "read"] }');
    const upd = await tokenWith("upd-only");
    const crt = await tokenWith("create-only");

    // update-only cannot create a new key ...
    const c1 = await call(base, "POST", "secret/data/cu/new1", { token: upd, body: { data: { v: 1 } } });
    expect(c1.status).toBe(403);
    expect((await root("GET", "secret/data/cu/new1")).status).toBe(404);
    // ... but can update an existing one
    expect((await root("POST", "secret/data/cu/existing", { data: { v: 1 } })).status).toBe(200);
    const u1 = await call(base, "PUT", "secret/data/cu/existing", { token: upd, body: { data: { v: 2 } } });
    expect(u1.status).toBe(200);
    expect(u1.body.data.version).toBe(2);

    // create-only can create a new key ...
    const c2 = await call(base, "POST", "secret/data/cu/new2", { token: crt, body: { data: { v: 1 } } });
    expect(c2.status).toBe(200);
    expect(c2.body.data.version).toBe(1);
    // ... but not overwrite it, nor the existing one
    expect((await call(base, "POST", "secret/data/cu/new2", { token: crt, body: { data: { v: 2 } } })).status).toBe(403);
    expect((await call(base, "POST", "secret/data/cu/existing", { token: crt, body: { data: { v: 3 } } })).status).toBe(403);
    expect((await root("GET", "secret/data/cu/existing")).body.data.data).toEqual({ v: 2 });
    expect((await root("GET", "secret/data/cu/new2")).body.data.metadata.version).toBe(1);
  });
});
