/**
 * Issue 15, "what already held": no secret in clear. test/e2e/secrets-at-rest.test.ts checks a KV
 * secret and tokens against the SQLite file and the audit log; test/database/outage.test.ts checks
 * that no database password reaches the PostgreSQL server log (its own server logs every DDL
 * statement). This file cross-checks the rest on one file-backed server with a file audit device:
 * dynamic PostgreSQL credentials (on the shared test server), the database root password, a PKI
 * root's exported private key and an issued leaf's private key never appear in the SQLite file (or
 * its WAL) nor in the audit log, in any encoding; and the public PKI endpoints (CA, chain, CRL,
 * OCSP, certificates, issuers) never carry a private key. Positive controls: the values really were
 * handed to the caller, the files read are the store and the log, and the endpoints answer.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadServerConfig } from "../../src/server/config.js";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { canLogin, createTestDatabase, templatedUrl, type TestDatabase } from "../database/helpers.js";
import { call } from "../helpers/server.js";
import { openssl, Scratch } from "../pki/helpers.js";

const silent = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" });
const dir = mkdtempSync(join(tmpdir(), "leasehold-sec-clear-"));
const dbPath = join(dir, "leasehold.db");
const auditPath = join(dir, "audit.log");
const scratch = new Scratch();
const KV_VALUE = `kv-${randomBytes(12).toString("hex")}`;
let server: RunningServer | undefined;
let base = "";
let token = "";
let db: TestDatabase;
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);

/** What must never be found in clear, each in the forms a layer might write it in. */
const needles: { what: string; forms: Buffer[] }[] = [];
function mustNotLeak(what: string, value: string | Buffer): void {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  const forms = [bytes, Buffer.from(bytes.toString("base64")), Buffer.from(bytes.toString("base64url")), Buffer.from(bytes.toString("hex"))];
  if (!Buffer.isBuffer(value)) forms.push(Buffer.from(value, "utf16le"));
  needles.push({ what, forms: forms.filter((f) => f.length >= 8) });
}
/** The private key material of a PEM key: its DER (SEC1/PKCS#8) and the raw private scalar. */
function mustNotLeakKey(what: string, pem: string): void {
  const key = createPrivateKey(pem);
  mustNotLeak(`${what} (PEM body)`, pem.split("\n").filter((l) => l && !l.startsWith("-----")).join(""));
  mustNotLeak(`${what} (PKCS#8)`, key.export({ format: "der", type: "pkcs8" }));
  mustNotLeak(`${what} (scalar)`, Buffer.from(key.export({ format: "jwk" }).d!, "base64url"));
}
function hits(files: { name: string; bytes: Buffer }[]): string[] {
  const found: string[] = [];
  for (const n of needles) for (const f of files) for (const form of n.forms) if (f.bytes.includes(form)) found.push(`${n.what} in ${f.name}`);
  return [...new Set(found)];
}
const storeFiles = () => [dbPath, `${dbPath}-wal`, `${dbPath}-journal`].filter(existsSync).map((p) => ({ name: p, bytes: readFileSync(p) }));

async function ok(method: string, path: string, body?: unknown, status = [200, 204]): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  const r = await call(base, method, path, { token, body });
  expect(status, `${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`).toContain(r.status);
  return r.body;
}

let caPem = "";
let leafPem = "";
let leafSerial = "";

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "clear");
  const config = loadServerConfig(`storage "sqlite" {\n  path = "${dbPath}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\nmax_lease_ttl = "87600h"\n`, join(dir, "leasehold.hcl"));
  server = await startConfiguredServer(config, silent);
  base = server.url;
  const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
  token = init.body.root_token;
  expect((await call(base, "PUT", "sys/unseal", { body: { key: init.body.keys[0] } })).body.sealed).toBe(false);
  await ok("PUT", "sys/audit/file", { type: "file", options: { file_path: auditPath } });

  // Audited and stored from here on.
  await ok("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  await ok("POST", "secret/data/app", { data: { password: KV_VALUE } });
  mustNotLeak("KV value", KV_VALUE);

  await ok("POST", "sys/mounts/database", { type: "database" });
  await ok("POST", "database/config/pg", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: "*" });
  mustNotLeak("database root password", rootPassword());
  await ok("POST", "database/roles/app", { db_name: "pg", creation_statements: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, default_ttl: "1h" });
  for (let i = 0; i < 2; i++) {
    const creds = await ok("GET", "database/creds/app");
    expect(await canLogin(db.url, creds.data.username, creds.data.password)).toBe(true);
    mustNotLeak(`database password ${i}`, creds.data.password);
  }

  await ok("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
  const root = await ok("POST", "pki/root/generate/exported", { common_name: "Clear Root", key_type: "ec", key_bits: 256, ttl: "8760h" });
  caPem = root.data.certificate;
  expect(root.data.private_key).toMatch(/PRIVATE KEY/);
  mustNotLeakKey("CA private key", root.data.private_key);
  await ok("POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", max_ttl: "24h" });
  for (const format of ["pem", "der"] as const) {
    const leaf = await ok("POST", "pki/issue/web", { common_name: `${format}.example.com`, format, private_key_format: "pkcs8" });
    const keyPem = format === "pem" ? leaf.data.private_key : `-----BEGIN PRIVATE KEY-----\n${leaf.data.private_key}\n-----END PRIVATE KEY-----\n`;
    mustNotLeakKey(`leaf private key (${format})`, keyPem);
    if (format === "pem") {
      leafPem = leaf.data.certificate;
      leafSerial = leaf.data.serial_number;
    }
  }
  await ok("POST", "pki/revoke", { serial_number: leafSerial });
  expect(needles.length).toBeGreaterThanOrEqual(10);
});
afterAll(async () => {
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token }).catch(() => undefined);
    await server.stop();
  }
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
  scratch.cleanup();
});

