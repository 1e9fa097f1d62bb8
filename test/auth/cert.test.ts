/**
 * TLS certificate auth over real mTLS: the dev server with TLS (it asks for client certificates
 * and requires none), certificates made by openssl (a root, an intermediate, leaves with SPIFFE
 * URI SANs), logins that chain through the intermediate the client sends, every refusal
 * (untrusted, expired, outside the constraints, no chain, wrong key usage), renewal that re-checks
 * the presented certificate, CIDR binding, revocation by prefix, and `leasehold login -method=cert`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import type { RunningServer } from "../../src/server/run.js";
import { startTestServer } from "../helpers/server.js";
import { httpsCall } from "./helpers/https.js";
import { OpensslPki, type Issued } from "./helpers/openssl.js";

let server: RunningServer;
let ca: string;
const pki = new OpensslPki();
let rootCa: Issued;
let intermediate: Issued;
let web: Issued;
let web2: Issued;
let devNs: Issued;
let expired: Issued;
let serverOnly: Issued;
let strangerCa: Issued;
let stranger: Issued;
let pinned: Issued;

/** Leaf PEM followed by the intermediate: what a workload's TLS stack sends. */
const chain = (leaf: Issued) => leaf.cert + intermediate.cert;
/** Status and parsed body: what these tests compare whole. */
const req = (method: string, path: string, o: { cert?: string; key?: string; token?: string; body?: unknown } = {}) =>
  httpsCall(server.url, method, path, { ca, ...o }).then(({ status, body }) => ({ status, body }));
const root = (method: string, path: string, body?: unknown) => req(method, path, { token: "root", body });
const loginWith = (leaf: Issued | undefined, body: unknown = {}, withChain = true) =>
  req("POST", "auth/cert/login", { cert: leaf ? (withChain ? chain(leaf) : leaf.cert) : undefined, key: leaf?.key, body });

beforeAll(async () => {
  rootCa = pki.rootCa("root", "Example Root CA");
  intermediate = pki.intermediateCa("int", "Example Workload CA", rootCa);
  web = pki.leaf("web", intermediate, { cn: "web.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/web", "DNS:web.prod.svc"] });
  web2 = pki.leaf("web2", intermediate, { cn: "web.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/web"] });
  devNs = pki.leaf("dev", intermediate, { cn: "web.dev", sans: ["URI:spiffe://example.org/ns/dev/sa/web"] });
  expired = pki.leaf("expired", intermediate, { cn: "old.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/old"], days: -1 });
  serverOnly = pki.leaf("server-only", intermediate, { cn: "srv.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/srv"], eku: "serverAuth" });
  strangerCa = pki.rootCa("stranger-root", "Stranger Root CA");
  stranger = pki.leaf("stranger", strangerCa, { cn: "web.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/web"] });
  pinned = pki.leaf("pinned", strangerCa, { cn: "batch-job" });

  server = await startTestServer({ rootTokenId: "root", tls: true, loginRateLimit: { rate: 1000, burst: 1000 } });
  ca = server.devTls!.ca;
  expect((await root("POST", "sys/auth/cert", { type: "cert" })).status).toBe(204);
  expect((await root("POST", "auth/cert/certs/prod", { certificate: rootCa.cert, allowed_uri_sans: "spiffe://example.org/ns/prod/sa/*", token_policies: "web", token_ttl: "20m", display_name: "prod-workloads" })).status).toBe(204);
});
afterAll(async () => {
  await server?.stop();
});

