import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { canLogin, createTestDatabase, ok, templatedUrl, type TestDatabase } from "../database/helpers.js";

/**
 * Issue 15, item 19: a `username_template` that builds strings exponentially (a pipeline of
 * `replace`s, each multiplying the length) took seconds of CPU and answered 500. Templates are now
 * bounded (64 KiB per value, 1 MiB per render, 4 KiB of source, 32 nested parentheses) and such a
 * template is a 400, both when the config is written and when credentials are made.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const root = { token: "root" };
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;

/** 16^8 characters if it were built. */
const EXPONENTIAL = `{{ "x" ${'| replace "x" "xxxxxxxxxxxxxxxx" '.repeat(8)}| truncate 20 }}`;
/** Small for the role name used when the config is written ("role"), exponential for a role named with z's. */
const EXPONENTIAL_FOR_Z = `lh{{ .RoleName ${'| replace "z" "zzzzzzzzzzzzzzzz" '.repeat(8)}| truncate 20 }}`;

const writeConfig = (name: string, username_template?: string) =>
  call(base, "POST", `database/config/${name}`, {
    ...root,
    body: { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: ["*"], ...(username_template ? { username_template } : {}) },
  });

async function timed<T>(p: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await p();
  return [r, performance.now() - t];
}

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "sectpl");
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  await ok(call(base, "POST", "sys/mounts/database", { ...root, body: { type: "database" } }), 204);
});

afterAll(async () => {
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", root);
    await server.stop();
  }
  await db?.drop();
});

describe("username_template: bounded work", () => {
  it("refuses an exponential template with 400 when the config is written, quickly", async () => {
    const [r, ms] = await timed(() => writeConfig("exp", EXPONENTIAL));
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.errors[0]).toMatch(/^username_template: replace would build a value of \d+ characters; the limit is 65536/);
    expect(ms).toBeLessThan(1000);
    expect((await call(base, "GET", "database/config/exp", root)).status).toBe(404);
  });

  it("refuses with 400 when credentials are made, if only the role's name makes it explode", async () => {
    await ok(writeConfig("z", EXPONENTIAL_FOR_Z), 204);
    await ok(call(base, "POST", "database/roles/zz", { ...root, body: { db_name: "z", creation_statements: [CREATE], default_ttl: "1h" } }), 204);
    const [r, ms] = await timed(() => call(base, "GET", "database/creds/zz", root));
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.errors[0]).toMatch(/^username_template: .*limit is 65536/);
    expect(ms).toBeLessThan(1000);

    // Positive control on the same config: a role name without z renders as usual.
    await ok(call(base, "POST", "database/roles/ab", { ...root, body: { db_name: "z", creation_statements: [CREATE], default_ttl: "1h" } }), 204);
    const creds = (await ok(call(base, "GET", "database/creds/ab", root))).data;
    expect(creds.username).toBe("lhab");
    expect(await canLogin(db.url, creds.username, creds.password)).toBe(true);
  });

  it("positive control: Vault's default template and a custom ordinary one still work", async () => {
    await ok(writeConfig("default"), 204);
    await ok(call(base, "POST", "database/roles/plain", { ...root, body: { db_name: "default", creation_statements: [CREATE], default_ttl: "1h" } }), 204);
    const d = (await ok(call(base, "GET", "database/creds/plain", root))).data;
    expect(d.username).toMatch(/^v-root-plain-[A-Za-z0-9]{20}-\d{10}$/);
    expect(await canLogin(db.url, d.username, d.password)).toBe(true);

    await ok(writeConfig("custom", `{{ printf "app-%s-%s" (.RoleName | replace "-" "_") (random 8 | lowercase) | truncate 40 }}`), 204);
    await ok(call(base, "POST", "database/roles/my-role", { ...root, body: { db_name: "custom", creation_statements: [CREATE], default_ttl: "1h" } }), 204);
    const c = (await ok(call(base, "GET", "database/creds/my-role", root))).data;
    expect(c.username).toMatch(/^app-my_role-[a-z0-9]{8}$/);
    expect(await canLogin(db.url, c.username, c.password)).toBe(true);
  });
});
