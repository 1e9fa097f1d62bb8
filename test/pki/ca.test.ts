import { createPrivateKey, X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { certText, fails, mountPki, mountWithRoot, ok, openssl, Scratch, startPkiServer, TOKEN } from "./helpers.js";

/** CAs: roots, intermediates signed across mounts, imports, deletion, and keys that never leave. */
let server: RunningServer;
let base: string;
const scratch = new Scratch();

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
});

afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

describe("root CAs", () => {
  it("root/generate/internal answers Vault's fields, never the key, and the certificate is a CA", async () => {
    await mountPki(base, "pki");
    const r = await ok(base, "POST", "pki/root/generate/internal", { common_name: "Example Root CA", key_type: "ec", key_bits: 256, ttl: "87600h", organization: "Example Org" });
    const d = r.data;
    expect(d.private_key).toBeUndefined();
    expect(d.private_key_type).toBeUndefined();
    expect(d.serial_number).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){15}$/);
    expect(typeof d.expiration).toBe("number");
    expect(d.issuing_ca).toBe(d.certificate);
    expect(d.issuer_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(d.key_id).toMatch(/^[0-9a-f-]{36}$/);
    const cert = new X509Certificate(d.certificate);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("O=Example Org\nCN=Example Root CA");
    expect(cert.checkIssued(cert)).toBe(true);
    expect(Math.floor(new Date(cert.validTo).getTime() / 1000)).toBe(d.expiration);
    // Ten years, as asked (the mount allows 87600h).
    expect(d.expiration - Date.now() / 1000).toBeGreaterThan(87590 * 3600);
    const text = await certText(scratch, d.certificate);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    // The issuer's own read never shows key material either.
    const issuer = await ok(base, "GET", `pki/issuer/${d.issuer_id}`);
    expect(JSON.stringify(issuer)).not.toMatch(/PRIVATE KEY/);
    expect(issuer.data.key_id).toBe(d.key_id);
  });

  it("root/generate/exported returns the key once (RSA, Ed25519, P-384), matching the certificate", async () => {
    for (const [path, body, type] of [
      ["pki-rsa", { key_type: "rsa", key_bits: 2048 }, "rsa"],
      ["pki-ed", { key_type: "ed25519" }, "ed25519"],
      ["pki-p384", { key_type: "ec", key_bits: 384 }, "ec"],
    ] as const) {
      await mountPki(base, path);
      const r = await ok(base, "POST", `${path}/root/generate/exported`, { common_name: `${path} root`, ttl: "8760h", ...body });
      expect(r.data.private_key_type).toBe(type);
      const key = createPrivateKey(r.data.private_key);
      const cert = new X509Certificate(r.data.certificate);
      expect(cert.checkPrivateKey(key)).toBe(true);
      expect(cert.verify(cert.publicKey)).toBe(true);
      expect(r.data.private_key).toMatch(type === "rsa" ? /^-----BEGIN RSA PRIVATE KEY-----/ : type === "ec" ? /^-----BEGIN EC PRIVATE KEY-----/ : /^-----BEGIN PRIVATE KEY-----/);
      const pkcs8 = await ok(base, "POST", `${path}/intermediate/generate/exported`, { common_name: "x", key_type: "ec", private_key_format: "pkcs8" });
      expect(pkcs8.data.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    }
  });

  it("caps a root's TTL at the mount's maximum, with a warning", async () => {
    await ok(base, "POST", "sys/mounts/pki-short", { type: "pki", config: { max_lease_ttl: "48h" } });
    const r = await ok(base, "POST", "pki-short/root/generate/internal", { common_name: "short", key_type: "ec", ttl: "8760h" });
    expect(r.warnings.join(" ")).toMatch(/capped/);
    expect(r.data.expiration - Date.now() / 1000).toBeLessThanOrEqual(48 * 3600 + 5);
  });

  it("refuses what it cannot do: unknown key types, kms keys, a missing common name", async () => {
    expect(await fails(base, "POST", "pki-short/root/generate/internal", { common_name: "x", key_type: "dsa" })).toMatch(/unknown key_type/);
    expect(await fails(base, "POST", "pki-short/root/generate/kms", { common_name: "x" })).toMatch(/unsupported key handling/);
    expect(await fails(base, "POST", "pki-short/root/generate/internal", { key_type: "ec" })).toMatch(/common_name field is required/);
    expect(await fails(base, "POST", "pki-short/root/generate/internal", { common_name: "x", key_type: "rsa", key_bits: 1024 })).toMatch(/unsupported RSA key size/);
  });

  it("keeps CA private keys encrypted at rest: no stored row holds the key or a PEM marker", async () => {
    await mountPki(base, "pki-rest");
    const r = await ok(base, "POST", "pki-rest/root/generate/exported", { common_name: "rest", key_type: "ec" });
    const der = createPrivateKey(r.data.private_key).export({ type: "pkcs8", format: "der" });
    const scalar = der.subarray(der.length - 100, der.length - 70);
    const db = (server.core.barrier.physical as unknown as { db: { prepare(sql: string): { all(): { key: string; value: Buffer }[] } } }).db;
    const rows = db.prepare("SELECT key, value FROM kv").all();
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) {
      expect(row.value.includes(Buffer.from("PRIVATE KEY")), row.key).toBe(false);
      expect(row.value.includes(scalar), row.key).toBe(false);
    }
  });
});

