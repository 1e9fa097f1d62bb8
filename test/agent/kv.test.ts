import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { ok } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { Scratch, agentPreamble, appRoleFiles, exitOf, killAgents, logsWith, spawnAgent, waitForAgent } from "./helpers.js";

/**
 * KV version 2 through the agent: `secret "secret/app"` reads `secret/data/app` (as Vault Agent
 * rewrites it), the secret is re-read every `static_secret_render_interval`, and a template's
 * command runs only when the rendered file changed. Also `exit_after_auth`.
 */
let server: RunningServer;
let base: string;
const scratch = new Scratch();
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
const runs = (path: string) => readText(path).split("\n").filter(Boolean).length;

async function putKv(data: Record<string, string>): Promise<void> {
  await ok(call(base, "POST", "secret/data/app", { token: "root", body: { data } }));
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  await admin("POST", "sys/auth/approle", { type: "approle" });
  // Only the data path is readable: a read of the path as written (secret/app) would be refused.
  await admin("POST", "sys/policies/acl/agent", { policy: 'path "secret/data/*" { capabilities = ["read"] }\npath "team/v1/*" { capabilities = ["read"] }\npath "team/v2/data/*" { capabilities = ["read"] }' });
  // Two mounts under one prefix, of different KV versions.
  await admin("POST", "sys/mounts/team/v1", { type: "kv", options: { version: "1" } });
  await admin("POST", "sys/mounts/team/v2", { type: "kv", options: { version: "2" } });
  await admin("PUT", "team/v1/db", { host: "db.internal" });
  await ok(call(base, "POST", "team/v2/data/api", { token: "root", body: { data: { key: "k-123" } } }));
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: "1h" });
  await putKv({ color: "blue", size: "s" });
});

afterAll(async () => {
  await killAgents();
  await server?.stop();
  scratch.cleanup();
});

describe("leasehold agent with KV version 2", () => {
  it("rewrites secret/app to secret/data/app, re-renders a changed value, and runs the command only when the file changed", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("color.txt");
    const explicit = scratch.path("explicit.txt");
    const count = scratch.path("command-runs");
    const config = scratch.write(
      "kv.hcl",
      `${agentPreamble({ address: base, ...files })}
template_config { static_secret_render_interval = "1s" }
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/app\\" }}color={{ .Data.data.color }}{{ end }}"
  exec { command = ["/bin/sh", "-c", "echo ran >> '${count}'"] }
}
template {
  destination = "${explicit}"
  contents    = "{{ with secret \\"secret/data/app\\" }}{{ .Data.data.color }}/{{ .Data.metadata.version }}{{ end }}"
}
`,
    );
    const agent = spawnAgent(config);
    // A path that already names data/ is not rewritten a second time.
    await waitForAgent(agent, () => readText(dest) === "color=blue" && runs(count) === 1 && readText(explicit) === "blue/1", "the first render and its command");

    // A new version whose rendered part is the same: fetched again, file unchanged, no command.
    const fetchedBefore = logsWith(agent, "fetched a new version of the secret").length;
    await putKv({ color: "blue", size: "m" });
    await waitForAgent(agent, () => logsWith(agent, "fetched a new version of the secret").length >= fetchedBefore + 1, "the new KV version to be read", 15_000);
    await waitForAgent(agent, () => readText(explicit) === "blue/2", "the explicit template to show version 2", 15_000);
    expect(readText(dest)).toBe("color=blue");
    expect(runs(count)).toBe(1);

    // A changed value: rendered again within the interval, and the command runs once more.
    await putKv({ color: "green", size: "m" });
    await waitForAgent(agent, () => readText(dest) === "color=green" && runs(count) === 2, "the new color and a second command run", 15_000);
    await waitForAgent(agent, () => readText(explicit) === "green/3", "the explicit template to show version 3");
    expect(agent.proc.exitCode).toBeNull();

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
    expect(runs(count)).toBe(2);
  }, 45_000);

  it("exit_after_auth: logs in, renders once, exits 0 and leaves the sink's token valid", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("once.txt");
    const sink = scratch.path("once-token");
    const config = scratch.write(
      "once.hcl",
      `${agentPreamble({ address: base, ...files, sink })}
exit_after_auth = true
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/app\\" }}{{ .Data.data.color }}{{ end }}"
}
`,
    );
    const agent = spawnAgent(config);
    expect(await exitOf(agent, 20_000)).toEqual({ code: 0, signal: null });
    expect(readText(dest)).toMatch(/^(blue|green)$/);
    const token = readText(sink);
    expect(token).toMatch(/\S/);
    const lookup = await call(base, "GET", "auth/token/lookup-self", { token });
    expect(lookup.status).toBe(200);
    expect(lookup.body.data.policies).toContain("agent");
    expect(logsWith(agent, "exit_after_auth: logged in and rendered; exiting")).toHaveLength(1);
  }, 30_000);

  it("tells apart mounts that share a prefix: KV v1 at team/v1 is read as is, KV v2 at team/v2 through data/", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("team.txt");
    const config = scratch.write(
      "team.hcl",
      `${agentPreamble({ address: base, ...files })}
exit_after_auth = true
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"team/v1/db\\" }}{{ .Data.host }}{{ end }} {{ with secret \\"team/v2/api\\" }}{{ .Data.data.key }}{{ end }}"
}
`,
    );
    const agent = spawnAgent(config);
    expect(await exitOf(agent, 20_000)).toEqual({ code: 0, signal: null });
    expect(readText(dest)).toBe("db.internal k-123");
  }, 30_000);
});
