import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { canLogin, createTestDatabase, ok, rand, type TestDatabase } from "../database/helpers.js";

/**
 * Issue 15, items 15 and 17, against the embedded PostgreSQL server:
 *   - 15: a static role must not take over the config's root user when the root credentials are
 *     written inside `connection_url` (as the URL's user or a `user` parameter) rather than in the
 *     `username` field;
 *   - 17: reading a config never shows a password written into `connection_url`, also one holding
 *     `@`, `:`, `/` or `%40`, and also one given as a `password` query parameter.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const roles: string[] = [];
const root = { token: "root" };

/** host:port/database of the test database, as a connection URL shows it. */
const where = () => {
  const u = new URL(db.url);
  return `${u.host}/${db.name}`;
};

async function createRole(name: string, password: string, extra = ""): Promise<string> {
  await db.admin.query(`CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(password)} ${extra}`);
  roles.push(name);
  return name;
}

const writeConfig = (name: string, body: Record<string, unknown>) =>
  call(base, "POST", `database/config/${name}`, { ...root, body: { plugin_name: "postgresql-database-plugin", allowed_roles: ["*"], ...body } });
const writeStatic = (name: string, db_name: string, username: string) =>
  call(base, "POST", `database/static-roles/${name}`, { ...root, body: { db_name, username, rotation_period: "1h" } });

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "secdb");
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  await ok(call(base, "POST", "sys/mounts/database", { ...root, body: { type: "database" } }), 204);
});

afterAll(async () => {
  await server?.stop();
  if (db) {
    for (const r of roles) await db.admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(r)}`).catch(() => undefined);
    await db.drop();
  }
});

describe("static roles cannot take over a root user written inside connection_url", () => {
  it("refuses the root user named by the URL's user, by a user parameter, or by the username field", async () => {
    // A dedicated superuser as root: should the guard fail, only this role's password changes.
    const rootPassword = `Root-${rand()}-Pass`;
    const rootUser = await createRole(`lh_sroot_${rand()}`, rootPassword, "SUPERUSER");
    const other = await createRole(`lh_sother_${rand()}`, "Other-Pass-123");
    const u = new URL(db.url);

    // The root credentials only inside the URL; no username or password field.
    await ok(writeConfig("literal", { connection_url: `postgresql://${rootUser}:${rootPassword}@${u.host}/${db.name}` }), 200);
    // The URL's user with {{password}} and the password field.
    await ok(writeConfig("url-user", { connection_url: `postgresql://${rootUser}:{{password}}@${u.host}/${db.name}`, password: rootPassword }), 204);
    // A user parameter wins over the username field (node-postgres reads it last).
    await ok(writeConfig("query-user", { connection_url: `postgresql://{{username}}:{{password}}@${u.host}/${db.name}?user=${rootUser}`, username: other, password: rootPassword }), 204);

    for (const config of ["literal", "url-user", "query-user"]) {
      const r = await writeStatic(`take-${config}`, config, rootUser);
      expect(r.status, `${config}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.errors[0]).toMatch(/is the root user of config/);
      expect((await call(base, "GET", `database/static-roles/take-${config}`, root)).status).toBe(404);
    }
    // The username field names a root user too, even when the URL logs in as another.
    expect((await writeStatic("take-field", "query-user", other)).status).toBe(400);
    // The root password was never rotated away.
    expect(await canLogin(db.url, rootUser, rootPassword)).toBe(true);

    // rotate-root cannot change a password the config does not send: the URL has its own, and
    // rotating would set the root user's password to the field's new value, which is never used.
    await ok(writeConfig("literal-field", { connection_url: `postgresql://${rootUser}:${rootPassword}@${u.host}/${db.name}`, password: "Unused-Field-Pass" }), 200);
    const rr = await call(base, "POST", "database/rotate-root/literal-field", root);
    expect(rr.status).toBe(400);
    expect(rr.body.errors[0]).toMatch(/written into connection_url/);
    expect(await canLogin(db.url, rootUser, rootPassword)).toBe(true);
  });

  it("positive control: a static role for another user works, and names are compared as PostgreSQL does (exactly)", async () => {
    const rootPassword = `Root-${rand()}-Pass`;
    const rootUser = await createRole(`lh_sroot_${rand()}`, rootPassword, "SUPERUSER");
    const app = await createRole(`lh_sapp_${rand()}`, "App-Initial-1");
    // A different role whose name differs from the root's only in case: quoted, it is its own role.
    const upper = await createRole(rootUser.toUpperCase(), "Upper-Initial-1");
    const u = new URL(db.url);
    await ok(writeConfig("pos", { connection_url: `postgresql://${rootUser}:${rootPassword}@${u.host}/${db.name}` }), 200);

    await ok(writeStatic("app", "pos", app), 204);
    const creds = (await ok(call(base, "GET", "database/static-creds/app", root))).data;
    expect(creds.username).toBe(app);
    expect(await canLogin(db.url, app, creds.password)).toBe(true);
    expect(await canLogin(db.url, app, "App-Initial-1")).toBe(false);

    await ok(writeStatic("upper", "pos", upper), 204);
    const upperCreds = (await ok(call(base, "GET", "database/static-creds/upper", root))).data;
    expect(await canLogin(db.url, upper, upperCreds.password)).toBe(true);
    expect(await canLogin(db.url, rootUser, rootPassword)).toBe(true);

    // The config rewritten to log in as the static role's user: that user is root now, and its
    // rotation is refused rather than handing the root password to static-creds readers.
    await db.admin.query(`ALTER ROLE ${pg.escapeIdentifier(app)} SUPERUSER`);
    await ok(writeConfig("pos", { connection_url: `postgresql://${app}:{{password}}@${u.host}/${db.name}`, password: creds.password }), 204);
    const rotate = await call(base, "POST", "database/rotate-role/app", root);
    expect(rotate.status, JSON.stringify(rotate.body)).toBe(400);
    expect(rotate.body.errors[0]).toMatch(/is now the root user of config "pos"/);
    expect(await canLogin(db.url, app, creds.password)).toBe(true);
    // ...while the other static role of the same config still rotates.
    await ok(call(base, "POST", "database/rotate-role/upper", root), 204);
    expect(await canLogin(db.url, upper, upperCreds.password)).toBe(false);
  });
});

