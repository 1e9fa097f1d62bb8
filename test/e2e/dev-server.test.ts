/**
 * End to end: the dev server with generated TLS (`leasehold server -dev-tls`), in process. The
 * CA, certificate and key files, HTTPS with and without a client certificate, the chosen root
 * token, KV v2 at `secret/`, Prometheus metrics and the `sys/internal/ui/mounts` preflight.
 */
import { randomBytes, X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDevTls, type DevTlsFiles } from "../../src/server/dev-tls.js";
import type { RunningServer } from "../../src/server/run.js";
import { httpsCall } from "../auth/helpers/https.js";
import { startTestServer } from "../helpers/server.js";

describe("dev server with -dev-tls", () => {
  const certDir = mkdtempSync(join(tmpdir(), "leasehold-e2e-devtls-"));
  const otherDir = mkdtempSync(join(tmpdir(), "leasehold-e2e-othertls-"));
  const rootTokenId = `dev-root-${randomBytes(6).toString("hex")}`;
  let server: RunningServer;
  let tls: DevTlsFiles;
  /** Client certificates the server saw, per TLS connection. */
  const peerCerts: { fingerprint256?: string; authorized: boolean }[] = [];

  beforeAll(async () => {
    // A stale, world-readable key file from an earlier run in the same directory.
    writeFileSync(join(certDir, "leasehold-key.pem"), "stale\n");
    chmodSync(join(certDir, "leasehold-key.pem"), 0o644);
    server = await startTestServer({ tls: true, tlsCertDir: certDir, rootTokenId });
    tls = server.devTls!;
    server.listeners[0].server.on("secureConnection", (socket: TLSSocket) => {
      const peer = socket.getPeerCertificate();
      peerCerts.push({ fingerprint256: peer && "fingerprint256" in peer ? peer.fingerprint256 : undefined, authorized: socket.authorized });
    });
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(certDir, { recursive: true, force: true });
    rmSync(otherDir, { recursive: true, force: true });
  });

  it("writes the CA, certificate and key as PEM files (key mode 0600, even over an old file)", () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(tls.caFile).toBe(join(certDir, "leasehold-ca.pem"));
    expect(tls.certFile).toBe(join(certDir, "leasehold-cert.pem"));
    expect(tls.keyFile).toBe(join(certDir, "leasehold-key.pem"));
    expect(readFileSync(tls.caFile, "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n/);
    expect(readFileSync(tls.certFile, "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n/);
    expect(readFileSync(tls.keyFile, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n/);
    expect(statSync(tls.keyFile).mode & 0o777).toBe(0o600);
    // The files hold what the server serves.
    expect(readFileSync(tls.caFile, "utf8")).toBe(tls.ca);
    expect(readFileSync(tls.certFile, "utf8")).toBe(tls.cert);
    expect(readFileSync(tls.keyFile, "utf8")).toBe(tls.key);
  });

  it("the certificate is signed by the CA and covers 127.0.0.1 and localhost", () => {
    const ca = new X509Certificate(readFileSync(tls.caFile));
    const cert = new X509Certificate(readFileSync(tls.certFile));
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkHost("example.com")).toBeUndefined();
    expect(cert.subjectAltName).toContain("DNS:localhost");
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 24 * 3600 * 1000);
  });

  it("serves HTTPS that verifies against the CA, for 127.0.0.1 and for the name localhost", async () => {
    const health = await httpsCall(server.url, "GET", "sys/health", { ca: tls.ca });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ initialized: true, sealed: false });
    const byName = await httpsCall(server.url, "GET", "sys/health", { ca: tls.ca, servername: "localhost" });
    expect(byName.status).toBe(200);
    // Without the CA the certificate is not trusted.
    await expect(httpsCall(server.url, "GET", "sys/health")).rejects.toThrow(/certificate|self[- ]signed/i);
    // A name the certificate does not cover is refused.
    await expect(httpsCall(server.url, "GET", "sys/health", { ca: tls.ca, servername: "example.com" })).rejects.toThrow(/altnames|does not match|Hostname/i);
  });

  it("asks for a client certificate but does not require one", async () => {
    peerCerts.length = 0;
    const none = await httpsCall(server.url, "GET", "sys/health", { ca: tls.ca });
    expect(none.status).toBe(200);
    expect(peerCerts).toHaveLength(1);
    expect(peerCerts[0].fingerprint256).toBeUndefined();

    // A client certificate from the dev CA itself (the server certificate has clientAuth).
    const fromDevCa = await httpsCall(server.url, "GET", "sys/health", { ca: tls.ca, cert: tls.cert, key: tls.key });
    expect(fromDevCa.status).toBe(200);
    expect(peerCerts).toHaveLength(2);
    expect(peerCerts[1].fingerprint256).toBe(new X509Certificate(tls.cert).fingerprint256);

    // A certificate from an unrelated CA is accepted on the connection too (auth/cert decides later).
    const other = await generateDevTls(otherDir);
    const foreign = await httpsCall(server.url, "GET", "sys/health", { ca: tls.ca, cert: other.cert, key: other.key });
    expect(foreign.status).toBe(200);
    expect(peerCerts).toHaveLength(3);
    expect(peerCerts[2]).toEqual({ fingerprint256: new X509Certificate(other.cert).fingerprint256, authorized: false });
  });

  it("answers with the chosen root token, and only with it", async () => {
    const self = await httpsCall(server.url, "GET", "auth/token/lookup-self", { ca: tls.ca, token: rootTokenId });
    expect(self.status).toBe(200);
    expect(self.body.data.id).toBe(rootTokenId);
    expect(self.body.data.policies).toEqual(["root"]);
    expect(server.rootToken).toBe(rootTokenId);
    const wrong = await httpsCall(server.url, "GET", "auth/token/lookup-self", { ca: tls.ca, token: `${rootTokenId}x` });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toEqual({ errors: ["permission denied"] });
    expect((await httpsCall(server.url, "GET", "sys/mounts", { ca: tls.ca })).status).toBe(403);
  });

  it("mounts KV v2 at secret/ and it works", async () => {
    const mounts = await httpsCall(server.url, "GET", "sys/mounts", { ca: tls.ca, token: rootTokenId });
    expect(mounts.status).toBe(200);
    expect(mounts.body.data["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });
    expect(mounts.body["secret/"]).toMatchObject({ type: "kv" }); // also at the top level, as Vault does

    const value = randomBytes(8).toString("hex");
    const write = await httpsCall(server.url, "POST", "secret/data/dev", { ca: tls.ca, token: rootTokenId, body: { data: { value } } });
    expect(write.status).toBe(200);
    const read = await httpsCall(server.url, "GET", "secret/data/dev", { ca: tls.ca, token: rootTokenId });
    expect(read.body.data.data).toEqual({ value });
  });

  it("sys/internal/ui/mounts/secret/foo names the KV v2 mount", async () => {
    const r = await httpsCall(server.url, "GET", "sys/internal/ui/mounts/secret/foo", { ca: tls.ca, token: rootTokenId });
    expect(r.status).toBe(200);
    expect(r.body.data.type).toBe("kv");
    expect(r.body.data.options.version).toBe("2");
    expect(r.body.data.path).toBe("secret/");
  });

  it("sys/metrics?format=prometheus returns Prometheus text with leasehold_http_requests_total", async () => {
    const r = await httpsCall(server.url, "GET", "sys/metrics?format=prometheus", { ca: tls.ca, token: rootTokenId });
    expect(r.status).toBe(200);
    expect(String(r.headers["content-type"])).toMatch(/^text\/plain/);
    expect(r.text).toContain("# TYPE leasehold_http_requests_total counter");
    // The requests made above were counted, by method and status.
    expect(r.text).toMatch(/^leasehold_http_requests_total\{[^}]*method="GET"[^}]*status="200"[^}]*\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^leasehold_http_requests_total\{[^}]*method="GET"[^}]*status="403"[^}]*\} [1-9]\d*$/m);
    expect(r.text).toMatch(/^leasehold_http_requests_total\{[^}]*method="POST"[^}]*status="200"[^}]*\} [1-9]\d*$/m);
    // JSON is the default format.
    const json = await httpsCall(server.url, "GET", "sys/metrics", { ca: tls.ca, token: rootTokenId });
    expect(json.status).toBe(200);
    expect(Array.isArray(json.body.data.metrics)).toBe(true);
  });
});
