import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { ExecCommand } from "../config.js";
import { ChildStartError, ChildSupervisor, exitCodeOf, type ChildExit, type ChildSupervisorOptions } from "./child.js";
import { silentLogger } from "./logger.js";

/**
 * A small application: installs its signal handlers, then prints "ready <SECRET>" and waits.
 * SIGUSR1 makes it print and exit 0; SIGTERM exits with TERM_CODE if set (else the default
 * action); IGNORE_TERM=1 ignores SIGTERM; EXIT_AFTER_MS exits on its own with EXIT_CODE.
 */
const APP = `
process.on("SIGUSR1", () => { console.log("got SIGUSR1"); process.exit(0); });
if (process.env.IGNORE_TERM === "1") process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
else if (process.env.TERM_CODE) process.on("SIGTERM", () => process.exit(Number(process.env.TERM_CODE)));
console.log("ready " + (process.env.SECRET ?? ""));
if (process.env.EXIT_AFTER_MS) setTimeout(() => process.exit(Number(process.env.EXIT_CODE)), Number(process.env.EXIT_AFTER_MS));
if (process.env.KILL_SELF === "1") process.kill(process.pid, "SIGKILL");
setInterval(() => {}, 1000);
`;
const app: ExecCommand = { type: "argv", argv: [process.execPath, "-e", APP] };

const supervisors: ChildSupervisor[] = [];
function supervise(opts: Partial<ChildSupervisorOptions> = {}): ChildSupervisor {
  const s = new ChildSupervisor({ command: app, stdio: "pipe", logger: silentLogger, stopGraceMs: 5_000, ...opts });
  supervisors.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop("SIGKILL")));
});

/** Everything a child has written to stdout so far, and a way to wait for a pattern in it. */
function stdoutOf(proc: ChildProcess | undefined): { text: () => string; waitFor: (re: RegExp) => Promise<string> } {
  if (!proc?.stdout) throw new Error("no child stdout (stdio must be 'pipe')");
  let text = "";
  proc.stdout.on("data", (b: Buffer) => (text += b.toString()));
  return {
    text: () => text,
    waitFor: async (re) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const m = re.exec(text);
        if (m) return m[0];
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`timed out waiting for ${re} in child output: ${JSON.stringify(text)}`);
    },
  };
}

