/**
 * Runs a template's `exec { command, timeout }` after its file changed: a list is run as is
 * (no shell), a string through `/bin/sh -c`. The command gets its own process group, so a
 * timeout stops everything it started (a shell and its children), not only the first process.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import type { ExecCommand } from "../config.js";
import type { AgentLogger } from "./logger.js";

/** How much of the combined stdout and stderr is kept for the log: the last 4 KiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 4096;
/** Time between SIGTERM and SIGKILL when a command overruns its timeout. */
export const DEFAULT_KILL_GRACE_MS = 2000;

export interface RunCommandOptions {
  /** After this long the command is sent SIGTERM, then SIGKILL `killGraceMs` later. */
  timeoutMs: number;
  /** The command's environment; the agent's own unless set. */
  env?: NodeJS.ProcessEnv;
  logger: AgentLogger;
  cwd?: string;
  killGraceMs?: number;
  maxOutputBytes?: number;
}

/** What happened to a command. A failure is described here, never thrown. */
export interface CommandResult {
  /** The exit code; null when the command was killed by a signal or did not start. */
  code: number | null;
  /** The signal that ended it, if any. */
  signal: NodeJS.Signals | null;
  /** True when it overran `timeoutMs` and was killed. */
  timedOut: boolean;
  /** The last `maxOutputBytes` of stdout and stderr, interleaved as they arrived. */
  output: string;
  /** True when earlier output was dropped to keep `output` bounded. */
  outputTruncated: boolean;
  /** Set when the command could not be started (not found, not executable). */
  error?: string;
}

/** A short, readable form of the command for logs and messages. */
export function describeCommand(cmd: ExecCommand): string {
  return cmd.type === "shell" ? cmd.script : cmd.argv.map((a) => (/^[\w./:=@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

/** Runs `cmd` to completion (or timeout) and resolves with its outcome; never rejects. */
export function runCommand(cmd: ExecCommand, opts: RunCommandOptions): Promise<CommandResult> {
  const [file, args] = cmd.type === "shell" ? ["/bin/sh", ["-c", cmd.script]] : [cmd.argv[0], cmd.argv.slice(1)];
  const command = describeCommand(cmd);
  const output = new OutputTail(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;

  return new Promise<CommandResult>((resolve) => {
    let timedOut = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (r: Omit<CommandResult, "output" | "outputTruncated" | "timedOut">): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve({ ...r, timedOut, output: output.text(), outputTruncated: output.truncated });
    };

    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], detached: true });
    } catch (err) {
      // spawn throws synchronously for arguments it cannot pass (a NUL byte, for example).
      finish({ code: null, signal: null, error: `cannot run ${JSON.stringify(command)}: ${(err as Error).message}` });
      return;
    }
    opts.logger.debug({ command, pid: child.pid }, "running template command");
    child.stdout.on("data", (b: Buffer) => output.push(b));
    child.stderr.on("data", (b: Buffer) => output.push(b));

    child.on("error", (err: NodeJS.ErrnoException) => {
      finish({ code: null, signal: null, error: startError(command, file, err) });
    });

    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        // A negative pid signals the whole process group the command leads (detached: true).
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        child.kill(signal);
      }
    };
    const timeout = setTimeout(() => {
      timedOut = true;
      opts.logger.warn({ command, timeoutMs: opts.timeoutMs }, "template command timed out: sending SIGTERM");
      signalGroup("SIGTERM");
      timers.push(
        setTimeout(() => {
          opts.logger.warn({ command, killGraceMs }, "template command still running after SIGTERM: sending SIGKILL");
          signalGroup("SIGKILL");
        }, killGraceMs),
      );
    }, opts.timeoutMs);
    timers.push(timeout);

    child.on("exit", (code, signal) => {
      clearTimeout(timeout);
      // Output can still be in the pipes; 'close' says it has all arrived. A background process
      // the command started may keep the pipes open forever, so do not wait long for it.
      const done = (): void => finish({ code, signal });
      child.once("close", done);
      timers.push(
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          done();
        }, 200),
      );
    });
  });
}

function startError(command: string, file: string, err: NodeJS.ErrnoException): string {
  if (err.code === "ENOENT") return `cannot run ${JSON.stringify(command)}: ${file} was not found (check the path, or that it is on the agent's PATH)`;
  if (err.code === "EACCES") return `cannot run ${JSON.stringify(command)}: ${file} is not executable (check its mode and the agent's user)`;
  return `cannot run ${JSON.stringify(command)}: ${err.message}`;
}

/** The last `max` bytes written to it. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly max: number) {}

  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0];
      const excess = this.size - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
      this.truncated = true;
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}
