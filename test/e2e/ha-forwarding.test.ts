/**
 * Request forwarding between two HA nodes on one PostgreSQL, both in this process (real listeners,
 * real TLS): a standby relays requests to the active node over the cluster listener (mutual TLS
 * with the cluster certificate kept in the barrier), with the caller's address and TLS client
 * certificate; nothing but a cluster peer can assert those; when the active's cluster listener
 * cannot be reached the standby falls back to a 307. A node started before the cluster was
 * initialised unseals itself (static seal) once another node has initialised the store.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CLUSTER_SERVER_NAME, CLUSTER_TLS_PATH, type ClusterTlsMaterial } from "../../src/cluster/tls.js";
import { FORWARDED_CLIENT_CERT, FORWARDED_REMOTE_ADDR } from "../../src/cluster/forwarding.js";
import { loadServerConfig } from "../../src/server/config.js";
import { generateDevTls, type DevTlsFiles } from "../../src/server/dev-tls.js";
import { clusterListenAddress, startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { createLogger } from "../../src/server/logger.js";
import { createTestDatabase, freePort, type TestDatabase } from "../database/helpers.js";
import { httpsCall, type HttpsResult } from "../auth/helpers/https.js";
import { OpensslPki, type Issued } from "../auth/helpers/openssl.js";

let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "leasehold-ha-forwarding-"));
const keyFile = join(dir, "seal.key");
let tls: DevTlsFiles;
const pki = new OpensslPki();
let workloadCa: Issued;
let web: Issued;
let a: RunningServer;
let b: RunningServer;
let root: string;
const ports: Record<"a" | "b", { api: number; cluster: number }> = { a: { api: 0, cluster: 0 }, b: { api: 0, cluster: 0 } };

function configFor(name: "a" | "b", clusterAddrPort = ports[name].cluster): string {
  const p = ports[name];
  return `storage "postgresql" {
  connection_url   = ${JSON.stringify(db.url)}
  ha_enabled       = "true"
  ha_lock_lifetime = "3s"
}
listener "tcp" {
  address         = "127.0.0.1:${p.api}"
  cluster_address = "127.0.0.1:${p.cluster}"
  tls_cert_file   = ${JSON.stringify(tls.certFile)}
  tls_key_file    = ${JSON.stringify(tls.keyFile)}
}
seal "static" {
  key_file = ${JSON.stringify(keyFile)}
}
api_addr     = "https://127.0.0.1:${p.api}"
cluster_addr = "https://127.0.0.1:${clusterAddrPort}"
`;
}

async function start(name: "a" | "b"): Promise<RunningServer> {
  const path = join(dir, `${name}.hcl`);
  writeFileSync(path, configFor(name));
  return startConfiguredServer(loadServerConfig(configFor(name), path), createLogger("warn"));
}

const call = (s: RunningServer, method: string, path: string, o: { token?: string; body?: unknown; cert?: string; key?: string; headers?: Record<string, string> } = {}): Promise<HttpsResult> =>
  httpsCall(s.url, method, path, { ca: tls.ca, ...o });

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A token bound to `cidr` (through a token role's token_bound_cidrs, as in Vault). */
async function boundToken(cidr: string): Promise<string> {
  const role = `bound-${cidr.replace(/[./]/g, "-")}`;
  expect((await call(a, "POST", `auth/token/roles/${role}`, { token: root, body: { allowed_policies: ["web"], token_bound_cidrs: [cidr] } })).status).toBe(204);
  const r = await call(a, "POST", `auth/token/create/${role}`, { token: root, body: { policies: ["web"] } });
  expect(r.status, r.text).toBe(200);
  return r.body.auth.client_token as string;
}

function forwardedCount(s: RunningServer, outcome: string): number {
  const m = (s.core.metrics.registry.getSingleMetric("leasehold_ha_forwarded_requests_total") as unknown as { hashMap: Record<string, { value: number; labels: { outcome: string } }> } | undefined)?.hashMap ?? {};
  return Object.values(m).find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "ha_forwarding");
  writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
  tls = await generateDevTls(join(dir, "tls"));
  workloadCa = pki.rootCa("workload-root", "Workload Root CA");
  web = pki.leaf("web", workloadCa, { cn: "web.prod", sans: ["URI:spiffe://example.org/ns/prod/sa/web"] });
  for (const n of ["a", "b"] as const) ports[n] = { api: await freePort(), cluster: await freePort() };
  // Both start before the cluster is initialised: b unseals itself (static seal) once a has initialised the store.
  [a, b] = await Promise.all([start("a"), start("b")]);
  expect((await call(b, "GET", "sys/health")).status).toBe(501);
  const init = await call(a, "PUT", "sys/init", { body: { recovery_shares: 1, recovery_threshold: 1 } });
  expect(init.status, init.text).toBe(200);
  root = init.body.root_token;
  await waitFor("a active", async () => (await call(a, "GET", "sys/health")).status === 200);
  await waitFor("b standby", async () => (await call(b, "GET", "sys/health")).status === 429, 5_000);
  const t = (method: string, path: string, body?: unknown) => call(a, method, path, { token: root, body });
  expect((await t("POST", "sys/mounts/kv", { type: "kv", options: { version: "2" } })).status).toBe(204);
  expect((await t("POST", "sys/auth/cert", { type: "cert" })).status).toBe(204);
  expect((await t("POST", "auth/cert/certs/prod", { certificate: workloadCa.cert, token_policies: "web", display_name: "prod" })).status).toBe(204);
  expect((await t("PUT", "sys/policies/acl/web", { policy: 'path "kv/data/*" { capabilities = ["read", "create", "update"] }' })).status).toBe(204);
}, 120_000);

