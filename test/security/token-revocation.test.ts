import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { createTestDatabase, rand, roleExists, templatedUrl, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Issue 15, item 4, as the review reproduced it: while `revoke-accessor` walks a token's tree (each
 * token holding PostgreSQL credentials, so the walk waits on the database), the token and its
 * children keep asking for child tokens and credentials. Nothing they obtain may survive.
 */
describe("security: a token tree being revoked mints nothing that survives", () => {
  let server: RunningServer;
  let base: string;
  let db: TestDatabase;
  type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });
  const group = `lh_race_${rand()}`;

  beforeAll(async () => {
    db = await createTestDatabase(inject("pgUrl"), "race");
    await db.admin.query(`CREATE ROLE "${group}" NOLOGIN`);
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    expect((await root("POST", "sys/mounts/database", { type: "database" })).status).toBe(204);
    const rootPassword = decodeURIComponent(new URL(inject("pgUrl")).password);
    expect((await root("POST", "database/config/pg", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword, allowed_roles: "*" })).status).toBe(204);
    const create = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT "${group}" TO "{{name}}";`;
    expect((await root("POST", "database/roles/app", { db_name: "pg", creation_statements: [create], default_ttl: "1h", max_ttl: "2h" })).status).toBe(204);
    expect((await root("PUT", "sys/policies/acl/minter", { policy: 'path "auth/token/create" { capabilities = ["update"] }\npath "database/creds/app" { capabilities = ["read"] }' })).status).toBe(204);
  });
  afterAll(async () => {
    if (server) {
      await root("PUT", "sys/leases/revoke-prefix/database/");
      await server.stop();
    }
    await db?.drop();
  });

  const token = async (body: Body, parent = "root"): Promise<{ token: string; accessor: string }> => {
    const r = await call(base, "POST", "auth/token/create", { token: parent, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { token: r.body.auth.client_token, accessor: r.body.auth.accessor };
  };

  it("no child token, orphan or credential minted during the walk survives it; a bystander keeps working", async () => {
    const victim = await token({ policies: ["minter"], ttl: "1h" });
    const bystander = await token({ policies: ["minter"], ttl: "1h" });
    const children = await Promise.all(Array.from({ length: 40 }, () => token({ policies: ["minter"] }, victim.token)));
    for (const c of children) expect((await call(base, "GET", "database/creds/app", { token: c.token })).status).toBe(200);

    const minted: string[] = [];
    const users: { lease: string; username: string }[] = [];
    let stop = false;
    const hammer = async (t: string) => {
      while (!stop) {
        const [child, cred] = await Promise.all([
          call(base, "POST", "auth/token/create", { token: t, body: { policies: ["minter"] } }),
          call(base, "GET", "database/creds/app", { token: t }),
        ]);
        if (child.status === 200) minted.push(child.body.auth.client_token);
        if (cred.status === 200) users.push({ lease: cred.body.lease_id, username: cred.body.data.username });
        if (child.status !== 200 && cred.status !== 200) return;
        // The new child joins the hammering, as an attacker's would.
        if (child.status === 200 && minted.length < 60) void hammer(child.body.auth.client_token);
      }
    };
    const workers = [victim.token, ...children.slice(0, 8).map((c) => c.token)].map(hammer);
    await new Promise((r) => setTimeout(r, 100));
    const before = { minted: minted.length, users: users.length };
    expect((await root("POST", "auth/token/revoke-accessor", { accessor: victim.accessor })).status).toBe(204);
    stop = true;
    await Promise.all(workers);
    await new Promise((r) => setTimeout(r, 200));
    expect(minted.length + users.length).toBeGreaterThan(before.minted + before.users - 1);

    for (const t of [victim.token, ...children.map((c) => c.token), ...minted]) {
      expect((await call(base, "GET", "auth/token/lookup-self", { token: t })).status, `token survived`).toBe(403);
    }
    for (const u of users) {
      expect((await root("PUT", "sys/leases/lookup", { lease_id: u.lease })).status, `lease ${u.lease} survived`).toBe(400);
      expect(await roleExists(db.admin, u.username), `role ${u.username} survived`).toBe(false);
    }
    // Positive control: the bystander still mints tokens and credentials.
    const child = await token({ policies: ["minter"] }, bystander.token);
    const cred = await call(base, "GET", "database/creds/app", { token: child.token });
    expect(cred.status).toBe(200);
    expect(await roleExists(db.admin, cred.body.data.username)).toBe(true);
  }, 60_000);
});
