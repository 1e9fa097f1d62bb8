/**
 * Issue 15, "what already held": a PKI role's name constraints and CSR extension injection.
 * Names outside a role (look-alike suffixes, bare domains, wildcards, NUL/space/slash tricks,
 * homographs, IPs and URIs a role does not allow, malformed SPIFFE IDs) are refused through
 * `issue/:role` and inside CSRs through `sign/:role`; a CSR asking for CA powers, other key or
 * extended key usages, name constraints, distribution points or a made-up subject gets none of
 * them; the validity never exceeds the role's max_ttl nor the CA's own. Positive controls: the
 * names the roles do allow are issued, and a valid CSR signs and verifies against the root.
 * test/pki/sign.test.ts and roles.test.ts cover the same rules in more depth.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { TOKEN, certText, mountWithRoot, ok, openssl, sans, Scratch, startPkiServer } from "../pki/helpers.js";

let server: RunningServer;
let base: string;
let rootPem: string;
const scratch = new Scratch();
/** The private key file of each CSR made here, by its PEM. */
const keyOf = new Map<string, string>();

/** A CSR made by openssl (EC P-256): `subj` like `/CN=x`, `ext` lines for -addext. */
async function csr(subj: string, ext: string[] = []): Promise<string> {
  const keyFile = scratch.file("", `k${Math.random().toString(36).slice(2)}.pem`);
  const out = scratch.file("", `r${Math.random().toString(36).slice(2)}.pem`);
  const r = await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", out, "-subj", subj, ...ext.flatMap((e) => ["-addext", e])]);
  expect(r.code, r.out).toBe(0);
  const pem = readFileSync(out, "utf8");
  keyOf.set(pem, keyFile);
  return pem;
}

/** The request is refused with 400 and no certificate. */
async function refused(path: string, body: Record<string, unknown>, what: string): Promise<void> {
  const r = await call(base, "POST", path, { token: TOKEN, body });
  expect(r.status, `${what} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`).toBe(400);
  expect(r.body.data?.certificate, what).toBeUndefined();
}

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  rootPem = await mountWithRoot(base, "pki", { ttl: "8760h" });
  await ok(base, "POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, allow_localhost: false, allow_wildcard_certificates: false, allow_ip_sans: false, key_type: "ec", max_ttl: "24h" });
  await ok(base, "POST", "pki/roles/glob", { allowed_domains: "*.svc.example.net", allow_glob_domains: true, allow_ip_sans: true, allow_localhost: false, key_type: "ec", max_ttl: "24h" });
  await ok(base, "POST", "pki/roles/svid", { allowed_uri_sans: "spiffe://example.org/ns/app/*", require_cn: false, allow_ip_sans: false, allow_localhost: false, key_type: "ec", max_ttl: "1h" });
});
afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

