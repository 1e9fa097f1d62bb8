import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roleExists, type TestDatabase } from "../database/helpers.js";
import { type AgentBroker, agentPreamble, appRoleFiles, exitOf, isAlive, killAgents, logsWith, Scratch, slowProxy, spawnAgent, startAgentBroker, waitForAgent } from "./helpers.js";

/**
 * Exec mode end to end: the agent renders `env_template`s from database credentials with a short
 * TTL, runs the application with them, restarts it with the new ones when they are replaced,
 * forwards SIGTERM and exits with the application's code.
 */
let broker: AgentBroker | undefined;
let base: string;
let db: TestDatabase;
const scratch = new Scratch();
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;

/**
 * The application: appends what it was started with (pid, DB_USER, DB_PASSWORD) to $EXEC_OUT and
 * stays up; on SIGTERM it exits with $EXIT_ON_TERM; with $EXIT_AT_ONCE it exits with that code.
 */
const APP = `
const fs = require("node:fs");
fs.appendFileSync(process.env.EXEC_OUT, JSON.stringify({ pid: process.pid, user: process.env.DB_USER, password: process.env.DB_PASSWORD }) + "\\n");
if (process.env.EXIT_AT_ONCE) process.exit(Number(process.env.EXIT_AT_ONCE));
process.on("SIGTERM", () => process.exit(Number(process.env.EXIT_ON_TERM || 0)));
setInterval(() => undefined, 1000);
`;

const startFiles: string[] = [];

interface Started {
  pid: number;
  user: string;
  password: string;
}

function startsOf(file: string): Started[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Started);
}

/** The starts recorded so far, once there are at least `n`. */
function startsOnce(file: string, n: number): Started[] | undefined {
  const starts = startsOf(file);
  return starts.length >= n ? starts : undefined;
}

async function execConfig(name: string, restart: "always" | "never", address = base): Promise<{ config: string; out: string }> {
  const files = await appRoleFiles(base, scratch, "agent");
  const app = scratch.write(`app-${name}.cjs`, APP);
  const out = scratch.path(`starts-${name}.jsonl`);
  startFiles.push(out);
  const config = scratch.write(
    `exec-${name}.hcl`,
    `${agentPreamble({ address, ...files })}
env_template "DB_USER" {
  contents = "{{ with secret \\"database/creds/app\\" }}{{ .Data.username }}{{ end }}"
}
env_template "DB_PASSWORD" {
  contents = "{{ with secret \\"database/creds/app\\" }}{{ .Data.password }}{{ end }}"
}
exec {
  command                   = ["${process.execPath}", "${app}"]
  restart_on_secret_changes = "${restart}"
}
`,
  );
  return { config, out };
}

beforeAll(async () => {
  broker = await startAgentBroker({ label: "agent_exec", creationStatements: CREATE, dbTtl: "2s", dbMaxTtl: "5s", tokenTtl: "1h" });
  ({ base, db } = broker);
});

afterAll(async () => {
  await killAgents();
  // The application runs in its own process group: if a test failed before its agent stopped it, stop it here.
  for (const file of startFiles) for (const { pid } of startsOf(file)) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  await broker?.stop();
  scratch.cleanup();
});

describe("leasehold agent exec mode", () => {
  it.concurrent("starts the child with the rendered variables, restarts it with new credentials, forwards SIGTERM and exits with its code", async () => {
    const { config, out } = await execConfig("always", "always");
    const agent = spawnAgent(config, { EXEC_OUT: out, EXIT_ON_TERM: "7" });

    // The child starts only once the variables rendered: its first start already has them.
    const [first] = await waitForAgent(agent, () => startsOnce(out, 1), "the child to start");
    expect(first.user).toMatch(/\S/);
    expect(first.password).toMatch(/\S/);
    expect(await roleExists(db.admin, first.user)).toBe(true);

    // The 5 s max TTL forces new credentials: a new child (new pid) gets them, the old one is gone.
    const starts = await waitForAgent(agent, () => startsOnce(out, 2), "the child to be restarted with new credentials", 20_000);
    const second = starts[1];
    expect(second.pid).not.toBe(first.pid);
    expect(second.user).not.toBe(first.user);
    expect(await roleExists(db.admin, second.user)).toBe(true);
    expect(isAlive(first.pid)).toBe(false);
    expect(logsWith(agent, "exec: restarted the child process").length).toBeGreaterThanOrEqual(1);

    // SIGTERM reaches the child, whose handler exits 7: so does the agent.
    const last = startsOf(out).at(-1)!;
    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 7, signal: null });
    expect(isAlive(last.pid)).toBe(false);
  }, 45_000);

  it.concurrent("exits with the child's code when the child exits on its own", async () => {
    const { config, out } = await execConfig("exit3", "always");
    const agent = spawnAgent(config, { EXEC_OUT: out, EXIT_AT_ONCE: "3" });
    expect(await exitOf(agent, 20_000)).toEqual({ code: 3, signal: null });
    const starts = startsOf(out);
    expect(starts).toHaveLength(1);
    expect(starts[0].user).toMatch(/\S/);
    expect(logsWith(agent, "the child process exited; the agent exits with its code")).toHaveLength(1);
  }, 30_000);

  it.concurrent('keeps the child running when restart_on_secret_changes = "never"', async () => {
    const { config, out } = await execConfig("never", "never");
    const agent = spawnAgent(config, { EXEC_OUT: out, EXIT_ON_TERM: "0" });
    const [first] = await waitForAgent(agent, () => startsOnce(out, 1), "the child to start");
    // The credentials are replaced (and the environment changes), yet the child stays.
    await waitForAgent(agent, () => logsWith(agent, "secrets changed: the child keeps running (restart_on_secret_changes = never)").length >= 1, "the credentials to be replaced", 20_000);
    expect(startsOf(out)).toHaveLength(1);
    expect(isAlive(first.pid)).toBe(true);
    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
    expect(isAlive(first.pid)).toBe(false);
    expect(startsOf(out)).toHaveLength(1);
  }, 45_000);

  it.concurrent("exits 127, saying so, when the command cannot be found", async () => {
    const { config } = await execConfig("missing", "always");
    const missing = scratch.path("no-such-program");
    const broken = scratch.write("exec-missing-command.hcl", readFileSync(config, "utf8").replace(/command\s+= \[[^\]]*\]/, `command = ["${missing}"]`));
    const agent = spawnAgent(broken);
    expect(await exitOf(agent, 20_000)).toEqual({ code: 127, signal: null });
    expect(agent.stderr()).toContain(`${missing} was not found`);
  }, 30_000);

  it.concurrent("never starts the child when SIGTERM arrives while the variables are still being fetched", async () => {
    // The broker answers the credentials request slowly: the signal lands while it is in flight.
    const proxy = await slowProxy(base, /^\/v1\/database\/creds\//, 1_500);
    try {
      const { config, out } = await execConfig("early-term", "always", proxy.url);
      const agent = spawnAgent(config, { EXEC_OUT: out, EXIT_ON_TERM: "7" });
      await waitForAgent(agent, () => proxy.held.length >= 1, "the agent to ask for the credentials");
      agent.proc.kill("SIGTERM");
      expect(await exitOf(agent, 20_000)).toEqual({ code: 0, signal: null });
      // The child starts before the agent would exit, so its log line would be there by now.
      expect(logsWith(agent, "started the child process")).toEqual([]);
      expect(logsWith(agent, "exec: started the child process")).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 30_000);
});
