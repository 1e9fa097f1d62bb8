import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { canLogin, connect, createTestDatabase, leaseCount, ok, rand, roleExists, templatedUrl, urlWith, validUntil, waitFor, type TestDatabase } from "./helpers.js";

/**
 * Dynamic credentials through the real server against the real PostgreSQL: what a user gets,
 * how the lease drives VALID UNTIL, and that revocation really ends access.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
let other: TestDatabase;
const group = `lh_readers_${rand()}`;
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);

const creds = (role: string, token = "root") => call(base, "GET", `database/creds/${role}`, { token });
const lookup = (leaseId: string) => call(base, "PUT", "sys/leases/lookup", { token: "root", body: { lease_id: leaseId } });
const revoke = (leaseId: string) => call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: leaseId } });

async function writeRole(name: string, body: Record<string, unknown>, config = "pg"): Promise<void> {
  await ok(call(base, "POST", `database/roles/${name}`, { token: "root", body: { db_name: config, ...body } }), 204);
}

const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "dyn");
  other = await createTestDatabase(inject("pgUrl"), "dyn2");
  await db.admin.query(`CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two');
    CREATE TABLE payroll (amount int); CREATE TABLE rollback_log (username text);
    CREATE ROLE ${pg.escapeIdentifier(group)} NOLOGIN; GRANT SELECT ON items TO ${pg.escapeIdentifier(group)};`);
  server = await startTestServer({ rootTokenId: "root", leaseRetry: { baseMs: 100, capMs: 500, maxAttempts: 30 } });
  base = server.url;
  await ok(call(base, "POST", "sys/mounts/database", { token: "root", body: { type: "database" } }), 204);
  await ok(
    call(base, "POST", "database/config/pg", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: "*" },
    }),
    204,
  );
  await writeRole("ro", { creation_statements: [CREATE, `GRANT "${group}" TO "{{name}}";`], default_ttl: "1h", max_ttl: "2h" });
});

afterAll(async () => {
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token: "root" });
    await server.stop();
  }
  await db?.drop();
  await other?.drop();
  const c = await connect(inject("pgUrl"));
  await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(group)}`).catch(() => undefined);
  await c.end();
});

describe("database engine: dynamic PostgreSQL credentials", () => {
  it("issues a leased user that logs in with exactly the granted rights, stored as a SCRAM verifier", async () => {
    const before = Date.now();
    const body = await ok(creds("ro"));
    expect(body.lease_id).toMatch(/^database\/creds\/ro\/[A-Za-z0-9]{16,}$/);
    expect(body.renewable).toBe(true);
    expect(body.lease_duration).toBe(3600);
    const { username, password } = body.data as { username: string; password: string };
    expect(username).toMatch(/^v-root-ro-[A-Za-z0-9]{20}-\d{10}$/);
    expect(Buffer.byteLength(username)).toBeLessThanOrEqual(63);
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(password).toMatch(/[A-Z]/);
    expect(password).toMatch(/[a-z]/);
    expect(password).toMatch(/[0-9]/);

    const stored = await db.admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [username]);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);

    const app = await connect(urlWith(db.url, { user: username, password }));
    const rows = await app.query("SELECT name FROM items ORDER BY id");
    expect(rows.rows.map((r) => r.name)).toEqual(["one", "two"]);
    await expect(app.query("SELECT * FROM payroll")).rejects.toMatchObject({ code: "42501" });
    await expect(app.query("CREATE TABLE mine (x int)")).rejects.toMatchObject({ code: "42501" });
    await expect(app.query("INSERT INTO items VALUES (3, 'three')")).rejects.toMatchObject({ code: "42501" });
    await app.end();
    expect(await canLogin(db.url, username, `${password}x`)).toBe(false);

    // VALID UNTIL follows the lease (plus the documented 5 s of slack for clock skew).
    const lease = (await ok(lookup(body.lease_id))).data;
    const expire = Date.parse(lease.expire_time);
    expect(expire).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(Math.abs((await validUntil(db.admin, username)) - (expire + 5_000))).toBeLessThan(1_500);
  });

  it("renewing the lease moves VALID UNTIL", async () => {
    await writeRole("renewable", { creation_statements: [CREATE, `GRANT "${group}" TO "{{name}}";`], default_ttl: "10m", max_ttl: "1h" });
    const body = await ok(creds("renewable"));
    const first = await validUntil(db.admin, body.data.username);
    const renewed = await ok(call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: body.lease_id, increment: 1800 } }));
    expect(renewed.lease_duration).toBe(1800);
    const after = await validUntil(db.admin, body.data.username);
    expect(after - first).toBeGreaterThan(1100_000);
    const lease = (await ok(lookup(body.lease_id))).data;
    expect(Math.abs(after - (Date.parse(lease.expire_time) + 5_000))).toBeLessThan(1_500);
    // Capped by max_ttl: a renewal past it is cut to what is left.
    const capped = await ok(call(base, "PUT", "sys/leases/renew", { token: "root", body: { lease_id: body.lease_id, increment: 7200 } }));
    expect(capped.lease_duration).toBeLessThanOrEqual(3600);
    expect(capped.lease_duration).toBeGreaterThan(3500);
  });

  it("revoking ends an open session and drops the role; a role already gone revokes cleanly", async () => {
    const body = await ok(creds("ro"));
    const { username, password } = body.data;
    const app = await connect(urlWith(db.url, { user: username, password }));
    await app.query("SELECT 1");
    await ok(revoke(body.lease_id), 204);
    await expect(app.query("SELECT 1")).rejects.toThrow();
    expect(await roleExists(db.admin, username)).toBe(false);
    expect(await canLogin(db.url, username, password)).toBe(false);
    expect((await lookup(body.lease_id)).status).toBe(400);

    const gone = await ok(creds("ro"));
    await db.admin.query(`DROP ROLE ${pg.escapeIdentifier(gone.data.username)}`);
    await ok(revoke(gone.lease_id), 204);
    expect((await lookup(gone.lease_id)).status).toBe(400);
  });

  it("revokes a role that created objects here and in another database; the objects survive, owned by the root user", async () => {
    await writeRole("creator", {
      creation_statements: [CREATE, "GRANT CREATE ON SCHEMA public TO {{name}};", `GRANT CREATE ON DATABASE ${pg.escapeIdentifier(other.name)} TO {{name}};`],
      default_ttl: "1h",
    });
    const body = await ok(creds("creator"));
    const { username, password } = body.data;
    const app = await connect(urlWith(db.url, { user: username, password }));
    await app.query("CREATE TABLE made_by_app (x int); INSERT INTO made_by_app VALUES (42)");
    const there = await connect(urlWith(other.url, { user: username, password }));
    await there.query("CREATE SCHEMA app_schema; CREATE TABLE app_schema.t (x int)");
    await there.end();

    await ok(revoke(body.lease_id), 204);
    await expect(app.query("SELECT 1")).rejects.toThrow();
    expect(await roleExists(db.admin, username)).toBe(false);
    const owner = await db.admin.query("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_app'");
    expect(owner.rows).toEqual([{ tableowner: "postgres" }]);
    expect((await db.admin.query("SELECT x FROM made_by_app")).rows).toEqual([{ x: 42 }]);
    const schemaOwner = await other.admin.query("SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'app_schema'");
    expect(schemaOwner.rows).toEqual([{ owner: "postgres" }]);
  });

  it("revokes a burst together: every role dropped, every session ended, objects of the owners kept", async () => {
    // Revocations that arrive together share DROP ROLE round trips; a batch holding a role that owns
    // something fails as a whole in PostgreSQL and must fall back to one role at a time.
    await writeRole("maker", { creation_statements: [CREATE, "GRANT CREATE ON SCHEMA public TO {{name}};"], default_ttl: "1h" });
    const plain = await Promise.all(Array.from({ length: 20 }, () => ok(creds("ro"))));
    const makers = await Promise.all(Array.from({ length: 2 }, () => ok(creds("maker"))));
    const sessions: pg.Client[] = [];
    for (const [i, m] of makers.entries()) {
      const app = await connect(urlWith(db.url, { user: m.data.username, password: m.data.password }));
      await app.query(`CREATE TABLE burst_made_${i} (x int); INSERT INTO burst_made_${i} VALUES (${i})`);
      sessions.push(app);
    }
    for (let i = 0; i < plain.length; i += 4) sessions.push(await connect(urlWith(db.url, { user: plain[i].data.username, password: plain[i].data.password })));
    const all = [...plain.slice(0, 10), makers[0], ...plain.slice(10), makers[1]];
    const revoked = await Promise.all(all.map((a) => revoke(a.lease_id)));
    for (const r of revoked) expect(r.status, JSON.stringify(r.body)).toBe(204);

    const names = all.map((a) => a.data.username as string);
    const left = await db.admin.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1)", [names]);
    expect(left.rows[0].n).toBe(0);
    for (const s of sessions) await expect(s.query("SELECT 1")).rejects.toThrow();
    const owners = await db.admin.query("SELECT tablename, tableowner FROM pg_tables WHERE tablename LIKE 'burst_made_%' ORDER BY tablename");
    expect(owners.rows).toEqual([
      { tablename: "burst_made_0", tableowner: "postgres" },
      { tablename: "burst_made_1", tableowner: "postgres" },
    ]);
    for (const a of all) expect((await lookup(a.lease_id)).status).toBe(400);
  });

  it("revokes by itself when the lease expires", async () => {
    await writeRole("short", { creation_statements: [CREATE, `GRANT "${group}" TO "{{name}}";`], default_ttl: "2s", max_ttl: "2s" });
    const body = await ok(creds("short"));
    expect(body.lease_duration).toBe(2);
    const { username, password } = body.data;
    expect(await canLogin(db.url, username, password)).toBe(true);
    await waitFor(async () => !(await roleExists(db.admin, username)), "the expired user to be dropped", 10_000);
    await waitFor(async () => (await lookup(body.lease_id)).status === 400, "the expired lease to be gone", 5_000);
  });

  it("issues 40 credentials at once for a role whose GRANTs conflict, and revokes them all at once", async () => {
    // GRANT ... ON ALL TABLES from several sessions makes PostgreSQL fail with "tuple concurrently updated".
    await writeRole("tables", { creation_statements: [CREATE, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{name}};"], default_ttl: "1h" });
    const answers = await Promise.all(Array.from({ length: 40 }, () => creds("tables")));
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const names = answers.map((a) => a.body.data.username as string);
    expect(new Set(names).size).toBe(40);
    const present = await db.admin.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1)", [names]);
    expect(present.rows[0].n).toBe(40);
    const sample = answers[17].body.data;
    const app = await connect(urlWith(db.url, { user: sample.username, password: sample.password }));
    expect((await app.query("SELECT count(*)::int AS n FROM payroll")).rows[0].n).toBe(0);
    await app.end();

    const revoked = await Promise.all(answers.map((a) => revoke(a.body.lease_id)));
    for (const r of revoked) expect(r.status, JSON.stringify(r.body)).toBe(204);
    const left = await db.admin.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1)", [names]);
    expect(left.rows[0].n).toBe(0);
  });

  it("turns hostile display names into plain usernames and refuses hostile role and config names", async () => {
    const token = await ok(call(base, "POST", "auth/token/create", { token: "root", body: { display_name: `x"; DROP ROLE postgres; --`, policies: ["root"] } }));
    const body = await ok(creds("ro", token.auth.client_token));
    const { username, password } = body.data;
    expect(username).toMatch(/^v-token-x-[A-Za-z0-9_.-]*-ro-[A-Za-z0-9]{20}-\d{10}$/);
    expect(await canLogin(db.url, username, password)).toBe(true);
    expect(await roleExists(db.admin, "postgres")).toBe(true);

    for (const bad of [`a"b`, "a;b", "a'b", "x y", "a".repeat(129)]) {
      const p = encodeURIComponent(bad);
      const r = await call(base, "POST", `database/roles/${p}`, { token: "root", body: { db_name: "pg", creation_statements: CREATE } });
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0]).toMatch(/invalid role name/);
      const c = await call(base, "POST", `database/config/${p}`, { token: "root", body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url) } });
      expect(c.status, bad).toBe(400);
      expect((await call(base, "GET", `database/creds/${p}`, { token: "root" })).status).toBe(400);
    }
  });

  it("honours allowed_roles, with globs", async () => {
    await ok(
      call(base, "POST", "database/config/limited", {
        token: "root",
        body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: ["app-*", "exact"] },
      }),
      204,
    );
    for (const role of ["app-web", "exact", "other", "exactly"]) await writeRole(role, { creation_statements: CREATE, default_ttl: 60 }, "limited");
    const allowed = await ok(creds("app-web"));
    expect(allowed.data.username).toMatch(/^v-root-app-web-/);
    await ok(creds("exact"));
    for (const role of ["other", "exactly"]) {
      const r = await creds(role);
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toBe(`"${role}" is not an allowed role for database config "limited"`);
    }
  });

  it("still revokes after the role and its config were deleted", async () => {
    await ok(
      call(base, "POST", "database/config/doomed", {
        token: "root",
        body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: "doomed" },
      }),
      204,
    );
    await writeRole("doomed", { creation_statements: [CREATE, `GRANT "${group}" TO "{{name}}";`], default_ttl: "1h" }, "doomed");
    const body = await ok(creds("doomed"));
    await ok(call(base, "DELETE", "database/roles/doomed", { token: "root" }), 204);
    await ok(call(base, "DELETE", "database/config/doomed", { token: "root" }), 204);
    expect((await call(base, "GET", "database/config/doomed", { token: "root" })).status).toBe(404);
    expect(await roleExists(db.admin, body.data.username)).toBe(true);
    await ok(revoke(body.lease_id), 204);
    expect(await roleExists(db.admin, body.data.username)).toBe(false);
  });

  it("a failed creation rolls back, runs the rollback statements, answers 500 naming the config and leaves no lease", async () => {
    await writeRole("broken", {
      creation_statements: [CREATE, "SELECT no_such_function()"],
      rollback_statements: ["INSERT INTO rollback_log VALUES ('{{name}}')"],
      default_ttl: 60,
    });
    const before = await leaseCount(base);
    const r = await creds("broken");
    expect(r.status).toBe(500);
    expect(r.body.errors[0]).toMatch(/^database "pg": creating a user for role "broken" failed: function no_such_function\(\) does not exist/);
    expect(r.body.errors[0]).not.toContain(rootPassword());
    const logged = await db.admin.query<{ username: string }>("SELECT username FROM rollback_log");
    expect(logged.rows).toHaveLength(1);
    expect(await roleExists(db.admin, logged.rows[0].username)).toBe(false);
    expect(await leaseCount(base)).toBe(before);
  });

  it("shows configs and roles the way Vault does, never the root password", async () => {
    const config = await ok(call(base, "GET", "database/config/pg", { token: "root" }));
    expect(config.data).toEqual({
      allowed_roles: ["*"],
      connection_details: {
        connection_url: templatedUrl(db.url),
        username: "postgres",
        max_open_connections: 4,
        max_idle_connections: 0,
        max_connection_lifetime: "0s",
        disable_escaping: false,
        password_authentication: "scram-sha-256",
      },
      password_policy: "",
      plugin_name: "postgresql-database-plugin",
      plugin_version: "",
      root_credentials_rotate_statements: [],
      verify_connection: true,
    });
    expect(JSON.stringify(config)).not.toContain(rootPassword());
    const list = await ok(call(base, "GET", "database/config?list=true", { token: "root" }));
    expect(list.data.keys).toEqual(expect.arrayContaining(["pg", "limited"]));
    const role = await ok(call(base, "GET", "database/roles/ro", { token: "root" }));
    expect(role.data).toEqual({
      credential_type: "password",
      db_name: "pg",
      creation_statements: [CREATE, `GRANT "${group}" TO "{{name}}";`],
      revocation_statements: [],
      rollback_statements: [],
      renew_statements: [],
      default_ttl: 3600,
      max_ttl: 7200,
    });
    // Statements also arrive as one ;-separated string or base64 of it; semicolons in quotes stay.
    const text = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; COMMENT ON ROLE \"{{name}}\" IS 'a;b'";
    await writeRole("b64", { creation_statements: Buffer.from(text).toString("base64") });
    const b64 = await ok(call(base, "GET", "database/roles/b64", { token: "root" }));
    expect(b64.data.creation_statements).toEqual([`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`, `COMMENT ON ROLE "{{name}}" IS 'a;b'`]);
    const roles = await ok(call(base, "GET", "database/roles?list=true", { token: "root" }));
    expect(roles.data.keys).toEqual(expect.arrayContaining(["ro", "b64", "tables"]));
    expect((await call(base, "POST", "database/roles/x", { token: "root", body: { db_name: "pg" } })).status).toBe(400);
    expect((await call(base, "POST", "database/roles/x", { token: "root", body: { db_name: "pg", creation_statements: CREATE, default_ttl: 100, max_ttl: 10 } })).status).toBe(400);
    expect((await call(base, "GET", "database/creds/nope", { token: "root" })).body.errors).toEqual(["unknown role: nope"]);
  });

  it("the CLI prints credentials and their lease as a table, and the envelope with -format=json", async () => {
    const home = mkdtempSync(join(tmpdir(), "lh-db-cli-"));
    const cli = async (argv: string[]) => {
      const io = memoryIo({ env: { LEASEHOLD_ADDR: base, LEASEHOLD_TOKEN: "root" }, homeDir: home });
      const code = await runCli(argv, io);
      expect(code, io.err()).toBe(0);
      return io.out();
    };
    const table = await cli(["read", "database/creds/ro"]);
    expect(table).toMatch(/^Key +Value\n/);
    expect(table).toMatch(/\nlease_id +database\/creds\/ro\/[A-Za-z0-9]+\n/);
    expect(table).toMatch(/\nlease_duration +1h\n/);
    expect(table).toMatch(/\nlease_renewable +true\n/);
    expect(table).toMatch(/\npassword +[A-Za-z0-9-]{24}\n/);
    expect(table).toMatch(/\nusername +v-root-ro-[A-Za-z0-9]{20}-\d{10}\n/);
    const json = JSON.parse(await cli(["read", "-format=json", "database/creds/ro"]));
    expect(json).toMatchObject({ lease_duration: 3600, renewable: true, data: { username: expect.stringMatching(/^v-root-ro-/), password: expect.any(String) } });
    expect(json.lease_id).toMatch(/^database\/creds\/ro\//);
    rmSync(home, { recursive: true, force: true });
  });

  it("refuses a config it cannot verify, without echoing the password", async () => {
    const r = await call(base, "POST", "database/config/wrongpw", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: "Wrong-Secret-Password-1", allowed_roles: "*" },
    });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/^error verifying the connection of "wrongpw": password authentication failed/);
    expect(JSON.stringify(r.body)).not.toContain("Wrong-Secret-Password-1");
    expect((await call(base, "GET", "database/config/wrongpw", { token: "root" })).status).toBe(404);
    const inline = await call(base, "POST", "database/config/inline", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: urlWith(db.url, { password: "Inline-Secret-9" }), allowed_roles: "*" },
    });
    expect(inline.status).toBe(400);
    expect(JSON.stringify(inline.body)).not.toContain("Inline-Secret-9");
  });
});
