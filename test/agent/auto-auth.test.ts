import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { SignJWT, generateKeyPair, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { httpsCall } from "../auth/helpers/https.js";
import { TestKubernetesApi } from "../auth/helpers/k8s-api.js";
import { TestOidcProvider } from "../auth/helpers/oidc-provider.js";
import { OpensslPki, type Issued } from "../auth/helpers/openssl.js";
import { ok } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { Scratch, agentPreamble, appRoleFiles, exitOf, isAlive, killAgents, logsWith, spawnAgent, waitForAgent } from "./helpers.js";

/**
 * The agent's other auto-auth methods, end to end with the agent as a child process: jwt against
 * a real OIDC provider (discovery + JWKS), kubernetes against a TokenReview endpoint speaking the
 * real protocol (a rotated token file is what the next login sends), cert over mTLS to the dev
 * server with TLS; and the pid file.
 */
let server: RunningServer;
let base: string;
let tlsServer: RunningServer;
let idp: TestOidcProvider;
let k8s: TestKubernetesApi;
let clusterKey: { privateKey: CryptoKey; publicKey: CryptoKey };
const pki = new OpensslPki();
let clientCa: Issued;
let agentCert: Issued;
const scratch = new Scratch();
const REVIEWER = "reviewer-service-account-jwt";
const K8S_ISSUER = "https://kubernetes.default.svc.cluster.local";
const KV_POLICY = 'path "secret/data/agent/*" { capabilities = ["read"] }';
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

/** A projected service-account token the fake cluster vouches for. */
async function serviceAccountToken(namespace: string, name: string): Promise<string> {
  const uid = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ aud: [K8S_ISSUER], "kubernetes.io": { namespace, pod: { name: `${name}-${uid.slice(0, 5)}`, uid: randomUUID() }, serviceaccount: { name, uid } } })
    .setProtectedHeader({ alg: "RS256", kid: "cluster-key" })
    .setIssuer(K8S_ISSUER)
    .setSubject(`system:serviceaccount:${namespace}:${name}`)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 3600)
    .sign(clusterKey.privateKey);
  k8s.tokens.set(jwt, { namespace, name, uid });
  return jwt;
}

/** A template rendering the \`value\` of the KV v2 secret \`secret/agent/<key>\` to \`dest\`. */
function kvTemplate(dest: string, key: string): string {
  return `
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/data/agent/${key}\\" }}value={{ .Data.data.value }}{{ end }}"
}
`;
}

beforeAll(async () => {
  [idp, k8s, clusterKey] = await Promise.all([TestOidcProvider.start(), TestKubernetesApi.start(), generateKeyPair("RS256")]);
  await idp.addKey("k1", "RS256");
  k8s.reviewers.add(REVIEWER);

  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  await admin("POST", "sys/policies/acl/agent-kv", { policy: KV_POLICY });
  await ok(call(base, "POST", "secret/data/agent/jwt", { token: "root", body: { data: { value: "from-jwt" } } }));
  await ok(call(base, "POST", "secret/data/agent/k8s", { token: "root", body: { data: { value: "from-k8s" } } }));
  // jwt
  await admin("POST", "sys/auth/jwt", { type: "jwt" });
  await admin("POST", "auth/jwt/config", { oidc_discovery_url: idp.url });
  await admin("POST", "auth/jwt/role/agent-ci", { role_type: "jwt", user_claim: "sub", bound_audiences: ["leasehold"], claim_mappings: { project: "project" }, token_policies: "agent-kv", token_ttl: "1h" });
  // kubernetes: tokens live 2 s, at most 4 s, so the agent logs in again every few seconds.
  await admin("POST", "sys/auth/kubernetes", { type: "kubernetes" });
  await admin("POST", "auth/kubernetes/config", { kubernetes_host: k8s.url, kubernetes_ca_cert: k8s.ca.cert, token_reviewer_jwt: REVIEWER });
  await admin("POST", "auth/kubernetes/role/agent-web", { bound_service_account_names: "web", bound_service_account_namespaces: "prod", token_policies: "agent-kv", token_ttl: "2s", token_max_ttl: "4s" });
  // approle (pid_file)
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent-kv", token_ttl: "1h" });

  // cert: the dev server with TLS (asks for a client certificate), a client CA made by openssl.
  clientCa = pki.rootCa("agent-clients", "Agent Clients CA");
  agentCert = pki.leaf("agent", clientCa, { cn: "agent.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/agent"] });
  tlsServer = await startTestServer({ rootTokenId: "root", tls: true, loginRateLimit: { rate: 1000, burst: 1000 } });
  const tlsAdmin = async (path: string, body: unknown) => {
    const r = await httpsCall(tlsServer.url, "POST", path, { ca: tlsServer.devTls!.ca, token: "root", body });
    expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  };
  await tlsAdmin("sys/policies/acl/agent-kv", { policy: KV_POLICY });
  await tlsAdmin("secret/data/agent/cert", { data: { value: "from-cert" } });
  await tlsAdmin("sys/auth/cert", { type: "cert" });
  await tlsAdmin("auth/cert/certs/agent", { certificate: clientCa.cert, allowed_common_names: "agent.prod", token_policies: "agent-kv", token_ttl: "1h" });
});

