// PostgreSQL storage backend throughput: key/value puts and gets and lease inserts through
// `PostgresStorage`, each against raw `pg` doing the same statement on a table of the same shape,
// with the same concurrency, in the same run. Lease inserts are also shown against a raw insert
// into a table without the count trigger (the price of trigger-kept counts), and puts through a
// write fence (`BEGIN; SELECT ... FOR SHARE; upsert; COMMIT`, what the HA epoch check will cost).
//
//   npm run bench -- storage-pg [--seconds 3] [--concurrency 16] [--rounds 2] [--pg-url postgres://...] [--fsync-off]
//
// --rounds N repeats every measurement N times, alternating the order of each pair (ours first,
// then raw first), and reports the mean rate: the table grows as it runs, so order matters.
//
// Without --pg-url (or TEST_PG_URL) it starts its own PostgreSQL (the test suite's embedded
// binaries) with PostgreSQL's default durability.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresStorage } from "../../src/storage/postgres.js";
import { pgTypes } from "../../src/storage/postgres-schema.js";
import type { LeaseRow } from "../../src/storage/types.js";
import { startBenchPostgres } from "./lib/postgres.js";

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}


interface Rate {
  ops: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>): Promise<Rate> {
  const lat: number[] = [];
  let errors = 0;
  let n = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await op(n++);
          lat.push(performance.now() - t);
        } catch (err) {
          if (errors++ === 0) process.stderr.write(`first error: ${(err as Error).message}\n`);
        }
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => Number((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0).toFixed(2));
  return { ops: lat.length, rate: Math.round(lat.length / secs), p50_ms: pct(0.5), p99_ms: pct(0.99), errors };
}

const COLUMNS = [
  "id", "kind", "mount", "path", "role", "secret_type", "internal", "issue_time", "expire_time", "max_expire_time", "last_renewal",
  "renewable", "token_accessor", "auth_mount", "display_name", "metadata", "entity_id", "state", "revoke_attempts", "revoke_error", "due_at", "creator",
] as const;

function leaseRow(run: string, i: number): LeaseRow {
  const now = Date.now();
  return {
    id: `database/creds/app/${run}${i.toString(36)}${randomBytes(8).toString("hex")}`, kind: "secret", mount: "database/", path: "database/creds/app", role: "app",
    secret_type: "creds", internal: randomBytes(700), issue_time: now, expire_time: now + 3_600_000, max_expire_time: now + 86_400_000, last_renewal: null, renewable: 1,
    token_accessor: randomBytes(32).toString("base64url"), auth_mount: "auth/approle/", display_name: randomBytes(32).toString("base64url"), metadata: ` ${randomBytes(32).toString("base64url")} `,
    entity_id: "", state: "pending", revoke_attempts: 0, revoke_error: null, due_at: now + 3_600_000, creator: randomBytes(120),
  };
}