/** Resolves to "pending" if `p` has not settled within a few event-loop turns. */
async function settled<T>(p: Promise<T>): Promise<T | "pending"> {
  return Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), 50))]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("ChildSupervisor", () => {
  it("starts the child with the agent's environment plus the rendered variables", async () => {
    process.env.LEASEHOLD_TEST_INHERITED = "from-agent";
    const s = supervise({ command: { type: "shell", script: 'echo "ready $SECRET $LEASEHOLD_TEST_INHERITED"; exec sleep 30' } });
    await s.start({ SECRET: "s3cr3t" });
    delete process.env.LEASEHOLD_TEST_INHERITED;
    expect(await stdoutOf(s.child).waitFor(/ready \S+ \S+/)).toBe("ready s3cr3t from-agent");
    expect(s.pid).toBeGreaterThan(0);
  });

  it("restart stops the child and starts it again with the new variables, without reporting an exit", async () => {
    const s = supervise();
    await s.start({ SECRET: "v1" });
    await stdoutOf(s.child).waitFor(/ready v1/);
    const firstPid = s.pid as number;
    let reported: ChildExit | undefined;
    s.onExit((e) => (reported = e));

    expect(await s.restart({ SECRET: "v2" })).toBe(true);
    expect(await stdoutOf(s.child).waitFor(/ready \w+/)).toBe("ready v2");
    expect(s.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
    expect(s.env).toEqual({ SECRET: "v2" });
    expect(await settled(s.exited)).toBe("pending");
    expect(reported).toBeUndefined();
  });

  it('with restart_on_secret_changes = "never", restart only records the variables', async () => {
    const s = supervise({ restartOnSecretChanges: "never" });
    await s.start({ SECRET: "v1" });
    const out = stdoutOf(s.child);
    await out.waitFor(/ready v1/);
    const pid = s.pid;
    expect(await s.restart({ SECRET: "v2" })).toBe(false);
    expect(s.pid).toBe(pid);
    expect(s.env).toEqual({ SECRET: "v2" });
    expect(out.text()).toBe("ready v1\n");
  });

  it("stops the child with the configured restart signal", async () => {
    const s = supervise({ restartStopSignal: "SIGUSR1" });
    await s.start({ SECRET: "v1" });
    const first = stdoutOf(s.child);
    await first.waitFor(/ready v1/);
    expect(await s.restart({ SECRET: "v2" })).toBe(true);
    await first.waitFor(/got SIGUSR1/);
    await stdoutOf(s.child).waitFor(/ready v2/);
  });

  it("sends SIGKILL when the child ignores the stop signal past the grace period", async () => {
    const s = supervise({ stopGraceMs: 300 });
    await s.start({ SECRET: "v1", IGNORE_TERM: "1" });
    await stdoutOf(s.child).waitFor(/ready v1/);
    expect(await s.restart({ SECRET: "v2", IGNORE_TERM: "1" })).toBe(true);
    await stdoutOf(s.child).waitFor(/ready v2/);
    const exit = await s.stop();
    expect(exit).toMatchObject({ code: null, signal: "SIGKILL", exitCode: 137, stopped: true });
  });

  it("reports the child's own exit code through exited and onExit", async () => {
    const s = supervise();
    const seen: ChildExit[] = [];
    s.onExit((e) => seen.push(e));
    await s.start({ EXIT_AFTER_MS: "50", EXIT_CODE: "7" });
    const exit = await s.exited;
    expect(exit).toEqual({ code: 7, signal: null, exitCode: 7, stopped: false });
    expect(seen).toEqual([exit]);
    expect(s.child).toBeUndefined();
    // Finished: nothing left to restart.
    expect(await s.restart({ SECRET: "v2" })).toBe(false);
  });

  it("reports a child killed by a signal as 128 + the signal number", async () => {
    const s = supervise();
    await s.start({ KILL_SELF: "1" });
    expect(await s.exited).toEqual({ code: null, signal: "SIGKILL", exitCode: 137, stopped: false });
  });

  it("forwards a signal, and the child's resulting exit is reported as its own", async () => {
    const s = supervise();
    await s.start({ TERM_CODE: "3" });
    await stdoutOf(s.child).waitFor(/ready/);
    expect(s.forward("SIGTERM")).toBe(true);
    expect(await s.exited).toEqual({ code: 3, signal: null, exitCode: 3, stopped: false });
    expect(s.forward("SIGTERM")).toBe(false);
  });

  it("stop ends the child with the signal given and marks the exit as stopped", async () => {
    const s = supervise();
    await s.start({});
    await stdoutOf(s.child).waitFor(/ready/);
    const exit = await s.stop("SIGINT");
    expect(exit).toEqual({ code: null, signal: "SIGINT", exitCode: 130, stopped: true });
    expect(await s.exited).toEqual(exit);
    expect(await s.restart({})).toBe(false);
  });

  it("stops a shell command line together with the process it runs", async () => {
    const s = supervise({ command: { type: "shell", script: "sleep 30 & echo $!; wait" } });
    await s.start({});
    const sleepPid = Number(await stdoutOf(s.child).waitFor(/\d+/));
    await s.stop();
    const deadline = Date.now() + 5_000;
    while (alive(sleepPid) && !isZombie(sleepPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive(sleepPid) && !isZombie(sleepPid)).toBe(false);
  });

  it("restarts called back to back end with one child holding the latest variables", async () => {
    const s = supervise();
    await s.start({ SECRET: "v1" });
    await stdoutOf(s.child).waitFor(/ready v1/);
    const results = await Promise.all([s.restart({ SECRET: "v2" }), s.restart({ SECRET: "v3" }), s.restart({ SECRET: "v4" })]);
    expect(results.every((r) => r === true)).toBe(true);
    expect(await stdoutOf(s.child).waitFor(/ready \w+/)).toBe("ready v4");
  });

  it("stop requested before a queued restart begins: the restart does nothing", async () => {
    const s = supervise();
    await s.start({ SECRET: "v1" });
    await stdoutOf(s.child).waitFor(/ready v1/);
    const restarting = s.restart({ SECRET: "v2" });
    const exit = await s.stop();
    expect(await restarting).toBe(false);
    expect(exit).toMatchObject({ signal: "SIGTERM", stopped: true });
    expect(s.child).toBeUndefined();
  });

  it("stop while a restart waits for the old child: the restart finishes stopping it and starts nothing", async () => {
    const s = supervise({ stopGraceMs: 300 });
    await s.start({ SECRET: "v1", IGNORE_TERM: "1" });
    const out = stdoutOf(s.child);
    await out.waitFor(/ready v1/);
    const restarting = s.restart({ SECRET: "v2" });
    await out.waitFor(/ignoring SIGTERM/);
    const exit = await s.stop();
    expect(await restarting).toBe(false);
    expect(exit).toMatchObject({ signal: "SIGKILL", exitCode: 137, stopped: true });
    expect(s.child).toBeUndefined();
  });

  it("a command that does not exist is a clear error naming it, and exited reports 127", async () => {
    const s = supervise({ command: { type: "argv", argv: ["/nonexistent/app-server", "--port", "8080"] } });
    const err = await s.start({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChildStartError);
    expect((err as ChildStartError).errno).toBe("ENOENT");
    expect((err as Error).message).toMatch(/cannot start "\/nonexistent\/app-server --port 8080": \/nonexistent\/app-server was not found \(check exec.command/);
    expect(await s.exited).toMatchObject({ code: null, exitCode: 127, stopped: false });
  });

  it("stop before start: start then starts nothing", async () => {
    const s = supervise();
    expect(await s.stop()).toBeUndefined();
    await s.start({ SECRET: "late" });
    expect(s.child).toBeUndefined();
    expect(await s.exited).toMatchObject({ stopped: true });
  });

  it("stop while start is still spawning: waits for the process and stops it, none runs on", async () => {
    const s = supervise();
    const starting = s.start({ SECRET: "racing" });
    const exit = await s.stop();
    await starting;
    expect(exit).toMatchObject({ stopped: true, signal: "SIGTERM" });
    expect(s.child).toBeUndefined();
  });

  it("start twice is a programming error", async () => {
    const s = supervise();
    await s.start({});
    await expect(s.start({})).rejects.toThrow(/already started/);
  });

  it("fromConfig takes the command, policy and signal of the exec block", async () => {
    const s = ChildSupervisor.fromConfig({ command: app, restartOnSecretChanges: "never", restartStopSignal: "SIGHUP" }, { logger: silentLogger, stdio: "pipe" });
    supervisors.push(s);
    await s.start({ SECRET: "x" });
    expect(await s.restart({ SECRET: "y" })).toBe(false);
  });
});

describe("exitCodeOf", () => {
  it("follows the shell's convention", () => {
    expect(exitCodeOf(0, null)).toBe(0);
    expect(exitCodeOf(2, null)).toBe(2);
    expect(exitCodeOf(null, "SIGTERM")).toBe(143);
    expect(exitCodeOf(null, "SIGINT")).toBe(130);
  });
});

/** A killed process whose parent has not reaped it yet still answers kill(pid, 0). */
function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
