import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { fails, mountWithRoot, ok, openssl, Scratch, startPkiServer, TOKEN } from "./helpers.js";

/** Revocation as clients see it: the CRL (and openssl -crl_check), OCSP, leases, tidy. */
let server: RunningServer;
let base: string;
let rootPem: string;
let rootFile: string;
const scratch = new Scratch();

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  rootPem = await mountWithRoot(base, "pki");
  rootFile = scratch.file(rootPem, "root.pem");
  await ok(base, "POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", max_ttl: "24h" });
});

afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

const issue = async (cn: string, role = "web", extra = {}) => (await ok(base, "POST", `pki/issue/${role}`, { common_name: cn, ttl: "1h", ...extra })).data;
const crlPem = async (mount = "pki") => {
  const r = await call(base, "GET", `${mount}/crl/pem`);
  expect(r.status).toBe(200);
  return r.body as string;
};

/** `openssl verify -crl_check` of a certificate against the root and the current CRL. */
async function crlCheck(certPem: string): Promise<{ code: number; out: string }> {
  return openssl(["verify", "-crl_check", "-CAfile", rootFile, "-CRLfile", scratch.file(await crlPem()), scratch.file(certPem)]);
}

/** `openssl ocsp` against the server: returns the status line for the certificate. */
async function ocsp(certPem: string, extra: string[] = []): Promise<string> {
  const r = await openssl(["ocsp", "-issuer", rootFile, "-cert", scratch.file(certPem), "-url", `${base}/v1/pki/ocsp`, "-CAfile", rootFile, ...extra]);
  return r.out;
}

