/**
 * Failed logins answer Vault's status codes and messages, driven over HTTP exactly as hvac and
 * hashi-vault-js send them (`POST auth/<mount>/login` with `{role_id, secret_id}` or `{role, jwt}`).
 * Clients branch on the status: hvac raises `InvalidRequest` for 400 and `Forbidden` for 403.
 *
 * Vault's source decides each row: AppRole (builtin/credential/approle/path_login.go) and the jwt
 * method (vault-plugin-auth-jwt) answer a refused credential with `logical.ErrorResponse` → 400;
 * the kubernetes method (vault-plugin-auth-kubernetes) with `logical.CodedError(403, …)` or
 * `logical.ErrPermissionDenied` → 403; every method answers a caller outside the role's
 * `token_bound_cidrs` with 403 `permission denied`. Each refusal also counts as a login failure
 * in the metrics and is audited with its message; valid logins next to each refusal succeed.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, base64url, exportSPKI, generateKeyPair, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { TestKubernetesApi } from "../auth/helpers/k8s-api.js";
import { TestOidcProvider } from "../auth/helpers/oidc-provider.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
let dir: string;
let idp: TestOidcProvider;
let api: TestKubernetesApi;
let clusterKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let rogueKey: { privateKey: CryptoKey; publicKey: CryptoKey };
const root = { token: "root" };
const ISSUER = "https://kubernetes.default.svc.cluster.local";
const now = () => Math.floor(Date.now() / 1000);
const INVALID = "invalid role or secret ID";
/** The client address as the server sees it, in Vault's quoting. */
const PEER = /^"(127\.0\.0\.1|::ffff:127\.0\.0\.1)"$/;

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};
const login = (mount: string, body: Record<string, unknown>) => call(base, "POST", `auth/${mount}/login`, { body });

