import { existsSync, readFileSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { connect, createTestDatabase, ok, roleExists, templatedUrl, waitFor, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { Scratch, killAgents, spawnAgent } from "./helpers.js";

/**
 * The agent as a child process against the real server and the real PostgreSQL: AppRole
 * auto-auth, the token sink, a template rendering database credentials that are renewed and
 * replaced, and revoke_on_shutdown.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const scratch = new Scratch();
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON items TO "{{name}}";`;

async function appRoleFiles(role: string): Promise<{ roleIdFile: string; secretIdFile: string }> {
  const roleId = (await ok(call(base, "GET", `auth/approle/role/${role}/role-id`, { token: "root" }))).data.role_id as string;
  const secretId = (await ok(call(base, "PUT", `auth/approle/role/${role}/secret-id`, { token: "root", body: {} }))).data.secret_id as string;
  const tag = Math.random().toString(36).slice(2);
  return { roleIdFile: scratch.write(`role-id-${tag}`, roleId), secretIdFile: scratch.write(`secret-id-${tag}`, secretId) };
}

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "agent");
  await db.admin.query("CREATE TABLE items (id int); INSERT INTO items VALUES (1);");
  server = await startTestServer({ rootTokenId: "root", leaseRetry: { baseMs: 100, capMs: 500, maxAttempts: 30 } });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  await admin("POST", "sys/mounts/database", { type: "database" });
  await admin("POST", "database/config/pg", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: "*" });
  await admin("POST", "database/roles/app", { db_name: "pg", creation_statements: CREATE, default_ttl: "3s", max_ttl: "8s" });
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/agent", { policy: 'path "database/creds/*" { capabilities = ["read"] }\npath "secret/*" { capabilities = ["read"] }' });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: "1h" });
});

afterAll(async () => {
  await killAgents();
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token: "root" });
    await server.stop();
  }
  await db?.drop();
  scratch.cleanup();
});

describe("leasehold agent", () => {
  it("logs in with AppRole, writes the sink, renders database credentials that are renewed and replaced, and revokes on shutdown", async () => {
    const { roleIdFile, secretIdFile } = await appRoleFiles("agent");
    const sink = scratch.path("token");
    const dest = scratch.path("db.env");
    const config = scratch.write(
      "agent.hcl",
      `
vault { address = "${base}" }
auto_auth {
  method "approle" {
    config = { role_id_file_path = "${roleIdFile}"  secret_id_file_path = "${secretIdFile}" }
  }
  sink "file" { config = { path = "${sink}"  mode = "0600" } }
}
template {
  destination = "${dest}"
  perms       = "0600"
  contents    = <<EOT
{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}
DB_PASSWORD={{ .Data.password }}
{{ end }}
EOT
}
revoke_on_shutdown = true
`,
    );
    const agent = spawnAgent(config);
    await waitFor(() => existsSync(dest) && readFileSync(dest, "utf8").includes("DB_USER="), "the rendered file", 20_000).catch((e: Error) => {
      throw new Error(`${e.message}\nagent stderr:\n${agent.stderr().slice(-3000)}`);
    });
    const token = readFileSync(sink, "utf8");
    expect(statSync(sink).mode & 0o777).toBe(0o600);
    expect(statSync(dest).mode & 0o777).toBe(0o600);
    expect(existsSync(secretIdFile)).toBe(false); // remove_secret_id_file_after_reading defaults to true
    expect((await call(base, "GET", "auth/token/lookup-self", { token })).status).toBe(200);

    const userOf = () => /DB_USER=(\S+)/.exec(readFileSync(dest, "utf8"))?.[1] ?? "";
    const users = new Set<string>();
    const until = Date.now() + 14_000;
    while (Date.now() < until) {
      const user = userOf();
      users.add(user);
      // The user the application reads from the file exists in PostgreSQL, always.
      expect(await roleExists(db.admin, user), `rendered user ${user} must exist`).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(users.size).toBeGreaterThanOrEqual(2); // replaced before the 8 s max TTL
    expect(agent.logs().some((l) => l.msg === "renewed lease")).toBe(true);
    const current = userOf();

    agent.proc.kill("SIGTERM");
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    await waitFor(async () => !(await roleExists(db.admin, current)), "the current user to be revoked on shutdown", 5_000);
    expect((await call(base, "GET", "auth/token/lookup-self", { token })).status).toBe(403);
    const pg = await connect(db.url);
    await pg.end();
  }, 60_000);
});
