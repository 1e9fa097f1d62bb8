import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { createTestDatabase, ok, templatedUrl, type TestDatabase } from "../database/helpers.js";
import { killCliProcesses, spawnCli, type CliProcess } from "../helpers/cli-process.js";
import { call, startTestServer } from "../helpers/server.js";


/** A running `leasehold agent` child process and what it logged. */
export interface AgentProcess extends CliProcess {
  /** Parsed JSON log lines of stderr. */
  logs(): Array<Record<string, unknown>>;
}

/** `leasehold agent -config=<file> -log-level=debug`, with no broker address from the environment. */
export function spawnAgent(configFile: string, env: Record<string, string> = {}): AgentProcess {
  const cli = spawnCli(["agent", `-config=${configFile}`, "-log-level=debug"], { VAULT_ADDR: "", LEASEHOLD_ADDR: "", ...env });
  return {
    ...cli,
    logs: () =>
      cli
        .stderr()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { msg: l };
          }
        }),
  };
}

/** Kills every agent still running (afterAll). */
export const killAgents = killCliProcesses;

/** A scratch directory with helpers to write files in it. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), "leasehold-agent-"));
  path(name: string): string {
    return join(this.dir, name);
  }
  write(name: string, content: string): string {
    const p = this.path(name);
    writeFileSync(p, content);
    return p;
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** An AppRole login for the agent: its RoleID and a fresh SecretID, each written to a file in `scratch`. */
export async function appRoleFiles(base: string, scratch: Scratch, role: string, rootToken = "root"): Promise<{ roleIdFile: string; secretIdFile: string }> {
  const read = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/v1/${path}`, {
      method,
      headers: { "X-Vault-Token": rootToken, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as { data?: Record<string, string> };
    if (res.status !== 200 || !json.data) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json.data;
  };
  const roleId = (await read("GET", `auth/approle/role/${role}/role-id`)).role_id;
  const secretId = (await read("PUT", `auth/approle/role/${role}/secret-id`, {})).secret_id;
  const tag = Math.random().toString(36).slice(2);
  return { roleIdFile: scratch.write(`role-id-${tag}`, roleId), secretIdFile: scratch.write(`secret-id-${tag}`, secretId) };
}

/**
 * The `vault` and `auto_auth` part of an agent config: AppRole from the given files, a file sink
 * when `sink` is set, a short login backoff and few request retries so tests recover quickly.
 */
export function agentPreamble(opts: { address: string; roleIdFile: string; secretIdFile: string; sink?: string; numRetries?: number }): string {
  return `
vault {
  address = "${opts.address}"
  retry { num_retries = ${opts.numRetries ?? 1} }
}
auto_auth {
  method "approle" {
    min_backoff = "1s"
    max_backoff = "2s"
    config = { role_id_file_path = "${opts.roleIdFile}"  secret_id_file_path = "${opts.secretIdFile}" }
  }
${opts.sink ? `  sink "file" { config = { path = "${opts.sink}" } }\n` : ""}}
`;
}

/** Polls like `waitFor`, adding the agent's last log lines to a timeout's message. */
export async function waitForAgent<T>(agent: AgentProcess, fn: () => Promise<T> | T, what: string, timeoutMs = 20_000, everyMs = 100): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) {
      const exit = agent.proc.exitCode !== null || agent.proc.signalCode !== null ? ` (the agent exited: ${agent.proc.exitCode ?? agent.proc.signalCode})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${exit}\nagent stderr (tail):\n${agent.stderr().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Log lines of the agent whose message is `msg`. */
export function logsWith(agent: AgentProcess, msg: string): Array<Record<string, unknown>> {
  return agent.logs().filter((l) => l.msg === msg);
}

/** Whether a process with this pid is running (signal 0 only checks). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for the agent to exit, failing after `timeoutMs` with its last log lines. */
export async function exitOf(agent: AgentProcess, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      agent.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the agent did not exit within ${timeoutMs} ms\nagent stderr (tail):\n${agent.stderr().slice(-4000)}`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP proxy in front of the broker that holds back requests whose path matches, to catch the agent mid-request. */
export interface SlowProxy {
  url: string;
  /** Paths of the held requests so far. */
  held: string[];
  close(): Promise<void>;
}

export async function slowProxy(target: string, slow: RegExp, delayMs: number): Promise<SlowProxy> {
  const { createServer, request } = await import("node:http");
  const held: string[] = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const forward = () => {
        const upstream = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on("error", () => res.destroy());
        upstream.end(Buffer.concat(chunks));
      };
      if (slow.test(req.url ?? "")) {
        held.push(req.url ?? "");
        setTimeout(forward, delayMs);
      } else {
        forward();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    held,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A dev server with a `database` mount on a fresh test database, an `app` role and an AppRole `agent` role. */
export interface AgentBroker {
  server: RunningServer;
  base: string;
  db: TestDatabase;
  /** Revokes the database leases, stops the server and drops the database. */
  stop(): Promise<void>;
}

export interface AgentBrokerOptions {
  /** Names the test database (`lh_<label>_<random>`). */
  label: string;
  /** Extra SQL run in the test database first (tables the role is granted on). */
  setupSql?: string;
  creationStatements: string;
  /** `default_ttl`/`max_ttl` of the database role `app`. */
  dbTtl: string;
  dbMaxTtl: string;
  /** `token_ttl` (and `token_max_ttl`, if any) of the AppRole role `agent`. */
  tokenTtl: string;
  tokenMaxTtl?: string;
  /** The `agent` policy; reading database credentials by default. */
  policy?: string;
}

/** Starts the broker the database-backed agent tests share. */
export async function startAgentBroker(opts: AgentBrokerOptions): Promise<AgentBroker> {
  const db = await createTestDatabase(inject("pgUrl"), opts.label);
  if (opts.setupSql) await db.admin.query(opts.setupSql);
  const server = await startTestServer({ rootTokenId: "root", leaseRetry: { baseMs: 100, capMs: 500, maxAttempts: 30 } });
  const base = server.url;
  const admin = (method: string, path: string, body?: unknown) => ok(call(base, method, path, { token: "root", body }), 204);
  const rootPassword = decodeURIComponent(new URL(inject("pgUrl")).password);
  await admin("POST", "sys/mounts/database", { type: "database" });
  await admin("POST", "database/config/pg", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: "postgres", password: rootPassword, allowed_roles: "*" });
  await admin("POST", "database/roles/app", { db_name: "pg", creation_statements: opts.creationStatements, default_ttl: opts.dbTtl, max_ttl: opts.dbMaxTtl });
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/agent", { policy: opts.policy ?? 'path "database/creds/*" { capabilities = ["read"] }' });
  await admin("POST", "auth/approle/role/agent", { token_policies: "agent", token_ttl: opts.tokenTtl, ...(opts.tokenMaxTtl ? { token_max_ttl: opts.tokenMaxTtl } : {}) });
  return {
    server,
    base,
    db,
    stop: async () => {
      await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token: "root" });
      await server.stop();
      await db.drop();
    },
  };
}