afterAll(async () => {
  await b?.stop().catch(() => undefined);
  await a?.stop().catch(() => undefined);
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a standby forwards to the active node", () => {
  it("serves writes, reads and LIST itself (no redirect), readable from both nodes", async () => {
    const before = forwardedCount(b, "forwarded");
    const w = await call(b, "POST", "kv/data/app", { token: root, body: { data: { password: "s3cret" } } });
    expect(w.status, w.text).toBe(200);
    expect(w.body.data.version).toBe(1);
    for (const s of [a, b]) {
      const r = await call(s, "GET", "kv/data/app", { token: root });
      expect(r.status).toBe(200);
      expect(r.body.data.data).toEqual({ password: "s3cret" });
    }
    const l = await call(b, "LIST", "kv/metadata", { token: root });
    expect(l.status).toBe(200);
    expect(l.body.data.keys).toEqual(["app"]);
    // Errors come back as the active answered them.
    const missing = await call(b, "GET", "kv/data/none", { token: root });
    expect(missing.status).toBe(404);
    const denied = await call(b, "GET", "kv/data/app", { token: "not-a-token" });
    expect(denied.status).toBe(403);
    expect(denied.body.errors).toEqual(["permission denied"]);
    expect(forwardedCount(b, "forwarded") - before).toBeGreaterThanOrEqual(5);
    // The standby's own status paths are its own.
    const leader = await call(b, "GET", "sys/leader");
    expect(leader.body).toMatchObject({ ha_enabled: true, is_self: false, leader_address: `https://127.0.0.1:${ports.a.api}`, leader_cluster_address: `https://127.0.0.1:${ports.a.cluster}` });
  });

  it("streams bodies both ways: a 2 MiB secret through the standby; the active's body limit applies", async () => {
    const big = "x".repeat(2 * 1024 * 1024);
    const w = await call(b, "POST", "kv/data/big", { token: root, body: { data: { blob: big } } });
    expect(w.status, w.text.slice(0, 200)).toBe(200);
    const r = await call(b, "GET", "kv/data/big", { token: root });
    expect(r.body.data.data.blob.length).toBe(big.length);
    // Past max_request_size (32 MiB by default) the active refuses; the standby relays its 413.
    const tooBig = await call(b, "POST", "kv/data/huge", { token: root, body: { data: { blob: "y".repeat(33 * 1024 * 1024) } } }).catch((err: Error) => err);
    if (tooBig instanceof Error) expect(tooBig.message).toMatch(/EPIPE|ECONNRESET|socket hang up/);
    else expect(tooBig.status).toBe(413);
    expect((await call(a, "GET", "kv/data/huge", { token: root })).status).toBe(404);
  });

  it("carries the caller's TLS client certificate: a cert login through the standby", async () => {
    const login = await call(b, "POST", "auth/cert/login", { cert: web.cert, key: web.key, body: {} });
    expect(login.status, login.text).toBe(200);
    expect(login.body.auth.policies).toEqual(["default", "web"]);
    expect(login.body.auth.metadata.cert_name).toBe("prod");
    // Without a certificate the same login is refused, through either node.
    for (const s of [a, b]) expect((await call(s, "POST", "auth/cert/login", { body: {} })).status).toBe(400);
  });

  it("carries the caller's address: CIDR-bound tokens work through the standby only from their network", async () => {
    const local = await boundToken("127.0.0.1/32");
    const elsewhere = await boundToken("10.0.0.0/8");
    expect((await call(b, "GET", "auth/token/lookup-self", { token: local })).status).toBe(200);
    expect((await call(b, "GET", "auth/token/lookup-self", { token: elsewhere })).status).toBe(403);
  });

  it("ignores the forwarding headers when a client sends them, on the active and on a standby", async () => {
    const elsewhere = await boundToken("10.0.0.0/8");
    const spoofed = { [FORWARDED_REMOTE_ADDR]: "10.1.2.3", [FORWARDED_CLIENT_CERT]: Buffer.from(web.cert.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64") };
    for (const s of [a, b]) {
      const r = await call(s, "GET", "auth/token/lookup-self", { token: elsewhere, headers: spoofed });
      expect(r.status, `${s === a ? "active" : "standby"}: ${r.text}`).toBe(403);
      const login = await call(s, "POST", "auth/cert/login", { body: {}, headers: spoofed });
      expect(login.status, login.text).toBe(400);
    }
  });
});

describe("sys/metrics on a standby", () => {
  it("answers the standby's own figures once the active says the token may read them", async () => {
    const own = await call(b, "GET", "sys/metrics?format=prometheus", { token: root });
    expect(own.status, own.text).toBe(200);
    expect(own.text).toMatch(/^leasehold_core_active 0$/m);
    expect(own.text).toMatch(/^leasehold_ha_forwarded_requests_total\{outcome="forwarded"\} [1-9]/m);
    const active = await call(a, "GET", "sys/metrics?format=prometheus", { token: root });
    expect(active.text).toMatch(/^leasehold_core_active 1$/m);
    const json = await call(b, "GET", "sys/metrics", { token: root });
    expect(json.status).toBe(200);
    expect(json.body.data.metrics.some((m: { name: string }) => m.name === "leasehold_ha_forwarded_requests_total")).toBe(true);
    // A token whose policies do not grant read on sys/metrics, and no token at all: refused.
    const web = (await call(a, "POST", "auth/token/create", { token: root, body: { policies: ["web"] } })).body.auth.client_token as string;
    expect((await call(b, "GET", "sys/metrics", { token: web })).status).toBe(403);
    expect((await call(b, "GET", "sys/metrics")).status).toBe(403);
  });
});

describe("the cluster listener", () => {
  const handshake = (opts: { cert?: string; key?: string; ca?: string }): Promise<"ok" | string> =>
    new Promise((resolve) => {
      const socket: TLSSocket = connect({ host: "127.0.0.1", port: ports.a.cluster, servername: CLUSTER_SERVER_NAME, rejectUnauthorized: false, ...opts });
      socket.once("secureConnect", () => {
        // TLS 1.3: the server checks the client certificate after the client's Finished; a refusal arrives as an alert.
        socket.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
      });
      socket.once("data", () => {
        socket.destroy();
        resolve("ok");
      });
      socket.once("error", (err) => resolve(err.message));
      socket.once("close", () => resolve("closed"));
    });

  it("completes no exchange without the cluster certificate; the cluster certificate is in the barrier", async () => {
    expect(await handshake({})).not.toBe("ok");
    expect(await handshake({ cert: web.cert, key: web.key })).not.toBe("ok");
    const material = await a.core.barrier.view("").getJSON<ClusterTlsMaterial>(CLUSTER_TLS_PATH);
    expect(material?.cert).toMatch(/BEGIN CERTIFICATE/);
    // Positive control: the cluster's own key pair is accepted.
    expect(await handshake({ cert: material!.cert, key: material!.key, ca: material!.cert })).toBe("ok");
  });

  it("believes the forwarded address only from a cluster peer", async () => {
    const elsewhere = await boundToken("10.0.0.0/8");
    const material = (await a.core.barrier.view("").getJSON<ClusterTlsMaterial>(CLUSTER_TLS_PATH))!;
    const viaCluster = await httpsCall(a.clusterListener!.url, "GET", "auth/token/lookup-self", {
      ca: material.cert,
      cert: material.cert,
      key: material.key,
      servername: CLUSTER_SERVER_NAME,
      token: elsewhere,
      headers: { [FORWARDED_REMOTE_ADDR]: "10.1.2.3" },
    });
    expect(viaCluster.status, viaCluster.text).toBe(200);
  });

  it("binds where Vault would: cluster_address, else the first listener's port plus one", () => {
    expect(clusterListenAddress([{ address: "0.0.0.0:8200", tlsDisable: true }])).toBe("0.0.0.0:8201");
    expect(clusterListenAddress([{ address: "[::1]:8200", tlsDisable: true }])).toBe("[::1]:8201");
    expect(clusterListenAddress([{ address: "0.0.0.0:8200", tlsDisable: true }, { address: "0.0.0.0:9200", tlsDisable: true, clusterAddress: "10.0.0.5:9201" }])).toBe("10.0.0.5:9201");
  });
});

describe("when the active's cluster listener cannot be reached", () => {
  it("the standby redirects (307) to the active's api_addr, as Vault falls back", async () => {
    await a.clusterListener!.close();
    // Keep-alive connections of the forwarder are closed with the listener; the next request fails to connect.
    const before = forwardedCount(b, "redirected");
    const r = await call(b, "GET", "kv/data/app", { token: root });
    expect(r.status, r.text).toBe(307);
    expect(r.headers.location).toBe(`https://127.0.0.1:${ports.a.api}/v1/kv/data/app`);
    expect(forwardedCount(b, "redirected")).toBe(before + 1);
  });
});
