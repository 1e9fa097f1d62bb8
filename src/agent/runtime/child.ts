/**
 * Exec mode's process supervisor: runs the application with the `env_template` variables, stops
 * and restarts it with new values when a secret changes (unless `restart_on_secret_changes =
 * "never"`), forwards the agent's signals to it, and reports how it ended so the agent can exit
 * with the same code, as a shell would.
 *
 * The child leads its own process group and signals go to the whole group, so a shell command
 * line (`/bin/sh -c "..."`) and whatever it starts stop together (Vault Agent sets Setpgid for
 * the same reason). It also means Ctrl-C in a terminal reaches only the agent, which forwards it
 * once instead of the child receiving it twice.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as osConstants } from "node:os";
import type { AgentExecConfig, ExecCommand } from "../config.js";
import { describeCommand } from "./command.js";
import type { AgentLogger } from "./logger.js";

/** Time a stopping child gets before SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

export interface ChildSupervisorOptions {
  command: ExecCommand;
  /** `exec.restart_on_secret_changes`: "always" unless set. */
  restartOnSecretChanges?: "always" | "never";
  /** `exec.restart_stop_signal`: the signal that stops the child before a restart; SIGTERM unless set. */
  restartStopSignal?: NodeJS.Signals;
  /** How long a stopping child may take before SIGKILL; 10 s unless set. */
  stopGraceMs?: number;
  /** "inherit" (the default: the child writes to the agent's stdout and stderr) or "pipe" (tests read `child.stdout`). */
  stdio?: "inherit" | "pipe";
  logger: AgentLogger;
  cwd?: string;
}

/** How the child ended. */
export interface ChildExit {
  /** Its exit code, or null when a signal ended it or it never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The code the agent should exit with: the child's code, 128 + the signal's number, 127 or 126 when it could not start. */
  exitCode: number;
  /** True when it ended because of `stop()` (agent shutdown) rather than on its own. */
  stopped: boolean;
  /** Why it could not be started, when that is how it ended. */
  error?: string;
}

/** The command could not be started (not found, not executable); the message says what to check. */
export class ChildStartError extends Error {
  readonly code = "child_start_failed";
  constructor(
    message: string,
    /** The `errno` code from spawn (`ENOENT`, `EACCES`, ...). */
    readonly errno?: string,
  ) {
    super(message);
    this.name = "ChildStartError";
  }
}

type State = "idle" | "running" | "restarting" | "stopping" | "exited";

interface Running {
  proc: ChildProcess;
  pid: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs one child process for exec mode. Call `start(env)` once every env template has rendered,
 * `restart(env)` when one changed, `stop()` on shutdown, and watch `exited` (or `onExit`) to
 * exit with the child's code when it ends.
 */
export class ChildSupervisor {
  /** Resolves once, when the supervisor is finished: the child exited on its own, was stopped, or could not be started. Restarts do not resolve it. */
  readonly exited: Promise<ChildExit>;

  private readonly command: ExecCommand;
  private readonly commandText: string;
  private readonly restartPolicy: "always" | "never";
  private readonly restartStopSignal: NodeJS.Signals;
  private readonly stopGraceMs: number;
  private readonly stdio: "inherit" | "pipe";
  private readonly logger: AgentLogger;
  private readonly cwd: string | undefined;

  private state: State = "idle";
  private current: Running | undefined;
  private latestEnv: Record<string, string> = {};
  private stopRequested = false;
  private restartChain: Promise<unknown> = Promise.resolve();
  private pendingRestart: Promise<boolean> | undefined;
  /** The first spawn, while it runs. */
  private starting: Promise<void> | undefined;
  private finalExit: ChildExit | undefined;
  private resolveExited!: (exit: ChildExit) => void;
  private readonly listeners = new Set<(exit: ChildExit) => void>();

  constructor(opts: ChildSupervisorOptions) {
    this.command = opts.command;
    this.commandText = describeCommand(opts.command);
    this.restartPolicy = opts.restartOnSecretChanges ?? "always";
    this.restartStopSignal = opts.restartStopSignal ?? "SIGTERM";
    this.stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.stdio = opts.stdio ?? "inherit";
    this.logger = opts.logger;
    this.cwd = opts.cwd;
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
  }

