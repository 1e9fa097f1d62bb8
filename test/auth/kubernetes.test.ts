/**
 * Kubernetes auth through the real server against a small TokenReview endpoint over HTTPS (its
 * own openssl-made CA): projected and legacy service-account tokens, bindings by name, namespace
 * and glob, the reviewer bearer (configured, or the login JWT itself), the configured CA, local
 * verification with pem_keys, audiences, and every refusal.
 */
import { randomUUID } from "node:crypto";
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { TestKubernetesApi, type KnownAccount } from "./helpers/k8s-api.js";

let server: RunningServer;
let base: string;
let api: TestKubernetesApi;
let clusterKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let rogueKey: { privateKey: CryptoKey; publicKey: CryptoKey };
const root = { token: "root" };
const REVIEWER = "reviewer-service-account-jwt";
const ISSUER = "https://kubernetes.default.svc.cluster.local";
/** Vault turns every failed TokenReview lookup into `logical.ErrPermissionDenied`. */
const REFUSED = "permission denied";

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};
const login = (jwt: string, role = "web") => call(base, "POST", "auth/kubernetes/login", { body: { role, jwt } });

/** A projected (bound) service-account token, signed like the cluster signs them, and known to the cluster. */
async function projected(sa: Omit<KnownAccount, "uid"> & { uid?: string }, opts: { aud?: string[]; exp?: number; key?: CryptoKey; known?: boolean } = {}): Promise<{ jwt: string; account: KnownAccount }> {
  const account = { ...sa, uid: sa.uid ?? randomUUID() };
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({
    aud: opts.aud ?? [ISSUER],
    "kubernetes.io": { namespace: sa.namespace, pod: { name: `${sa.name}-7d9f`, uid: randomUUID() }, serviceaccount: { name: sa.name, uid: account.uid } },
  })
    .setProtectedHeader({ alg: "RS256", kid: "cluster-key" })
    .setIssuer(ISSUER)
    .setSubject(`system:serviceaccount:${sa.namespace}:${sa.name}`)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(opts.exp ?? now + 3600)
    .sign(opts.key ?? clusterKey.privateKey);
  if (opts.known !== false) api.tokens.set(jwt, account);
  return { jwt, account };
}

/** A legacy secret-based token (no expiry, secret name in the claims). */
async function legacy(sa: Omit<KnownAccount, "uid">): Promise<{ jwt: string; account: KnownAccount }> {
  const account = { ...sa, uid: randomUUID() };
  const jwt = await new SignJWT({
    "kubernetes.io/serviceaccount/namespace": sa.namespace,
    "kubernetes.io/serviceaccount/secret.name": `${sa.name}-token-x7k2p`,
    "kubernetes.io/serviceaccount/service-account.name": sa.name,
    "kubernetes.io/serviceaccount/service-account.uid": account.uid,
  })
    .setProtectedHeader({ alg: "RS256" })
    .setIssuer("kubernetes/serviceaccount")
    .setSubject(`system:serviceaccount:${sa.namespace}:${sa.name}`)
    .sign(clusterKey.privateKey);
  api.tokens.set(jwt, account);
  return { jwt, account };
}

beforeAll(async () => {
  clusterKey = await generateKeyPair("RS256");
  rogueKey = await generateKeyPair("RS256");
  api = await TestKubernetesApi.start();
  api.reviewers.add(REVIEWER);
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await write("sys/auth/kubernetes", { type: "kubernetes" });
  await write("auth/kubernetes/config", { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, token_reviewer_jwt: REVIEWER });
  await write("auth/kubernetes/role/web", { bound_service_account_names: ["web", "api-*"], bound_service_account_namespaces: "prod", token_policies: "web", token_ttl: "30m" });
});
afterAll(async () => {
  await server?.stop();
  await api?.close();
});

