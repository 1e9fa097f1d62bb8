import { X509Certificate, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { certText, fails, mountWithRoot, ok, openssl, sans, Scratch, startPkiServer } from "./helpers.js";

/** sign/:role: the caller's CSR is checked (signature, key, every name) and never becomes a CA. */
let server: RunningServer;
let base: string;
let rootPem: string;
const scratch = new Scratch();

/** A CSR made by openssl: `subj` like `/CN=x`, `ext` lines for -addext, `key` an openssl -newkey spec. */
async function csr(subj: string, ext: string[] = [], key = "ec -pkeyopt ec_paramgen_curve:P-256"): Promise<string> {
  const keyFile = scratch.file("", `k${Math.random().toString(36).slice(2)}.pem`);
  const out = scratch.file("", `r${Math.random().toString(36).slice(2)}.pem`);
  const [alg, ...opts] = key.split(" ");
  const r = await openssl(["req", "-new", "-newkey", alg, ...opts, "-nodes", "-keyout", keyFile, "-out", out, "-subj", subj, ...ext.flatMap((e) => ["-addext", e])]);
  expect(r.code, r.out).toBe(0);
  return readFileSync(out, "utf8");
}

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  rootPem = await mountWithRoot(base, "pki");
  await ok(base, "POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", max_ttl: "24h" });
});

afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