afterAll(async () => {
  await killAgents();
  await Promise.all([server?.stop(), tlsServer?.stop(), idp?.close(), k8s?.close()]);
  scratch.cleanup();
  rmSync(pki.dir, { recursive: true, force: true });
});

describe("leasehold agent auto-auth", () => {
  it("jwt: logs in with the JWT file (removed after reading by default), writes the sink and renders a secret", async () => {
    const jwtFile = scratch.write("jwt", await idp.sign({ sub: "repo:acme/api", aud: "leasehold", project: "alpha" }, "k1"));
    const sink = scratch.path("jwt-token");
    const dest = scratch.path("jwt.txt");
    const config = scratch.write(
      "jwt.hcl",
      `
vault { address = "${base}" }
auto_auth {
  method "jwt" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = { role = "agent-ci"  path = "${jwtFile}" }
  }
  sink "file" { config = { path = "${sink}" } }
}
${kvTemplate(dest, "jwt")}`,
    );
    const agent = spawnAgent(config);
    await waitForAgent(agent, () => readText(dest) === "value=from-jwt", "the rendered secret");
    const token = readText(sink);
    const self = await call(base, "GET", "auth/token/lookup-self", { token });
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ path: "auth/jwt/login", meta: { role: "agent-ci", project: "alpha" } });
    expect([...self.body.data.policies].sort()).toEqual(["agent-kv", "default"]);
    // remove_jwt_after_reading defaults to true, as in Vault Agent.
    expect(existsSync(jwtFile)).toBe(false);
    expect(logsWith(agent, "logged in")[0]).toMatchObject({ policies: expect.arrayContaining(["agent-kv"]) });

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
  });

  it("jwt: remove_jwt_after_reading = false keeps the file", async () => {
    const jwtFile = scratch.write("jwt-kept", await idp.sign({ sub: "repo:acme/api", aud: "leasehold", project: "beta" }, "k1"));
    const sink = scratch.path("jwt-kept-token");
    const config = scratch.write(
      "jwt-kept.hcl",
      `
vault { address = "${base}" }
auto_auth {
  method "jwt" { config = { role = "agent-ci"  path = "${jwtFile}"  remove_jwt_after_reading = false } }
  sink "file" { config = { path = "${sink}" } }
}
exit_after_auth = true
`,
    );
    const agent = spawnAgent(config);
    expect(await exitOf(agent, 20_000)).toEqual({ code: 0, signal: null });
    const self = await call(base, "GET", "auth/token/lookup-self", { token: readText(sink) });
    expect(self.status, agent.stderr().slice(-2000)).toBe(200);
    expect(self.body.data.meta).toMatchObject({ role: "agent-ci", project: "beta" });
    expect(existsSync(jwtFile)).toBe(true);
  });

  it("kubernetes: logs in with the token file, and a later login sends the rotated token", async () => {
    const tokenFile = scratch.write("sa-token", await serviceAccountToken("prod", "web"));
    const first = readText(tokenFile);
    const sink = scratch.path("k8s-token");
    const dest = scratch.path("k8s.txt");
    const config = scratch.write(
      "k8s.hcl",
      `
vault { address = "${base}" }
auto_auth {
  method "kubernetes" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = { role = "agent-web"  token_path = "${tokenFile}" }
  }
  sink "file" { config = { path = "${sink}" } }
}
${kvTemplate(dest, "k8s")}`,
    );
    const agent = spawnAgent(config);
    await waitForAgent(agent, () => readText(dest) === "value=from-k8s", "the rendered secret");
    const firstSink = readText(sink);
    expect(k8s.calls.some((c) => c.token === first && c.bearer === REVIEWER)).toBe(true);
    const self = await call(base, "GET", "auth/token/lookup-self", { token: firstSink });
    expect(self.body.data).toMatchObject({ path: "auth/kubernetes/login", meta: { role: "agent-web", service_account_name: "web", service_account_namespace: "prod" } });

    // The kubelet rotates the projected token (atomically); the cluster no longer accepts the old one.
    const second = await serviceAccountToken("prod", "web");
    writeFileSync(`${tokenFile}.new`, second);
    renameSync(`${tokenFile}.new`, tokenFile);
    k8s.tokens.delete(first);
    const rotatedAt = k8s.calls.length;

    // The 4 s max TTL forces a new login, which must send the new file content.
    await waitForAgent(agent, () => k8s.calls.slice(rotatedAt).some((c) => c.token === second), "a TokenReview of the rotated token", 20_000);
    await waitForAgent(agent, async () => {
      const t = readText(sink);
      return t !== "" && t !== firstSink && (await call(base, "GET", "auth/token/lookup-self", { token: t })).status === 200;
    }, "a new token from the rotated service-account token in the sink", 20_000);
    expect(logsWith(agent, "logged in again").length).toBeGreaterThanOrEqual(1);
    // Once the new token was read, the old one is never sent again.
    const firstOfSecond = k8s.calls.findIndex((c, i) => i >= rotatedAt && c.token === second);
    expect(k8s.calls.slice(firstOfSecond).filter((c) => c.token === first)).toEqual([]);
    expect(readText(dest)).toBe("value=from-k8s");

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
  });

  it("cert: logs in over mTLS with the vault block's client certificate and renders a secret", async () => {
    const sink = scratch.path("cert-token");
    const dest = scratch.path("cert.txt");
    const config = scratch.write(
      "cert.hcl",
      `
vault {
  address     = "${tlsServer.url}"
  ca_cert     = "${tlsServer.devTls!.caFile}"
  client_cert = "${agentCert.certFile}"
  client_key  = "${agentCert.keyFile}"
}
auto_auth {
  method "cert" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = { name = "agent" }
  }
  sink "file" { config = { path = "${sink}" } }
}
${kvTemplate(dest, "cert")}`,
    );
    const agent = spawnAgent(config);
    await waitForAgent(agent, () => readText(dest) === "value=from-cert", "the rendered secret");
    const self = await httpsCall(tlsServer.url, "GET", "auth/token/lookup-self", { ca: tlsServer.devTls!.ca, token: readText(sink) });
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ path: "auth/cert/login", meta: { cert_name: "agent", common_name: "agent.prod" } });
    expect([...self.body.data.policies].sort()).toEqual(["agent-kv", "default"]);

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
  });

  it("cert: the method's own ca_cert, client_cert and client_key (none in the vault block)", async () => {
    const sink = scratch.path("cert-method-token");
    const config = scratch.write(
      "cert-method.hcl",
      `
vault { address = "${tlsServer.url}" }
auto_auth {
  method "cert" {
    config = { name = "agent"  ca_cert = "${tlsServer.devTls!.caFile}"  client_cert = "${agentCert.certFile}"  client_key = "${agentCert.keyFile}" }
  }
  sink "file" { config = { path = "${sink}" } }
}
exit_after_auth = true
`,
    );
    const agent = spawnAgent(config);
    expect(await exitOf(agent, 20_000), agent.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    const self = await httpsCall(tlsServer.url, "GET", "auth/token/lookup-self", { ca: tlsServer.devTls!.ca, token: readText(sink) });
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ path: "auth/cert/login", meta: { cert_name: "agent", common_name: "agent.prod" } });
  });

  it("pid_file: holds the agent's pid while it runs and is removed on SIGTERM", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const sink = scratch.path("pid-token");
    const pidFile = scratch.path("agent.pid");
    const config = scratch.write("pid.hcl", `${agentPreamble({ address: base, ...files, sink })}\npid_file = "${pidFile}"\n`);
    const agent = spawnAgent(config);
    await waitForAgent(agent, () => readText(sink) !== "", "the sink");
    const pid = Number(readText(pidFile).trim());
    expect(pid).toBe(agent.proc.pid);
    expect(isAlive(pid)).toBe(true);

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
  });
});
