import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roleExists, sleep, type TestDatabase } from "../database/helpers.js";
import { type AgentBroker, agentPreamble, appRoleFiles, exitOf, killAgents, logsWith, Scratch, spawnAgent, startAgentBroker, waitForAgent } from "./helpers.js";

/**
 * Re-authentication does not leave the application with credentials that die with the old token.
 * The agent's token lives at most 4 s, so it logs in again every few seconds; the database
 * credentials' own lease is long (1 min), but they are revoked with the token that obtained them,
 * so the agent must fetch new ones before that token expires. The user in the rendered file must
 * exist in PostgreSQL at every moment.
 */
let broker: AgentBroker | undefined;
let base: string;
let db: TestDatabase;
const scratch = new Scratch();
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

beforeAll(async () => {
  broker = await startAgentBroker({ label: "agent_reauth", creationStatements: CREATE, dbTtl: "1m", dbMaxTtl: "2m", tokenTtl: "3s", tokenMaxTtl: "6s" });
  ({ base, db } = broker);
});

afterAll(async () => {
  await killAgents();
  await broker?.stop();
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