  /** A supervisor for the config's `exec` block. */
  static fromConfig(exec: AgentExecConfig, opts: Omit<ChildSupervisorOptions, "command" | "restartOnSecretChanges" | "restartStopSignal">): ChildSupervisor {
    return new ChildSupervisor({ ...opts, command: exec.command, restartOnSecretChanges: exec.restartOnSecretChanges, restartStopSignal: exec.restartStopSignal });
  }

  /** The running child process, if any (its `stdout`/`stderr` are streams with `stdio: "pipe"`). */
  get child(): ChildProcess | undefined {
    return this.state === "exited" ? undefined : this.current?.proc;
  }

  /** The running child's pid, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The variables most recently given to `start` or `restart` (with "never", not necessarily the ones the child has). */
  get env(): Readonly<Record<string, string>> {
    return this.latestEnv;
  }

  /** Calls `listener` with the final exit (see `exited`); returns a function that removes it. */
  onExit(listener: (exit: ChildExit) => void): () => void {
    if (this.finalExit) {
      const exit = this.finalExit;
      queueMicrotask(() => listener(exit));
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts the child with the agent's environment plus `env`. Resolves once it is running (at
   * once, starting nothing, after `stop()`); rejects with a `ChildStartError` when it cannot be started (and `exited` then resolves with
   * exit code 127 or 126, as a shell reports a missing or non-executable command).
   */
  async start(env: Record<string, string>): Promise<void> {
    // Shutdown can come while the first render is still running: then there is nothing to start.
    if (this.stopRequested) return;
    if (this.state !== "idle") throw new Error(`ChildSupervisor.start: already ${this.state === "exited" ? "finished" : "started"} (use restart to apply new variables)`);
    this.latestEnv = { ...env };
    this.state = "running";
    this.starting = this.spawnChild();
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
    this.logger.info({ command: this.commandText, pid: this.current?.pid }, "exec: started the child process");
  }

  /**
   * Applies new variables. With restart "always", stops the child with the restart signal (SIGKILL
   * after the grace period), waits for it to exit and starts it again; resolves true once the new
   * child runs. With "never", only records `env` and resolves false. Also false when there is no
   * child to restart (not started, stopping, or finished). Calls made while a restart is waiting
   * to begin share it, and it uses the latest variables. Rejects with a `ChildStartError` if the
   * new child cannot be started.
   */
  restart(env: Record<string, string>): Promise<boolean> {
    this.latestEnv = { ...env };
    if (this.restartPolicy === "never") {
      if (this.state === "running") this.logger.info({ command: this.commandText }, 'exec: secrets changed; not restarting the child (restart_on_secret_changes = "never")');
      return Promise.resolve(false);
    }
    if (this.pendingRestart) return this.pendingRestart;
    const run = this.restartChain.then(() => {
      this.pendingRestart = undefined;
      return this.restartNow();
    });
    this.pendingRestart = run;
    this.restartChain = run.catch(() => undefined);
    return run;
  }

  /** Sends `signal` to the child (SIGTERM, SIGINT or SIGHUP the agent received). False when there is no child. */
  forward(signal: NodeJS.Signals): boolean {
    const running = this.current;
    if (!running || this.state === "exited" || this.state === "idle") return false;
    this.logger.debug({ pid: running.pid, signal }, "exec: forwarding a signal to the child");
    return this.signal(running, signal);
  }

  /**
   * Stops the child for shutdown: sends `signal` (SIGTERM unless given), SIGKILL after the grace
   * period, and resolves with how it ended (also delivered through `exited`). Undefined when it was
   * never started. A restart in progress completes its stop but does not start a new child.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<ChildExit | undefined> {
    this.stopRequested = true;
    if (this.state === "idle") {
      this.finish({ code: null, signal: null, exitCode: 0, stopped: true });
      return undefined;
    }
    if (this.state === "restarting") await this.restartChain;
    // Still spawning: wait for the process, or it would start after this stop and run on unsupervised.
    if (this.starting) await this.starting.catch(() => undefined);
    const running = this.current;
    if (this.state === "running" && running) {
      this.state = "stopping";
      this.logger.info({ pid: running.pid, signal }, "exec: stopping the child process");
      const { code, signal: endedBy } = await this.terminate(running, signal);
      this.finish({ code, signal: endedBy, exitCode: exitCodeOf(code, endedBy), stopped: true });
    } else if (this.state === "stopping") {
      await this.exited;
    }
    return this.finalExit;
  }

  private async restartNow(): Promise<boolean> {
    const running = this.current;
    if (this.state !== "running" || !running || this.stopRequested) return false;
    this.state = "restarting";
    this.logger.info({ pid: running.pid, signal: this.restartStopSignal }, "exec: secrets changed; restarting the child process");
    const ended = await this.terminate(running, this.restartStopSignal);
    if (this.stopRequested) {
      this.finish({ ...ended, exitCode: exitCodeOf(ended.code, ended.signal), stopped: true });
      return false;
    }
    await this.spawnChild();
    this.state = "running";
    this.logger.info({ command: this.commandText, pid: this.current?.pid }, "exec: restarted the child process");
    return true;
  }

  /** Signals the child and waits for it to exit, escalating to SIGKILL after the grace period. */
  private async terminate(running: Running, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal(running, signal);
    const timer = setTimeout(() => {
      this.logger.warn({ pid: running.pid, signal, graceMs: this.stopGraceMs }, "exec: the child did not exit in time; sending SIGKILL");
      this.signal(running, "SIGKILL");
    }, this.stopGraceMs);
    try {
      return await running.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  private signal(running: Running, signal: NodeJS.Signals): boolean {
    try {
      // The negative pid addresses the child's process group (it was started detached).
      process.kill(-running.pid, signal);
      return true;
    } catch {
      // The group is gone, or the child replaced its group: fall back to the process itself.
      return running.proc.kill(signal);
    }
  }

  private async spawnChild(): Promise<void> {
    const [file, args] = this.command.type === "shell" ? ["/bin/sh", ["-c", this.command.script]] : [this.command.argv[0], this.command.argv.slice(1)];
    let proc: ChildProcess;
    try {
      proc = spawn(file, args, { env: { ...process.env, ...this.latestEnv }, stdio: this.stdio, detached: true, cwd: this.cwd });
    } catch (err) {
      throw this.startFailed(file, err as NodeJS.ErrnoException);
    }
    await new Promise<void>((resolve, reject) => {
      const onSpawn = (): void => {
        proc.off("error", onError);
        resolve();
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        proc.off("spawn", onSpawn);
        reject(this.startFailed(file, err));
      };
      proc.once("spawn", onSpawn);
      proc.once("error", onError);
    });
    const pid = proc.pid as number;
    // Later errors (a failed kill) must not crash the agent as an unhandled 'error' event.
    proc.on("error", (err) => this.logger.warn({ pid, err: err.message }, "exec: child process error"));
    const running: Running = {
      proc,
      pid,
      exit: new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal }))),
    };
    this.current = running;
    void running.exit.then(({ code, signal }) => {
      // Exits during a restart or a stop are expected; those paths report them.
      if (this.current !== running || this.state !== "running") return;
      const exit: ChildExit = { code, signal, exitCode: exitCodeOf(code, signal), stopped: false };
      this.logger.info({ pid, code, signal }, "exec: the child process exited");
      this.finish(exit);
    });
  }

  private startFailed(file: string, err: NodeJS.ErrnoException): ChildStartError {
    const what = `exec: cannot start ${JSON.stringify(this.commandText)}`;
    const error =
      err.code === "ENOENT"
        ? new ChildStartError(`${what}: ${file} was not found (check exec.command in the agent config, and that the program is installed and on the agent's PATH)`, err.code)
        : err.code === "EACCES"
          ? new ChildStartError(`${what}: ${file} is not executable (check its mode and that the agent's user may run it)`, err.code)
          : new ChildStartError(`${what}: ${err.message}`, err.code);
    this.finish({ code: null, signal: null, exitCode: err.code === "EACCES" ? 126 : 127, stopped: false, error: error.message });
    return error;
  }

  private finish(exit: ChildExit): void {
    if (this.finalExit) return;
    this.state = "exited";
    this.finalExit = exit;
    this.resolveExited(exit);
    for (const listener of this.listeners) listener(exit);
    this.listeners.clear();
  }
}

/** The exit status a shell would report: the code, or 128 + the signal's number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0);
  return 1;
}
