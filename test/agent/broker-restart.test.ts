import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/agent/runtime/logger.js";
import { AgentSecrets } from "../../src/agent/runtime/secrets.js";
import { LeaseholdClient, TokenKeeper, tokenAuth } from "../../src/client/index.js";
import { loadServerConfig } from "../../src/server/config.js";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { freePort, ok } from "../database/helpers.js";
import { call } from "../helpers/server.js";
import { Scratch, agentPreamble, appRoleFiles, exitOf, killAgents, logsWith, spawnAgent, waitForAgent } from "./helpers.js";

/**
 * The broker goes away while the agent runs and comes back on the same address: the agent keeps
 * the last rendered file, says so in its log, does not exit, and picks up a change made after
 * the restart without being restarted itself. The broker keeps its state (SQLite file storage,
 * static seal key), so the agent's token is still valid afterwards.
 */
const scratch = new Scratch();
let server: RunningServer | undefined;
let base: string;
let rootToken: string;
let startBroker: () => Promise<RunningServer>;
const readText = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

beforeAll(async () => {
  const port = await freePort();
  const keyFile = scratch.write("unseal.key", randomBytes(32).toString("hex"));
  const configFile = scratch.write(
    "leasehold.hcl",
    `storage "sqlite" { path = "${scratch.path("leasehold.db")}" }
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
seal "static" { key_file = "${keyFile}" }
`,
  );
  const config = loadServerConfig(readFileSync(configFile, "utf8"), configFile);
  startBroker = () => startConfiguredServer(config, pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" }));
  server = await startBroker();
  base = server.url;
  rootToken = (await ok(call(base, "PUT", "sys/init", { body: { recovery_shares: 1, recovery_threshold: 1 } }))).root_token as string;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: rootToken, body }), 204);
  await admin("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/agent", { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: "1h" });
  await ok(call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { color: "blue" } } }));
});

afterAll(async () => {
  await killAgents();
  await server?.stop();
  scratch.cleanup();
});

describe("leasehold agent while the broker restarts", () => {
  it("keeps the last rendered file while the broker is down and picks up changes once it is back", async () => {
    const files = await appRoleFiles(base, scratch, "agent", rootToken);
    const dest = scratch.path("color.txt");
    const sink = scratch.path("token");
    const config = scratch.write(
      "agent.hcl",
      `${agentPreamble({ address: base, ...files, sink })}
template_config { static_secret_render_interval = "1s" }
template {
  destination = "${dest}"
  contents    = "{{ with secret \\"secret/app\\" }}{{ .Data.data.color }}{{ end }}"
}
`,
    );
    const agent = spawnAgent(config);
    // Credentials for a second agent, started while the broker is down.
    const appRoleFilesLater = appRoleFiles(base, scratch, "agent", rootToken);
    await waitForAgent(agent, () => readText(dest) === "blue", "the first render");
    const token = readText(sink);

    // The broker stops: the agent's re-reads fail, it says so, keeps the file and keeps running.
    await server!.stop();
    server = undefined;
    const warningsBefore = logsWith(agent, "could not renew or replace the secret; retrying").length;
    await waitForAgent(agent, () => logsWith(agent, "could not renew or replace the secret; retrying").length >= warningsBefore + 2, "the agent to report the broker unreachable (twice)", 20_000);
    const warning = logsWith(agent, "could not renew or replace the secret; retrying").at(-1)!;
    expect(warning.secret).toBe("secret/app");
    expect(String(warning.error)).toMatch(/ECONNREFUSED|connect|reach/i);
    expect(agent.proc.exitCode).toBeNull();
    expect(readText(dest)).toBe("blue");

    // An agent started now cannot log in yet: it keeps trying instead of exiting.
    const lateFiles = await appRoleFilesLater;
    const lateDest = scratch.path("late-color.txt");
    const late = spawnAgent(
      scratch.write(
        "late.hcl",
        `${agentPreamble({ address: base, ...lateFiles })}
template {
  destination = "${lateDest}"
  contents    = "{{ with secret \\"secret/app\\" }}{{ .Data.data.color }}{{ end }}"
}
`,
      ),
    );
    await waitForAgent(late, () => logsWith(late, "login or token renewal failed; retrying").length >= 2, "the late agent to retry its login", 20_000);
    expect(late.proc.exitCode).toBeNull();

    // Back on the same address with the same state; a new value reaches the file.
    server = await startBroker();
    expect(server.url).toBe(base);
    await ok(call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { color: "green" } } }));
    await waitForAgent(agent, () => readText(dest) === "green", "the agent to render the value written after the restart", 20_000);
    expect(agent.proc.exitCode).toBeNull();
    // Same agent, same token: it recovered without logging in again.
    expect(readText(sink)).toBe(token);
    expect((await call(base, "GET", "auth/token/lookup-self", { token })).status).toBe(200);
    expect(logsWith(agent, "agent starting: logging in")).toHaveLength(1);
    // The late agent logged in once the broker was back, and rendered.
    await waitForAgent(late, () => readText(lateDest) === "green", "the late agent to log in and render", 20_000);
    late.proc.kill("SIGTERM");
    expect(await exitOf(late)).toEqual({ code: 0, signal: null });

    agent.proc.kill("SIGTERM");
    expect(await exitOf(agent)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("reads a KV v2 secret from its data path even when the first lookup of its mount hit a stopped broker", async () => {
    const client = new LeaseholdClient({ address: base });
    const tokens = new TokenKeeper({ client, method: tokenAuth(rootToken) });
    await tokens.start();
    const secrets = new AgentSecrets({ client, tokens, logger: silentLogger, staticIntervalMs: 60_000, threshold: 0.9, onChange: () => undefined });
    try {
      await server!.stop();
      server = undefined;
      await expect(secrets.read("secret/app")).rejects.toThrow();
      server = await startBroker();
      // The failed lookup is not remembered as "not KV v2": secret/app is read as secret/data/app.
      const result = await secrets.read("secret/app");
      expect(result.data.data).toEqual({ color: "green" });
    } finally {
      await secrets.stop();
      await tokens.stop();
      client.close();
    }
  });
});