describe("kubernetes config and roles", () => {
  it("reads the config back without the reviewer JWT", async () => {
    const r = await call(base, "GET", "auth/kubernetes/config", root);
    expect(r.body.data).toMatchObject({ kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, pem_keys: [], disable_local_ca_jwt: false, token_reviewer_jwt_set: true });
    expect(JSON.stringify(r.body)).not.toContain(REVIEWER);
  });

  it("validates roles and config as Vault does", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["role/bad", { bound_service_account_namespaces: "prod" }, /"bound_service_account_names" can not be empty/],
      ["role/bad", { bound_service_account_names: "web" }, /"bound_service_account_namespaces" can not be empty/],
      ["role/bad", { bound_service_account_names: "*", bound_service_account_namespaces: "*" }, /can't both be wildcards/],
      ["config", { kubernetes_host: api.url, kubernetes_ca_cert: "not a pem" }, /kubernetes_ca_cert: not a PEM/],
      ["config", { kubernetes_host: api.url, pem_keys: ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"] }, /pem_keys: entry 1/],
    ];
    for (const [path, body, msg] of cases) {
      const r = await call(base, "POST", `auth/kubernetes/${path}`, { ...root, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors[0]).toMatch(msg);
    }
  });
});

describe("kubernetes login", () => {
  it("logs in with a projected token confirmed by TokenReview, bearer = the reviewer JWT", async () => {
    const { jwt, account } = await projected({ namespace: "prod", name: "web" });
    const calls = api.calls.length;
    const r = await login(jwt);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth).toMatchObject({
      policies: ["default", "web"],
      metadata: { role: "web", service_account_name: "web", service_account_namespace: "prod", service_account_uid: account.uid, service_account_secret_name: "" },
      lease_duration: 1800,
    });
    expect(api.calls.slice(calls)).toEqual([{ bearer: REVIEWER, token: jwt, audiences: undefined }]);
    const self = await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.body.data).toMatchObject({ display_name: "kubernetes-prod-web", path: "auth/kubernetes/login" });
  });

  it("logs in with a legacy secret token and names its secret", async () => {
    const { jwt } = await legacy({ namespace: "prod", name: "web" });
    const r = await login(jwt);
    expect(r.status).toBe(200);
    expect(r.body.auth.metadata.service_account_secret_name).toBe("web-token-x7k2p");
  });

  it("matches service account globs", async () => {
    expect((await login((await projected({ namespace: "prod", name: "api-worker" })).jwt)).status).toBe(200);
  });

  it("refuses a service account or namespace outside the role, without asking the cluster", async () => {
    const calls = api.calls.length;
    const wrongName = await login((await projected({ namespace: "prod", name: "db" })).jwt);
    expect(wrongName).toEqual({ status: 403, body: { errors: ["service account name not authorized"] } });
    const wrongNs = await login((await projected({ namespace: "dev", name: "web" })).jwt);
    expect(wrongNs).toEqual({ status: 403, body: { errors: ["namespace not authorized"] } });
    expect(api.calls.length).toBe(calls);
  });

  it("refuses when TokenReview says the token is not authenticated", async () => {
    const { jwt } = await projected({ namespace: "prod", name: "web" }, { known: false });
    const r = await login(jwt);
    expect(r).toEqual({ status: 403, body: { errors: [REFUSED] } });
  });

  it("refuses when TokenReview vouches for a different service account, or a recreated one", async () => {
    const { jwt } = await projected({ namespace: "prod", name: "web" });
    api.answerAs.set(jwt, { namespace: "prod", name: "api-worker", uid: randomUUID() });
    expect(await login(jwt)).toEqual({ status: 403, body: { errors: [REFUSED] } });
    const second = await projected({ namespace: "prod", name: "web" });
    api.answerAs.set(second.jwt, { ...second.account, uid: randomUUID() });
    expect(await login(second.jwt)).toEqual({ status: 403, body: { errors: [REFUSED] } });
  });

  it("refuses an expired token locally", async () => {
    const { jwt } = await projected({ namespace: "prod", name: "web" }, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const r = await login(jwt);
    expect(r.status).toBe(403);
    expect(r.body.errors[0]).toBe("invalid expiration time (exp) claim: token is expired");
  });

  it("checks the role's audience locally and asks TokenReview for it", async () => {
    await write("auth/kubernetes/role/aud", { bound_service_account_names: "web", bound_service_account_namespaces: "prod", audience: "leasehold" });
    const without = await login((await projected({ namespace: "prod", name: "web" })).jwt, "aud");
    expect(without).toEqual({ status: 403, body: { errors: ["invalid audience (aud) claim: audience claim does not match any expected audience"] } });
    const { jwt } = await projected({ namespace: "prod", name: "web" }, { aud: [ISSUER, "leasehold"] });
    expect((await login(jwt, "aud")).status).toBe(200);
    expect(api.calls.at(-1)).toEqual({ bearer: REVIEWER, token: jwt, audiences: ["leasehold"] });
  });

  it("answers missing input and an unknown role with 400, an unreadable token with 403 as Vault does", async () => {
    expect(await login("not-a-jwt")).toEqual({ status: 403, body: { errors: ["permission denied"] } });
    expect((await call(base, "POST", "auth/kubernetes/login", { body: { role: "web" } })).body.errors).toEqual(["missing jwt"]);
    expect((await login((await projected({ namespace: "prod", name: "web" })).jwt, "nope")).body.errors).toEqual(['invalid role name "nope"']);
  });

  it("token_bound_cidrs: 10.0.0.0/8 refuses, 127.0.0.1/32 allows", async () => {
    await write("auth/kubernetes/role/far", { bound_service_account_names: "web", bound_service_account_namespaces: "prod", token_bound_cidrs: "10.0.0.0/8" });
    expect((await login((await projected({ namespace: "prod", name: "web" })).jwt, "far")).status).toBe(403);
    await write("auth/kubernetes/role/near", { bound_service_account_names: "web", bound_service_account_namespaces: "prod", token_bound_cidrs: "127.0.0.1/32" });
    expect((await login((await projected({ namespace: "prod", name: "web" })).jwt, "near")).status).toBe(200);
  });

  it("revoking the prefix auth/kubernetes/login revokes the tokens it issued", async () => {
    const token = (await login((await projected({ namespace: "prod", name: "web" })).jwt)).body.auth.client_token;
    expect((await call(base, "PUT", "sys/leases/revoke-prefix/auth/kubernetes/login", root)).status).toBe(204);
    expect((await call(base, "GET", "auth/token/lookup-self", { token })).status).toBe(403);
  });
});

describe("kubernetes cluster settings", () => {
  it("without a reviewer JWT the login JWT reviews itself", async () => {
    api.allowSelfReview = true;
    await write("auth/kubernetes/config", { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, disable_local_ca_jwt: true });
    const { jwt } = await projected({ namespace: "prod", name: "web" });
    expect((await login(jwt)).status).toBe(200);
    expect(api.calls.at(-1)).toEqual({ bearer: jwt, token: jwt, audiences: undefined });
    // The cluster refuses callers it does not accept: no token.
    api.allowSelfReview = false;
    expect(await login((await projected({ namespace: "prod", name: "web" })).jwt)).toEqual({ status: 403, body: { errors: [REFUSED] } });
  });

  it("talks TLS with the configured CA only", async () => {
    const otherCa = api.pki.rootCa("other-ca", "some other CA");
    await write("auth/kubernetes/config", { kubernetes_host: api.url, kubernetes_ca_cert: otherCa.cert, token_reviewer_jwt: REVIEWER });
    const calls = api.calls.length;
    const r = await login((await projected({ namespace: "prod", name: "web" })).jwt);
    expect(r.status).toBe(500);
    expect(r.body.errors[0]).toMatch(/^kubernetes: cannot reach the TokenReview API at https:\/\/127\.0\.0\.1:\d+: /);
    expect(api.calls.length).toBe(calls);
  });

  it("with pem_keys verifies the signature locally before asking the cluster", async () => {
    await write("auth/kubernetes/config", { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, token_reviewer_jwt: REVIEWER, pem_keys: [await exportSPKI(clusterKey.publicKey)] });
    expect((await login((await projected({ namespace: "prod", name: "web" })).jwt)).status).toBe(200);
    // The (test) cluster would vouch for this token, but the broker does not know its signer.
    const calls = api.calls.length;
    const forged = await projected({ namespace: "prod", name: "web" }, { key: rogueKey.privateKey });
    expect(await login(forged.jwt)).toEqual({ status: 403, body: { errors: ["permission denied"] } });
    expect(api.calls.length).toBe(calls);
  });
});