describe("signing CSRs", () => {
  it("signs a CSR within the role: the certificate carries the CSR's key and names, no private key is returned", async () => {
    const req = await csr("/CN=app.example.com", ["subjectAltName=DNS:app.example.com,DNS:api.example.com,IP:10.1.1.1"]);
    const r = await ok(base, "POST", "pki/sign/web", { csr: req, ttl: "1h" });
    expect(r.data.private_key).toBeUndefined();
    expect(r.data.ca_chain).toEqual([rootPem]);
    const cert = new X509Certificate(r.data.certificate);
    const pub = (await openssl(["req", "-noout", "-pubkey", "-in", scratch.file(req)])).out;
    expect(cert.publicKey.export({ type: "spki", format: "pem" })).toBe(createPublicKey(pub).export({ type: "spki", format: "pem" }));
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:app.example.com, DNS:api.example.com, IP Address:10.1.1.1");
    const v = await openssl(["verify", "-CAfile", scratch.file(rootPem), scratch.file(r.data.certificate)]);
    expect(v.code, v.out).toBe(0);
  });

  it("never sets the CA bit, whatever the CSR asks", async () => {
    const req = await csr("/CN=sneaky.example.com", ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]);
    const r = await ok(base, "POST", "pki/sign/web", { csr: req });
    expect(r.warnings.join(" ")).toMatch(/never CAs/);
    const text = await certText(scratch, r.data.certificate);
    expect(text).not.toMatch(/CA:TRUE/);
    expect(text).not.toMatch(/Certificate Sign/);
    expect(new X509Certificate(r.data.certificate).ca).toBe(false);
    // And the result cannot sign anything openssl would accept as a CA.
    const purpose = await openssl(["x509", "-noout", "-purpose", "-in", scratch.file(r.data.certificate)]);
    expect(purpose.out).toMatch(/SSL server CA : No/);
  });

  it("refuses a CSR naming anything outside the role, in its SANs or its CN, with 400", async () => {
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=ok.example.com", ["subjectAltName=DNS:ok.example.com,DNS:evil.com"]) })).toMatch(/evil.com is not allowed/);
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=www.bank.com") })).toMatch(/common name www.bank.com/);
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=ok.example.com", ["subjectAltName=URI:spiffe://example.org/admin"]) })).toMatch(/URI SAN/);
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=ok.example.com", ["subjectAltName=email:root@evil.com"]) })).toMatch(/root@evil.com/);
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=ok.example.com", ["subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp"]) })).toMatch(/SAN types this engine never issues: otherName/);
  });

  it("refuses a CSR whose signature does not verify (tampered request), and stores no certificate for it", async () => {
    const listed = async () => ((await ok(base, "GET", "pki/certs?list=true")).data?.keys ?? []).length;
    const before = await listed();
    const pem = await csr("/CN=tamper.example.com");
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.length - 5] ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(await fails(base, "POST", "pki/sign/web", { csr: tampered })).toMatch(/request signature invalid/);
    // A CSR whose subject was changed after signing fails the same way.
    const swapped = Buffer.from(der);
    swapped[der.length - 5] ^= 0x01;
    const at = swapped.indexOf(Buffer.from("tamper"));
    swapped.write("damper", at, "latin1");
    expect(await fails(base, "POST", "pki/sign/web", { csr: `-----BEGIN CERTIFICATE REQUEST-----\n${swapped.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n` })).toMatch(/request signature invalid/);
    expect(await listed()).toBe(before);
    expect(await fails(base, "POST", "pki/sign/web", { csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----" })).toMatch(/not a valid PKCS#10/);
    expect(await fails(base, "POST", "pki/sign/web", { csr: "this is not a CSR!" })).toMatch(/no PEM CERTIFICATE REQUEST/);
  });

  it("answers damaged CSRs (truncated, bytes flipped, trailing data) with 400, never a 5xx", async () => {
    const der = Buffer.from((await csr("/CN=fuzz.example.com", ["subjectAltName=DNS:a.example.com,IP:10.0.0.1"])).replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const variants: Buffer[] = [Buffer.concat([der, Buffer.from([0x05, 0x00])])];
    for (let i = 0; i < 20; i++) variants.push(der.subarray(0, Math.floor(next() * der.length)));
    for (let i = 0; i < 40; i++) {
      const v = Buffer.from(der);
      v[Math.floor(next() * v.length)] ^= 1 << Math.floor(next() * 8);
      variants.push(v);
    }
    const statuses = new Set<number>();
    for (const v of variants) {
      const r = await fetch(`${base}/v1/pki/sign/web`, {
        method: "POST",
        headers: { "X-Vault-Token": "root", "Content-Type": "application/json" },
        body: JSON.stringify({ csr: `-----BEGIN CERTIFICATE REQUEST-----\n${v.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n` }),
      });
      const body = (await r.json()) as { errors?: string[] };
      statuses.add(r.status);
      expect(r.status, `${JSON.stringify(body)} for ${v.toString("hex")}`).toBeLessThan(500);
      if (r.status !== 200) {
        expect(r.status).toBe(400);
        expect(body.errors?.[0]).toMatch(/\w{4,}/);
      }
    }
    expect(statuses.has(400)).toBe(true);
  });

  it("holds the CSR's key to the role's key type and size", async () => {
    expect(await fails(base, "POST", "pki/sign/web", { csr: await csr("/CN=rsa.example.com", [], "rsa:2048") })).toMatch(/requires keys of type ec; the CSR carries a rsa key/);
    await ok(base, "POST", "pki/roles/rsa3k", { allowed_domains: "example.com", allow_subdomains: true, key_type: "rsa", key_bits: 3072 });
    expect(await fails(base, "POST", "pki/sign/rsa3k", { csr: await csr("/CN=small.example.com", [], "rsa:2048") })).toMatch(/at least 3072 bits/);
    await ok(base, "POST", "pki/roles/anykey", { allowed_domains: "example.com", allow_subdomains: true, key_type: "any" });
    const ed = await ok(base, "POST", "pki/sign/anykey", { csr: await csr("/CN=ed.example.com", [], "ed25519") });
    expect(await certText(scratch, ed.data.certificate)).toMatch(/ED25519/);
    expect(await fails(base, "POST", "pki/sign/anykey", { csr: await csr("/CN=weak.example.com", [], "rsa:1024") })).toMatch(/at least 2048 are required/);
  });

  it("with use_csr_sans/use_csr_common_name off, takes the names from the request and ignores the CSR's", async () => {
    await ok(base, "POST", "pki/roles/explicit", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", use_csr_sans: false, use_csr_common_name: false });
    const req = await csr("/CN=evil.com", ["subjectAltName=DNS:evil.com"]);
    const r = await ok(base, "POST", "pki/sign/explicit", { csr: req, common_name: "chosen.example.com", alt_names: "also.example.com" });
    expect(new X509Certificate(r.data.certificate).subject).toBe("CN=chosen.example.com");
    expect(await sans(scratch, r.data.certificate)).toBe("DNS:chosen.example.com, DNS:also.example.com");
  });

  it("sign-intermediate checks the CSR signature too", async () => {
    const pem = await csr("/CN=Sub CA");
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.length - 3] ^= 0x40;
    expect(await fails(base, "POST", "pki/root/sign-intermediate", { csr: `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`, common_name: "Sub CA" })).toMatch(/request signature invalid/);
    const good = await ok(base, "POST", "pki/root/sign-intermediate", { csr: pem, use_csr_values: true, ttl: "24h" });
    expect(new X509Certificate(good.data.certificate).subject).toBe("CN=Sub CA");
    expect(new X509Certificate(good.data.certificate).ca).toBe(true);
  });
});
