import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { ok } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { Scratch, appRoleFiles, exitOf, killAgents, logsWith, spawnAgent, waitForAgent } from "./helpers.js";

/**
 * Several broker addresses for the agent (issue 17): `vault { address, addresses }` (leasehold's
 * extension) or a comma-separated VAULT_ADDR. The first address is dead; the agent logs in and
 * renders its template from the live one, saying in its log that it moved on.
 */
let server: RunningServer;
let base: string;
let dead: string;
const scratch = new Scratch();
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/agent", { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: "1h" });
  await ok(call(base, "POST", "secret/data/app", { token: "root", body: { data: { color: "blue" } } }));
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(async () => {
  await killAgents();
  await server?.stop();
  scratch.cleanup();
});

function config(name: string, vaultBlock: string, files: { roleIdFile: string; secretIdFile: string }, dest: string): string {
  return scratch.write(
    name,
    `${vaultBlock}
auto_auth {
  method "approle" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = { role_id_file_path = "${files.roleIdFile}"  secret_id_file_path = "${files.secretIdFile}" }
  }
}
exit_after_auth = true
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/data/app\\" }}color={{ .Data.data.color }}{{ end }}"
}
`,
  );
}

describe("leasehold agent with several broker addresses", () => {
  it("vault { address = <dead>, addresses = [<live>] }: logs in and renders from the live node", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("addresses.txt");
    // num_retries = -1: no retries, so the render shows the failover itself, not a retry.
    const file = config("addresses.hcl", `vault {\n  address   = "${dead}"\n  addresses = ["${base}"]\n  retry { num_retries = -1 }\n}`, files, dest);
    const agent = spawnAgent(file);
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
    expect(readText(dest)).toBe("color=blue");
    const start = logsWith(agent, "agent starting: logging in")[0];
    expect(start.addresses).toEqual([dead, base]);
    const moved = logsWith(agent, "server unavailable; failing over to the next address");
    expect(moved[0]).toMatchObject({ from: dead, to: base });
    expect(moved).toHaveLength(1);
  }, 30_000);

  it("VAULT_ADDR=<dead>,<live> without an address in the config: the same", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("env.txt");
    const file = config("env.hcl", `vault {\n  retry { num_retries = -1 }\n}`, files, dest);
    const agent = spawnAgent(file, { VAULT_ADDR: `${dead}, ${base}` });
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
    expect(readText(dest)).toBe("color=blue");
    expect(logsWith(agent, "server unavailable; failing over to the next address")[0]).toMatchObject({ from: dead, to: base });
  }, 30_000);

  it("control: with only the dead address and no retries, the agent fails (the test can tell)", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const dest = scratch.path("dead.txt");
    const file = config("dead.hcl", `vault {\n  address = "${dead}"\n  retry { num_retries = -1 }\n}`, files, dest);
    // exit_on_err: the first failed login ends the agent instead of backing off forever.
    const text = readFileSync(file, "utf8").replace('min_backoff = "1s"', 'min_backoff = "1s"\n    exit_on_err = true');
    const agent = spawnAgent(scratch.write("dead-exit.hcl", text));
    const exit = await exitOf(agent);
    expect(exit.code).toBe(1);
    expect(readText(dest)).toBe("");
    await waitForAgent(agent, () => agent.stderr().includes("connection refused"), "the connection error in the log");
  }, 30_000);

  it("a bad entry in addresses is a config error naming it", async () => {
    const files = await appRoleFiles(base, scratch, "agent");
    const file = config("bad.hcl", `vault {\n  addresses = ["${base}", "leasehold:8200"]\n}`, files, scratch.path("bad.txt"));
    const agent = spawnAgent(file);
    const exit = await exitOf(agent);
    expect(exit.code).not.toBe(0);
    expect(agent.stderr()).toContain('bad.hcl:2: vault: addresses[1] must be a URL such as "https://leasehold.example:8200", got "leasehold:8200"');
  }, 30_000);
});
