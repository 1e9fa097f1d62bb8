import { existsSync, readFileSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roleExists, waitFor, type TestDatabase } from "../database/helpers.js";
import { call } from "../helpers/server.js";
import { type AgentBroker, appRoleFiles, killAgents, Scratch, spawnAgent, startAgentBroker } from "./helpers.js";

/**
 * The agent as a child process against the real server and the real PostgreSQL: AppRole
 * auto-auth, the token sink, a template rendering database credentials that are renewed and
 * replaced, and revoke_on_shutdown.
 */
let broker: AgentBroker | undefined;
let base: string;
let db: TestDatabase;
const scratch = new Scratch();
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON items TO "{{name}}";`;

beforeAll(async () => {
  broker = await startAgentBroker({ label: "agent", setupSql: "CREATE TABLE items (id int); INSERT INTO items VALUES (1);", creationStatements: CREATE, dbTtl: "3s", dbMaxTtl: "8s", tokenTtl: "1h", policy: 'path "database/creds/*" { capabilities = ["read"] }\npath "secret/*" { capabilities = ["read"] }' });
  ({ base, db } = broker);
});

afterAll(async () => {
  await killAgents();
  await broker?.stop();
  scratch.cleanup();
});

describe("leasehold agent", () => {
  it("logs in with AppRole, writes the sink, renders database credentials that are renewed and replaced, and revokes on shutdown", async () => {
    const { roleIdFile, secretIdFile } = await appRoleFiles(base, scratch, "agent");
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
  }, 60_000);
});
