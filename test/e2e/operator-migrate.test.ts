/**
 * End to end: moving a SQLite store to PostgreSQL with `leasehold operator migrate`, as an operator
 * does it, every step a real process. A server on a SQLite file is initialised and given a KV
 * secret, a token with metadata and a leased PKI certificate; the migration is refused while that
 * server runs, then succeeds once it is stopped; a server on the PostgreSQL copy unseals with the
 * same key and serves all of it, the lease still tracked and revocable with its token. A second
 * migration into the now non-empty destination exits 1 and says why.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import { createTestDatabase, freePort, rand, waitFor, type TestDatabase } from "../database/helpers.js";
import { killCliProcesses, spawnCli, waitForHealth, type CliProcess } from "../helpers/cli-process.js";
import { call } from "../helpers/server.js";


let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "leasehold-e2e-migrate-"));

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "e2emig");
});
afterAll(async () => {
  await killCliProcesses();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function serverConfig(name: string, storage: string, port: number): string {
  const file = join(dir, name);
  writeFileSync(file, `${storage}\n\nlistener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n\nlog_level = "warn"\n`);
  return file;
}


async function stop(child: CliProcess): Promise<void> {
  child.proc.kill("SIGTERM");
  expect(await child.exited).toEqual({ code: 0, signal: null });
}

describe("leasehold operator migrate: SQLite to PostgreSQL", () => {
  const sqlitePath = join(dir, "leasehold.db");
  const sqliteBlock = `storage "sqlite" {\n  path = "${sqlitePath}"\n}`;
  const secretValue = `s3cr3t-${randomBytes(8).toString("hex")}`;
  const metaHost = `db-host-${rand()}`;
  let migrateFile = "";
  let base = "";
  let port = 0;
  let server: CliProcess;
  let unsealKey = "";
  let rootToken = "";
  let child = { token: "", accessor: "" };
  let leaseId = "";
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: rootToken, body });

  it("runs a server on SQLite with a secret, a token and a leased certificate", { timeout: 60_000 }, async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawnCli(["server", `-config=${serverConfig("sqlite.hcl", sqliteBlock, port)}`]);
    expect((await waitForHealth(base, server)).status).toBe(501);
    const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    unsealKey = init.body.keys[0];
    rootToken = init.body.root_token;
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);

    expect((await root("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } })).status).toBe(204);
    expect((await root("POST", "secret/data/app", { data: { password: secretValue } })).status).toBe(200);
    const policy = 'path "secret/data/app" { capabilities = ["read"] }\npath "pki/issue/web" { capabilities = ["update"] }';
    expect((await root("PUT", "sys/policies/acl/app", { policy })).status).toBe(204);
    const created = await root("POST", "auth/token/create", { policies: ["app"], ttl: "2h", meta: { host: metaHost } });
    expect(created.status).toBe(200);
    child = { token: created.body.auth.client_token, accessor: created.body.auth.accessor };
    expect((await root("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } })).status).toBe(204);
    expect((await root("POST", "pki/root/generate/internal", { common_name: "example.com", ttl: "87600h", key_type: "ec" })).status).toBe(200);
    expect((await root("POST", "pki/roles/web", { allow_any_name: true, key_type: "ec", generate_lease: true, max_ttl: "1h" })).status).toBe(200);
    const cert = await call(base, "POST", "pki/issue/web", { token: child.token, body: { common_name: "app.example.com", ttl: "30m" } });
    expect(cert.status).toBe(200);
    leaseId = cert.body.lease_id;
    expect(leaseId).toMatch(/^pki\/issue\/web\//);
  });

  it("refuses to migrate while the server still has the SQLite file open", { timeout: 60_000 }, async () => {
    migrateFile = join(dir, "m.hcl");
    writeFileSync(migrateFile, `storage_source "sqlite" {\n  path = "${sqlitePath}"\n}\n\nstorage_destination "postgresql" {\n  connection_url = "${db.url}"\n}\n`);
    const p = spawnCli(["operator", "migrate", "-config", migrateFile]);
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toContain(`the source SQLite file ${sqlitePath} is in use by another process: stop the leasehold server using it`);
    // Nothing reached PostgreSQL.
    expect((await db.admin.query("SELECT to_regclass('leasehold_kv_store') IS NULL AS none")).rows[0].none).toBe(true);
    // The server was not disturbed.
    expect((await call(base, "GET", "secret/data/app", { token: child.token })).body.data.data.password).toBe(secretValue);
  });

  it("copies the stopped store into PostgreSQL, with progress on stderr and a JSON summary", { timeout: 60_000 }, async () => {
    await stop(server);
    const p = spawnCli(["operator", "migrate", "-config", migrateFile, "-format=json"]);
    expect(await p.exited, p.stderr()).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(p.stdout());
    expect(summary).toMatchObject({ source: `sqlite ${sqlitePath}`, destination: expect.stringContaining('(table "public"."leasehold_kv_store")') });
    // Two leases: the child token's and the certificate's (the root token has none).
    expect(summary.leases).toBe(2);
    expect(summary.entries).toBeGreaterThan(10);
    expect(summary.seconds).toBeGreaterThanOrEqual(0);
    expect(p.stderr()).toContain(`Copying sqlite ${sqlitePath} to postgresql://`);
    expect(p.stderr()).toMatch(new RegExp(`copied ${summary.entries}/${summary.entries} entries, 2/2 leases \\(100%\\)`));
    expect(p.stderr()).not.toContain("postgres-test-superuser"); // the URL's password
    const counts = await db.admin.query("SELECT (SELECT count(*)::int FROM leasehold_kv_store) AS e, (SELECT count(*)::int FROM leasehold_kv_store_leases) AS l");
    expect(counts.rows[0]).toEqual({ e: summary.entries, l: 2 });
  });

  it("serves everything from PostgreSQL after unsealing with the same key", { timeout: 60_000 }, async () => {
    server = spawnCli(["server", `-config=${serverConfig("pg.hcl", `storage "postgresql" {\n  connection_url = "${db.url}"\n}`, port)}`]);
    expect((await waitForHealth(base, server)).status).toBe(503); // initialised (seal config copied), sealed
    expect((await call(base, "GET", "sys/seal-status")).body).toMatchObject({ initialized: true, sealed: true, storage_type: "postgresql" });
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);

    expect((await call(base, "GET", "secret/data/app", { token: child.token })).body.data.data.password).toBe(secretValue);
    const self = await call(base, "GET", "auth/token/lookup-self", { token: child.token });
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ accessor: child.accessor, meta: { host: metaHost }, policies: ["app", "default"] });
    const lookup = await root("PUT", "sys/leases/lookup", { lease_id: leaseId });
    expect(lookup.status).toBe(200);
    expect(lookup.body.data).toMatchObject({ id: leaseId, renewable: false });
    expect(lookup.body.data.ttl).toBeGreaterThan(0);
    const count = await root("GET", "sys/leases/count");
    expect(count.body.data.by_mount["pki/"]).toBe(1);
    // The lease's HMAC'd creator accessor was copied as is: revoking the token still finds and revokes it.
    expect((await root("POST", "auth/token/revoke-accessor", { accessor: child.accessor })).status).toBe(204);
    await waitFor(async () => (await root("PUT", "sys/leases/lookup", { lease_id: leaseId })).status === 400, "the certificate's lease to be revoked with its token");
  });

  it("refuses a second migration into the now non-empty destination, exit 1, saying what to do", { timeout: 60_000 }, async () => {
    await stop(server);
    const p = spawnCli(["operator", "migrate", "-config", migrateFile]);
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toMatch(/Error migrating: the destination postgresql:\/\/.* is not empty \(\d+ entries, \d+ leases\), so nothing was copied/);
    expect(p.stderr()).toContain("empty it (DROP TABLE");
    expect(p.stdout()).toBe("");
  });
});

describe("leasehold operator migrate: flags and table output (in process)", () => {
  const run = async (argv: string[]) => {
    const io = memoryIo({ homeDir: dir });
    const code = await runCli(argv, io);
    return { code, out: io.out(), err: io.err() };
  };

  it("copies SQLite to SQLite with a readable summary; refuses -start, -reset, a missing -config and a bad block", { timeout: 60_000 }, async () => {
    // A source written by a dev-style store: a few raw entries are enough below the barrier.
    const { SqliteStorage } = await import("../../src/storage/sqlite.js");
    const src = join(dir, "small.db");
    const s = new SqliteStorage({ path: src });
    for (let i = 0; i < 25; i++) await s.put(`logical/x/${i}`, Buffer.from([i]));
    await s.close();
    const file = join(dir, "small.hcl");
    writeFileSync(file, `storage_source "sqlite" { path = "${src}" }\nstorage_destination "sqlite" { path = "${join(dir, "small-copy.db")}" }\ncluster_addr = "https://127.0.0.1:8201"\n`);

    const ok = await run(["operator", "migrate", `-config=${file}`, "-max-parallel=2"]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain("Success! Copied 25 entries and 0 leases in");
    expect(ok.out).toMatch(/Entries\s+25\n/);
    expect(ok.out).toContain("Next: point the server's storage block at the destination");
    expect(ok.err).toContain("copied 25/25 entries, 0/0 leases (100%)");

    const start = await run(["operator", "migrate", `-config=${file}`, "-start=logical/"]);
    expect(start.code).toBe(2);
    expect(start.err).toContain("-start is not supported: leasehold copies into an empty destination only");
    expect((await run(["operator", "migrate", `-config=${file}`, "-reset"])).code).toBe(2);
    const none = await run(["operator", "migrate"]);
    expect(none.code).toBe(2);
    expect(none.err).toContain("pass -config=FILE");
    expect((await run(["operator", "migrate", `-config=${file}`, "-max-parallel=0"])).code).toBe(2);

    const bad = join(dir, "bad.hcl");
    writeFileSync(bad, `storage_source "sqlite" { path = "${src}" }\nstorage_destinaton "sqlite" { path = "/tmp/x.db" }\n`);
    const typo = await run(["operator", "migrate", `-config=${bad}`]);
    expect(typo.code).toBe(1);
    expect(typo.err).toContain(`${bad}:2: unknown key "storage_destinaton" (did you mean "storage_destination"?)`);
    const same = join(dir, "same.hcl");
    writeFileSync(same, `storage_source "sqlite" { path = "${src}" }\nstorage_destination "sqlite" { path = "${src}" }\n`);
    const twice = await run(["operator", "migrate", `-config=${same}`]);
    expect(twice.code).toBe(1);
    expect(twice.err).toContain("name the same store");
  });
});
