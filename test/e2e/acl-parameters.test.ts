import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { mountWithRoot, ok, startPkiServer, TOKEN } from "../pki/helpers.js";

/**
 * Vault's parameter constraints in policies (`allowed_parameters`, `denied_parameters`,
 * `required_parameters`), through the real server: policies load through `sys/policies/acl`, and
 * each restricted request sits next to the legitimate one the same token may still make.
 * Every refused request is also made by the root token and succeeds, so a 403 here comes from
 * the ACL, not from the engine refusing the input.
 */
describe("ACL parameter constraints (least privilege)", () => {
  let server: RunningServer;
  let base: string;

  const putPolicy = async (name: string, policy: string) => {
    const r = await call(base, "PUT", `sys/policies/acl/${name}`, { token: TOKEN, body: { policy } });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
  };
  const tokenWith = async (...policies: string[]): Promise<string> => {
    const r = await call(base, "POST", "auth/token/create", { token: TOKEN, body: { policies, ttl: "1h" } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.auth.client_token as string;
  };
  const statusAs = async (token: string, method: string, path: string, body?: unknown): Promise<number> => {
    return (await call(base, method, path, { token, body })).status;
  };
  /** The same request made by root succeeds: the engine accepts it, so a 403 for the token is the ACL's. */
  const rootMay = async (method: string, path: string, body?: unknown) => {
    const r = await call(base, method, path, { token: TOKEN, body });
    expect(r.status, `root ${method} ${path} ${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBeLessThan(300);
  };

  beforeAll(async () => {
    server = await startPkiServer();
    base = server.url;
    await mountWithRoot(base, "pki");
    // The role itself allows any name: what a token may ask for is decided by its policy alone.
    await ok(base, "POST", "pki/roles/web", { allow_any_name: true, key_type: "ec", max_ttl: "72h" });
    await ok(base, "POST", "pki/roles/api", { allow_any_name: true, key_type: "ec", max_ttl: "72h" });
    await ok(base, "POST", "sys/mounts/kv", { type: "kv" }); // version 1: flat keys
  });
  afterAll(async () => {
    await server.stop();
  });

  it("loads a Vault documentation-style policy with every constraint and returns its text as given", async () => {
    const text = `# Certificates for the payments domain only
path "pki/issue/web" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "common_name" = ["*.payments.internal"]
    "ttl"         = []
  }
  denied_parameters = {
    "ip_sans" = []
  }
  required_parameters = ["common_name"]
}

path "auth/token/create" {
  capabilities = ["update"]
  allowed_parameters = {
    "policies" = ["app"]
    "*"        = []
  }
}

# Vault admits only wrapped requests here
path "auth/approle/role/+/secret-id" {
  capabilities = ["update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "90s"
}
`;
    await putPolicy("docs-style", text);
    const read = await call(base, "GET", "sys/policies/acl/docs-style", { token: TOKEN });
    expect(read.status).toBe(200);
    expect(read.body.data.policy).toBe(text);
    // The same policy in Vault's JSON form loads too.
    const json = JSON.stringify({ path: { "pki/issue/web": { capabilities: ["update"], allowed_parameters: { common_name: ["*.payments.internal"] }, required_parameters: ["common_name"] } } });
    await putPolicy("docs-style-json", json);
    expect((await call(base, "GET", "sys/policies/acl/docs-style-json", { token: TOKEN })).body.data.policy).toBe(json);
  });

  it("loads hashi-vault-js's test policy (allowed_parameters with an empty list) and enforces it", async () => {
    await call(base, "POST", "sys/auth/approle", { token: TOKEN, body: { type: "approle" } });
    await ok(base, "POST", "auth/approle/role/knight", { token_ttl: "1h" });
    // The stanzas of hashi-vault-js's container/setup/policies/knight-policy.hcl that matter here.
    await putPolicy("knight", `path "auth/approle/role/knight" {\ncapabilities = ["update"]\n  allowed_parameters = {\n        "token_ttl" = []\n  }\n}\n`);
    const knight = await tokenWith("knight");
    expect(await statusAs(knight, "POST", "auth/approle/role/knight", { token_ttl: "2h" })).toBe(204);
    await rootMay("POST", "auth/approle/role/knight", { token_ttl: "1h", token_policies: ["root-like"] });
    expect(await statusAs(knight, "POST", "auth/approle/role/knight", { token_ttl: "1h", token_policies: ["root-like"] })).toBe(403);
  });

  it("issues certificates only for the allowed common names, and refuses fields the policy does not list", async () => {
    await putPolicy(
      "payments-pki",
      `path "pki/issue/web" {\n  capabilities = ["update"]\n  allowed_parameters = { "common_name" = ["*.payments.internal"], "ttl" = [] }\n}`,
    );
    const token = await tokenWith("payments-pki");
    const issued = await call(base, "POST", "pki/issue/web", { token, body: { common_name: "a.payments.internal", ttl: "1h" } });
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(issued.body.data.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);

    await rootMay("POST", "pki/issue/web", { common_name: "evil.com" });
    const evil = await call(base, "POST", "pki/issue/web", { token, body: { common_name: "evil.com" } });
    expect(evil.status).toBe(403);
    expect(evil.body.errors).toEqual(["permission denied"]);

    // An extra field the policy does not list: refused even with an allowed common name.
    await rootMay("POST", "pki/issue/web", { common_name: "b.payments.internal", alt_names: "evil.com" });
    expect(await statusAs(token, "POST", "pki/issue/web", { common_name: "b.payments.internal", alt_names: "evil.com" })).toBe(403);
    // Globs are Vault's: a suffix match, so the bare domain and look-alikes do not pass.
    expect(await statusAs(token, "POST", "pki/issue/web", { common_name: "payments.internal" })).toBe(403);
    expect(await statusAs(token, "POST", "pki/issue/web", { common_name: "a.payments.internal.evil.com" })).toBe(403);
    // The policy's path is the only one granted.
    expect(await statusAs(token, "POST", "pki/issue/api", { common_name: "a.payments.internal" })).toBe(403);
  });

  it("lets denied_parameters win over allowed_parameters", async () => {
    await putPolicy(
      "kv-denied",
      `path "kv/app" {\n  capabilities = ["create", "update"]\n  allowed_parameters = { "*" = [], "owner" = [] }\n  denied_parameters = { "owner" = ["root", "admin-*"] }\n}`,
    );
    const token = await tokenWith("kv-denied");
    expect(await statusAs(token, "PUT", "kv/app", { owner: "payments", password: "x" })).toBe(204);
    await rootMay("PUT", "kv/app", { owner: "admin-ops" });
    expect(await statusAs(token, "PUT", "kv/app", { owner: "admin-ops", password: "x" })).toBe(403);
    expect(await statusAs(token, "PUT", "kv/app", { owner: "root" })).toBe(403);
    expect((await call(base, "GET", "kv/app", { token: TOKEN })).body.data).toEqual({ owner: "admin-ops" });
  });

  it("treats * as a key (any other parameter) and an empty list as any value", async () => {
    await putPolicy(
      "kv-star",
      `path "kv/star" {\n  capabilities = ["create", "update"]\n  allowed_parameters = { "*" = [], "env" = ["prod", "staging"] }\n}\npath "kv/any" {\n  capabilities = ["create", "update"]\n  allowed_parameters = { "password" = [] }\n}`,
    );
    const token = await tokenWith("kv-star");
    expect(await statusAs(token, "PUT", "kv/star", { env: "prod", anything: "else", more: 1 })).toBe(204);
    await rootMay("PUT", "kv/star", { env: "dev" });
    expect(await statusAs(token, "PUT", "kv/star", { env: "dev", anything: "else" })).toBe(403);
    expect(await statusAs(token, "PUT", "kv/any", { password: "any value at all" })).toBe(204);
    expect(await statusAs(token, "PUT", "kv/any", { password: 12345 })).toBe(204);
    await rootMay("PUT", "kv/any", { password: "p", username: "u" });
    expect(await statusAs(token, "PUT", "kv/any", { password: "p", username: "u" })).toBe(403);
  });

  it("refuses a request that lacks a required parameter", async () => {
    await putPolicy("kv-required", `path "kv/req" {\n  capabilities = ["create", "update"]\n  required_parameters = ["ticket"]\n}`);
    const token = await tokenWith("kv-required");
    expect(await statusAs(token, "PUT", "kv/req", { ticket: "CHG-1", value: "v" })).toBe(204);
    await rootMay("PUT", "kv/req", { value: "v" });
    expect(await statusAs(token, "PUT", "kv/req", { value: "v" })).toBe(403);
    expect(await statusAs(token, "PUT", "kv/req", {})).toBe(403);
  });

  it("constrains a KV v2 write through its top-level keys (data, options)", async () => {
    await putPolicy("kv2-nocas", `path "secret/data/app/*" {\n  capabilities = ["create", "update"]\n  allowed_parameters = { "data" = [] }\n}`);
    const token = await tokenWith("kv2-nocas");
    expect(await statusAs(token, "POST", "secret/data/app/one", { data: { a: "b", nested: { c: 1 } } })).toBe(200);
    await rootMay("POST", "secret/data/app/two", { data: { a: "b" }, options: { cas: 0 } });
    expect(await statusAs(token, "POST", "secret/data/app/three", { data: { a: "b" }, options: { cas: 0 } })).toBe(403);
  });

  it("checks the query parameters of a read, as Vault does with req.Data", async () => {
    await ok(base, "POST", "secret/data/versioned", { data: { v: "1" } });
    await ok(base, "POST", "secret/data/versioned", { data: { v: "2" } });
    await putPolicy("kv2-version", `path "secret/data/versioned" {\n  capabilities = ["read"]\n  allowed_parameters = { "version" = ["2"] }\n}`);
    const token = await tokenWith("kv2-version");
    expect(await statusAs(token, "GET", "secret/data/versioned")).toBe(200);
    expect((await call(base, "GET", "secret/data/versioned?version=2", { token })).body.data.data).toEqual({ v: "2" });
    await rootMay("GET", "secret/data/versioned?version=1");
    expect(await statusAs(token, "GET", "secret/data/versioned?version=1")).toBe(403);
  });

  it("merges two policies on the same path: the allowed values unite", async () => {
    await putPolicy("web-a", `path "pki/issue/web" {\n  capabilities = ["update"]\n  allowed_parameters = { "common_name" = ["*.payments.internal"] }\n}`);
    await putPolicy("web-b", `path "pki/issue/web" {\n  capabilities = ["update"]\n  allowed_parameters = { "common_name" = ["*.billing.internal"] }\n}`);
    const both = await tokenWith("web-a", "web-b");
    const onlyA = await tokenWith("web-a");
    expect(await statusAs(both, "POST", "pki/issue/web", { common_name: "x.payments.internal" })).toBe(200);
    expect(await statusAs(both, "POST", "pki/issue/web", { common_name: "x.billing.internal" })).toBe(200);
    expect(await statusAs(onlyA, "POST", "pki/issue/web", { common_name: "x.billing.internal" })).toBe(403);
    expect(await statusAs(both, "POST", "pki/issue/web", { common_name: "x.evil.com" })).toBe(403);
  });

  it("takes the constraints of the most specific path: a literal path's replace a + path's", async () => {
    await putPolicy(
      "pki-tiers",
      `path "pki/issue/+" {\n  capabilities = ["update"]\n  allowed_parameters = { "common_name" = ["*.internal"] }\n}\npath "pki/issue/web" {\n  capabilities = ["update"]\n  allowed_parameters = { "common_name" = ["*.payments.internal"], "ttl" = [] }\n}`,
    );
    const token = await tokenWith("pki-tiers");
    expect(await statusAs(token, "POST", "pki/issue/web", { common_name: "a.payments.internal", ttl: "1h" })).toBe(200);
    expect(await statusAs(token, "POST", "pki/issue/api", { common_name: "a.billing.internal" })).toBe(200);
    // web: only payments names, although the + path would allow any *.internal name.
    expect(await statusAs(token, "POST", "pki/issue/web", { common_name: "a.billing.internal" })).toBe(403);
    // api: decided by the + path, which does not list ttl.
    await rootMay("POST", "pki/issue/api", { common_name: "a.billing.internal", ttl: "1h" });
    expect(await statusAs(token, "POST", "pki/issue/api", { common_name: "a.billing.internal", ttl: "1h" })).toBe(403);
  });

  it("restricts the policies a token may create children with, checking a list element by element", async () => {
    await putPolicy("app", `path "kv/app" { capabilities = ["read"] }`);
    await putPolicy("creator", `path "auth/token/create" {\n  capabilities = ["update"]\n  allowed_parameters = { "policies" = ["app"], "ttl" = [], "no_default_policy" = [] }\n}`);
    const creator = await tokenWith("creator", "app");
    const child = await call(base, "POST", "auth/token/create", { token: creator, body: { policies: ["app"], ttl: "10m" } });
    expect(child.status, JSON.stringify(child.body)).toBe(200);
    expect(child.body.auth.policies).toEqual(["app", "default"]);
    // "creator" is one of the parent's own policies, so the token store would allow it: the ACL refuses.
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: ["app", "creator"] })).toBe(403);
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: ["creator"] })).toBe(403);
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: "app,creator" })).toBe(403);
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: "app" })).toBe(200);
    // A field the policy does not list.
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: ["app"], num_uses: 0 })).toBe(403);
    expect(await statusAs(creator, "POST", "auth/token/create", { policies: ["app"], ttl: "5m", no_default_policy: true })).toBe(200);
  });

  it("refuses requests under a wrapping TTL bound, which Vault admits only wrapped (leasehold cannot wrap)", async () => {
    await ok(base, "POST", "auth/approle/role/wrapped", { token_ttl: "1h" });
    await putPolicy(
      "wrapped-secret-id",
      `path "auth/approle/role/wrapped/secret-id" {\n  capabilities = ["update"]\n  min_wrapping_ttl = "1s"\n  max_wrapping_ttl = "90s"\n}\npath "auth/approle/role/wrapped/role-id" {\n  capabilities = ["read"]\n}`,
    );
    const token = await tokenWith("wrapped-secret-id");
    expect(await statusAs(token, "GET", "auth/approle/role/wrapped/role-id")).toBe(200);
    await rootMay("POST", "auth/approle/role/wrapped/secret-id", {});
    expect(await statusAs(token, "POST", "auth/approle/role/wrapped/secret-id", {})).toBe(403);
    const caps = await call(base, "POST", "sys/capabilities-self", { token, body: { paths: ["auth/approle/role/wrapped/secret-id"] } });
    expect(caps.body.data.capabilities).toEqual(["update"]);
  });
});
