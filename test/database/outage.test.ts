import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { scramVerifier } from "../../plugins/database/postgres/scram.js";
import { TestPostgres } from "../helpers/postgres.js";
import { call, startTestServer } from "../helpers/server.js";
import { canLogin, connect, freePort, leaseCount, ok, roleExists, templatedUrl, waitFor } from "./helpers.js";

/**
 * A PostgreSQL of this file's own (the shared one must not be stopped), logging every DDL
 * statement to a log we capture: proves no password reaches the server, and how the engine
 * behaves while the database is down.
 */
const SUPER_PASSWORD = "outage-test-superuser";
const ROOT_PASSWORD = "Edge-Root-Password-1";
let pgServer: TestPostgres;
let pgUrl: string;
let running = false;
const logs: string[] = [];
let server: RunningServer;
let base: string;

async function startPg(): Promise<void> {
  if (!running) await pgServer.start();
  running = true;
}

async function stopPg(): Promise<void> {
  if (running) await pgServer.stop();
  running = false;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(pgUrl);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const creds = () => call(base, "GET", "database/creds/app", { token: "root" });
const lookup = (leaseId: string) => call(base, "PUT", "sys/leases/lookup", { token: "root", body: { lease_id: leaseId } });

beforeAll(async () => {
  pgServer = await TestPostgres.create({
    label: "lh-db-outage",
    port: await freePort(),
    password: SUPER_PASSWORD,
    flags: ["-c", "log_statement=ddl", "-c", "fsync=off"],
    onLog: (m) => void logs.push(m),
  });
  await startPg();
  pgUrl = pgServer.url;
  // The root user's own password is set as a verifier too, so the log holds no plaintext at all.
  await admin((c) => c.query("CREATE ROLE edge_root LOGIN SUPERUSER"));
  await admin(async (c) => c.query(`ALTER ROLE edge_root PASSWORD ${pg.escapeLiteral(await scramVerifier(ROOT_PASSWORD))}`));
  await admin((c) => c.query("CREATE ROLE static_user LOGIN"));

  server = await startTestServer({ rootTokenId: "root", leaseRetry: { baseMs: 200, capMs: 800, maxAttempts: 100 } });
  base = server.url;
  await ok(call(base, "POST", "sys/mounts/database", { token: "root", body: { type: "database" } }), 204);
  await ok(
    call(base, "POST", "database/config/edge", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(pgUrl), username: "edge_root", password: ROOT_PASSWORD, allowed_roles: "*" },
    }),
    204,
  );
  await ok(
    call(base, "POST", "database/roles/app", {
      token: "root",
      body: { db_name: "edge", creation_statements: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, default_ttl: "1h" },
    }),
    204,
  );
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await pgServer?.destroy().catch(() => undefined);
});

describe("database engine against a PostgreSQL that logs DDL and goes down", () => {
  it("never lets an issued password reach the server or its log", async () => {
    const issued: string[] = [];
    for (let i = 0; i < 3; i++) {
      const body = await ok(creds());
      issued.push(body.data.password);
      expect(await canLogin(pgUrl, body.data.username, body.data.password)).toBe(true);
    }
    await ok(call(base, "POST", "database/static-roles/st", { token: "root", body: { db_name: "edge", username: "static_user", rotation_period: "1h" } }), 204);
    issued.push((await ok(call(base, "GET", "database/static-creds/st", { token: "root" }))).data.password);
    await ok(call(base, "POST", "database/rotate-role/st", { token: "root" }), 204);
    const current = (await ok(call(base, "GET", "database/static-creds/st", { token: "root" }))).data.password;
    issued.push(current);
    expect(await canLogin(pgUrl, "static_user", current)).toBe(true);
    await ok(call(base, "POST", "database/rotate-root/edge", { token: "root" }), 204);
    expect(await canLogin(pgUrl, "edge_root", ROOT_PASSWORD)).toBe(false);

    const log = logs.join("\n");
    // The log really records DDL, verifiers included: the check below could find a password.
    expect(log).toMatch(/statement: CREATE ROLE "v-root-app-[A-Za-z0-9]{20}-\d+" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(log).toMatch(/statement: ALTER ROLE "static_user" WITH PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(log).toMatch(/statement: ALTER ROLE "edge_root" WITH PASSWORD 'SCRAM-SHA-256\$4096:/);
    for (const password of [...issued, ROOT_PASSWORD]) expect(log).not.toContain(password);
  });

  it("answers a clean 5xx naming the config, and keeps no lease, when the database is down at creation", async () => {
    const before = await leaseCount(base);
    await stopPg();
    const r = await creds();
    expect(r.status).toBe(500);
    expect(r.body.errors[0]).toMatch(/^database "edge": creating a user for role "app" failed: .*(ECONNREFUSED|terminat|connect)/i);
    const text = JSON.stringify(r.body);
    for (const secret of [ROOT_PASSWORD, SUPER_PASSWORD, "postgresql://", "postgres://"]) expect(text).not.toContain(secret);
    expect(await leaseCount(base)).toBe(before);

    const rotate = await call(base, "POST", "database/rotate-role/st", { token: "root" });
    expect(rotate.status).toBe(500);
    expect(rotate.body.errors[0]).toMatch(/^database "edge": rotating the password of static role "st" failed/);

    // A config pointing at nothing at all (closed port, not verified) fails the same way.
    await ok(
      call(base, "POST", "database/config/closed", {
        token: "root",
        body: { plugin_name: "postgresql-database-plugin", connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${await freePort()}/postgres`, username: "x", password: "Closed-Secret-1", allowed_roles: "*", verify_connection: false },
      }),
      204,
    );
    await ok(call(base, "POST", "database/roles/nowhere", { token: "root", body: { db_name: "closed", creation_statements: "CREATE ROLE {{name}}" } }), 204);
    const nowhere = await call(base, "GET", "database/creds/nowhere", { token: "root" });
    expect(nowhere.status).toBe(500);
    expect(nowhere.body.errors[0]).toMatch(/^database "closed": creating a user for role "nowhere" failed: .*ECONNREFUSED/);
    expect(JSON.stringify(nowhere.body)).not.toContain("Closed-Secret-1");
    expect(await leaseCount(base)).toBe(before);
    await startPg();
  });

  it("retries a revocation that failed while the database was down, until it succeeds", async () => {
    await startPg();
    const body = await ok(creds());
    const { username } = body.data;
    await stopPg();
    const r = await call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: body.lease_id } });
    expect(r.status).toBeGreaterThanOrEqual(500);
    const pending = (await ok(lookup(body.lease_id))).data;
    expect(pending.state).toBe("revoking");
    expect(pending.revoke_attempts).toBeGreaterThanOrEqual(1);
    expect(pending.revoke_error).toMatch(/^database "edge": revoking user .* failed/);
    expect(pending.revoke_error).not.toContain(ROOT_PASSWORD);
    await startPg();
    await waitFor(async () => (await lookup(body.lease_id)).status === 400, "the retried revocation to finish", 10_000);
    expect(await admin((c) => roleExists(c, username))).toBe(false);
  });
});