async function failures(mount: string): Promise<number> {
  const text = await fetch(`${base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": "root" } }).then((r) => r.text());
  const m = new RegExp(`leasehold_login_failures_total\\{auth_mount="auth/${mount}/"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

/** Expects exactly `{status, errors: [message]}` (or a message matching the pattern), counted once as a failure. */
async function refused(mount: string, body: Record<string, unknown>, status: 400 | 403, message: string | RegExp): Promise<void> {
  const before = await failures(mount);
  const r = await login(mount, body);
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.auth).toBeUndefined();
  expect(r.body.errors).toHaveLength(1);
  if (typeof message === "string") expect(r.body.errors[0]).toBe(message);
  else expect(r.body.errors[0]).toMatch(message);
  expect(await failures(mount)).toBe(before + 1);
}

async function succeeds(mount: string, body: Record<string, unknown>): Promise<void> {
  const r = await login(mount, body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.auth.client_token).toMatch(/^\S+$/);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "leasehold-login-codes-"));
  idp = await TestOidcProvider.start();
  await idp.addKey("k1", "RS256");
  await idp.addKey("unpublished", "RS256", false);
  clusterKey = await generateKeyPair("RS256");
  rogueKey = await generateKeyPair("RS256");
  api = await TestKubernetesApi.start();
  api.reviewers.add("reviewer-jwt");
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await call(base, "PUT", "sys/audit/file", { ...root, body: { type: "file", options: { file_path: join(dir, "audit.log") } } });
  for (const [path, type] of [["approle", "approle"], ["jwt", "jwt"], ["kubernetes", "kubernetes"], ["k8s-pem", "kubernetes"], ["userpass", "userpass"]]) await write(`sys/auth/${path}`, { type });
});
afterAll(async () => {
  await server?.stop();
  await idp?.close();
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("approle: refused credentials are 400, as in Vault", () => {
  const roleIdOf = async (name: string, body: Record<string, unknown> = {}) => {
    await write(`auth/approle/role/${name}`, body);
    return (await call(base, "GET", `auth/approle/role/${name}/role-id`, root)).body.data.role_id as string;
  };
  const secretOf = async (name: string, body: Record<string, unknown> = {}) => (await write(`auth/approle/role/${name}/secret-id`, body)).body.data.secret_id as string;

  it("unknown role ID, wrong secret ID, another role's secret ID: 400 invalid role or secret ID", async () => {
    const roleId = await roleIdOf("app");
    const secret = await secretOf("app");
    await refused("approle", { role_id: "no-such-role-id", secret_id: secret }, 400, INVALID);
    await refused("approle", { role_id: roleId, secret_id: randomUUID() }, 400, INVALID);
    await roleIdOf("other");
    await refused("approle", { role_id: roleId, secret_id: await secretOf("other") }, 400, INVALID);
    await succeeds("approle", { role_id: roleId, secret_id: secret });
  });

  it("an expired or used-up secret ID: 400 invalid role or secret ID", async () => {
    const roleId = await roleIdOf("short");
    const once = await secretOf("short", { num_uses: 1 });
    await succeeds("approle", { role_id: roleId, secret_id: once });
    await refused("approle", { role_id: roleId, secret_id: once }, 400, INVALID);
    const expiring = await secretOf("short", { ttl: 1 });
    const fresh = await secretOf("short");
    await new Promise((r) => setTimeout(r, 1100));
    await refused("approle", { role_id: roleId, secret_id: expiring }, 400, INVALID);
    await succeeds("approle", { role_id: roleId, secret_id: fresh });
  });

  it("missing fields: 400 missing role_id / missing secret_id", async () => {
    const roleId = await roleIdOf("app");
    await refused("approle", { secret_id: await secretOf("app") }, 400, "missing role_id");
    await refused("approle", { role_id: roleId }, 400, "missing secret_id");
  });

  it("outside the role's or the secret ID's CIDR blocks: 400 naming the peer, and nothing consumed", async () => {
    const far = await roleIdOf("far-role", { secret_id_bound_cidrs: "10.0.0.0/8" });
    const farSecret = await secretOf("far-role", { num_uses: 1 });
    const r = await login("approle", { role_id: far, secret_id: farSecret });
    expect(r.status).toBe(400);
    const [, peer] = /^source address (".*") unauthorized by CIDR restrictions on the role$/.exec(r.body.errors[0]) ?? [];
    expect(peer).toMatch(PEER);
    // Without a good secret ID the answer does not tell that the role ID exists.
    await refused("approle", { role_id: far, secret_id: randomUUID() }, 400, INVALID);
    expect((await call(base, "POST", "auth/approle/role/far-role/secret-id/lookup", { ...root, body: { secret_id: farSecret } })).body.data.secret_id_num_uses).toBe(1);

    const roleId = await roleIdOf("secret-cidr");
    await refused("approle", { role_id: roleId, secret_id: await secretOf("secret-cidr", { cidr_list: "10.0.0.0/8" }) }, 400, /^source address "(127\.0\.0\.1|::ffff:127\.0\.0\.1)" unauthorized through CIDR restrictions on the secret ID$/);
    await succeeds("approle", { role_id: roleId, secret_id: await secretOf("secret-cidr", { cidr_list: "127.0.0.0/8" }) });
    const near = await roleIdOf("near-role", { secret_id_bound_cidrs: "127.0.0.0/8" });
    await succeeds("approle", { role_id: near, secret_id: await secretOf("near-role") });
  });

  it("outside token_bound_cidrs: 403 permission denied", async () => {
    const far = await roleIdOf("far-token", { token_bound_cidrs: "10.0.0.0/8" });
    await refused("approle", { role_id: far, secret_id: await secretOf("far-token") }, 403, "permission denied");
    const near = await roleIdOf("near-token", { token_bound_cidrs: "127.0.0.1/32" });
    await succeeds("approle", { role_id: near, secret_id: await secretOf("near-token") });
  });
});

describe("jwt: refused tokens and claims are 400, as in Vault", () => {
  const good = (extra: Record<string, unknown> = {}) => ({ sub: "repo:acme/api", aud: "leasehold", team: "ops", ...extra });
  const jwtLogin = async (claims: Record<string, unknown>, role = "ci", kid = "k1") => ({ role, jwt: await idp.sign(claims, kid) });

  beforeAll(async () => {
    await write("auth/jwt/config", { oidc_discovery_url: idp.url, jwks_refresh_cooldown: "1s" });
    await write("auth/jwt/role/ci", { user_claim: "sub", bound_audiences: "leasehold", bound_claims: { team: "ops" }, token_policies: "default" });
  });

  it("a valid token logs in (positive control)", async () => {
    await succeeds("jwt", await jwtLogin(good()));
  });

  it("bad signature, unknown key, malformed token: 400", async () => {
    const [h, , s] = (await idp.sign(good(), "k1")).split(".");
    const tampered = `${h}.${base64url.encode(JSON.stringify({ ...good({ team: "admins" }), iss: idp.url, exp: now() + 300 }))}.${s}`;
    await refused("jwt", { role: "ci", jwt: tampered }, 400, "error validating token: invalid signature");
    await refused("jwt", await jwtLogin(good(), "ci", "unpublished"), 400, "error validating token: no known key matches the token's key ID");
    await refused("jwt", { role: "ci", jwt: "not-a-jwt" }, 400, "error validating token: the token is not a well-formed JWT");
    await succeeds("jwt", await jwtLogin(good()));
  });

  it("wrong audience, wrong issuer, expired: 400 error validating token", async () => {
    await refused("jwt", await jwtLogin(good({ aud: "someone-else" })), 400, "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience");
    await refused("jwt", await jwtLogin(good({ iss: "https://evil.example" })), 400, "error validating token: invalid issuer (iss) claim");
    await refused("jwt", await jwtLogin(good({ exp: now() - 3600, iat: now() - 7200 })), 400, "error validating token: invalid expiration time (exp) claim: token is expired");
    await succeeds("jwt", await jwtLogin(good({ aud: ["other", "leasehold"] })));
  });

  it("missing or mismatched bound claim, missing user claim: 400", async () => {
    await refused("jwt", await jwtLogin(good({ team: undefined })), 400, 'error validating claims: claim "team" is missing');
    await refused("jwt", await jwtLogin(good({ team: "dev" })), 400, 'error validating claims: claim "team" does not match any associated bound claim values');
    await write("auth/jwt/role/by-email", { user_claim: "email", bound_audiences: "leasehold" });
    await refused("jwt", await jwtLogin(good(), "by-email"), 400, 'claim "email" not found in token');
    await succeeds("jwt", await jwtLogin(good({ email: "dev@acme.test" }), "by-email"));
  });

  it("unknown role and missing token: 400", async () => {
    await refused("jwt", await jwtLogin(good(), "nope"), 400, 'role "nope" could not be found');
    await refused("jwt", { role: "ci" }, 400, "missing token");
  });

  it("outside token_bound_cidrs: 403 permission denied", async () => {
    await write("auth/jwt/role/far", { user_claim: "sub", bound_audiences: "leasehold", token_bound_cidrs: "10.0.0.0/8" });
    await refused("jwt", await jwtLogin(good(), "far"), 403, "permission denied");
    await write("auth/jwt/role/near", { user_claim: "sub", bound_audiences: "leasehold", token_bound_cidrs: "127.0.0.1/32" });
    await succeeds("jwt", await jwtLogin(good(), "near"));
  });
});

describe("kubernetes: refusals stay 403, as in Vault", () => {
  /** A projected service-account token; `known` tells the fake cluster to vouch for it. */
  async function saToken(ns: string, name: string, opts: { aud?: string[]; exp?: number; key?: CryptoKey; known?: boolean; claims?: Record<string, unknown> } = {}): Promise<string> {
    const uid = randomUUID();
    const jwt = await new SignJWT(opts.claims ?? { aud: opts.aud ?? [ISSUER], "kubernetes.io": { namespace: ns, serviceaccount: { name, uid } } })
      .setProtectedHeader({ alg: "RS256" })
      .setIssuer(ISSUER)
      .setSubject(`system:serviceaccount:${ns}:${name}`)
      .setIssuedAt(now() - 60)
      .setExpirationTime(opts.exp ?? now() + 3600)
      .sign(opts.key ?? clusterKey.privateKey);
    if (opts.known !== false) api.tokens.set(jwt, { namespace: ns, name, uid });
    return jwt;
  }
  const bindings = { bound_service_account_names: "web", bound_service_account_namespaces: "prod", token_policies: "default" };

  beforeAll(async () => {
    await write("auth/kubernetes/config", { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, token_reviewer_jwt: "reviewer-jwt" });
    await write("auth/kubernetes/role/web", bindings);
    await write("auth/k8s-pem/config", { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, token_reviewer_jwt: "reviewer-jwt", pem_keys: [await exportSPKI(clusterKey.publicKey)] });
    await write("auth/k8s-pem/role/web", bindings);
  });

  it("a token the cluster vouches for logs in (positive control, with and without pem_keys)", async () => {
    await succeeds("kubernetes", { role: "web", jwt: await saToken("prod", "web") });
    await succeeds("k8s-pem", { role: "web", jwt: await saToken("prod", "web") });
  });

  it("TokenReview denies the token: 403 permission denied", async () => {
    await refused("kubernetes", { role: "web", jwt: await saToken("prod", "web", { known: false }) }, 403, "permission denied");
  });

  it("wrong namespace, wrong service account, no service account at all: 403 naming the binding", async () => {
    const calls = api.calls.length;
    await refused("kubernetes", { role: "web", jwt: await saToken("dev", "web") }, 403, "namespace not authorized");
    await refused("kubernetes", { role: "web", jwt: await saToken("prod", "db") }, 403, "service account name not authorized");
    await refused("kubernetes", { role: "web", jwt: await saToken("prod", "web", { claims: { aud: [ISSUER] } }) }, 403, "service account name not authorized");
    // None of them was worth asking the cluster about.
    expect(api.calls.length).toBe(calls);
  });

  it("expired token, wrong audience: 403 with the validator's reason", async () => {
    await refused("kubernetes", { role: "web", jwt: await saToken("prod", "web", { exp: now() - 3600 }) }, 403, "invalid expiration time (exp) claim: token is expired");
    await write("auth/kubernetes/role/aud", { ...bindings, audience: "leasehold" });
    await refused("kubernetes", { role: "aud", jwt: await saToken("prod", "web") }, 403, "invalid audience (aud) claim: audience claim does not match any expected audience");
    await succeeds("kubernetes", { role: "aud", jwt: await saToken("prod", "web", { aud: [ISSUER, "leasehold"] }) });
  });

  it("bad signature (pem_keys) and an unreadable token: 403 permission denied", async () => {
    await refused("k8s-pem", { role: "web", jwt: await saToken("prod", "web", { key: rogueKey.privateKey }) }, 403, "permission denied");
    await refused("kubernetes", { role: "web", jwt: "not-a-jwt" }, 403, "permission denied");
  });

  it("unknown role and missing fields: 400", async () => {
    await refused("kubernetes", { role: "nope", jwt: await saToken("prod", "web") }, 400, 'invalid role name "nope"');
    await refused("kubernetes", { role: "web" }, 400, "missing jwt");
    await refused("kubernetes", { jwt: await saToken("prod", "web") }, 400, "missing role");
  });

  it("outside token_bound_cidrs: 403 permission denied", async () => {
    await write("auth/kubernetes/role/far", { ...bindings, token_bound_cidrs: "10.0.0.0/8" });
    await refused("kubernetes", { role: "far", jwt: await saToken("prod", "web") }, 403, "permission denied");
    await write("auth/kubernetes/role/near", { ...bindings, token_bound_cidrs: "127.0.0.1/32" });
    await succeeds("kubernetes", { role: "near", jwt: await saToken("prod", "web") });
  });
});

describe("userpass: a wrong password and an unknown user are the same 400, as in Vault", () => {
  // The username is part of the path (`auth/userpass/login/<username>`), the password the body.
  const userpassLogin = (user: string, body: Record<string, unknown>) => call(base, "POST", `auth/userpass/login/${user}`, { body });
  const userpassRefused = async (user: string, body: Record<string, unknown>, status: 400 | 403, message: string) => {
    const before = await failures("userpass");
    const r = await userpassLogin(user, body);
    expect(r).toEqual({ status, body: { errors: [message] } });
    expect(await failures("userpass")).toBe(before + 1);
  };

  it("wrong password, unknown user: 400 invalid username or password; missing password: 400", async () => {
    await write("auth/userpass/users/alice", { password: "pw-alice", token_policies: "default" });
    await userpassRefused("alice", { password: "wrong" }, 400, "invalid username or password");
    await userpassRefused("nobody", { password: "pw-alice" }, 400, "invalid username or password");
    await userpassRefused("alice", {}, 400, "missing password");
    expect((await userpassLogin("alice", { password: "pw-alice" })).status).toBe(200);
  });

  it("outside token_bound_cidrs: 403 permission denied", async () => {
    await write("auth/userpass/users/far", { password: "pw-far", token_bound_cidrs: "10.0.0.0/8" });
    await userpassRefused("far", { password: "pw-far" }, 403, "permission denied");
    await write("auth/userpass/users/near", { password: "pw-near", token_bound_cidrs: "127.0.0.1/32" });
    expect((await userpassLogin("near", { password: "pw-near" })).status).toBe(200);
  });
});

describe("refusals stay audited and rate-limited", () => {
  it("each refused login is audited with the message the client got", async () => {
    const entries = readFileSync(join(dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const errorsAt = (path: string) => entries.filter((e) => e.type === "response" && e.request?.path === path).map((e) => e.error ?? "");
    expect(errorsAt("auth/approle/login")).toContain(INVALID);
    expect(errorsAt("auth/jwt/login")).toContain("error validating token: invalid signature");
    expect(errorsAt("auth/kubernetes/login")).toContain("namespace not authorized");
    // Successful logins are audited without an error.
    expect(errorsAt("auth/approle/login")).toContain("");
  });

  it("refused logins still use up the per-address login burst (429 past it)", async () => {
    const limited = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1, burst: 2 } });
    try {
      expect((await call(limited.url, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(limited.url, "POST", "auth/approle/login", { body: { role_id: "guess", secret_id: "guess" } })).status);
      expect(statuses).toEqual([400, 400, 429]);
      // Not a login: unaffected.
      expect((await call(limited.url, "GET", "auth/token/lookup-self", root)).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});
