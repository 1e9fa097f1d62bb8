/**
 * Issue 15, "what already held": a sealed server serves nothing. A file-backed server (in process,
 * Shamir seal, one share) holds a KV secret; sealed with `sys/seal` by root, and again after a
 * restart (started sealed), every path that needs the barrier answers 503 for the root token, a
 * child token and no token alike (logins included, whatever the method, spelling or body), no
 * answer carries the secret, it cannot be re-initialised or unsealed with a wrong key, and a token
 * without sudo cannot seal it. Only `sys/seal-status`, `sys/health`, `sys/init`, `sys/leader` and
 * `sys/unseal` answer. Positive control: after unsealing, the secret reads again.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerConfig } from "../../src/server/config.js";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";

const silent = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" });
const dir = mkdtempSync(join(tmpdir(), "leasehold-sec-sealed-"));
const dbPath = join(dir, "leasehold.db");
const SECRET = `sealed-secret-${randomBytes(8).toString("hex")}`;
let server: RunningServer | undefined;
let base = "";
let unsealKey = "";
let rootToken = "";
let childToken = "";
let roleId = "";
let secretId = "";

async function start(): Promise<void> {
  const config = loadServerConfig(`storage "sqlite" {\n  path = "${dbPath}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n`, join(dir, "leasehold.hcl"));
  server = await startConfiguredServer(config, silent);
  base = server.url;
}

const readSecret = (token: string) => call(base, "GET", "secret/data/app", { token });

/** Every request below, for each of root, the child and no token: 503, `{"errors": [...]}`, no secret. */
async function expectEverythingSealed(): Promise<void> {
  const requests: [string, string, unknown?][] = [
    ["GET", "secret/data/app"],
    ["GET", "secret/metadata/?list=true"],
    ["LIST", "secret/metadata"],
    ["POST", "secret/data/app", { data: { password: "overwritten" } }],
    ["DELETE", "secret/data/app"],
    ["GET", "sys/mounts"],
    ["GET", "sys/policies/acl"],
    ["GET", "sys/audit"],
    ["POST", "sys/mounts/new", { type: "kv" }],
    ["GET", "auth/token/lookup-self"],
    ["POST", "auth/token/create", {}],
    ["POST", "auth/token/renew-self", {}],
    ["POST", "auth/approle/login", { role_id: roleId, secret_id: secretId }],
    ["POST", "sys/leases/lookup", { lease_id: "x" }],
    ["GET", "sys/metrics"],
    ["GET", "sys/health/x"],
    ["GET", "sys/seal-status/x"],
    ["GET", "sys/generate-root/attempt"],
    ["PUT", "sys/seal"],
    ["PUT", "sys/rotate"],
  ];
  for (const token of [rootToken, childToken, undefined]) {
    for (const [method, path, body] of requests) {
      const r = await call(base, method, path, { token, body });
      const what = `${method} ${path} (${token === rootToken ? "root" : token ? "child" : "no token"})`;
      expect({ what, status: r.status }).toEqual({ what, status: 503 });
      expect(Array.isArray(r.body?.errors), what).toBe(true);
      expect(JSON.stringify(r.body), what).not.toContain(SECRET);
    }
  }
  // Bad spellings are refused as such (400), never served.
  for (const path of ["secret/../sys/seal-status/../../secret/data/app", "sys//health", "sys/health/../../secret/data/app"]) {
    const r = await call(base, "GET", path, { token: rootToken });
    expect([400, 503], `${path} → ${r.status}`).toContain(r.status);
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
  }
}

/** The endpoints that answer while sealed do, and say so. */
async function expectStatusEndpoints(): Promise<void> {
  const status = await call(base, "GET", "sys/seal-status");
  expect(status.status).toBe(200);
  expect(status.body).toMatchObject({ initialized: true, sealed: true, t: 1, n: 1 });
  const health = await call(base, "GET", "sys/health");
  expect(health.status).toBe(503);
  expect(health.body).toMatchObject({ initialized: true, sealed: true });
  expect((await call(base, "GET", "sys/health?sealedcode=200")).status).toBe(200);
  expect((await call(base, "GET", "sys/init")).body).toEqual({ initialized: true });
  expect((await call(base, "GET", "sys/leader")).status).toBe(200);
}