export async function main(args: string[]): Promise<void> {
  const seconds = Number(arg(args, "--seconds") ?? 3);
  const concurrency = Number(arg(args, "--concurrency") ?? 16);
  const rounds = Number(arg(args, "--rounds") ?? 2);
  let url = arg(args, "--pg-url") ?? process.env.TEST_PG_URL;
  let server: { url: string; stop(): Promise<void> } | undefined;
  if (!url) {
    server = await startBenchPostgres("leasehold-bench-pgstore", args.includes("--fsync-off") ? ["-c", "fsync=off"] : []);
    url = server.url;
  }
  const run = randomBytes(3).toString("hex");
  const table = `bench_${run}`;
  const store = await PostgresStorage.open({ connectionUrl: url, table, maxParallel: concurrency });
  const fenced = await PostgresStorage.open({
    connectionUrl: url,
    table,
    maxParallel: concurrency,
    fence: async (tx) => {
      await tx.query({ name: "bench-fence", text: `SELECT 1 FROM ${table}_fence WHERE epoch = $1 FOR SHARE`, values: [1] });
    },
  });
  const raw = new pg.Pool({ connectionString: url, max: concurrency, types: pgTypes });
  raw.on("error", () => undefined); // idle connections ended by the server's shutdown at the end
  const n = store.names;
  try {
    await raw.query(`CREATE TABLE ${table}_fence (epoch bigint PRIMARY KEY); INSERT INTO ${table}_fence VALUES (1)`);
    await raw.query(`CREATE TABLE ${table}_rawkv (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`);
    // The lease table's shape and indexes, without the count triggers.
    await raw.query(`CREATE TABLE ${table}_rawleases (LIKE ${n.leases} INCLUDING ALL)`);
    const value = randomBytes(1024);
    const keys: string[] = [];
    const key = (i: number) => `logical/${run}/secret/data/app-${i}`;

    const out: Record<string, Rate> = {};
    const all: Record<string, Rate[]> = {};
    const mean = (rs: Rate[], k: keyof Rate) => Number((rs.reduce((a, r) => a + r[k], 0) / rs.length).toFixed(2));
    /** Measures a group of operations `rounds` times, reversing the order every other round. */
    const group = async (ops: [string, (i: number) => Promise<unknown>][]) => {
      for (let round = 0; round < rounds; round++) {
        for (const [name, op] of round % 2 ? [...ops].reverse() : ops) (all[name] ??= []).push(await closedLoop(concurrency, seconds, op));
      }
      for (const [name] of ops) {
        const rs = all[name];
        const r = (out[name] = { ops: rs.reduce((a, x) => a + x.ops, 0), rate: Math.round(mean(rs, "rate")), p50_ms: mean(rs, "p50_ms"), p99_ms: mean(rs, "p99_ms"), errors: rs.reduce((a, x) => a + x.errors, 0) });
        process.stdout.write(`${name.padEnd(34)} ${String(r.rate).padStart(7)}/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  (rounds: ${rs.map((x) => x.rate).join(", ")})${r.errors ? `  errors ${r.errors}` : ""}\n`);
      }
    };
    process.stdout.write(`concurrency ${concurrency}, ${seconds}s x ${rounds} rounds each, 1 KiB values, 700-byte lease internals\n`);

    await group([
      ["put (PostgresStorage)", (i) => (keys.push(key(i)), store.put(key(i), value))],
      ["put (raw pg upsert)", (i) => raw.query({ name: "raw-put", text: `INSERT INTO ${table}_rawkv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, values: [key(i), value] })],
      ["put (PostgresStorage + fence tx)", (i) => fenced.put(`f/${key(i)}`, value)],
    ]);
    const pick = () => keys[Math.floor(Math.random() * keys.length)];
    await raw.query(`INSERT INTO ${table}_rawkv SELECT key, value FROM ${n.kv} ON CONFLICT DO NOTHING`);
    await group([
      ["get (PostgresStorage)", () => store.get(pick())],
      ["get (raw pg select)", () => raw.query({ name: "raw-get", text: `SELECT value FROM ${table}_rawkv WHERE key = $1`, values: [pick()] })],
    ]);

    const insertRaw = (t: string) => (i: number) => {
      const r = leaseRow(run, i);
      return raw.query({ name: `raw-lease-${t}`, text: `INSERT INTO ${t} (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((_, j) => `$${j + 1}`).join(", ")})`, values: COLUMNS.map((c) => r[c] ?? null) });
    };
    await group([
      ["lease insert (PostgresLeaseStore)", (i) => store.leases.insert(leaseRow(run, i))],
      ["lease insert (raw pg, same table)", insertRaw(n.leases)],
      ["lease insert (raw pg, no trigger)", insertRaw(`${table}_rawleases`)],
    ]);

    // The counts the trigger kept equal the rows, after all that concurrency.
    const total = await store.leases.count({});
    const actual = (await raw.query<{ n: number }>(`SELECT count(*) AS n FROM ${n.leases}`)).rows[0].n;
    const plan = (await raw.query<{ "QUERY PLAN": string }>(`EXPLAIN SELECT id, due_at FROM ${n.leases} WHERE due_at IS NOT NULL AND due_at <= 1 ORDER BY due_at LIMIT 100`)).rows.map((r) => r["QUERY PLAN"]).join(" | ");
    process.stdout.write(`lease count from counters ${total}, by scan ${actual}\ndue() plan: ${plan}\n`);
    const ratio = (a: string, b: string) => Number((out[a].rate / out[b].rate).toFixed(2));
    process.stdout.write(
      `${JSON.stringify({
        concurrency, seconds, rounds, rates: out, counts_match: total === actual,
        ratios: {
          put_vs_raw: ratio("put (PostgresStorage)", "put (raw pg upsert)"),
          fenced_put_vs_put: ratio("put (PostgresStorage + fence tx)", "put (PostgresStorage)"),
          get_vs_raw: ratio("get (PostgresStorage)", "get (raw pg select)"),
          lease_insert_vs_raw_same_table: ratio("lease insert (PostgresLeaseStore)", "lease insert (raw pg, same table)"),
          lease_insert_vs_raw_no_trigger: ratio("lease insert (PostgresLeaseStore)", "lease insert (raw pg, no trigger)"),
        },
      })}\n`,
    );
  } finally {
    await raw.query(`DROP TABLE IF EXISTS ${table}_fence, ${table}_rawkv, ${table}_rawleases, ${n.kv}, ${n.leases}, ${n.counts}, ${n.migrations} CASCADE; DROP FUNCTION IF EXISTS ${n.countsFn}() CASCADE`).catch(() => undefined);
    await Promise.all([store.close(), fenced.close(), raw.end()]);
    await server?.stop();
  }
}
