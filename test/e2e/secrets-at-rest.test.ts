/**
 * End to end: nothing secret is stored or logged in clear. A file-backed server (in process) holds
 * a KV secret, a root token and a child token; the SQLite file (and its WAL) and the audit log are
 * then read byte by byte. Also: audit entries pair up by request id, `sys/audit-hash` reproduces
 * the logged HMAC, and the audit is fail-closed when no device can write.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerConfig } from "../../src/server/config.js";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";

const silent = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" });

/** The SQLite file and its companions, as they are on disk right now. */
function storeBytes(dbPath: string): { name: string; bytes: Buffer }[] {
  return [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`].filter((p) => existsSync(p)).map((p) => ({ name: p, bytes: readFileSync(p) }));
}

/** Every place `needle` occurs in clear (UTF-8, and also as UTF-16LE or base64 in case a layer re-encodes it). */
function findInClear(files: { name: string; bytes: Buffer }[], needle: string): string[] {
  const forms = [Buffer.from(needle, "utf8"), Buffer.from(needle, "utf16le"), Buffer.from(Buffer.from(needle, "utf8").toString("base64"), "utf8")];
  const hits: string[] = [];
  for (const f of files) for (const form of forms) if (f.bytes.includes(form)) hits.push(`${f.name} (${form.length} bytes form)`);
  return hits;
}

interface AuditLine {
  type: "request" | "response";
  time: string;
  auth?: Record<string, unknown>;
  request: { id: string; path?: string; operation?: string; client_token?: string; data?: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- arbitrary logged data
  response?: { data?: Record<string, any>; auth?: Record<string, unknown> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- arbitrary logged data
  error?: string;
}

describe("secrets at rest and in the audit log", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-e2e-at-rest-"));
  const dbPath = join(dir, "leasehold.db");
  const auditPath = join(dir, "audit.log");
  const secretValue = `s3cr3t-VALUE-${randomBytes(12).toString("hex")}`;
  let server: RunningServer | undefined;
  let base = "";
  let unsealKey = "";
  let rootToken = "";
  let childToken = "";
  let childAccessor = "";

  async function auditFailures(): Promise<number> {
    return (await server!.core.metrics.auditFailures.get()).values.reduce((n, v) => n + v.value, 0);
  }

  async function start(): Promise<void> {
    const config = loadServerConfig(
      `storage "sqlite" {\n  path = "${dbPath}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n`,
      join(dir, "leasehold.hcl"),
    );
    server = await startConfiguredServer(config, silent);
    base = server.url;
  }

  beforeAll(async () => {
    await start();
    const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(init.status).toBe(200);
    unsealKey = init.body.keys[0];
    rootToken = init.body.root_token;
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores and audits a secret and tokens without any of them in clear", async () => {
    expect((await call(base, "POST", "sys/mounts/secret", { token: rootToken, body: { type: "kv", options: { version: "2" } } })).status).toBe(204);
    expect((await call(base, "PUT", "sys/policies/acl/app", { token: rootToken, body: { policy: 'path "secret/data/app" { capabilities = ["read"] }' } })).status).toBe(204);
    expect((await call(base, "PUT", "sys/audit/file", { token: rootToken, body: { type: "file", options: { file_path: auditPath } } })).status).toBe(204);

    // Audited from here on.
    const write = await call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { password: secretValue, user: "app" } } });
    expect(write.status).toBe(200);
    const created = await call(base, "POST", "auth/token/create", { token: rootToken, body: { policies: ["app"], ttl: "1h" } });
    expect(created.status).toBe(200);
    childToken = created.body.auth.client_token;
    childAccessor = created.body.auth.accessor;
    expect(childToken).toBeTruthy();
    const read = await call(base, "GET", "secret/data/app", { token: childToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data.password).toBe(secretValue);
    expect((await call(base, "GET", "sys/mounts", { token: childToken })).status).toBe(403);

    const db = storeBytes(dbPath);
    expect(db.length).toBeGreaterThan(0);
    // Positive control: the files read are the store (storage keys are plain text).
    expect(db.some((f) => f.bytes.includes(Buffer.from("core/seal-config")))).toBe(true);
    // The root token, the child token and the secret are nowhere in clear; neither is the
    // random part of either token on its own.
    for (const needle of [secretValue, rootToken, childToken, rootToken.replace(/^[a-z]+\./, ""), childToken.replace(/^[a-z]+\./, "")]) {
      expect({ needle, hits: findInClear(db, needle) }).toEqual({ needle, hits: [] });
    }

    const audit = [{ name: auditPath, bytes: readFileSync(auditPath) }];
    expect(audit[0].bytes.includes(Buffer.from("secret/data/app"))).toBe(true); // paths are logged in clear
    for (const needle of [secretValue, rootToken, childToken, childAccessor]) {
      expect({ needle, hits: findInClear(audit, needle) }).toEqual({ needle, hits: [] });
    }
  });

  it("audit lines are JSON request/response pairs sharing request.id, and sys/audit-hash reproduces the logged HMAC", async () => {
    const hash = await call(base, "POST", "sys/audit-hash/file", { token: rootToken, body: { input: secretValue } });
    expect(hash.status).toBe(200);
    const secretHash: string = hash.body.data.hash;
    expect(secretHash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    const rootHash: string = (await call(base, "POST", "sys/audit-hash/file", { token: rootToken, body: { input: rootToken } })).body.data.hash;
    const childHash: string = (await call(base, "POST", "sys/audit-hash/file", { token: rootToken, body: { input: childToken } })).body.data.hash;
    expect(new Set([secretHash, rootHash, childHash]).size).toBe(3);

    const text = readFileSync(auditPath, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    const lines: AuditLine[] = text.trimEnd().split("\n").map((l) => JSON.parse(l) as AuditLine);
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const l of lines) {
      expect(["request", "response"]).toContain(l.type);
      expect(typeof l.request.id).toBe("string");
      expect(Number.isNaN(Date.parse(l.time))).toBe(false);
    }
    // The first line is the response to the request that enabled the device: its request entry
    // was due before any device existed (Vault's logs start the same way).
    expect(lines[0]).toMatchObject({ type: "response", request: { path: "sys/audit/file", operation: "update" } });
    // After that, every request entry has exactly one response entry with the same id, in that
    // order (the audit-hash calls just made are complete: they returned before the file was read).
    const byId = new Map<string, string[]>();
    for (const l of lines.slice(1)) byId.set(l.request.id, [...(byId.get(l.request.id) ?? []), l.type]);
    expect(byId.size).toBeGreaterThanOrEqual(7);
    expect(byId.has(lines[0].request.id)).toBe(false);
    for (const [id, types] of byId) expect({ id, types }).toEqual({ id, types: ["request", "response"] });

    // The KV write: the secret in the request data is the audit-hash of the value, the root token is hashed.
    const writeReq = lines.find((l) => l.type === "request" && l.request.path === "secret/data/app" && l.request.operation !== "read");
    expect(writeReq).toBeDefined();
    expect(writeReq!.request.data!.data.password).toBe(secretHash);
    expect(writeReq!.request.client_token).toBe(rootHash);
    expect(writeReq!.auth!.client_token).toBe(rootHash);

    // The read by the child token: the response data holds the hash, the caller is the child token.
    const readResp = lines.find((l) => l.type === "response" && l.request.path === "secret/data/app" && l.request.operation === "read");
    expect(readResp).toBeDefined();
    expect(readResp!.response!.data!.data.password).toBe(secretHash);
    expect(readResp!.response!.data!.data.user).not.toBe("app");
    expect(readResp!.request.client_token).toBe(childHash);

    // The refused request (child token on sys/mounts) is audited too, with the error.
    const denied = lines.filter((l) => l.request.path === "sys/mounts");
    expect(denied.map((l) => l.type)).toEqual(["request", "response"]);
    for (const l of denied) {
      expect(l.error).toBe("permission denied");
      expect(l.request.client_token).toBe(childHash);
    }

    // The token create: the issued token appears only as its hash.
    const createResp = lines.find((l) => l.type === "response" && l.request.path === "auth/token/create");
    expect(createResp!.response!.auth!.client_token).toBe(childHash);
  });

  it("is fail-closed: with only an unwritable device every request is refused and nothing is changed", async () => {
    const accessorsBefore = (await call(base, "GET", "auth/token/accessors?list=true", { token: rootToken })).body.data.keys as string[];
    // Both devices enabled: the request entries reach the good one, so this succeeds.
    expect((await call(base, "PUT", "sys/audit/full", { token: rootToken, body: { type: "file", options: { file_path: "/dev/full" } } })).status).toBe(204);
    const listed = await call(base, "GET", "sys/audit", { token: rootToken });
    expect(Object.keys(listed.body.data).sort()).toEqual(["file/", "full/"]);
    // One device still writes: requests go through (Vault's at-least-one rule).
    expect((await call(base, "GET", "secret/data/app", { token: rootToken })).status).toBe(200);
    // Drop the good device directly on the core: over HTTP, the response entry of that very
    // request could no longer be written anywhere (Vault's chicken-and-egg).
    expect(await server!.core.audit.disable("file/")).toBe(true);
    const linesBefore = readFileSync(auditPath, "utf8").split("\n").length;
    const failuresBefore = await auditFailures();

    const read = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(read.status).toBe(500);
    expect(Array.isArray(read.body.errors)).toBe(true);
    expect(read.body.errors.length).toBeGreaterThan(0);
    expect(JSON.stringify(read.body)).not.toContain(secretValue);
    expect(JSON.stringify(read.body)).not.toContain("/dev/full");

    const write = await call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { password: "overwritten-while-unaudited" } } });
    expect(write.status).toBe(500);
    const create = await call(base, "POST", "auth/token/create", { token: rootToken, body: { policies: ["app"] } });
    expect(create.status).toBe(500);
    expect(create.body.auth).toBeUndefined();
    const child = await call(base, "GET", "secret/data/app", { token: childToken });
    expect(child.status).toBe(500);
    const disableOverHttp = await call(base, "DELETE", "sys/audit/full", { token: rootToken });
    expect(disableOverHttp.status).toBe(500);
    expect(Object.keys(server!.core.audit.list())).toEqual(["full/"]);
    expect(await auditFailures()).toBeGreaterThanOrEqual(failuresBefore + 5);

    // Nothing went to the disabled device either.
    expect(readFileSync(auditPath, "utf8").split("\n").length).toBe(linesBefore);

    // Restore a working audit trail (on the core, for the same reason) and look at the state.
    expect(await server!.core.audit.disable("full/")).toBe(true);
    await server!.core.audit.enable("file/", { type: "file", options: { file_path: auditPath } });
    const after = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(after.status).toBe(200);
    expect(after.body.data.data).toEqual({ password: secretValue, user: "app" });
    expect(after.body.data.metadata.version).toBe(1);
    const accessorsAfter = (await call(base, "GET", "auth/token/accessors?list=true", { token: rootToken })).body.data.keys as string[];
    expect([...accessorsAfter].sort()).toEqual([...accessorsBefore].sort());
  });

  it("after a restart (WAL checkpointed on close) the store still holds nothing in clear", async () => {
    await server!.stop();
    server = undefined;
    const db = storeBytes(dbPath);
    expect(db.some((f) => f.bytes.includes(Buffer.from("core/seal-config")))).toBe(true);
    for (const needle of [secretValue, rootToken, childToken]) {
      expect({ needle, hits: findInClear(db, needle) }).toEqual({ needle, hits: [] });
    }
    await start();
    expect((await call(base, "GET", "sys/seal-status")).body).toMatchObject({ initialized: true, sealed: true });
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
    const read = await call(base, "GET", "secret/data/app", { token: childToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data.password).toBe(secretValue);
  });
});
