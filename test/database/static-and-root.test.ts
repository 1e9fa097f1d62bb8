import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { canLogin, connect, createTestDatabase, ok, rand, roleExists, sleep, templatedUrl, waitFor, type TestDatabase } from "./helpers.js";

/** Static roles (rotation on creation, on demand, on schedule) and root credential rotation. */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const created: string[] = [];
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);

async function dbUser(prefix: string, password: string, extra = ""): Promise<string> {
  const name = `${prefix}_${rand()}`;
  await db.admin.query(`CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(password)} ${extra}`);
  created.push(name);
  return name;
}

const staticCreds = (name: string) => ok(call(base, "GET", `database/static-creds/${name}`, { token: "root" }));

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "static");
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  await ok(call(base, "POST", "sys/mounts/database", { token: "root", body: { type: "database" } }), 204);
  await ok(
    call(base, "POST", "database/config/pg", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: ["*"] },
    }),
    204,
  );
});

afterAll(async () => {
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token: "root" });
    await server.stop();
  }
  if (db) {
    for (const name of created) await db.admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(name)}`).catch(() => undefined);
    await db.drop();
  }
});

describe("database engine: static roles", () => {
  it("rotates on creation and on demand; the old password stops working", async () => {
    const username = await dbUser("app_static", "Initial-Pass-123");
    expect(await canLogin(db.url, username, "Initial-Pass-123")).toBe(true);
    const before = Date.now();
    await ok(call(base, "POST", "database/static-roles/app", { token: "root", body: { db_name: "pg", username, rotation_period: "1h" } }), 204);
    expect(await canLogin(db.url, username, "Initial-Pass-123")).toBe(false);

    const first = (await staticCreds("app")).data;
    expect(first).toMatchObject({ username, rotation_period: 3600 });
    expect(first.ttl).toBeGreaterThan(3590);
    expect(first.ttl).toBeLessThanOrEqual(3600);
    expect(Date.parse(first.last_vault_rotation)).toBeGreaterThanOrEqual(before - 1000);
    expect(await canLogin(db.url, username, first.password)).toBe(true);

    const role = (await ok(call(base, "GET", "database/static-roles/app", { token: "root" }))).data;
    expect(role).toEqual({ credential_type: "password", db_name: "pg", username, rotation_period: 3600, rotation_statements: [], last_vault_rotation: first.last_vault_rotation });

    await ok(call(base, "POST", "database/rotate-role/app", { token: "root" }), 204);
    const second = (await staticCreds("app")).data;
    expect(second.password).not.toBe(first.password);
    expect(Date.parse(second.last_vault_rotation)).toBeGreaterThanOrEqual(Date.parse(first.last_vault_rotation));
    expect(await canLogin(db.url, username, first.password)).toBe(false);
    expect(await canLogin(db.url, username, second.password)).toBe(true);
    expect((await ok(call(base, "GET", "database/static-roles?list=true", { token: "root" }))).data.keys).toContain("app");
  });

  it("rotates on schedule, and stops after the role is deleted", async () => {
    const username = await dbUser("app_sched", "Initial-Pass-456");
    await ok(call(base, "POST", "database/static-roles/sched", { token: "root", body: { db_name: "pg", username, rotation_period: 5 } }), 204);
    const first = (await staticCreds("sched")).data;
    expect(first.ttl).toBeLessThanOrEqual(5);
    const second = await waitFor(async () => {
      const d = (await staticCreds("sched")).data;
      return d.password !== first.password ? d : undefined;
    }, "the scheduled rotation", 9_000);
    expect(await canLogin(db.url, username, first.password)).toBe(false);
    expect(await canLogin(db.url, username, second.password)).toBe(true);

    await ok(call(base, "DELETE", "database/static-roles/sched", { token: "root" }), 204);
    expect((await call(base, "GET", "database/static-creds/sched", { token: "root" })).status).toBe(400);
    await sleep(5_500);
    expect(await canLogin(db.url, username, second.password)).toBe(true);
  });

  it("handles a hostile username and custom rotation statements", async () => {
    const username = await dbUser(`o'brien"; --`, "Initial-Pass-789");
    await ok(
      call(base, "POST", "database/static-roles/hostile", {
        token: "root",
        body: { db_name: "pg", username, rotation_period: "1h", rotation_statements: [`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`, `COMMENT ON ROLE "{{name}}" IS 'rotated by leasehold'`] },
      }),
      204,
    );
    const c = (await staticCreds("hostile")).data;
    expect(c.username).toBe(username);
    expect(await canLogin(db.url, username, c.password)).toBe(true);
    const comment = await db.admin.query("SELECT shobj_description(oid, 'pg_authid') AS c FROM pg_roles WHERE rolname = $1", [username]);
    expect(comment.rows[0].c).toBe("rotated by leasehold");
  });

  it("validates static roles and saves none when the first rotation fails", async () => {
    const username = await dbUser("app_valid", "Initial-Pass-000");
    const post = (name: string, body: Record<string, unknown>) => call(base, "POST", `database/static-roles/${name}`, { token: "root", body });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ db_name: "pg", rotation_period: 60 }, /username is required/],
      [{ db_name: "pg", username, rotation_period: 2 }, /at least 5 seconds/],
      [{ db_name: "pg", username }, /rotation_period is required/],
      [{ db_name: "nope", username, rotation_period: 60 }, /database config "nope" does not exist/],
      [{ db_name: "pg", username: "postgres", rotation_period: 60 }, /root user/],
    ];
    for (const [body, message] of cases) {
      const r = await post("v", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors[0]).toMatch(message);
    }
    await ok(call(base, "POST", "database/roles/dyn", { token: "root", body: { db_name: "pg", creation_statements: "CREATE ROLE {{name}}" } }), 204);
    expect((await post("dyn", { db_name: "pg", username, rotation_period: 60 })).body.errors[0]).toMatch(/already a dynamic role/);

    const missing = await post("ghost", { db_name: "pg", username: `no_such_user_${rand()}`, rotation_period: 60 });
    expect(missing.status).toBe(500);
    expect(missing.body.errors[0]).toMatch(/^database "pg": rotating the password of static role "ghost" failed: role .* does not exist/);
    expect((await call(base, "GET", "database/static-roles/ghost", { token: "root" })).status).toBe(404);
    await ok(post("valid", { db_name: "pg", username, rotation_period: 60 }), 204);
    expect((await post("valid", { username: "someone_else" })).body.errors[0]).toMatch(/cannot change the username/);
    await ok(post("valid", { rotation_period: 120 }), 204);
    expect((await staticCreds("valid")).data.rotation_period).toBe(120);
  });
});