describe("no secret in clear", () => {
  it("the SQLite store and its WAL hold none of the secrets, keys or passwords", async () => {
    const files = storeFiles();
    // Positive control: these are the store's files (storage keys are plain text) and they hold the certificates.
    expect(files.some((f) => f.bytes.includes(Buffer.from("core/seal-config")))).toBe(true);
    // And the search finds a needle where there is one (in each form it looks for).
    expect(hits([{ name: "probe", bytes: Buffer.from(`x${KV_VALUE}y${Buffer.from(rootPassword()).toString("base64")}`) }])).toEqual(["KV value in probe", "database root password in probe"]);
    expect(hits(files)).toEqual([]);
  });

  it("the audit log holds none of them either (HMAC'd), though it logged the requests", async () => {
    const log = readFileSync(auditPath);
    for (const path of ["database/creds/app", "pki/root/generate/exported", "pki/issue/web", "database/config/pg", "secret/data/app"]) {
      expect(log.includes(Buffer.from(`"${path}"`)), path).toBe(true);
    }
    expect(log.toString("utf8")).toMatch(/"private_key":"hmac-sha256:[0-9a-f]{64}"/);
    expect(log.toString("utf8")).toMatch(/"password":"hmac-sha256:[0-9a-f]{64}"/);
    expect(hits([{ name: auditPath, bytes: log }])).toEqual([]);
  });

  it("the public PKI endpoints (CA, chain, CRL, OCSP, certificates, issuers) never carry a private key", async () => {
    const ocspReq = scratch.file("", "ocsp.der");
    const made = await openssl(["ocsp", "-issuer", scratch.file(caPem), "-cert", scratch.file(leafPem), "-no_nonce", "-reqout", ocspReq]);
    expect(made.code, made.out).toBe(0);
    const reqB64 = readFileSync(ocspReq).toString("base64");
    const issuers = (await ok("GET", "pki/issuers?list=true")).data.keys as string[];
    expect(issuers.length).toBe(1);
    const answers: { name: string; bytes: Buffer }[] = [];
    const get = async (path: string, init: RequestInit = {}, authed = true) => {
      const r = await fetch(`${base}/v1/${path}`, { ...init, headers: { ...(authed ? { "X-Vault-Token": token } : {}), ...(init.headers as Record<string, string>) } });
      expect(r.status, path).toBe(200);
      answers.push({ name: path, bytes: Buffer.from(await r.arrayBuffer()) });
    };
    for (const path of ["pki/ca", "pki/ca/pem", "pki/ca_chain", "pki/crl", "pki/crl/pem", "pki/cert/ca", "pki/cert/crl", "pki/cert/ca_chain", `pki/cert/${leafSerial}`, `pki/cert/${leafSerial}/raw`, `pki/cert/${leafSerial}/raw/pem`, `pki/ocsp/${encodeURIComponent(reqB64)}`]) {
      await get(path, {}, false);
    }
    await get("pki/ocsp", { method: "POST", body: readFileSync(ocspReq), headers: { "Content-Type": "application/ocsp-request" } }, false);
    for (const path of ["pki/certs?list=true", "pki/certs/revoked?list=true", `pki/issuer/${issuers[0]}`, `pki/issuer/${issuers[0]}/json`, `pki/issuer/${issuers[0]}/pem`, `pki/issuer/${issuers[0]}/der`, "pki/issuer/default", "pki/roles/web"]) {
      await get(path);
    }
    // Positive controls: the CRL lists the revoked leaf, the OCSP answer says revoked, the CA is the CA.
    const crlText = await openssl(["crl", "-noout", "-text", "-in", scratch.file(answers.find((a) => a.name === "pki/crl/pem")!.bytes)]);
    expect(crlText.out.replace(/:/g, "").toLowerCase()).toContain(leafSerial.replace(/[:-]/g, "").toLowerCase());
    const ocspText = await openssl(["ocsp", "-respin", scratch.file(answers.find((a) => a.name === "pki/ocsp")!.bytes), "-resp_text", "-noverify"]);
    expect(ocspText.out).toMatch(/Cert Status: revoked/);
    expect(answers.find((a) => a.name === "pki/ca/pem")!.bytes.toString()).toContain(caPem.split("\n")[1]);
    for (const a of answers) expect(a.bytes.toString("latin1"), a.name).not.toMatch(/PRIVATE KEY/);
    expect(hits(answers)).toEqual([]);
  });
});