beforeAll(async () => {
  await start();
  const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
  expect(init.status).toBe(200);
  unsealKey = init.body.keys[0];
  rootToken = init.body.root_token;
  expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
  const root = { token: rootToken };
  expect((await call(base, "POST", "sys/mounts/secret", { ...root, body: { type: "kv", options: { version: "2" } } })).status).toBe(204);
  expect((await call(base, "POST", "secret/data/app", { ...root, body: { data: { password: SECRET } } })).status).toBe(200);
  // The child may read the secret and update sys/seal, without sudo (which sealing needs).
  const policy = 'path "secret/data/app" { capabilities = ["read"] }\npath "sys/seal" { capabilities = ["update"] }';
  expect((await call(base, "PUT", "sys/policies/acl/app", { ...root, body: { policy } })).status).toBe(204);
  childToken = (await call(base, "POST", "auth/token/create", { ...root, body: { policies: ["app"] } })).body.auth.client_token;
  expect((await call(base, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
  expect((await call(base, "POST", "auth/approle/role/r", { ...root, body: { token_policies: "app" } })).status).toBe(204);
  roleId = (await call(base, "GET", "auth/approle/role/r/role-id", root)).body.data.role_id;
  secretId = (await call(base, "POST", "auth/approle/role/r/secret-id", root)).body.data.secret_id;
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("sealed server", () => {
  it("a token without sudo on sys/seal cannot seal; nor can no token", async () => {
    expect((await call(base, "PUT", "sys/seal", { token: childToken })).status).toBe(403);
    expect((await call(base, "PUT", "sys/seal")).status).toBe(403);
    expect((await call(base, "GET", "sys/seal-status")).body.sealed).toBe(false);
    // Positive control: unsealed, the child reads the secret and logs in with AppRole.
    expect((await readSecret(childToken)).body.data.data.password).toBe(SECRET);
    expect((await call(base, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } })).status).toBe(200);
  });

  it("sealed by root with sys/seal: every barrier path is 503 for every caller, status endpoints answer", async () => {
    expect((await call(base, "PUT", "sys/seal", { token: rootToken })).status).toBe(204);
    await expectEverythingSealed();
    await expectStatusEndpoints();
  });

  it("cannot be re-initialised nor unsealed with a wrong key while sealed", async () => {
    const reinit = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(reinit.status).toBe(400);
    expect(reinit.body.root_token).toBeUndefined();
    const wrong = Buffer.from(unsealKey, "hex");
    wrong[0] ^= 0x01;
    for (const key of [wrong.toString("hex"), "00".repeat(33), "not-a-key", rootToken]) {
      const r = await call(base, "PUT", "sys/unseal", { body: { key } });
      expect(r.status, key).toBe(400);
      expect((await call(base, "GET", "sys/seal-status")).body.sealed).toBe(true);
    }
    expect((await readSecret(rootToken)).status).toBe(503);
  });

  it("positive control: after unsealing, the secret, the child token and the AppRole login work again", async () => {
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
    expect((await readSecret(childToken)).body.data.data.password).toBe(SECRET);
    expect((await readSecret(rootToken)).body.data.metadata.version).toBe(1); // the sealed-time writes did nothing
    expect((await call(base, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } })).status).toBe(200);
  });

  it("a server started on the same store comes up sealed and serves nothing until unsealed", async () => {
    await server!.stop();
    server = undefined;
    await start();
    await expectEverythingSealed();
    await expectStatusEndpoints();
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
    expect((await readSecret(childToken)).body.data.data.password).toBe(SECRET);
  });
});
