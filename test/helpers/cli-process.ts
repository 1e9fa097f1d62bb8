import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { call } from "./server.js";

const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** A `leasehold` CLI child process run from the repository's sources, and what it printed. */
export interface CliProcess {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

const children = new Set<ChildProcess>();

/**
 * `node --import tsx src/cli/main.ts <args>` from the repository root, as an operator runs the
 * CLI; log-level variables of the test environment are cleared, `env` is added on top.
 */
export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LEASEHOLD_LOG_LEVEL: "", VAULT_LOG_LEVEL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  proc.stderr!.on("data", (b: Buffer) => (err += b.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  return { proc, exited, stdout: () => out, stderr: () => err };
}

/** Kills every CLI process this test file started that is still running, and waits for them (afterAll). */
export async function killCliProcesses(): Promise<void> {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await Promise.all([...children].map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once("exit", r)) : undefined)));
  children.clear();
}

/**
 * Polls `sys/health` on a server started with `spawnCli` until it answers (any status) and returns
 * that answer; fails at once if the process exits first, or after `timeoutMs`.
 */
export async function waitForHealth(base: string, child: CliProcess, timeoutMs = 45_000): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON body
  const deadline = Date.now() + timeoutMs;
  let died = false;
  void child.exited.then(() => (died = true));
  for (;;) {
    if (died) throw new Error(`server exited before answering:\nstdout: ${child.stdout()}\nstderr: ${child.stderr()}`);
    try {
      return await call(base, "GET", "sys/health");
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not answer sys/health within ${timeoutMs} ms:\nstderr: ${child.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
