/**
 * End to end: `leasehold server -config=FILE` with `storage "postgresql"`, as an operator runs it
 * (a child process), on a role that owns only its schema. Init, unseal, a KV secret, a token with
 * metadata, a leased certificate; a restart keeps all of it, the lease still tracked. Then a DBA
 * reads every table as the superuser and finds no secret, token, accessor, private key or token
 * metadata in clear. Also: `ha_enabled = true` without `api_addr` and an unreachable database stop the start-up.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, rand, urlWith, waitFor, type TestDatabase } from "../database/helpers.js";
import { killCliProcesses, spawnCli, waitForHealth, type CliProcess } from "../helpers/cli-process.js";
import { call } from "../helpers/server.js";


let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "leasehold-e2e-pg-"));
const role = `lh_app_${rand()}`;
const rolePassword = `role-pw-${randomBytes(8).toString("hex")}`;
let roleUrl = "";

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "e2epg");
  await db.admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  await db.admin.query(`CREATE SCHEMA vault AUTHORIZATION ${role}`);
  await db.admin.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
  roleUrl = urlWith(db.url, { user: role, password: rolePassword });
});

afterAll(async () => {
  await killCliProcesses();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function writeConfig(name: string, storageBody: string, port: number): string {
  const file = join(dir, name);
  writeFileSync(file, `storage "postgresql" {\n${storageBody}\n}\n\nlistener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n\nlog_level = "warn"\n`);
  return file;
}


async function stop(child: CliProcess): Promise<void> {
  child.proc.kill("SIGTERM");
  expect(await child.exited).toEqual({ code: 0, signal: null });
}

/** Every table of the schema as the superuser sees it: each row's columns as bytes (text as UTF-8, bytea raw). */
async function dump(admin: pg.Client, schema: string): Promise<{ name: string; bytes: Buffer }[]> {
  const tables = (await admin.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [schema])).rows.map((r) => r.tablename);
  const out: { name: string; bytes: Buffer }[] = [];
  for (const t of tables) {
    const rows = (await admin.query(`SELECT * FROM ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(t)}`)).rows as Record<string, unknown>[];
    rows.forEach((row, i) => {
      for (const [col, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        out.push({ name: `${t}[${i}].${col}`, bytes: Buffer.isBuffer(value) ? value : Buffer.from(value instanceof Date ? value.toISOString() : String(value), "utf8") });
      }
    });
  }
  return out;
}

/** Where `needle` occurs in clear (UTF-8, UTF-16LE, or base64 in case a layer re-encodes it). */
function findInClear(cells: { name: string; bytes: Buffer }[], needle: string): string[] {
  const forms = [Buffer.from(needle, "utf8"), Buffer.from(needle, "utf16le"), Buffer.from(Buffer.from(needle, "utf8").toString("base64"), "utf8")];
  return cells.filter((c) => forms.some((f) => c.bytes.includes(f))).map((c) => c.name);
}

/** A run of the key's base64 body, long enough to be unique. */
const pemBody = (pem: string) => pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "").slice(20, 80);