describe("cert entries", () => {
  it("stores a trusted certificate with constraints and token fields", async () => {
    const r = await root("GET", "auth/cert/certs/prod");
    expect(r.body.data).toMatchObject({ certificate: rootCa.cert, allowed_uri_sans: ["spiffe://example.org/ns/prod/sa/*"], allowed_common_names: [], display_name: "prod-workloads", token_policies: ["web"], token_ttl: 1200 });
    expect((await root("LIST", "auth/cert/certs")).body.data.keys).toEqual(["prod"]);
    const bad = await root("POST", "auth/cert/certs/broken", { certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" });
    expect(bad.status).toBe(400);
    expect((await root("POST", "auth/cert/certs/none", {})).body.errors).toEqual(["certificate is required"]);
  });
});

describe("cert login over mTLS", () => {
  it("logs in with a certificate that chains through the intermediate to the trusted root", async () => {
    const r = await loginWith(web);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth).toMatchObject({
      policies: ["default", "web"],
      lease_duration: 1200,
      metadata: { cert_name: "prod", common_name: "web.prod", serial_number: "1001", spiffe_id: "spiffe://example.org/ns/prod/sa/web" },
    });
    expect(r.body.auth.metadata.subject_key_id).toMatch(/^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    expect(r.body.auth.metadata.authority_key_id).toMatch(/^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    const self = await req("GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.body.data).toMatchObject({ display_name: "cert-prod-workloads", path: "auth/cert/login" });
    expect((await loginWith(web, { name: "prod" })).status).toBe(200);
  });

  it("needs a client certificate (400), and refuses one that chains to nothing trusted (400, as Vault)", async () => {
    expect(await loginWith(undefined)).toEqual({ status: 400, body: { errors: ["client certificate must be supplied"] } });
    expect(await loginWith(stranger)).toEqual({ status: 400, body: { errors: ["invalid certificate or no client certificate supplied"] } });
  });

  it("refuses a leaf sent without the intermediate it needs", async () => {
    expect((await loginWith(web, {}, false)).status).toBe(400);
  });

  it("refuses an expired certificate", async () => {
    expect(await loginWith(expired)).toEqual({ status: 400, body: { errors: ["invalid certificate or no client certificate supplied"] } });
  });

  it("refuses a certificate not meant for client authentication", async () => {
    expect((await loginWith(serverOnly)).status).toBe(400);
  });

  it("refuses a trusted certificate outside the entry's constraints", async () => {
    expect(await loginWith(devNs)).toEqual({ status: 400, body: { errors: ["no chain matching all constraints could be found for this login certificate"] } });
  });

  it("picks the entry whose constraints match, by CN glob as well", async () => {
    expect((await root("POST", "auth/cert/certs/dev", { certificate: intermediate.cert, allowed_common_names: "*.dev", token_policies: "dev" })).status).toBe(204);
    const r = await loginWith(devNs);
    expect(r.status).toBe(200);
    expect(r.body.auth.metadata.cert_name).toBe("dev");
    expect(r.body.auth.policies).toEqual(["default", "dev"]);
    // Naming another entry restricts the login to it.
    expect((await loginWith(devNs, { name: "prod" })).status).toBe(400);
  });

  it("trusts a pinned leaf certificate exactly (a non-CA entry)", async () => {
    expect((await root("POST", "auth/cert/certs/batch", { certificate: pinned.cert, token_policies: "batch" })).status).toBe(204);
    const r = await loginWith(pinned, {}, false);
    expect(r.status).toBe(200);
    expect(r.body.auth.metadata).toMatchObject({ cert_name: "batch", common_name: "batch-job" });
    expect(r.body.auth.metadata.spiffe_id).toBeUndefined();
    // Its CA is not trusted: another certificate from it is refused.
    expect((await loginWith(stranger, { name: "batch" })).status).toBe(400);
  });

  it("token_bound_cidrs: 10.0.0.0/8 refuses, 127.0.0.1/32 allows", async () => {
    expect((await root("POST", "auth/cert/certs/far", { certificate: pinned.cert, token_bound_cidrs: "10.0.0.0/8" })).status).toBe(204);
    expect((await loginWith(pinned, { name: "far" }, false)).status).toBe(403);
    expect((await root("POST", "auth/cert/certs/far", { token_bound_cidrs: "127.0.0.1/32" })).status).toBe(204);
    expect((await loginWith(pinned, { name: "far" }, false)).status).toBe(200);
  });
});

describe("cert token renewal", () => {
  it("renews with the same certificate, refuses without one or with another", async () => {
    const token = (await loginWith(web)).body.auth.client_token;
    const same = await req("POST", "auth/token/renew-self", { token, cert: chain(web), key: web.key, body: {} });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    const none = await req("POST", "auth/token/renew-self", { token, body: {} });
    expect(none.status).toBe(403);
    // web2 has the same names and chain, but is not the certificate that logged in.
    const other = await req("POST", "auth/token/renew-self", { token, cert: chain(web2), key: web2.key, body: {} });
    expect(other).toEqual({ status: 403, body: { errors: ["client identity during renewal not matching client identity used during login"] } });
  });

  it("with disable_binding renews without a certificate", async () => {
    const token = (await loginWith(web)).body.auth.client_token;
    expect((await root("POST", "auth/cert/config", { disable_binding: true })).status).toBe(204);
    expect((await req("POST", "auth/token/renew-self", { token, body: {} })).status).toBe(200);
    expect((await root("POST", "auth/cert/config", { disable_binding: false })).status).toBe(204);
    expect((await req("POST", "auth/token/renew-self", { token, body: {} })).status).toBe(403);
  });

  it("refuses renewal once the entry is gone", async () => {
    const token = (await loginWith(pinned, { name: "batch" }, false)).body.auth.client_token;
    expect((await root("DELETE", "auth/cert/certs/batch")).status).toBe(204);
    expect((await req("POST", "auth/token/renew-self", { token, cert: pinned.cert, key: pinned.key, body: {} })).status).toBe(403);
  });

  it("revoking the prefix auth/cert/login revokes the tokens it issued", async () => {
    const token = (await loginWith(web)).body.auth.client_token;
    expect((await root("PUT", "sys/leases/revoke-prefix/auth/cert/login")).status).toBe(204);
    expect((await req("GET", "auth/token/lookup-self", { token })).status).toBe(403);
  });
});

describe("leasehold login -method=cert", () => {
  it("logs in with --client-cert/--client-key and stores the token for later commands", async () => {
    const home = mkdtempSync(join(tmpdir(), "lh-cert-cli-"));
    const certFile = join(home, "web-chain.pem");
    writeFileSync(certFile, chain(web));
    const env = { LEASEHOLD_ADDR: server.url, LEASEHOLD_CACERT: server.devTls!.caFile };
    const io = memoryIo({ env, homeDir: home });
    const code = await runCli(["login", "-method=cert", `-client-cert=${certFile}`, `-client-key=${web.keyFile}`, "name=prod"], io);
    expect(code, io.err()).toBe(0);
    expect(io.out()).toMatch(/Success! You are now authenticated/);
    const stored = readFileSync(join(home, ".leasehold-token"), "utf8");
    expect(stored).toMatch(/^lhs\./);
    const lookup = memoryIo({ env, homeDir: home });
    expect(await runCli(["token", "lookup", "-format=json"], lookup)).toBe(0);
    expect(JSON.parse(lookup.out()).data).toMatchObject({ path: "auth/cert/login", meta: { cert_name: "prod", spiffe_id: "spiffe://example.org/ns/prod/sa/web" } });
  });
});
