import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** A running `leasehold agent` child process and what it logged. */
export interface AgentProcess {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines of stderr. */
  logs(): Array<Record<string, unknown>>;
}

const children = new Set<ChildProcess>();

/** `node --import tsx src/cli/main.ts agent -config=<file>` from the repository root. */
export function spawnAgent(configFile: string, env: Record<string, string> = {}): AgentProcess {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "agent", `-config=${configFile}`, "-log-level=debug"], {
    cwd: REPO_ROOT,
    env: { ...process.env, LEASEHOLD_LOG_LEVEL: "", VAULT_LOG_LEVEL: "", VAULT_ADDR: "", LEASEHOLD_ADDR: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  proc.stderr!.on("data", (b: Buffer) => (err += b.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  return {
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      err
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
export async function killAgents(): Promise<void> {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await Promise.all([...children].map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once("exit", r)) : undefined)));
  children.clear();
}

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
