// Process plumbing for the `ha` benchmark: starting nodes from a custom entry (ha-noop-server.ts), reading a
// process's memory, polling sys/health fast, and killing every process the benchmark started when
// it ends in any way (error, Ctrl-C).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import type { CliProcess } from "../../../test/helpers/cli-process.js";
import type { HaClusterNode } from "../../../test/helpers/ha-cluster.js";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");

/** Every node process the benchmark started (through the cluster helper or here), for the last-resort clean-up. */
const started = new Set<ChildProcess>();

/** Remembers the process of every node of `nodes` that runs now (call after each start). */
export function track(nodes: HaClusterNode[]): void {
  for (const n of nodes) if (n.child) started.add(n.child.proc);
}

/** Temporary directories (configs, seal keys) to remove in the last-resort clean-up. */
const dirs = new Set<string>();

/** Remembers a temporary directory for the last-resort clean-up. */
export function trackDir(path: string): void {
  dirs.add(path);
}

/** Remembers one more process for the last-resort clean-up. */
export function trackProcess(proc: ChildProcess): void {
  started.add(proc);
}

/** SIGKILLs every tracked process still running and removes the tracked directories (synchronous: usable in an exit or signal handler). */
export function killTracked(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

let hooked = false;
/**
 * On Ctrl-C or SIGTERM: kill the nodes, then exit, which runs the PostgreSQL helper's exit hook
 * (test/helpers/postgres.ts stops the server and removes its directory synchronously).
 */
export function installCleanupOnSignals(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killTracked);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping every node and PostgreSQL\n`);
      killTracked();
      process.exit(130);
    });
  }
}

/**
 * Starts `node --import tsx scripts/bench/lib/ha-noop-server.ts server -config=<node.config>` (the real
 * server plus the no-op engine) as `node`'s process, so the cluster helper's signal(), stopped()
 * and destroy() apply to it. Resolves once it answers sys/health, with that status.
 */
export async function startBenchNode(node: HaClusterNode, timeoutMs = 300_000): Promise<number> {
  if (node.child) throw new Error(`${node.name} is already running`);
  const proc = spawn(process.execPath, ["--import", "tsx", "scripts/bench/lib/ha-noop-server.ts", "server", `-config=${node.config}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, LEASEHOLD_LOG_LEVEL: "", VAULT_LOG_LEVEL: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b: Buffer) => (out = (out + b.toString("utf8")).slice(-20_000)));
  proc.stderr!.on("data", (b: Buffer) => (err = (err + b.toString("utf8")).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  const child: CliProcess = { proc, exited, stdout: () => out, stderr: () => err };
  node.child = child;
  void exited.then(() => {
    if (node.child === child) node.child = undefined;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${node.name} exited before answering:\n${err.slice(-3000)}`);
    const status = await healthStatus(node.base, 1000);
    if (status !== 0) return status;
    if (Date.now() > deadline) throw new Error(`${node.name} did not answer sys/health within ${timeoutMs} ms:\n${err.slice(-3000)}`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** sys/health's status, 0 when nothing answers within `timeoutMs`. */
export async function healthStatus(base: string, timeoutMs = 500): Promise<number> {
  try {
    const res = await fetch(`${base}/v1/sys/health`, { redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Resident and peak resident memory of a process in MiB (/proc: Linux), undefined when it is gone. */
export function memoryOf(pid: number | undefined): { rssMb: number; peakMb: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rssMb: Math.round(kb("VmRSS") / 1024), peakMb: Math.round(kb("VmHWM") / 1024) };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far (/proc: Linux), undefined when it is gone. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return undefined;
  }
}