describe("reading a config never shows a password written into connection_url", () => {
  // Each piece is checked on its own, so a mask that stops at the first `@`, `:` or `/` is caught.
  const PIECES = ["Tqx", "Zxq", "Vwq", "Kpq", "Lmq", "Rsq"];
  const PASSWORD = "Tqx@Zxq:Vwq@Kpq/Lmq%40Rsq";

  it("masks a password with @, :, / and %40 in the URL's credentials, and keeps host and database readable", async () => {
    const user = await createRole(`lh_spw_${rand()}`, PASSWORD);
    // `@` and `:` as typed; `@`, `/` and `%` encoded the second time round, as a URL must have `/` and `%`.
    const inUrl = "Tqx@Zxq:Vwq%40Kpq%2FLmq%2540Rsq";
    const url = `postgresql://${user}:${inUrl}@${where()}`;
    const w = await ok(writeConfig("pw-url", { connection_url: url, verify_connection: true }), 200);
    expect(w.warnings.join(" ")).toMatch(/Password found in connection_url/);

    const r = await ok(call(base, "GET", "database/config/pw-url", root));
    const text = JSON.stringify(r);
    for (const p of PIECES) expect(text, p).not.toContain(p);
    expect(r.data.connection_details.connection_url).toBe(`postgresql://${user}:*****@${where()}`);
  });

  it("masks a password query parameter", async () => {
    const user = await createRole(`lh_spq_${rand()}`, PASSWORD);
    const url = `postgresql://${user}@${where()}?password=${encodeURIComponent(PASSWORD)}&application_name=lh-sec`;
    await ok(writeConfig("pw-query", { connection_url: url, verify_connection: true }), 200);
    const r = await ok(call(base, "GET", "database/config/pw-query", root));
    const text = JSON.stringify(r);
    for (const p of PIECES) expect(text, p).not.toContain(p);
    expect(r.data.connection_details.connection_url).toBe(`postgresql://${user}@${where()}?password=*****&application_name=lh-sec`);
  });

  it("positive control: a templated URL is shown as written, and the password field never", async () => {
    const user = await createRole(`lh_spt_${rand()}`, PASSWORD);
    const url = `postgresql://{{username}}:{{password}}@${where()}`;
    await ok(writeConfig("pw-template", { connection_url: url, username: user, password: PASSWORD, verify_connection: true }), 204);
    const r = await ok(call(base, "GET", "database/config/pw-template", root));
    expect(r.data.connection_details.connection_url).toBe(url);
    expect(r.data.connection_details.username).toBe(user);
    const text = JSON.stringify(r);
    for (const p of PIECES) expect(text, p).not.toContain(p);
  });
});
