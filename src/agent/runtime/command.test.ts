import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeCommand, runCommand } from "./command.js";
import { recordingLogger, silentLogger } from "./logger.js";

const sh = (script: string) => ({ type: "shell", script }) as const;
const argv = (...args: string[]) => ({ type: "argv", argv: args }) as const;
const dir = mkdtempSync(join(tmpdir(), "leasehold-cmd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether a process with this pid is still running (a zombie waiting to be reaped is not). */
function alive(pid: number): boolean {
  if (existsSync("/proc/self/stat")) {
    try {
      // Field 3 of /proc/<pid>/stat is the state; the command name before it is in parentheses.
      return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("runCommand", () => {
  it("reports success with exit code 0 and the output", async () => {
    const r = await runCommand(sh("echo reloaded; echo warning >&2"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r).toMatchObject({ code: 0, signal: null, timedOut: false, outputTruncated: false });
    expect(r.output).toContain("reloaded\n");
    expect(r.output).toContain("warning\n");
    expect(r.error).toBeUndefined();
  });

  it("resolves (does not throw) with the code of a failing shell command", async () => {
    const r = await runCommand(sh("exit 3"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r).toMatchObject({ code: 3, signal: null, timedOut: false });
  });

  it("runs an argv command without a shell, so arguments are not interpreted", async () => {
    const r = await runCommand(argv("/bin/echo", "$HOME", "a;b", "*"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r.code).toBe(0);
    expect(r.output).toBe("$HOME a;b *\n");
  });

  it("passes the environment given", async () => {
    const r = await runCommand(sh('printf %s "$DB_FILE"'), { timeoutMs: 10_000, env: { PATH: process.env.PATH, DB_FILE: "/run/secrets/db.env" }, logger: silentLogger });
    expect(r.output).toBe("/run/secrets/db.env");
  });

  it("kills a command that overruns its timeout and says so", async () => {
    const logger = recordingLogger();
    const t0 = Date.now();
    const r = await runCommand(argv("sleep", "5"), { timeoutMs: 200, logger });
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(r).toMatchObject({ code: null, signal: "SIGTERM", timedOut: true });
    expect(logger.records.some((l) => l.level === "warn" && /timed out/.test(l.msg))).toBe(true);
  });

  it("on timeout also stops what a shell command started (the whole process group)", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const r = await runCommand(sh(`sleep 30 & echo $! > ${pidFile}; wait`), { timeoutMs: 1_000, logger: silentLogger });
    expect(r.timedOut).toBe(true);
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    const deadline = Date.now() + 5_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(alive(pid)).toBe(false);
  });

  it("escalates to SIGKILL when SIGTERM is ignored", async () => {
    // An ignored signal stays ignored across exec, so neither the shell nor sleep reacts to SIGTERM.
    const r = await runCommand(sh("trap '' TERM; sleep 30"), { timeoutMs: 1_000, killGraceMs: 200, logger: silentLogger });
    expect(r).toMatchObject({ timedOut: true, signal: "SIGKILL" });
  });

  it("keeps only the last bytes of a large output", async () => {
    const r = await runCommand(sh("i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"), { timeoutMs: 10_000, maxOutputBytes: 64, logger: silentLogger });
    expect(r.code).toBe(0);
    expect(r.outputTruncated).toBe(true);
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(64);
    expect(r.output.endsWith("line1999\n")).toBe(true);
  });

  it("keeps 4 KiB by default", async () => {
    const r = await runCommand(sh("head -c 10000 /dev/zero | tr '\\0' x"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r.output.length).toBe(4096);
    expect(r.outputTruncated).toBe(true);
  });

  it("reports a command that does not exist as an error naming it, without throwing", async () => {
    const r = await runCommand(argv("/nonexistent/reload-app", "--now"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r.code).toBeNull();
    expect(r.error).toMatch(/reload-app.*was not found/);
  });

  it("does not wait for a background process that keeps the output pipes open", async () => {
    const t0 = Date.now();
    const r = await runCommand(sh("sleep 3 & echo started"), { timeoutMs: 10_000, logger: silentLogger });
    expect(r.code).toBe(0);
    expect(r.output).toContain("started");
    expect(Date.now() - t0).toBeLessThan(2_500);
  });
});

describe("describeCommand", () => {
  it("shows a shell line as is and quotes argv words that need it", () => {
    expect(describeCommand(sh("systemctl reload app"))).toBe("systemctl reload app");
    expect(describeCommand(argv("kill", "-HUP", "my app"))).toBe('kill -HUP "my app"');
  });
});