describe("role name constraints (issue/:role)", () => {
  it("positive control: names inside the roles are issued", async () => {
    const web = await ok(base, "POST", "pki/issue/web", { common_name: "app.example.com", alt_names: "a.b.example.com" });
    expect(await sans(scratch, web.data.certificate)).toBe("DNS:app.example.com, DNS:a.b.example.com");
    const glob = await ok(base, "POST", "pki/issue/glob", { common_name: "db.svc.example.net", ip_sans: "10.0.0.1" });
    expect(await sans(scratch, glob.data.certificate)).toBe("DNS:db.svc.example.net, IP Address:10.0.0.1");
    const svid = await ok(base, "POST", "pki/issue/svid", { uri_sans: "spiffe://example.org/ns/app/web" });
    expect(await sans(scratch, svid.data.certificate)).toBe("URI:spiffe://example.org/ns/app/web");
  });

  it("refuses names that URL host parsing would cut short (/, ?, #, \\ and control characters)", async () => {
    for (const name of ["www.bank.com/.example.com", "www.bank.com?.example.com", "www.bank.com#.example.com", "www.bank.com\\.example.com", "evil.com\n.example.com", "a\t.example.com", "root@evil.com/.example.com"]) {
      await refused("pki/issue/web", { common_name: name }, `CN ${JSON.stringify(name)}`);
      await refused("pki/issue/web", { common_name: "ok.example.com", alt_names: [name] }, `SAN ${JSON.stringify(name)}`);
    }
    await refused("pki/issue/glob", { common_name: "www.bank.com/.svc.example.net" }, "glob");
    await refused("pki/sign/web", { csr: await csr("/CN=ok.example.com", ["subjectAltName=DNS:www.bank.com/.example.com"]) }, "CSR SAN");
    await refused("pki/sign/web", { csr: await csr("/CN=www.bank.com\\/.example.com") }, "CSR CN");
    // Positive control: an internationalised name inside the role is written as its A-label.
    const idn = await ok(base, "POST", "pki/issue/web", { common_name: "bücher.example.com" });
    expect(await sans(scratch, idn.data.certificate)).toBe("DNS:xn--bcher-kva.example.com");
  });

  it("refuses DNS names and email addresses outside allowed_domains + allow_subdomains", async () => {
    for (const name of [
      "evil.com",
      "example.com", // bare domain: allow_bare_domains is off
      "example.com.evil.com",
      "evilexample.com",
      "app.example.com.evil.com",
      "app.example.com.",
      ".example.com",
      "a..example.com",
      "*.example.com", // wildcards are off
      "*.com",
      "*",
      "evil.com\u0000.example.com",
      "evil.com .example.com",
      "app.ex\u0430mple.com", // Cyrillic а
      "xn--exmple-4nf.com",
      "localhost",
      "127.0.0.1",
      "root@evil.com",
      "root@example.com.evil.com",
      "a@b@app.example.com",
    ]) {
      await refused("pki/issue/web", { common_name: name }, `CN ${JSON.stringify(name)}`);
      await refused("pki/issue/web", { common_name: "ok.example.com", alt_names: [name] }, `SAN ${JSON.stringify(name)}`);
    }
    // A comma-separated list is split: one bad name fails the whole request.
    await refused("pki/issue/web", { common_name: "ok.example.com", alt_names: "fine.example.com,evil.com" }, "list");
  });

  it("refuses IP and URI SANs a role does not allow, and other SAN types", async () => {
    await refused("pki/issue/web", { common_name: "ok.example.com", ip_sans: "10.0.0.1" }, "IP on a role without allow_ip_sans");
    await refused("pki/issue/web", { common_name: "10.0.0.1" }, "IP as CN");
    await refused("pki/issue/web", { common_name: "ok.example.com", uri_sans: "spiffe://example.org/ns/app/web" }, "URI on a role without allowed_uri_sans");
    await refused("pki/issue/web", { common_name: "ok.example.com", other_sans: "1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp" }, "other_sans (UPN)");
    for (const ip of ["10.0.0.1/8", "010.0.0.1", "10.1", "10.0.0.256", "example.com"]) {
      await refused("pki/issue/glob", { common_name: "db.svc.example.net", ip_sans: ip }, `malformed IP ${ip}`);
    }
  });

  it("allow_glob_domains: the glob holds, look-alikes do not", async () => {
    for (const name of ["svc.example.net", "evil.net", "db.svc.example.net.evil.net", "db.svc-example.net", "db.svcXexample.net", "db.svc.example.net:443", "db.svc.example.net..", "db..svc.example.net"]) {
      await refused("pki/issue/glob", { common_name: name }, `glob ${JSON.stringify(name)}`);
    }
    expect((await ok(base, "POST", "pki/issue/glob", { common_name: "a.b.svc.example.net" })).data.certificate).toMatch(/BEGIN CERTIFICATE/);
  });

  it("SPIFFE URI SANs: only well-formed IDs under the allowed prefix, exactly one", async () => {
    for (const uri of [
      "spiffe://example.org/ns/admin",
      "spiffe://example.org/ns/app/../admin",
      "spiffe://example.org/ns/app/./web",
      "spiffe://example.org/ns/app/%2e%2e/admin",
      "spiffe://example.org/ns/app/web/",
      "spiffe://example.org/ns/app//web",
      "spiffe://example.org:8443/ns/app/web",
      "spiffe://user@example.org/ns/app/web",
      "spiffe://EXAMPLE.org/ns/app/web",
      "SPIFFE://example.org/ns/app/web",
      "spiffe://example.org/ns/app/web?admin=1",
      "spiffe://example.org/ns/app/web#x",
      "spiffe://example.org.evil.com/ns/app/web",
      "spiffe://evil.org/ns/app/web",
      "spiffe://example.org/ns/app/we b",
      "https://example.org/ns/app/web",
      "spiffe://example.org/ns/app/web,spiffe://example.org/ns/admin",
    ]) {
      await refused("pki/issue/svid", { uri_sans: uri }, `URI ${JSON.stringify(uri)}`);
    }
    await refused("pki/issue/svid", { uri_sans: ["spiffe://example.org/ns/app/a", "spiffe://example.org/ns/app/b"] }, "two SPIFFE IDs");
    await refused("pki/issue/svid", { uri_sans: "spiffe://example.org/ns/app/a", common_name: "evil.com" }, "SVID with a CN outside the role");
  });
});

