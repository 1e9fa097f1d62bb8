import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { type Body, certText, fails, mountWithRoot, ok, openssl, sans, Scratch, startPkiServer, TOKEN } from "./helpers.js";

/** Every role constraint, each through issue/:role on the real server, judged by openssl. */
let server: RunningServer;
let base: string;
let rootPem: string;
const scratch = new Scratch();

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  rootPem = await mountWithRoot(base, "pki");
});

afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

async function role(name: string, body: Body): Promise<Body> {
  return (await ok(base, "POST", `pki/roles/${name}`, { key_type: "ec", ...body })).data;
}
const issue = (r: string, body: Body) => ok(base, "POST", `pki/issue/${r}`, body);
const refused = (r: string, body: Body) => fails(base, "POST", `pki/issue/${r}`, body);

describe("allowed names", () => {
  it("allowed_domains with allow_subdomains: subdomains and wildcards yes, the bare domain and others no", async () => {
    await role("sub", { allowed_domains: "example.com", allow_subdomains: true });
    const r = await issue("sub", { common_name: "a.example.com", alt_names: "b.c.example.com,*.example.com" });
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:a.example.com, DNS:b.c.example.com, DNS:*.example.com");
    expect(await refused("sub", { common_name: "example.com" })).toMatch(/common name example.com is not allowed by this role/);
    expect(await refused("sub", { common_name: "a.example.org" })).toMatch(/a.example.org is not allowed/);
    expect(await refused("sub", { common_name: "evilexample.com" })).toMatch(/not allowed/);
    // One bad SAN denies the whole request, naming it.
    expect(await refused("sub", { common_name: "ok.example.com", alt_names: "fine.example.com,bad.example.net" })).toMatch(/subject alternative name bad.example.net/);
  });

  it("allow_bare_domains permits exactly the domain; without allow_subdomains its subdomains stay out", async () => {
    await role("bare", { allowed_domains: "example.com", allow_bare_domains: true });
    expect((await issue("bare", { common_name: "example.com" })).data.certificate).toMatch(/BEGIN CERTIFICATE/);
    expect(await refused("bare", { common_name: "www.example.com" })).toMatch(/not allowed/);
  });

  it("allow_glob_domains matches globs in allowed_domains", async () => {
    await role("glob", { allowed_domains: "web-*.example.com", allow_glob_domains: true });
    expect((await issue("glob", { common_name: "web-7.example.com" })).data.serial_number).toBeTruthy();
    expect(await refused("glob", { common_name: "db-7.example.com" })).toMatch(/not allowed/);
  });

  it("allow_any_name takes any hostname, but enforce_hostnames still refuses non-hostnames", async () => {
    await role("any", { allow_any_name: true });
    expect((await issue("any", { common_name: "whatever.internal" })).data.certificate).toBeTruthy();
    expect(await refused("any", { common_name: "not a host!" })).toMatch(/not a valid hostname/);
    await role("loose", { allow_any_name: true, enforce_hostnames: false });
    expect(await sans(scratch, (await issue("loose", { common_name: "under_score.internal" })).data.certificate)).toBe("DNS:under_score.internal");
  });

  it("allow_localhost (on by default) allows localhost; off, it does not", async () => {
    await role("lh", { allowed_domains: "example.com", allow_subdomains: true });
    expect(await sans(scratch, (await issue("lh", { common_name: "localhost" })).data.certificate)).toBe("DNS:localhost");
    await role("nolh", { allowed_domains: "example.com", allow_subdomains: true, allow_localhost: false });
    expect(await refused("nolh", { common_name: "localhost" })).toMatch(/not allowed/);
  });

  it("allow_wildcard_certificates=false refuses wildcards a domain rule would allow; malformed wildcards never pass", async () => {
    await role("nowild", { allowed_domains: "example.com", allow_subdomains: true, allow_wildcard_certificates: false });
    expect(await refused("nowild", { common_name: "*.example.com" })).toMatch(/wildcard/);
    expect(await refused("sub", { common_name: "a.*.example.com" })).toMatch(/malformed wildcard/);
  });

  it("IP SANs are allowed by default and refused with allow_ip_sans=false", async () => {
    const r = await issue("sub", { common_name: "ip.example.com", ip_sans: "10.0.0.7,2001:db8::1" });
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:ip.example.com, IP Address:10.0.0.7, IP Address:2001:DB8:0:0:0:0:0:1");
    await role("noip", { allowed_domains: "example.com", allow_subdomains: true, allow_ip_sans: false });
    expect(await refused("noip", { common_name: "ip.example.com", ip_sans: "10.0.0.7" })).toMatch(/allow_ip_sans=false/);
    expect(await refused("sub", { common_name: "ip.example.com", ip_sans: "10.0.0.999" })).toMatch(/not an IP address/);
  });

  it("email addresses in alt_names become email SANs, checked by their domain", async () => {
    const r = await issue("sub", { common_name: "mail.example.com", alt_names: "ops@team.example.com" });
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:mail.example.com, email:ops@team.example.com");
    expect(await refused("sub", { common_name: "mail.example.com", alt_names: "ops@evil.com" })).toMatch(/ops@evil.com/);
  });

  it("exclude_cn_from_sans keeps the CN out of the SANs; cn_validations=disabled takes any CN verbatim", async () => {
    const r = await issue("sub", { common_name: "cn.example.com", alt_names: "other.example.com", exclude_cn_from_sans: true });
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:other.example.com");
    await role("freecn", { allowed_domains: "example.com", allow_subdomains: true, cn_validations: "disabled" });
    const free = await issue("freecn", { common_name: "Payroll Service (prod)", alt_names: "payroll.example.com" });
    expect(new X509Certificate(free.data.certificate).subject).toBe("CN=Payroll Service (prod)");
    expect(await sans(scratch, free.data.certificate)).toBe("DNS:payroll.example.com");
  });

  it("require_cn=true refuses a request without a common name", async () => {
    expect(await refused("sub", { alt_names: "a.example.com" })).toMatch(/common_name field is required/);
  });
});