describe("database engine: rotate-root", () => {
  it("replaces the root password: the old one stops working, the engine keeps working, nobody sees the new one", async () => {
    const initial = "Root-Initial-Pass-1";
    const rootUser = await dbUser("lh_root", initial, "CREATEROLE");
    await db.admin.query(`GRANT pg_signal_backend TO ${pg.escapeIdentifier(rootUser)}`);
    await ok(
      call(base, "POST", "database/config/rooted", {
        token: "root",
        body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: rootUser, password: initial, allowed_roles: "via-root" },
      }),
      204,
    );
    await ok(call(base, "POST", "database/roles/via-root", { token: "root", body: { db_name: "rooted", creation_statements: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, default_ttl: "1h" } }), 204);
    const issue = async () => {
      const body = await ok(call(base, "GET", "database/creds/via-root", { token: "root" }));
      expect(await canLogin(db.url, body.data.username, body.data.password)).toBe(true);
      return body;
    };
    const early = await issue();

    await ok(call(base, "POST", "database/rotate-root/rooted", { token: "root" }), 204);
    expect(await canLogin(db.url, rootUser, initial)).toBe(false);
    const config = await ok(call(base, "GET", "database/config/rooted", { token: "root" }));
    expect(config.data.connection_details).not.toHaveProperty("password");
    expect(JSON.stringify(config)).not.toContain(initial);
    const stored = await db.admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [rootUser]);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);

    // The engine logs in with the new password: after the rotation, after a reset, after a second rotation.
    const late = await issue();
    await ok(call(base, "POST", "database/reset/rooted", { token: "root" }), 204);
    await issue();
    await ok(call(base, "POST", "database/rotate-root/rooted", { token: "root" }), 204);
    const last = await issue();
    for (const lease of [early, late, last]) {
      await ok(call(base, "PUT", "sys/leases/revoke", { token: "root", body: { lease_id: lease.lease_id } }), 204);
      expect(await roleExists(db.admin, lease.data.username)).toBe(false);
    }
    const session = await connect(db.url);
    const sessions = await session.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1", [rootUser]);
    expect(sessions.rows[0].n).toBeGreaterThan(0);
    await session.end();

    const noRoot = await call(base, "POST", "database/config/noroot", {
      token: "root",
      body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url).replace("{{username}}:{{password}}", `postgres:${encodeURIComponent(rootPassword())}`), allowed_roles: "*" },
    });
    expect(noRoot.status).toBe(200); // with Vault's warning about the password in connection_url
    const refused = await call(base, "POST", "database/rotate-root/noroot", { token: "root" });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toMatch(/no root username and password/);
    const shown = await ok(call(base, "GET", "database/config/noroot", { token: "root" }));
    expect(shown.data.connection_details.connection_url).toMatch(/^postgresql:\/\/postgres:\*{5}@/);
    expect((await call(base, "POST", "database/rotate-root/missing", { token: "root" })).status).toBe(404);
  });
});