describe("intermediate CAs across mounts", () => {
  let rootPem: string;
  let intPem: string;

  it("intermediate/generate → root/sign-intermediate → intermediate/set-signed builds a chain openssl accepts", async () => {
    rootPem = await mountWithRoot(base, "root-ca", { max_path_length: 1 });
    await mountPki(base, "int-ca");
    const gen = await ok(base, "POST", "int-ca/intermediate/generate/internal", { common_name: "Example Intermediate", key_type: "ec", organization: "Example Org" });
    expect(gen.data.private_key).toBeUndefined();
    expect(gen.data.csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const csrCheck = await openssl(["req", "-noout", "-verify", "-in", scratch.file(gen.data.csr)]);
    expect(csrCheck.out).toMatch(/verify OK|Certificate request self-signature verify OK/);

    const signed = await ok(base, "POST", "root-ca/root/sign-intermediate", { csr: gen.data.csr, common_name: "Example Intermediate", ttl: "43800h", format: "pem_bundle" });
    expect(signed.data.certificate).toContain(rootPem);
    intPem = signed.data.certificate.split(/(?<=-----END CERTIFICATE-----)\n/)[0];
    const text = await certText(scratch, intPem);
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    // The intermediate is stored in the root mount, so the root can revoke it.
    const listed = await ok(base, "GET", "root-ca/certs?list=true");
    expect(listed.data.keys).toContain(signed.data.serial_number);

    const set = await ok(base, "POST", "int-ca/intermediate/set-signed", { certificate: signed.data.certificate });
    expect(set.data.imported_issuers).toHaveLength(2);
    expect(Object.values(set.data.mapping)).toHaveLength(1);

    await ok(base, "POST", "int-ca/roles/svc", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", max_ttl: "24h" });
    const leaf = await ok(base, "POST", "int-ca/issue/svc", { common_name: "api.example.com", ttl: "1h" });
    expect(leaf.data.issuing_ca).toBe(intPem);
    expect(leaf.data.ca_chain).toEqual([intPem, rootPem]);
    const v = await openssl(["verify", "-CAfile", scratch.file(rootPem), "-untrusted", scratch.file(intPem), scratch.file(leaf.data.certificate)]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toMatch(/: OK/);
    // Without the intermediate the leaf does not verify: the chain is real.
    const broken = await openssl(["verify", "-CAfile", scratch.file(rootPem), scratch.file(leaf.data.certificate)]);
    expect(broken.code).not.toBe(0);

    const chain = await call(base, "GET", "int-ca/ca_chain");
    expect(chain.body).toBe(`${intPem}\n${rootPem}\n`);

    // OCSP from the intermediate verifies up to the root (the docs' worked example).
    const intFile = scratch.file((await call(base, "GET", "int-ca/cert/ca")).body.data.certificate);
    await ok(base, "POST", "int-ca/revoke", { serial_number: leaf.data.serial_number });
    const o = await openssl(["ocsp", "-issuer", intFile, "-cert", scratch.file(leaf.data.certificate), "-url", `${base}/v1/int-ca/ocsp`, "-CAfile", scratch.file(rootPem)]);
    expect(o.out).toMatch(/Response verify OK/);
    expect(o.out).toMatch(/: revoked/);
  });

  it("crl_check_all passes with both CRLs and fails once the root revokes the intermediate", async () => {
    const leaf = await ok(base, "POST", "int-ca/issue/svc", { common_name: "chk.example.com", ttl: "1h" });
    const crls = async () => scratch.file(`${(await call(base, "GET", "root-ca/crl/pem")).body}${(await call(base, "GET", "int-ca/crl/pem")).body}`);
    const args = async () => ["verify", "-crl_check_all", "-CAfile", scratch.file(rootPem), "-untrusted", scratch.file(intPem), "-CRLfile", await crls(), scratch.file(leaf.data.certificate)];
    const before = await openssl(await args());
    expect(before.code, before.out).toBe(0);
    await ok(base, "POST", "root-ca/revoke", { certificate: intPem });
    const after = await openssl(await args());
    expect(after.code).not.toBe(0);
    expect(after.out).toMatch(/certificate revoked/);
  });

  it("a path length of 0 stops further intermediates", async () => {
    const gen = await ok(base, "POST", "pki-short/intermediate/generate/internal", { common_name: "sub", key_type: "ec" });
    expect(await fails(base, "POST", "int-ca/root/sign-intermediate", { csr: gen.data.csr, common_name: "sub" })).toMatch(/path length constraint is 0/);
  });

  it("set-signed refuses a certificate whose key this mount did not generate, and non-CA certificates", async () => {
    await mountPki(base, "int-b");
    await ok(base, "POST", "int-b/intermediate/generate/internal", { common_name: "B", key_type: "ec" });
    expect(await fails(base, "POST", "int-b/intermediate/set-signed", { certificate: intPem })).toMatch(/none of the certificates matches a key/);
    const leaf = await ok(base, "POST", "int-ca/issue/svc", { common_name: "leaf.example.com" });
    expect(await fails(base, "POST", "int-b/config/ca", { pem_bundle: leaf.data.certificate })).toMatch(/not a CA/);
  });
});

describe("imports and deletion", () => {
  it("config/ca imports an openssl-made CA with its key; the mount then issues with it", async () => {
    const key = scratch.file("", "imported.key");
    const crt = scratch.file("", "imported.crt");
    const made = await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-subj", "/CN=Imported CA", "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    expect(made.code, made.out).toBe(0);
    const { readFileSync } = await import("node:fs");
    await mountPki(base, "imported");
    const r = await ok(base, "POST", "imported/config/ca", { pem_bundle: `${readFileSync(key, "utf8")}\n${readFileSync(crt, "utf8")}` });
    expect(r.data.imported_issuers).toHaveLength(1);
    expect(r.data.imported_keys).toHaveLength(1);
    expect(r.data.mapping[r.data.imported_issuers[0]]).toBe(r.data.imported_keys[0]);
    const again = await ok(base, "POST", "imported/config/ca", { pem_bundle: readFileSync(crt, "utf8") });
    expect(again.data.existing_issuers).toEqual(r.data.imported_issuers);
    await ok(base, "POST", "imported/roles/r", { allow_any_name: true, key_type: "ec" });
    const leaf = await ok(base, "POST", "imported/issue/r", { common_name: "anything.internal" });
    const v = await openssl(["verify", "-CAfile", crt, scratch.file(leaf.data.certificate)]);
    expect(v.code, v.out).toBe(0);
    // The imported CA lives 30 days: a 60-day request is capped to it.
    await ok(base, "POST", "imported/roles/long", { allow_any_name: true, key_type: "ec", max_ttl: "2000h" });
    const long = await ok(base, "POST", "imported/issue/long", { common_name: "long.internal", ttl: "1440h" });
    expect(long.warnings.join(" ")).toMatch(/never outlives its issuer/);
    expect(long.data.expiration).toBe(Math.floor(new Date(new X509Certificate(readFileSync(crt)).validTo).getTime() / 1000));
  });

  it("DELETE root needs sudo, removes every issuer, and issuance then fails with 400", async () => {
    await ok(base, "POST", "sys/policies/acl/pki-admin", { policy: 'path "imported/*" { capabilities = ["create", "read", "update", "delete", "list"] }' });
    const t = await ok(base, "POST", "auth/token/create", { policies: ["pki-admin"] });
    const denied = await call(base, "DELETE", "imported/root", { token: t.auth.client_token });
    expect(denied.status).toBe(403);
    const del = await call(base, "DELETE", "imported/root", { token: TOKEN });
    expect(del.status).toBe(204);
    expect(await fails(base, "POST", "imported/issue/r", { common_name: "x.internal" })).toMatch(/no default issuer/);
    expect((await call(base, "GET", "imported/ca/pem")).status).toBe(404);
    expect((await call(base, "GET", "imported/issuers?list=true", { token: TOKEN })).status).toBe(404);
  });

  it("lists issuers, renames one, and chooses the default", async () => {
    await mountPki(base, "multi");
    const a = await ok(base, "POST", "multi/root/generate/internal", { common_name: "A", key_type: "ec", issuer_name: "root-a" });
    const b = await ok(base, "POST", "multi/root/generate/internal", { common_name: "B", key_type: "ec", issuer_name: "root-b" });
    const list = await ok(base, "GET", "multi/issuers?list=true");
    expect(list.data.keys.sort()).toEqual([a.data.issuer_id, b.data.issuer_id].sort());
    expect(list.data.key_info[a.data.issuer_id].is_default).toBe(true);
    expect((await call(base, "GET", "multi/ca/pem")).body.trim()).toBe(a.data.certificate);
    await ok(base, "POST", "multi/config/issuers", { default: "root-b" });
    expect((await call(base, "GET", "multi/ca/pem")).body.trim()).toBe(b.data.certificate);
    await ok(base, "POST", "multi/roles/r", { allow_any_name: true, key_type: "ec" });
    const viaA = await ok(base, "POST", "multi/issuer/root-a/issue/r", { common_name: "via-a" });
    expect(viaA.data.issuing_ca).toBe(a.data.certificate);
    expect((await ok(base, "POST", "multi/issue/r", { common_name: "via-default" })).data.issuing_ca).toBe(b.data.certificate);
    await ok(base, "POST", `multi/issuer/${a.data.issuer_id}`, { issuer_name: "renamed" });
    expect((await ok(base, "GET", "multi/issuer/renamed")).data.issuer_id).toBe(a.data.issuer_id);
  });
});
