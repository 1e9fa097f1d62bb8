/**
 * Issue 15, item 10: `auth/cert` validates certification paths under RFC 5280 (path length, name
 * constraints, extended key usage nesting, key usage, basicConstraints cA, validity) and enforces
 * `required_extensions`. Real server over mTLS (the dev TLS listener asks for client certificates
 * and requires none), certificates built with @peculiar/x509. Every refused chain has a legitimate
 * twin that logs in, and, when the openssl binary is present, each chain is cross-checked with
 * `openssl verify -purpose sslclient` so the fixtures are what they claim to be.
 */
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { webcrypto } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { httpsCall } from "../auth/helpers/https.js";
import { startTestServer } from "../helpers/server.js";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 24 * 3600 * 1000;
const UNTRUSTED = { status: 400, body: { errors: ["invalid certificate or no client certificate supplied"] } };
const NO_MATCH = { status: 400, body: { errors: ["no chain matching all constraints could be found for this login certificate"] } };
const TEAM_OID = "1.3.6.1.4.1.55555.1";
const FLAG_OID = "1.3.6.1.4.1.55555.2";

interface Issued {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
  keyPem: string;
}

let serial = 0x1000;

interface CertSpec {
  cn: string;
  issuer?: Issued;
  ca?: boolean;
  pathLen?: number;
  /** Key usage flags; `null` leaves the extension out. */
  keyUsage?: number | null;
  eku?: string[];
  uris?: string[];
  dns?: string[];
  permitted?: { uri?: string[]; dns?: string[] };
  notBefore?: Date;
  notAfter?: Date;
  extra?: x509.Extension[];
}