describe("CSR injection (sign/:role)", () => {
  it("positive control: a valid CSR inside the role signs and verifies against the root", async () => {
    const r = await ok(base, "POST", "pki/sign/web", { csr: await csr("/CN=app.example.com", ["subjectAltName=DNS:app.example.com,DNS:api.example.com"]) });
    expect(r.data.private_key).toBeUndefined();
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:app.example.com, DNS:api.example.com");
    const v = await openssl(["verify", "-CAfile", scratch.file(rootPem), scratch.file(r.data.certificate)]);
    expect(v.code, v.out).toBe(0);
  });

  it("a CSR asking for CA powers, other usages, name constraints, distribution points or a subject gets none of them", async () => {
    const req = await csr("/CN=app.example.com/O=Evil Root CA/OU=Issuing/C=ZZ/emailAddress=root@evil.com", [
      "basicConstraints=critical,CA:TRUE,pathlen:5",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
      "extendedKeyUsage=OCSPSigning,codeSigning,timeStamping,serverAuth",
      "nameConstraints=critical,permitted;DNS:evil.com",
      "crlDistributionPoints=URI:http://evil.example/crl",
      "authorityInfoAccess=OCSP;URI:http://evil.example/ocsp",
      "certificatePolicies=1.2.3.4",
      "subjectKeyIdentifier=0102030405060708090a0b0c0d0e0f1011121314",
    ]);
    const r = await ok(base, "POST", "pki/sign/web", { csr: req });
    const cert = new X509Certificate(r.data.certificate);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe("CN=app.example.com");
    const text = await certText(scratch, r.data.certificate);
    for (const absent of ["CA:TRUE", "pathlen", "Certificate Sign", "CRL Sign", "OCSP Signing", "Code Signing", "Time Stamping", "Name Constraints", "evil", "Evil", "CRL Distribution", "Authority Information Access", "Policies", "1.2.3.4", "01:02:03:04:05:06"]) {
      expect(text, absent).not.toContain(absent);
    }
    expect(text).toContain("TLS Web Server Authentication");
    // openssl agrees it cannot act as a CA or an OCSP responder.
    const purpose = await openssl(["x509", "-noout", "-purpose", "-in", scratch.file(r.data.certificate)]);
    expect(purpose.out).toMatch(/SSL server CA : No/);
    expect(purpose.out).toMatch(/OCSP helper CA : No/);
    // The holder of the leaf's key signs a certificate for another name with it: that does not
    // verify against the root (the leaf is no CA, whatever its CSR asked).
    const leafFile = scratch.file(r.data.certificate, "leaf.pem");
    const subReq = await csr("/CN=www.bank.com");
    const sub = scratch.file("", "sub.pem");
    const signed = await openssl(["x509", "-req", "-in", scratch.file(subReq), "-CA", leafFile, "-CAkey", keyOf.get(req)!, "-set_serial", "7", "-days", "1", "-out", sub]);
    expect(signed.code, signed.out).toBe(0);
    const v = await openssl(["verify", "-CAfile", scratch.file(rootPem), "-untrusted", leafFile, sub]);
    expect(v.code, v.out).not.toBe(0);
    expect(v.out).toMatch(/invalid CA certificate|not a CA|unable to get local issuer|key usage/i);
  });

  it("refuses a CSR whose SANs or CN leave the role", async () => {
    const cases: [string, string[]][] = [
      ["/CN=app.example.com", ["subjectAltName=DNS:app.example.com,DNS:evil.com"]],
      ["/CN=www.bank.com", ["subjectAltName=DNS:app.example.com"]],
      ["/CN=app.example.com", ["subjectAltName=DNS:*.example.com"]],
      ["/CN=app.example.com", ["subjectAltName=IP:10.0.0.1"]],
      ["/CN=app.example.com", ["subjectAltName=URI:spiffe://example.org/ns/app/web"]],
      ["/CN=app.example.com", ["subjectAltName=email:root@evil.com"]],
      ["/CN=app.example.com", ["subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp"]],
      ["/CN=app.example.com", ["subjectAltName=DNS:evil.com .example.com"]],
    ];
    for (const [subj, ext] of cases) await refused("pki/sign/web", { csr: await csr(subj, ext) }, `${subj} ${ext.join(" ")}`);
    // A SPIFFE CSR outside the SVID role's prefix.
    await refused("pki/sign/svid", { csr: await csr("/O=x", ["subjectAltName=URI:spiffe://example.org/ns/admin"]) }, "SVID CSR outside the prefix");
    const svid = await ok(base, "POST", "pki/sign/svid", { csr: await csr("/O=x", ["subjectAltName=URI:spiffe://example.org/ns/app/api"]) });
    expect(await sans(scratch, svid.data.certificate)).toBe("URI:spiffe://example.org/ns/app/api");
  });

  it("the validity never exceeds the role's max_ttl nor the CA's own notAfter, nor starts in the past", async () => {
    const req = await csr("/CN=long.example.com");
    const caNotAfter = new Date(new X509Certificate(rootPem).validTo).getTime();
    const notAfterOf = (pem: string) => new Date(new X509Certificate(pem).validTo).getTime();
    for (const body of [{ ttl: "876000h" }, { ttl: "25h" }, { not_after: "2999-01-01T00:00:00Z" }]) {
      const r = await ok(base, "POST", "pki/sign/web", { csr: req, ...body });
      expect(notAfterOf(r.data.certificate), JSON.stringify(body)).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000 + 60_000);
    }
    // A role without max_ttl: the mount allows ten years, the root (one year) caps the leaf.
    await ok(base, "POST", "pki/roles/nomax", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec" });
    for (const body of [{ ttl: "876000h" }, { not_after: "2999-01-01T00:00:00Z" }]) {
      const r = await ok(base, "POST", "pki/sign/nomax", { csr: req, ...body });
      expect(notAfterOf(r.data.certificate), JSON.stringify(body)).toBeLessThanOrEqual(caNotAfter);
    }
    await refused("pki/sign/web", { csr: req, not_after: "2000-01-01T00:00:00Z" }, "not_after in the past");
    await refused("pki/sign/web", { csr: req, ttl: "-1h" }, "negative ttl");
    // Positive control: a TTL within the role is honoured.
    const short = await ok(base, "POST", "pki/sign/web", { csr: req, ttl: "1h" });
    expect(Math.abs(notAfterOf(short.data.certificate) - (Date.now() + 3600_000))).toBeLessThan(120_000);
  });
});
