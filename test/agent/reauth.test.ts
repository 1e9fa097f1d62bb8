import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { createTestDatabase, ok, roleExists, sleep, templatedUrl, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { Scratch, agentPreamble, appRoleFiles, exitOf, killAgents, logsWith, spawnAgent, waitForAgent } from "./helpers.js";

/**
 * Re-authentication does not leave the application with credentials that die with the old token.
 * The agent's token lives at most 4 s, so it logs in again every few seconds; the database
 * credentials' own lease is long (1 min), but they are revoked with the token that obtained them,
 * so the agent must fetch new ones before that token expires. The user in the rendered file must
 * exist in PostgreSQL at every moment.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const scratch = new Scratch();
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "agent_reauth");
  server = await startTestServer({ rootTokenId: "root", leaseRetry: { baseMs: 100, capMs: 500, maxAttempts: 30 } });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  await admin("POST", "sys/mounts/database", { type: "database" });
  await admin("POST", "database/config/pg", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword(), allowed_roles: "*" });
  await admin("POST", "database/roles/app", { db_name: "pg", creation_statements: CREATE, default_ttl: "1m", max_ttl: "2m" });
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/agent", { policy: 'path "database/creds/*" { capabilities = ["read"] }' });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: "3s", token_max_ttl: "6s" });
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

describe("leasehold agent re-authentication", () => {
  it("logs in again before the token's max TTL and replaces the secrets bound to the old token before it expires", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("db.env");
    const sink = scratch.path("token");
    const config = scratch.write(
      "agent.hcl",
      `${agentPreamble({ address: base, ...files, sink })}
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"database/creds/app\\" }}DB_USER={{ .Data.username }}{{ end }}"
}
# Replace at 65-70% of a lease's life: a margin of about 2 s before the old token's end, for a busy CI machine.
template_config { lease_renewal_threshold = 0.7 }
`,
    );
    const agent = spawnAgent(config);
    const userOf = () => /DB_USER=(\S+)/.exec(readText(dest))?.[1];
    const firstUser = await waitForAgent(agent, userOf, "the first render");

    const tokens = new Set<string>();
    const users = new Set<string>();
    const until = Date.now() + 14_000;
    while (Date.now() < until) {
      tokens.add(readText(sink));
      const user = userOf()!;
      users.add(user);
      // Always a live user: the credentials of the old token were replaced before it expired.
      expect(await roleExists(db.admin, user), `rendered user ${user} must exist (agent log tail:\n${agent.stderr().slice(-3000)})`).toBe(true);
      await sleep(200);
    }
    // A 6 s max TTL over 14 s: at least two new logins, and new credentials with them.
    expect(tokens.size).toBeGreaterThanOrEqual(3);
    expect(users.size).toBeGreaterThanOrEqual(3);
    expect(logsWith(agent, "logged in again").length).toBeGreaterThanOrEqual(2);
    // The point of replacing them: the first user died with the first token.
    await waitForAgent(agent, async () => !(await roleExists(db.admin, firstUser)), "the first user to be revoked with its token", 10_000);
    // Nothing ever ran past its lease.
    expect(agent.logs().filter((l) => String(l.msg).includes("EXPIRED"))).toEqual([]);

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
  }, 45_000);
});