describe("SPIFFE and URI SANs", () => {
  it("allowed_uri_sans globs admit SPIFFE IDs under the pattern; the SVID has exactly that one URI SAN and may have an empty subject", async () => {
    await role("svid", { allowed_uri_sans: "spiffe://example.org/ns/*", require_cn: false, allowed_domains: "example.org", allow_subdomains: true });
    const r = await issue("svid", { uri_sans: "spiffe://example.org/ns/prod/sa/web", ttl: "1h" });
    const text = await certText(scratch, r.data.certificate);
    expect(await sans(scratch, r.data.certificate)).toBe("URI:spiffe://example.org/ns/prod/sa/web");
    expect(text).toMatch(/Subject Alternative Name: critical/);
    expect(new X509Certificate(r.data.certificate).subject ?? "").toBe("");
    expect(text).not.toMatch(/CA:TRUE/);
  });

  it("refuses SPIFFE IDs outside the glob, malformed SPIFFE IDs, and a second URI SAN next to an SVID's", async () => {
    expect(await refused("svid", { uri_sans: "spiffe://other.org/ns/prod/sa/web" })).toMatch(/not allowed by this role's allowed_uri_sans/);
    expect(await refused("svid", { uri_sans: "spiffe://example.org/ns/../admin" })).toMatch(/'\.\.'/);
    expect(await refused("svid", { uri_sans: "spiffe://example.org/ns/a?x=1" })).toMatch(/not a SPIFFE ID/);
    expect(await refused("svid", { uri_sans: "spiffe://Example.org/ns/a" })).toMatch(/not allowed|trust domain/);
    expect(await refused("svid", { uri_sans: "spiffe://example.org/ns/a,spiffe://example.org/ns/b" })).toMatch(/exactly one URI SAN/);
    await role("uris", { allowed_uri_sans: "spiffe://example.org/*,https://example.org/*", require_cn: false });
    expect(await refused("uris", { uri_sans: "spiffe://example.org/a,https://example.org/b" })).toMatch(/exactly one URI SAN/);
    expect(await sans(scratch, (await issue("uris", { uri_sans: "https://example.org/b,https://example.org/c" })).data.certificate)).toBe("URI:https://example.org/b, URI:https://example.org/c");
    // A role with no allowed_uri_sans allows none.
    expect(await refused("sub", { common_name: "a.example.com", uri_sans: "spiffe://example.org/x" })).toMatch(/allowed_uri_sans/);
  });
});

describe("keys", () => {
  it("issues EC P-256, EC P-384, Ed25519 and RSA 2048 keys that match their certificates and verify against the root", async () => {
    for (const [type, bits, label, algo] of [
      ["ec", 256, "EC PRIVATE KEY", /id-ecPublicKey[\s\S]*NIST CURVE: P-256/],
      ["ec", 384, "EC PRIVATE KEY", /id-ecPublicKey[\s\S]*NIST CURVE: P-384/],
      ["ed25519", 0, "PRIVATE KEY", /Public Key Algorithm: ED25519/],
      ["rsa", 2048, "RSA PRIVATE KEY", /rsaEncryption[\s\S]*Public-Key: \(2048 bit\)/],
    ] as const) {
      await role(`k-${type}-${bits}`, { allowed_domains: "example.com", allow_subdomains: true, key_type: type, key_bits: bits });
      const r = await issue(`k-${type}-${bits}`, { common_name: `${type}.example.com` });
      expect(r.data.private_key_type).toBe(type);
      expect(r.data.private_key).toMatch(new RegExp(`^-----BEGIN ${label}-----`));
      const cert = new X509Certificate(r.data.certificate);
      const { createPrivateKey } = await import("node:crypto");
      expect(cert.checkPrivateKey(createPrivateKey(r.data.private_key))).toBe(true);
      expect(await certText(scratch, r.data.certificate)).toMatch(algo);
      const v = await openssl(["verify", "-CAfile", scratch.file(rootPem), scratch.file(r.data.certificate)]);
      expect(v.code, v.out).toBe(0);
    }
  });

  it("answers formats der and pem_bundle, and private_key_format=pkcs8", async () => {
    const der = await issue("sub", { common_name: "der.example.com", format: "der", private_key_format: "pkcs8" });
    expect(der.data.certificate).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(new X509Certificate(Buffer.from(der.data.certificate, "base64")).subject).toBe("CN=der.example.com");
    const { createPrivateKey } = await import("node:crypto");
    expect(createPrivateKey({ key: Buffer.from(der.data.private_key, "base64"), format: "der", type: "pkcs8" }).asymmetricKeyType).toBe("ec");
    const bundle = await issue("sub", { common_name: "bundle.example.com", format: "pem_bundle" });
    expect(bundle.data.certificate.startsWith(bundle.data.private_key)).toBe(true);
    expect(bundle.data.certificate).toMatch(/-----END EC PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----/);
  });

  it("a role with key_type=any signs but cannot issue", async () => {
    await role("anykey", { allow_any_name: true, key_type: "any" });
    expect(await refused("anykey", { common_name: "x.internal" })).toMatch(/"any" not allowed for issuing/);
  });
});

describe("lifetimes", () => {
  it("uses the role's ttl by default and caps a longer request at max_ttl with a warning", async () => {
    await role("ttl", { allowed_domains: "example.com", allow_subdomains: true, ttl: "2h", max_ttl: "4h" });
    const now = Date.now() / 1000;
    const def = await issue("ttl", { common_name: "a.example.com" });
    expect(def.data.expiration - now).toBeGreaterThan(2 * 3600 - 5);
    expect(def.data.expiration - now).toBeLessThan(2 * 3600 + 5);
    expect(def.warnings).toBeNull();
    const capped = await issue("ttl", { common_name: "a.example.com", ttl: "100h" });
    expect(capped.warnings.join(" ")).toMatch(/greater than the maximum of 14400s; capped/);
    expect(capped.data.expiration - now).toBeLessThan(4 * 3600 + 5);
    expect(capped.data.expiration - now).toBeGreaterThan(4 * 3600 - 5);
    const short = await issue("ttl", { common_name: "a.example.com", ttl: "90s" });
    expect(Math.round(short.data.expiration - now)).toBeLessThanOrEqual(91);
  });

  it("backdates NotBefore by not_before_duration (30s by default)", async () => {
    const now = Date.now();
    const def = new X509Certificate((await issue("sub", { common_name: "nb.example.com" })).data.certificate);
    expect(Math.round((now - new Date(def.validFrom).getTime()) / 1000)).toBeGreaterThanOrEqual(29);
    expect(Math.round((now - new Date(def.validFrom).getTime()) / 1000)).toBeLessThanOrEqual(32);
    await role("nb", { allowed_domains: "example.com", allow_subdomains: true, not_before_duration: "10m" });
    const nb = new X509Certificate((await issue("nb", { common_name: "nb.example.com" })).data.certificate);
    expect(Math.round((now - new Date(nb.validFrom).getTime()) / 1000)).toBeGreaterThanOrEqual(599);
    expect(Math.round((now - new Date(nb.validFrom).getTime()) / 1000)).toBeLessThanOrEqual(602);
  });

  it("not_after sets an absolute end, still under max_ttl", async () => {
    const end = new Date(Date.now() + 3 * 3600 * 1000);
    end.setUTCMilliseconds(0);
    const r = await issue("ttl", { common_name: "na.example.com", not_after: end.toISOString().replace(".000", "") });
    expect(r.data.expiration).toBe(end.getTime() / 1000);
  });
});

describe("usages, subject and storage", () => {
  it("server_flag, client_flag, code_signing_flag, email_protection_flag, ext_key_usage(_oids) and key_usage shape the certificate", async () => {
    await role("usage", {
      allowed_domains: "example.com",
      allow_subdomains: true,
      server_flag: false,
      client_flag: true,
      code_signing_flag: true,
      email_protection_flag: true,
      ext_key_usage: "TimeStamping",
      ext_key_usage_oids: "1.3.6.1.4.1.311.10.3.12",
      key_usage: "DigitalSignature",
    });
    const text = await certText(scratch, (await issue("usage", { common_name: "u.example.com" })).data.certificate);
    expect(text).toMatch(/Extended Key Usage: \s+TLS Web Client Authentication, Code Signing, E-mail Protection, Time Stamping, 1\.3\.6\.1\.4\.1\.311\.10\.3\.12/);
    expect(text).not.toMatch(/TLS Web Server Authentication/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    const def = await certText(scratch, (await issue("sub", { common_name: "d.example.com" })).data.certificate);
    expect(def).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
    expect(def).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(def).not.toMatch(/Basic Constraints/);
    await role("bc", { allowed_domains: "example.com", allow_subdomains: true, basic_constraints_valid_for_non_ca: true });
    expect(await certText(scratch, (await issue("bc", { common_name: "bc.example.com" })).data.certificate)).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
  });

  it("organization, ou, country, locality and province go into the subject", async () => {
    await role("subj", { allowed_domains: "example.com", allow_subdomains: true, organization: "Example Org", ou: "Platform,Security", country: "DE", locality: "Berlin", province: "BE" });
    const cert = new X509Certificate((await issue("subj", { common_name: "s.example.com" })).data.certificate);
    // Several values of one attribute share one RDN, as Go (and so Vault) writes them.
    expect(cert.subject).toBe("C=DE\nST=BE\nL=Berlin\nO=Example Org\nOU=Platform + OU=Security\nCN=s.example.com");
  });

  it("stores certificates by default (cert/:serial, LIST certs) and never with no_store", async () => {
    const stored = await issue("sub", { common_name: "stored.example.com" });
    expect((await ok(base, "GET", "pki/certs?list=true")).data.keys).toContain(stored.data.serial_number);
    const read = await call(base, "GET", `pki/cert/${stored.data.serial_number}`);
    expect(read.body.data.certificate).toBe(stored.data.certificate);
    await role("nostore", { allowed_domains: "example.com", allow_subdomains: true, no_store: true });
    const gone = await issue("nostore", { common_name: "ephemeral.example.com" });
    expect((await ok(base, "GET", "pki/certs?list=true")).data.keys).not.toContain(gone.data.serial_number);
    expect((await call(base, "GET", `pki/cert/${gone.data.serial_number}`)).status).toBe(404);
    // The private key is never stored: no stored row contains it.
    const der = (await import("node:crypto")).createPrivateKey(stored.data.private_key).export({ type: "pkcs8", format: "der" });
    const db = (server.core.barrier.physical as unknown as { db: { prepare(sql: string): { all(): { value: Buffer }[] } } }).db;
    for (const row of db.prepare("SELECT value FROM kv").all()) expect(row.value.includes(der.subarray(-65, -35))).toBe(false);
  });
});

describe("the roles API", () => {
  it("reads, lists, patches and deletes roles with Vault's fields and defaults", async () => {
    const r = await role("api", { allowed_domains: ["example.com", "example.net"], ttl: "1h", max_ttl: "2h" });
    expect(r).toMatchObject({ allowed_domains: ["example.com", "example.net"], ttl: 3600, max_ttl: 7200, key_type: "ec", key_bits: 256, allow_localhost: true, enforce_hostnames: true, server_flag: true, client_flag: true, require_cn: true, not_before_duration: 30, generate_lease: false, no_store: false });
    expect((await ok(base, "GET", "pki/roles/api")).data).toEqual(r);
    expect((await ok(base, "GET", "pki/roles?list=true")).data.keys).toContain("api");
    const patched = await call(base, "PATCH", "pki/roles/api", { token: TOKEN, body: { allow_subdomains: true } });
    expect(patched.status).toBe(200);
    expect(patched.body.data).toMatchObject({ allow_subdomains: true, allowed_domains: ["example.com", "example.net"], ttl: 3600 });
    // A POST replaces the whole role.
    expect((await role("api", { allowed_domains: "example.org" })).allow_subdomains).toBe(false);
    expect((await call(base, "DELETE", "pki/roles/api", { token: TOKEN })).status).toBe(204);
    expect((await call(base, "GET", "pki/roles/api", { token: TOKEN })).status).toBe(404);
    expect(await refused("api", { common_name: "x.example.org" })).toMatch(/unknown role: api/);
  });

  it("refuses inconsistent roles", async () => {
    expect(await fails(base, "POST", "pki/roles/bad", { ttl: "2h", max_ttl: "1h" })).toMatch(/ttl cannot be larger than max_ttl/);
    expect(await fails(base, "POST", "pki/roles/bad", { key_type: "rsa", key_bits: 1000 })).toMatch(/unsupported RSA key size/);
    expect(await fails(base, "POST", "pki/roles/bad", { key_usage: "Teleport" })).toMatch(/unknown key usage/);
    expect(await fails(base, "POST", "pki/roles/bad", { ext_key_usage: "Nope" })).toMatch(/unknown extended key usage/);
    expect(await fails(base, "POST", "pki/roles/bad", { no_store: true, generate_lease: true })).toMatch(/no_store/);
    expect(await fails(base, "POST", "pki/roles/bad", { cn_validations: "disabled,email" })).toMatch(/must be the only value/);
    expect(await fails(base, "POST", "pki/roles/bad name", {})).toBeDefined();
  });
});