describe("leasehold server with storage \"postgresql\"", () => {
  const secretValue = `s3cr3t-${randomBytes(12).toString("hex")}`;
  const metaHost = `db-host-${rand()}`;
  const displayName = `ops-${rand()}`;
  let configFile = "";
  let base = "";
  let server: CliProcess;
  let unsealKey = "";
  let rootToken = "";
  let child = { token: "", accessor: "" };
  let leaseId = "";
  let certKey = "";
  let caKey = "";

  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: rootToken, body });

  it("starts uninitialised on an empty database, with HA keys present but off", { timeout: 60_000 }, async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    configFile = writeConfig(
      "pg.hcl",
      `  connection_url = "${roleUrl}"\n  schema         = "vault"\n  max_parallel   = "8"\n  ha_enabled     = "false"\n  ha_table       = "leasehold_ha_locks"`,
      port,
    );
    server = spawnCli(["server", `-config=${configFile}`]);
    expect((await waitForHealth(base, server)).status).toBe(501);
    expect(server.stdout()).toContain(`postgresql://${role}@`);
    expect(server.stdout()).not.toContain(rolePassword);
    const status = await call(base, "GET", "sys/seal-status");
    expect(status.body).toMatchObject({ initialized: false, sealed: true, storage_type: "postgresql" });
  });

  it("initialises, unseals, stores a secret, a token and a leased certificate", async () => {
    const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(init.status).toBe(200);
    unsealKey = init.body.keys[0];
    rootToken = init.body.root_token;
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);

    expect((await root("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } })).status).toBe(204);
    expect((await root("POST", "secret/data/app", { data: { password: secretValue } })).status).toBe(200);
    const policy = 'path "secret/data/app" { capabilities = ["read"] }\npath "pki/issue/web" { capabilities = ["update"] }';
    expect((await root("PUT", "sys/policies/acl/app", { policy })).status).toBe(204);
    const created = await root("POST", "auth/token/create", { policies: ["app"], ttl: "2h", meta: { host: metaHost }, display_name: displayName });
    expect(created.status).toBe(200);
    child = { token: created.body.auth.client_token, accessor: created.body.auth.accessor };

    expect((await root("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } })).status).toBe(204);
    const ca = await root("POST", "pki/root/generate/exported", { common_name: "example.com", ttl: "87600h", key_type: "ec" });
    expect(ca.status).toBe(200);
    caKey = ca.body.data.private_key;
    expect((await root("POST", "pki/roles/web", { allow_any_name: true, key_type: "ec", generate_lease: true, max_ttl: "1h" })).status).toBe(200);
    const cert = await call(base, "POST", "pki/issue/web", { token: child.token, body: { common_name: "app.example.com", ttl: "30m" } });
    expect(cert.status).toBe(200);
    leaseId = cert.body.lease_id;
    certKey = cert.body.data.private_key;
    expect(leaseId).toMatch(/^pki\/issue\/web\//);
  });

  it("keeps everything across a restart, the lease still tracked", { timeout: 60_000 }, async () => {
    await stop(server);
    server = spawnCli(["server", `-config=${configFile}`]);
    expect((await waitForHealth(base, server)).status).toBe(503); // initialised, sealed
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);

    const read = await call(base, "GET", "secret/data/app", { token: child.token });
    expect(read.status).toBe(200);
    expect(read.body.data.data.password).toBe(secretValue);
    const self = await call(base, "GET", "auth/token/lookup-self", { token: child.token });
    expect(self.body.data).toMatchObject({ accessor: child.accessor, meta: { host: metaHost }, policies: ["app", "default"] });
    const lookup = await root("PUT", "sys/leases/lookup", { lease_id: leaseId });
    expect(lookup.status).toBe(200);
    expect(lookup.body.data.id).toBe(leaseId);
    expect(lookup.body.data.ttl).toBeGreaterThan(0);
    // The listing by prefix and the creator selector find it (the creator fields are indexed by HMAC).
    expect((await root("LIST", "sys/leases/lookup/pki/issue/web/")).body.data.keys).toHaveLength(1);
  });

  it("shows a DBA reading every table no secret, token, accessor, key or token metadata in clear", async () => {
    const cells = await dump(db.admin, "vault");
    // Positive controls: this is the store (storage keys and lease paths are in clear).
    expect(cells.some((c) => c.name.startsWith("leasehold_kv_store[") && c.bytes.toString().includes("core/"))).toBe(true);
    expect(cells.length).toBeGreaterThan(20);
    expect(findInClear(cells, leaseId)).toEqual([expect.stringMatching(/^leasehold_kv_store_leases\[\d+\]\.id$/)]);
    const needles = {
      secretValue,
      rootToken,
      rootTokenBody: rootToken.replace(/^[a-z]+\./, ""),
      childToken: child.token,
      childTokenBody: child.token.replace(/^[a-z]+\./, ""),
      childAccessor: child.accessor,
      metaHost,
      displayName,
      unsealKey,
      certKey: pemBody(certKey),
      caKey: pemBody(caKey),
    };
    for (const [what, needle] of Object.entries(needles)) {
      expect(needle.length).toBeGreaterThan(8);
      expect({ what, hits: findInClear(cells, needle) }).toEqual({ what, hits: [] });
    }
  });

  it("revokes the lease with its token, from the store that survived the restart", async () => {
    // The lease's creator accessor is kept as an HMAC: revoking the token still finds it.
    expect((await root("POST", "auth/token/revoke-accessor", { accessor: child.accessor })).status).toBe(204);
    await waitFor(async () => (await root("PUT", "sys/leases/lookup", { lease_id: leaseId })).status === 400, "the certificate's lease to be revoked with its token");
    expect((await db.admin.query("SELECT count(*)::int AS n FROM vault.leasehold_kv_store_leases")).rows[0].n).toBe(0);
  });

  it("stops cleanly", async () => {
    await stop(server);
  });
});

describe("start-up refusals", () => {
  it("refuses ha_enabled = true without api_addr, naming the file, line and key, and exits 1", { timeout: 60_000 }, async () => {
    const file = writeConfig("ha.hcl", `  connection_url = "${roleUrl}"\n  ha_enabled     = "true"`, await freePort());
    const p = spawnCli(["server", `-config=${file}`]);
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toContain(`${file}:3: storage "postgresql": ha_enabled = true needs api_addr`);
    expect(p.stderr()).not.toContain(rolePassword);
  });

  it("exits 1 with the database's address but not its password when it cannot connect", { timeout: 60_000 }, async () => {
    const closed = await freePort();
    const file = writeConfig("down.hcl", `  connection_url = "postgres://leasehold:hunter2-${rolePassword}@127.0.0.1:${closed}/nothing"`, await freePort());
    const p = spawnCli(["server", `-config=${file}`]);
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toContain(`PostgreSQL storage (postgresql://leasehold@127.0.0.1:${closed}/nothing)`);
    expect(p.stderr()).toMatch(/ECONNREFUSED/);
    expect(p.stderr()).not.toContain(rolePassword);
  });
});