async function issue(s: CertSpec): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const signer = s.issuer?.keys ?? keys;
  const ext: x509.Extension[] = [];
  if (s.ca !== undefined) ext.push(new x509.BasicConstraintsExtension(s.ca, s.pathLen, true));
  const ku = s.keyUsage === undefined ? (s.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature) : s.keyUsage;
  if (ku !== null) ext.push(new x509.KeyUsagesExtension(ku, true));
  if (s.eku) ext.push(new x509.ExtendedKeyUsageExtension(s.eku));
  const sans = [...(s.uris ?? []).map((value) => ({ type: "url" as const, value })), ...(s.dns ?? []).map((value) => ({ type: "dns" as const, value }))];
  if (sans.length) ext.push(new x509.SubjectAlternativeNameExtension(sans));
  if (s.permitted) {
    const subtrees = [
      ...(s.permitted.uri ?? []).map((u) => new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: u }) })),
      ...(s.permitted.dns ?? []).map((d) => new GeneralSubtree({ base: new GeneralName({ dNSName: d }) })),
    ];
    const der = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) }));
    ext.push(new x509.Extension("2.5.29.30", true, der));
  }
  ext.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (s.issuer) ext.push(await x509.AuthorityKeyIdentifierExtension.create(signer.publicKey));
  ext.push(...(s.extra ?? []));
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(4, "0"),
    subject: `CN=${s.cn}`,
    issuer: s.issuer ? s.issuer.cert.subject : `CN=${s.cn}`,
    notBefore: s.notBefore ?? new Date(now - DAY),
    notAfter: s.notAfter ?? new Date(now + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: alg,
    extensions: ext,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey)).toString("base64");
  return { cert, keys, pem: cert.toString("pem") + "\n", keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/(.{64})/g, "$1\n").trimEnd()}\n-----END PRIVATE KEY-----\n` };
}

/** A DER UTF8String / any DER value, as an extension's extnValue. */
const utf8Ext = (oid: string, text: string) => {
  const body = Buffer.from(text, "utf8");
  return new x509.Extension(oid, false, new Uint8Array([0x0c, body.length, ...body]));
};
const rawExt = (oid: string, der: number[]) => new x509.Extension(oid, false, new Uint8Array(der));

let server: RunningServer;
let ca: string;
const pki: Record<string, Issued> = {};
/** Leaf first, then the certificates the client sends with it (never the trusted root). */
const chains: Record<string, Issued[]> = {};

const login = (name: string, body: unknown = {}) => {
  const [leaf, ...rest] = chains[name];
  return httpsCall(server.url, "POST", "auth/cert/login", { ca, cert: [leaf, ...rest].map((c) => c.pem).join(""), key: leaf.keyPem, body }).then(({ status, body }) => ({ status, body }));
};
const root = (method: string, path: string, body?: unknown) =>
  httpsCall(server.url, method, path, { ca, token: "root", body }).then(({ status, body }) => ({ status, body }));

/** `openssl verify -purpose sslclient` on a chain, trusting only the root; undefined without openssl. */
let opensslDir: string | undefined;
function opensslAccepts(name: string): boolean | undefined {
  if (!opensslDir) return undefined;
  const [leaf, ...rest] = chains[name];
  const leafFile = join(opensslDir, `${name}-leaf.pem`);
  const untrusted = join(opensslDir, `${name}-untrusted.pem`);
  writeFileSync(leafFile, leaf.pem);
  writeFileSync(untrusted, rest.map((c) => c.pem).join("") || pki.root.pem);
  try {
    execFileSync("openssl", ["verify", "-purpose", "sslclient", "-CAfile", join(opensslDir, "root.pem"), "-untrusted", untrusted, leafFile], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const clientAuth = [x509.ExtendedKeyUsage.clientAuth];
  const good = { uris: ["spiffe://example.org/ns/prod/sa/web"], eku: clientAuth, ca: false };
  // The trust anchor: no path length limit of its own, names constrained to example.org.
  pki.root = await issue({ cn: "Example Root CA", ca: true, permitted: { uri: ["example.org"], dns: ["example.org"] } });
  // The legitimate intermediate: pathlen 0, clientAuth in its EKU.
  pki.int = await issue({ cn: "Example Workload CA", issuer: pki.root, ca: true, pathLen: 0, eku: clientAuth });
  pki.web = await issue({ cn: "web.example.org", issuer: pki.int, ...good });
  chains.valid = [pki.web, pki.int];

  // 1. A sub-CA under the pathlen:0 intermediate, and its legitimate twin under a pathlen:1 one.
  pki.sub = await issue({ cn: "Rogue Sub CA", issuer: pki.int, ca: true, eku: clientAuth });
  pki.subLeaf = await issue({ cn: "web.example.org", issuer: pki.sub, ...good });
  chains.pathLen = [pki.subLeaf, pki.sub, pki.int];
  pki.int1 = await issue({ cn: "Example Two-Level CA", issuer: pki.root, ca: true, pathLen: 1, eku: clientAuth });
  pki.sub1 = await issue({ cn: "Example Team CA", issuer: pki.int1, ca: true, eku: clientAuth });
  pki.sub1Leaf = await issue({ cn: "web.example.org", issuer: pki.sub1, ...good });
  chains.pathLenOk = [pki.sub1Leaf, pki.sub1, pki.int1];

  // 2. A leaf outside the root's name constraints (URI host evil.org).
  pki.evil = await issue({ cn: "web", issuer: pki.int, ...good, uris: ["spiffe://evil.org/ns/prod/sa/web"] });
  chains.nameConstraint = [pki.evil, pki.int];
  // ... and one whose host-like CN (no DNS SAN) is outside them.
  pki.evilCn = await issue({ cn: "web.evil.org", issuer: pki.int, ...good });
  chains.nameConstraintCn = [pki.evilCn, pki.int];

  // 3. An intermediate whose EKU lacks clientAuth (the leaf's has it).
  pki.serverCa = await issue({ cn: "Example Server CA", issuer: pki.root, ca: true, eku: [x509.ExtendedKeyUsage.serverAuth] });
  pki.serverCaLeaf = await issue({ cn: "web.example.org", issuer: pki.serverCa, ...good });
  chains.eku = [pki.serverCaLeaf, pki.serverCa];

  // 4. An expired intermediate (the leaf itself is within its validity).
  pki.oldCa = await issue({ cn: "Example Old CA", issuer: pki.root, ca: true, eku: clientAuth, notBefore: new Date(Date.now() - 60 * DAY), notAfter: new Date(Date.now() - DAY) });
  pki.oldCaLeaf = await issue({ cn: "web.example.org", issuer: pki.oldCa, ...good });
  chains.expiredIntermediate = [pki.oldCaLeaf, pki.oldCa];

  // 5. A leaf signed by a non-CA certificate (basicConstraints cA false, no key usage to give it away).
  pki.notCa = await issue({ cn: "web-signer.example.org", issuer: pki.root, ca: false, keyUsage: null, eku: clientAuth });
  pki.notCaLeaf = await issue({ cn: "web.example.org", issuer: pki.notCa, ...good });
  chains.nonCaIssuer = [pki.notCaLeaf, pki.notCa];

  // 6. A leaf whose key usage lacks digitalSignature.
  pki.noSig = await issue({ cn: "web.example.org", issuer: pki.int, ...good, keyUsage: x509.KeyUsageFlags.keyEncipherment });
  chains.leafKeyUsage = [pki.noSig, pki.int];

  // required_extensions: a custom UTF8String extension, and a non-string one (BOOLEAN) for hex:.
  pki.tagged = await issue({ cn: "web.example.org", issuer: pki.int, ...good, extra: [utf8Ext(TEAM_OID, "team-payments"), rawExt(FLAG_OID, [0x01, 0x01, 0xff])] });
  chains.tagged = [pki.tagged, pki.int];
  pki.otherTeam = await issue({ cn: "web.example.org", issuer: pki.int, ...good, extra: [utf8Ext(TEAM_OID, "ops"), rawExt(FLAG_OID, [0x01, 0x01, 0x00])] });
  chains.otherTeam = [pki.otherTeam, pki.int];
  chains.untagged = [pki.web, pki.int];

  // 7. Two client-sent CAs that issue each other (a loop), neither reaching the root.
  const loopKeysA = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const loopKeysB = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const loopCert = async (cn: string, issuerCn: string, keys: CryptoKeyPair, signer: CryptoKeyPair): Promise<Issued> => {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (serial++).toString(16).padStart(4, "0"),
      subject: `CN=${cn}`,
      issuer: `CN=${issuerCn}`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
      publicKey: keys.publicKey,
      signingKey: signer.privateKey,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    return { cert, keys, pem: cert.toString("pem") + "\n", keyPem: "" };
  };
  pki.loopA = await loopCert("Loop A", "Loop B", loopKeysA, loopKeysB);
  pki.loopB = await loopCert("Loop B", "Loop A", loopKeysB, loopKeysA);
  pki.loopLeaf = await issue({ cn: "web.example.org", issuer: pki.loopA, ...good });
  chains.loop = [pki.loopLeaf, pki.loopA, pki.loopB];

  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    opensslDir = mkdtempSync(join(tmpdir(), "lh-cert-sec-"));
    writeFileSync(join(opensslDir, "root.pem"), pki.root.pem);
  } catch {
    opensslDir = undefined;
  }

  server = await startTestServer({ rootTokenId: "root", tls: true, loginRateLimit: { rate: 1000, burst: 1000 } });
  ca = server.devTls!.ca;
  expect((await root("POST", "sys/auth/cert", { type: "cert" })).status).toBe(204);
  // No name globs on the entry: only the X.509 rules stand between a chain and the policies.
  expect((await root("POST", "auth/cert/certs/prod", { certificate: pki.root.pem, token_policies: "prod-secrets" })).status).toBe(204);
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe("certification path validation (RFC 5280)", () => {
  it("positive control: root -> intermediate (pathlen 0, clientAuth, within constraints) -> leaf logs in with the entry's policies", async () => {
    if (opensslDir) expect(opensslAccepts("valid")).toBe(true);
    const r = await login("valid");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth.policies).toEqual(["default", "prod-secrets"]);
    expect(r.body.auth.metadata).toMatchObject({ cert_name: "prod", common_name: "web.example.org" });
  });

  it("refuses a sub-CA under a pathlen:0 CA; the same depth under pathlen:1 logs in", async () => {
    if (opensslDir) expect([opensslAccepts("pathLen"), opensslAccepts("pathLenOk")]).toEqual([false, true]);
    expect(await login("pathLen")).toEqual(UNTRUSTED);
    expect((await login("pathLenOk")).status).toBe(200);
  });

  it("refuses a leaf outside the trusted CA's name constraints (URI SAN, and a host-like CN)", async () => {
    if (opensslDir) expect([opensslAccepts("nameConstraint"), opensslAccepts("nameConstraintCn")]).toEqual([false, false]);
    expect(await login("nameConstraint")).toEqual(UNTRUSTED);
    expect(await login("nameConstraintCn")).toEqual(UNTRUSTED);
  });

  it("refuses a chain through an intermediate whose extended key usage lacks clientAuth", async () => {
    if (opensslDir) expect(opensslAccepts("eku")).toBe(false);
    expect(await login("eku")).toEqual(UNTRUSTED);
  });

  it("refuses a chain through an expired intermediate", async () => {
    if (opensslDir) expect(opensslAccepts("expiredIntermediate")).toBe(false);
    expect(await login("expiredIntermediate")).toEqual(UNTRUSTED);
  });

  it("refuses a leaf signed by a certificate that is not a CA", async () => {
    if (opensslDir) expect(opensslAccepts("nonCaIssuer")).toBe(false);
    expect(await login("nonCaIssuer")).toEqual(UNTRUSTED);
  });

  it("refuses a leaf whose key usage lacks digitalSignature", async () => {
    if (opensslDir) expect(opensslAccepts("leafKeyUsage")).toBe(false);
    expect(await login("leafKeyUsage")).toEqual(UNTRUSTED);
  });

  it("refuses, promptly, a chain of client-sent CAs that issue each other; the valid chain still logs in", async () => {
    const started = Date.now();
    expect(await login("loop")).toEqual(UNTRUSTED);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await login("valid")).status).toBe(200);
  });

  it("renewal re-validates the path: a token renews with its valid chain", async () => {
    const token = (await login("valid")).body.auth.client_token;
    const [leaf, ...rest] = chains.valid;
    const renew = await httpsCall(server.url, "POST", "auth/token/renew-self", { ca, token, cert: [leaf, ...rest].map((c) => c.pem).join(""), key: leaf.keyPem, body: {} });
    expect(renew.status, JSON.stringify(renew.body)).toBe(200);
  });
});

describe("required_extensions", () => {
  beforeAll(async () => {
    expect((await root("POST", "auth/cert/certs/payments", { certificate: pki.root.pem, token_policies: "payments", required_extensions: `${TEAM_OID}:team-*` })).status).toBe(204);
    expect((await root("POST", "auth/cert/certs/flagged", { certificate: pki.root.pem, token_policies: "flagged", required_extensions: [`hex:${FLAG_OID}:0101FF`] })).status).toBe(204);
  });

  it("is stored, and a malformed entry is refused at write time", async () => {
    expect((await root("GET", "auth/cert/certs/payments")).body.data.required_extensions).toEqual([`${TEAM_OID}:team-*`]);
    const bad = await root("POST", "auth/cert/certs/broken", { certificate: pki.root.pem, required_extensions: "team-payments" });
    expect(bad.status).toBe(400);
  });

  it("a leaf with the extension matching the glob logs in; one without it, or with another value, is refused", async () => {
    const ok = await login("tagged", { name: "payments" });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.auth.policies).toEqual(["default", "payments"]);
    expect(await login("untagged", { name: "payments" })).toEqual(NO_MATCH);
    expect(await login("otherTeam", { name: "payments" })).toEqual(NO_MATCH);
  });

  it("hex:oid:value matches the extension's DER value (case-insensitive hex)", async () => {
    expect((await login("tagged", { name: "flagged" })).status).toBe(200);
    expect(await login("otherTeam", { name: "flagged" })).toEqual(NO_MATCH);
  });

  it("without a name, login falls through to the entry the certificate satisfies", async () => {
    // `prod` (no requirements) sorts after `payments`/`flagged`; the untagged leaf reaches it.
    const r = await login("untagged");
    expect(r.status).toBe(200);
    expect(r.body.auth.metadata.cert_name).toBe("prod");
  });
});
