import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../database/helpers.js";
import { spawnCli, waitForHealth, type CliProcess } from "./cli-process.js";

/**
 * The shared launcher of HA nodes for end-to-end tests: several real `leasehold server` processes
 * with `ha_enabled = true` on one PostgreSQL database, each unsealing itself with the same static
 * seal key, each with an API listener and a cluster listener (`cluster_address`) on 127.0.0.1.
 */

export interface HaClusterOptions {
  /** PostgreSQL URL of a database made for the test (createTestDatabase). */
  dbUrl: string;
  /** How many nodes (default 3). */
  nodes?: number;
  /** `ha_lock_lifetime` (default "2s"). */
  lockLifetime?: string;
  /** Extra top-level HCL appended to every node's config. */
  extraConfig?: string;
  /** log_level of the nodes (default "warn"). */
  logLevel?: string;
}

/** One node of the cluster: its addresses, its config file and its process (when running). */
export interface HaClusterNode {
  /** "node1", "node2", ... */
  name: string;
  /** API port (plain HTTP, 127.0.0.1). */
  port: number;
  /** Cluster listener port (`cluster_address`). */
  clusterPort: number;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Path of its HCL file. */
  config: string;
  /** The running process (spawnCli), undefined when stopped. */
  child?: CliProcess;
  /** Spawns `leasehold server -config=...`, waits for sys/health, returns its status. */
  start(): Promise<number>;
  /** Sends SIGKILL, SIGSTOP, SIGCONT, SIGTERM... to the process (nothing when it is not running). */
  signal(sig: NodeJS.Signals): void;
  /** Resolves when the process has exited (at once when it is not running). */
  stopped(): Promise<void>;
  /** sys/health status, 0 when it does not answer (within 1 s: a stopped process accepts but never answers). */
  health(): Promise<number>;
}

/** Several nodes on one database, started and torn down together. */
export interface HaCluster {
  nodes: HaClusterNode[];
  /** The static seal key shared by all nodes (nodes unseal themselves). */
  keyFile: string;
  /** Temp dir with configs. */
  dir: string;
  /** Starts every node, initialises the cluster through the first node that answers (sys/init, static seal), returns the root token. */
  startAll(): Promise<string>;
  /** Polls until exactly one node answers sys/health 200 (others 429 or not answering); returns it and the ms waited. Nodes in `exclude` are not looked at. */
  waitForActive(timeoutMs?: number, exclude?: HaClusterNode[]): Promise<{ node: HaClusterNode; ms: number }>;
  /** SIGKILL every node still running, remove `dir`. */
  destroy(): Promise<void>;
}

/** A node's first start compiles the sources with tsx: slow on a busy 2-core machine. */
const START_TIMEOUT_MS = 60_000;
const HEALTH_TIMEOUT_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** sys/health's status, 0 when nothing answers in time (refused, reset, or a stopped process). */
async function healthOf(base: string): Promise<number> {
  try {
    const res = await fetch(`${base}/v1/sys/health`, { redirect: "manual", signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

function hclString(s: string): string {
  return JSON.stringify(s);
}

/** Writes the configs (free ports, one static seal key); starts nothing. */
export async function createHaCluster(opts: HaClusterOptions): Promise<HaCluster> {
  const count = opts.nodes ?? 3;
  const lockLifetime = opts.lockLifetime ?? "2s";
  const logLevel = opts.logLevel ?? "warn";
  const dir = mkdtempSync(join(tmpdir(), "leasehold-ha-cluster-"));
  const keyFile = join(dir, "seal.key");
  writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });

  const nodes: HaClusterNode[] = [];
  for (let i = 1; i <= count; i++) {
    const port = await freePort();
    let clusterPort = await freePort();
    while (clusterPort === port) clusterPort = await freePort();
    const name = `node${i}`;
    const base = `http://127.0.0.1:${port}`;
    const config = join(dir, `${name}.hcl`);
    writeFileSync(
      config,
      `storage "postgresql" {\n  connection_url   = ${hclString(opts.dbUrl)}\n  ha_enabled       = "true"\n  ha_lock_lifetime = ${hclString(lockLifetime)}\n}\n\n` +
        `listener "tcp" {\n  address         = "127.0.0.1:${port}"\n  cluster_address = "127.0.0.1:${clusterPort}"\n  tls_disable     = true\n}\n\n` +
        `seal "static" {\n  key_file = ${hclString(keyFile)}\n}\n\n` +
        `api_addr     = "${base}"\ncluster_addr = "https://127.0.0.1:${clusterPort}"\nlog_level    = ${hclString(logLevel)}\n` +
        (opts.extraConfig ? `\n${opts.extraConfig}\n` : ""),
    );
    const node: HaClusterNode = {
      name,
      port,
      clusterPort,
      base,
      config,
      child: undefined,
      async start() {
        if (node.child) throw new Error(`${name} is already running (pid ${node.child.proc.pid})`);
        const child = spawnCli(["server", `-config=${config}`]);
        node.child = child;
        void child.exited.then(() => {
          if (node.child === child) node.child = undefined;
        });
        return (await waitForHealth(base, child, START_TIMEOUT_MS)).status;
      },
      signal(sig) {
        node.child?.proc.kill(sig);
      },
      async stopped() {
        const child = node.child;
        if (child) await child.exited;
      },
      health: () => healthOf(base),
    };
    nodes.push(node);
  }

  const cluster: HaCluster = {
    nodes,
    keyFile,
    dir,
    async startAll() {
      // The first node alone: a static seal unseals at start-up only, so nodes started before
      // sys/init would stay uninitialised until restarted. The others start (in parallel) after it.
      const [first, ...rest] = nodes;
      const status = await first.start();
      if (status !== 501) throw new Error(`${first.name} answered sys/health ${status}, expected 501 (not initialised): give createHaCluster a fresh database`);
      const res = await fetch(`${first.base}/v1/sys/init`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ recovery_shares: 1, recovery_threshold: 1 }),
      });
      const body = (await res.json()) as { root_token?: string; errors?: string[] };
      if (res.status !== 200 || !body.root_token) throw new Error(`sys/init on ${first.name} answered ${res.status}: ${JSON.stringify(body)}`);
      await Promise.all(rest.map((n) => n.start()));
      await cluster.waitForActive(15_000);
      return body.root_token;
    },
    async waitForActive(timeoutMs = 10_000, exclude = []) {
      const since = Date.now();
      const looked = nodes.filter((n) => !exclude.includes(n));
      let last: number[] = [];
      for (;;) {
        last = await Promise.all(looked.map((n) => n.health()));
        const active = looked.filter((_, i) => last[i] === 200);
        const othersOk = last.every((s) => s === 200 || s === 429 || s === 0);
        if (active.length === 1 && othersOk) return { node: active[0], ms: Date.now() - since };
        if (Date.now() - since > timeoutMs) {
          const states = looked.map((n, i) => `${n.name}=${last[i]}`).join(" ");
          const logs = looked.map((n) => `--- ${n.name} stderr:\n${n.child?.stderr().slice(-2000) ?? "(not running)"}`).join("\n");
          throw new Error(`no single active node within ${timeoutMs} ms (sys/health: ${states})\n${logs}`);
        }
        await sleep(50);
      }
    },
    async destroy() {
      for (const n of nodes) {
        // A stopped (SIGSTOP) process still dies of SIGKILL.
        n.signal("SIGKILL");
      }
      await Promise.all(nodes.map((n) => n.stopped()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