describe("revoke and the CRL", () => {
  it("revokes by serial: Vault's answer, idempotent, visible in cert/:serial, LIST certs/revoked and the CRL", async () => {
    const keep = await issue("keep.example.com");
    const gone = await issue("gone.example.com");
    expect((await crlCheck(keep.certificate)).code).toBe(0);
    expect((await crlCheck(gone.certificate)).code).toBe(0);

    const before = Date.now();
    const r = await ok(base, "POST", "pki/revoke", { serial_number: gone.serial_number });
    expect(r.data.revocation_time).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(Date.parse(r.data.revocation_time_rfc3339)).toBeGreaterThanOrEqual(before);
    const again = await ok(base, "POST", "pki/revoke", { serial_number: gone.serial_number.replace(/:/g, "-").toUpperCase() });
    expect(again.data.revocation_time_rfc3339).toBe(r.data.revocation_time_rfc3339);

    const read = await call(base, "GET", `pki/cert/${gone.serial_number}`);
    expect(read.body.data.revocation_time).toBe(r.data.revocation_time);
    expect((await call(base, "GET", `pki/cert/${keep.serial_number}`)).body.data.revocation_time).toBe(0);
    expect((await ok(base, "GET", "pki/certs/revoked?list=true")).data.keys).toEqual([gone.serial_number]);

    const crl = await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())]);
    expect(crl.out).toContain(gone.serial_number.replace(/:/g, "").toUpperCase());
    expect(crl.out).not.toContain(keep.serial_number.replace(/:/g, "").toUpperCase());
    const revoked = await crlCheck(gone.certificate);
    expect(revoked.code).not.toBe(0);
    expect(revoked.out).toMatch(/certificate revoked/);
    expect((await crlCheck(keep.certificate)).code).toBe(0);
    // The DER form is the same CRL.
    const der = await fetch(`${base}/v1/pki/crl`);
    expect(der.headers.get("content-type")).toBe("application/pkix-crl");
    const text = await openssl(["crl", "-inform", "DER", "-noout", "-text", "-in", scratch.file(Buffer.from(await der.arrayBuffer()), "crl.der")]);
    expect(text.out).toContain(gone.serial_number.replace(/:/g, "").toUpperCase());
  });

  it("revokes by certificate, including certificates of no_store roles, but only certificates of this mount", async () => {
    await ok(base, "POST", "pki/roles/nostore", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", no_store: true });
    const c = await issue("ephemeral.example.com", "nostore");
    await ok(base, "POST", "pki/revoke", { certificate: c.certificate });
    expect((await crlCheck(c.certificate)).out).toMatch(/certificate revoked/);
    const foreign = await mountWithRoot(base, "other");
    expect(await fails(base, "POST", "pki/revoke", { certificate: foreign })).toMatch(/not issued by any issuer of this mount/);
    expect(await fails(base, "POST", "pki/revoke", { serial_number: "01:02:03" })).toMatch(/not found/);
    expect(await fails(base, "POST", "pki/revoke", {})).toMatch(/exactly one of serial_number or certificate/);
  });

  it("crl/rotate rebuilds with a higher CRL number; config/crl sets the expiry and can empty the CRL", async () => {
    const number = async () => Number(/CRL Number: \s*(\d+)/.exec((await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out)![1]);
    const n = await number();
    expect((await ok(base, "GET", "pki/crl/rotate")).data.success).toBe(true);
    expect(await number()).toBe(n + 1);
    await ok(base, "POST", "pki/config/crl", { expiry: "1h" });
    expect((await ok(base, "GET", "pki/config/crl")).data).toMatchObject({ expiry: "1h", disable: false, ocsp_disable: false });
    const next = /nextUpdate=(.*)/.exec((await openssl(["crl", "-noout", "-nextupdate", "-in", scratch.file(await crlPem())])).out)![1];
    expect(Date.parse(next) - Date.now()).toBeLessThan(3600 * 1000 + 5000);
    expect(Date.parse(next) - Date.now()).toBeGreaterThan(3500 * 1000);
    await ok(base, "POST", "pki/config/crl", { disable: true });
    expect((await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out).toMatch(/No Revoked Certificates/);
    await ok(base, "POST", "pki/config/crl", { disable: false, expiry: "72h" });
    expect((await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out).toMatch(/Revoked Certificates:/);
  });
});

describe("OCSP", () => {
  it("answers good, revoked and unknown over POST, signed by the issuer, with the nonce echoed", async () => {
    const good = await issue("ocsp-good.example.com");
    const bad = await issue("ocsp-bad.example.com");
    await ok(base, "POST", "pki/revoke", { serial_number: bad.serial_number });
    const g = await ocsp(good.certificate);
    expect(g).toMatch(/Response verify OK/);
    expect(g).toMatch(/: good/);
    expect(g).not.toMatch(/WARNING: no nonce/);
    const b = await ocsp(bad.certificate);
    expect(b).toMatch(/: revoked/);
    expect(b).toMatch(/Revocation Time:/);
    const u = await openssl(["ocsp", "-issuer", rootFile, "-serial", "0x1234567890abcdef", "-url", `${base}/v1/pki/ocsp`, "-CAfile", rootFile]);
    expect(u.out).toMatch(/0x1234567890abcdef: unknown/);
  });

  it("answers over GET with the base64 request in the path", async () => {
    const c = await issue("ocsp-get.example.com");
    await ok(base, "POST", "pki/revoke", { serial_number: c.serial_number });
    const reqFile = scratch.file("", "req.der");
    const made = await openssl(["ocsp", "-issuer", rootFile, "-cert", scratch.file(c.certificate), "-no_nonce", "-reqout", reqFile]);
    expect(made.code, made.out).toBe(0);
    const b64url = readFileSync(reqFile).toString("base64url");
    const res = await fetch(`${base}/v1/pki/ocsp/${b64url}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/ocsp-response");
    const respFile = scratch.file(Buffer.from(await res.arrayBuffer()), "resp.der");
    const read = await openssl(["ocsp", "-respin", respFile, "-issuer", rootFile, "-cert", scratch.file(c.certificate), "-CAfile", rootFile, "-no_nonce"]);
    expect(read.out).toMatch(/Response verify OK/);
    expect(read.out).toMatch(/: revoked/);
  });

  it("refuses requests for other CAs (unauthorized) and malformed requests; ocsp_disable turns it off", async () => {
    const foreignRoot = scratch.file((await ok(base, "GET", "other/cert/ca")).data.certificate, "other.pem");
    await ok(base, "POST", "other/roles/r", { allow_any_name: true, key_type: "ec" });
    const foreignLeaf = (await ok(base, "POST", "other/issue/r", { common_name: "x.internal" })).data.certificate;
    const u = await openssl(["ocsp", "-issuer", foreignRoot, "-cert", scratch.file(foreignLeaf), "-url", `${base}/v1/pki/ocsp`]);
    expect(u.out).toMatch(/unauthorized/);
    const junk = await fetch(`${base}/v1/pki/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: Buffer.from("not der") });
    expect(junk.status).toBe(200);
    expect(Buffer.from(await junk.arrayBuffer()).toString("hex")).toBe("30030a0101");
    await ok(base, "POST", "pki/config/crl", { ocsp_disable: true });
    expect(await ocsp((await issue("off.example.com")).certificate)).toMatch(/unauthorized/);
    await ok(base, "POST", "pki/config/crl", { ocsp_disable: false });
  });
});

describe("leased certificates", () => {
  it("generate_lease gives a non-renewable lease to NotAfter; revoking the lease revokes the certificate", async () => {
    await ok(base, "POST", "pki/roles/leased", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", generate_lease: true, max_ttl: "2h" });
    const r = await ok(base, "POST", "pki/issue/leased", { common_name: "leased.example.com", ttl: "30m" });
    expect(r.lease_id).toMatch(/^pki\/issue\/leased\//);
    expect(r.renewable).toBe(false);
    expect(Math.abs(r.lease_duration - (r.data.expiration - Date.now() / 1000))).toBeLessThanOrEqual(2);
    const lookup = await ok(base, "PUT", "sys/leases/lookup", { lease_id: r.lease_id });
    expect(lookup.data.renewable).toBe(false);
    expect((await crlCheck(r.data.certificate)).code).toBe(0);
    const revoke = await call(base, "PUT", "sys/leases/revoke", { token: TOKEN, body: { lease_id: r.lease_id } });
    expect(revoke.status).toBe(204);
    expect((await crlCheck(r.data.certificate)).out).toMatch(/certificate revoked/);
    expect(await ocsp(r.data.certificate)).toMatch(/: revoked/);
    // Without generate_lease (Vault's default) there is no lease.
    expect((await ok(base, "POST", "pki/issue/web", { common_name: "nolease.example.com" })).lease_id).toBe("");
  });

  it("revoking by prefix revokes every certificate leased under the role, with one CRL rebuild for the burst", async () => {
    const crlNumber = async () => Number(/CRL Number: \s*(\d+)/.exec((await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out)![1]);
    const before = await crlNumber();
    const certs = [];
    for (let i = 0; i < 12; i++) certs.push((await ok(base, "POST", "pki/issue/leased", { common_name: `p${i}.example.com` })).data);
    const r = await call(base, "PUT", "sys/leases/revoke-prefix/pki/issue/leased", { token: TOKEN });
    expect(r.status).toBe(204);
    const crl = (await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out;
    for (const c of certs) expect(crl).toContain(c.serial_number.replace(/:/g, "").toUpperCase());
    expect(await crlNumber()).toBeLessThanOrEqual(before + 3);
    expect((await crlCheck(certs[0].certificate)).out).toMatch(/certificate revoked/);
  });
});

describe("tidy", () => {
  it("removes expired certificates and their revocations after the safety buffer; unexpired ones stay", async () => {
    const short = await issue("short.example.com", "web", { ttl: "2s" });
    const shortRevoked = await issue("short-rev.example.com", "web", { ttl: "2s" });
    await ok(base, "POST", "pki/revoke", { serial_number: shortRevoked.serial_number });
    const live = await issue("live.example.com");
    await ok(base, "POST", "pki/revoke", { serial_number: live.serial_number });
    await new Promise((r) => setTimeout(r, 3200));
    const start = await call(base, "POST", "pki/tidy", { token: TOKEN, body: { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: "1s" } });
    expect(start.status).toBe(202);
    expect(start.body.warnings[0]).toMatch(/Tidy operation successfully started/);
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 50 && status.state !== "Finished"; i++) {
      status = (await ok(base, "GET", "pki/tidy-status")).data;
      if (status.state !== "Finished") await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toMatchObject({ state: "Finished", tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: 1 });
    expect(status.cert_store_deleted_count).toBeGreaterThanOrEqual(2);
    expect(status.revoked_cert_deleted_count).toBe(1);
    const certs = (await ok(base, "GET", "pki/certs?list=true")).data.keys as string[];
    expect(certs).not.toContain(short.serial_number);
    expect(certs).not.toContain(shortRevoked.serial_number);
    expect(certs).toContain(live.serial_number);
    const crl = (await openssl(["crl", "-noout", "-text", "-in", scratch.file(await crlPem())])).out;
    expect(crl).not.toContain(shortRevoked.serial_number.replace(/:/g, "").toUpperCase());
    expect(crl).toContain(live.serial_number.replace(/:/g, "").toUpperCase());
    expect(await fails(base, "POST", "pki/tidy", {})).toMatch(/at least one of tidy_cert_store or tidy_revoked_certs/);
  });

  it("auto-tidy runs on its interval", async () => {
    const short = await issue("auto.example.com", "web", { ttl: "1s" });
    const cfg = await ok(base, "POST", "pki/config/auto-tidy", { enabled: true, interval_duration: "1s", tidy_cert_store: true, safety_buffer: "1s" });
    expect(cfg.data).toMatchObject({ enabled: true, interval_duration: 1, safety_buffer: 1, tidy_cert_store: true });
    let certs: string[] = [short.serial_number];
    for (let i = 0; i < 40 && certs.includes(short.serial_number); i++) {
      await new Promise((r) => setTimeout(r, 250));
      certs = (await ok(base, "GET", "pki/certs?list=true")).data.keys;
    }
    expect(certs).not.toContain(short.serial_number);
    expect(Date.parse((await ok(base, "GET", "pki/tidy-status")).data.last_auto_tidy_finished)).toBeGreaterThan(Date.now() - 15000);
    await ok(base, "POST", "pki/config/auto-tidy", { enabled: false });
  });
});
