// High availability on PostgreSQL (`ha_enabled`): what request forwarding costs, how long a
// failover takes, and the lease manager on PostgreSQL at scale.
//
//   npm run bench -- ha [--count 1000000] [--duration 10] [--concurrency 16] [--rounds 2]
//                       [--repeats 3] [--lock-lifetime 15s] [--burst 10000] [--burst-delay 15]
//                       [--raw-count N] [--fsync-off] [--parts throughput,failover,leases]
//
// 1. throughput: a 3-node cluster (`leasehold server` processes, test/helpers/ha-cluster.ts).
//    Dynamic PostgreSQL credentials (`GET database/creds/bench`, a 10 s TTL role on the bench
//    PostgreSQL) and KV v2 reads of one secret, `--concurrency` requests in flight for `--duration`
//    seconds each, through the active node and through a standby (which relays to the active over
//    mutual TLS). standby/active is the forwarding overhead. Baseline for context, in the same
//    alternating rounds: the same requests on one node without HA on PostgreSQL storage. Then KV
//    reads one at a time on each: the latency forwarding adds when nothing queues.
// 2. failover: a client writes a KV secret in a loop through the two nodes that stay; the active
//    is killed (kill -9), sent SIGTERM, or steps down (sys/step-down); time from then to the first
//    successful write, `--repeats` times each (killed nodes are started again between runs).
//    Standbys campaign for the lock every lifetime/10 (at least 100 ms), so `--lock-lifetime`
//    (default 15s, the server's default) bounds these figures.
// 3. leases: N leases written through the lease manager (ExpirationManager.open + activate) on
//    PostgresStorage, `--concurrency` at a time, against raw `pg` single-row inserts of the same
//    rows into a lease table of the same shape (same DDL, same trigger); then two HA nodes on
//    that store, kill -9 of the active, time until the standby answers sys/health 200 and its
//    RSS; and `--burst` of those leases (no-op engine) expiring at one instant after the takeover:
//    time from that instant until the lease table holds none of them.
//
// Every node process and the embedded PostgreSQL it starts are stopped at the end, on error and on
// Ctrl-C (load generators end by themselves after --duration). The last line of output is one JSON
// object with the figures.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import pino from "pino";
import { builtinPlugins } from "../../plugins/index.js";
import { Core } from "../../src/core/core.js";
import { pgTypes } from "../../src/storage/postgres-schema.js";
import { PostgresStorage } from "../../src/storage/postgres.js";
import { freePort } from "../../test/database/helpers.js";
import { spawnCli, waitForHealth, type CliProcess } from "../../test/helpers/cli-process.js";
import { createHaCluster, type HaCluster, type HaClusterNode } from "../../test/helpers/ha-cluster.js";
import { cpuSecondsOf, healthStatus, installCleanupOnSignals, killTracked, memoryOf, sleep, startBenchNode, track, trackDir, trackProcess } from "./lib/ha-nodes.js";
import { noopEngine } from "./lib/noop-engine.js";
import { startBenchPostgres } from "./lib/postgres.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "../../node_modules/.bin/tsx");

/** The issue's goals. */
const GOALS = {
  failoverKillMs: 5_000,
  failoverGracefulMs: 1_000,
  /** Forwarding may cost at most this share of a request (standby/active ≥ 0.70). */
  forwardingCost: 0.3,
  takeoverMs: 3_000,
  takeoverAtLeases: 1_000_000,
  burstMs: 5_000,
};

interface LoadResult {
  ops: number;
  errors: number;
  seconds: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  first_error?: string;
}

interface Options {
  count: number;
  duration: number;
  concurrency: number;
  rounds: number;
  repeats: number;
  lockLifetime: string;
  burst: number;
  burstDelayS: number;
  /** Rows of the raw baseline (default: as many as the leasehold path wrote). */
  rawCount?: number;
  /** PostgreSQL with fsync=off (how the tests run it): shows what durability costs. */
  fsyncOff: boolean;
  parts: Set<string>;
}

function parseOptions(args: string[]): Options {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = value(name) === undefined ? dflt : Number(value(name));
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${value(name)}`);
    return v;
  };
  const count = Math.round(num("--count", 1_000_000));
  const parts = new Set((value("--parts") ?? "throughput,failover,leases").split(",").map((p) => p.trim()));
  for (const p of parts) if (!["throughput", "failover", "leases"].includes(p)) throw new Error(`--parts: unknown part ${JSON.stringify(p)} (throughput, failover, leases)`);
  return {
    count,
    duration: num("--duration", 10),
    concurrency: Math.round(num("--concurrency", 16)),
    rounds: Math.round(num("--rounds", 2)),
    repeats: Math.round(num("--repeats", 3)),
    lockLifetime: value("--lock-lifetime") ?? "15s",
    // At least half of the leases are regular ones (the write-rate figures come from them).
    burst: Math.min(Math.round(num("--burst", 10_000)), Math.floor(count / 2)),
    burstDelayS: num("--burst-delay", 15),
    rawCount: value("--raw-count") === undefined ? undefined : Math.round(num("--raw-count", 1)),
    fsyncOff: args.includes("--fsync-off"),
    parts,
  };
}

const say = (s: string) => process.stdout.write(`${s}\n`);
const progress = (s: string) => process.stderr.write(`  ${s}\n`);
const pass = (ok: boolean) => (ok ? "PASS" : "FAIL");
const round2 = (x: number) => Number(x.toFixed(2));
const round3 = (x: number) => Number(x.toFixed(3));

/** min, median, max of a few numbers. */
function spread(xs: number[]): { min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] };
}

/** Adds up rounds: total operations over total time, the median p50 and p99, the first error. */
function combine(results: LoadResult[]): LoadResult {
  const ops = results.reduce((a, r) => a + r.ops, 0);
  const seconds = results.reduce((a, r) => a + r.seconds, 0);
  const mid = (k: "p50_ms" | "p99_ms") => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  return { ops, seconds, rate: ops / seconds, errors: results.reduce((a, r) => a + r.errors, 0), p50_ms: mid("p50_ms"), p99_ms: mid("p99_ms"), first_error: results.find((r) => r.first_error)?.first_error };
}

async function load(base: string, token: string, seconds: number, concurrency: number, path: string): Promise<LoadResult> {
  const { stdout } = await run(tsx, [join(here, "lib/ha-load.ts"), base, token, String(seconds), String(concurrency), path], { maxBuffer: 1 << 20, timeout: (seconds + 120) * 1000 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

/** A JSON API call that must succeed. */
async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}/v1/${path}`, { method, redirect: "manual", headers: { "X-Vault-Token": token, "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} on ${base}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A fresh database on the bench server; returns its URL. */
async function createDatabase(admin: pg.Client, serverUrl: string, name: string): Promise<string> {
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Mounts the database engine (a 10 s TTL role on `targetUrl`) and KV v2 with one secret. */
async function setUpEngines(base: string, token: string, targetUrl: string, concurrency: number): Promise<void> {
  const target = new URL(targetUrl);
  await api(base, token, "POST", "sys/mounts/database", { type: "database" });
  await api(base, token, "POST", "database/config/bench", {
    plugin_name: "postgresql-database-plugin",
    connection_url: `postgresql://{{username}}:{{password}}@${target.host}${target.pathname}`,
    username: decodeURIComponent(target.username),
    password: decodeURIComponent(target.password),
    allowed_roles: "bench",
    max_open_connections: concurrency,
  });
  await api(base, token, "POST", "database/roles/bench", {
    db_name: "bench",
    creation_statements: `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
    default_ttl: "10s",
    max_ttl: "1m",
  });
  await api(base, token, "POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  for (let attempt = 0; ; attempt++) {
    try {
      await api(base, token, "POST", "secret/data/bench", { data: { username: "app", password: randomBytes(16).toString("hex"), note: "x".repeat(200) } });
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(250);
    }
  }
}

/** One `leasehold server` without HA, on PostgreSQL storage, static seal; initialised. */
async function startSingleNode(dir: string, dbUrl: string): Promise<{ base: string; token: string; child: CliProcess }> {
  const port = await freePort();
  const keyFile = join(dir, "single-seal.key");
  writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
  const config = join(dir, "single.hcl");
  writeFileSync(
    config,
    `storage "postgresql" {\n  connection_url = ${JSON.stringify(dbUrl)}\n}\n\nlistener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n\nseal "static" {\n  key_file = ${JSON.stringify(keyFile)}\n}\n\nlog_level = "warn"\n`,
  );
  const base = `http://127.0.0.1:${port}`;
  const child = spawnCli(["server", `-config=${config}`]);
  const { status } = await waitForHealth(base, child, 120_000);
  if (status !== 501) throw new Error(`the single node answered sys/health ${status}, expected 501 (not initialised)`);
  const init = (await api(base, "", "PUT", "sys/init", { recovery_shares: 1, recovery_threshold: 1 })) as { root_token: string };
  for (let i = 0; (await healthStatus(base, 1000)) !== 200; i++) {
    if (i > 200) throw new Error("the single node did not become ready after sys/init");
    await sleep(50);
  }
  return { base, token: init.root_token, child };
}

// ---- 1. throughput -----------------------------------------------------------------------------

interface ThroughputFigures {
  creds: { active: LoadResult; standby: LoadResult; single?: LoadResult };
  kv: { active: LoadResult; standby: LoadResult; single?: LoadResult };
  /** KV reads one at a time (no queueing): the latency forwarding adds. */
  kvSerial: { active: LoadResult; standby: LoadResult; single?: LoadResult };
}

async function throughput(o: Options, cluster: HaCluster, token: string, single: { base: string; token: string } | undefined): Promise<ThroughputFigures> {
  const { node: active } = await cluster.waitForActive(30_000);
  const standby = cluster.nodes.find((n) => n !== active && n.child)!;
  const targets: [string, string, string][] = [
    ["active", active.base, token],
    ["standby", standby.base, token],
    ...(single ? [["single", single.base, single.token] as [string, string, string]] : []),
  ];
  const ops: [string, string][] = [
    ["creds", "/v1/database/creds/bench"],
    ["kv", "/v1/secret/data/bench"],
  ];
  say(`throughput: ${o.concurrency} in flight, ${o.rounds} alternating rounds of ${o.duration} s per figure; active ${active.name}, standby ${standby.name}${single ? ", single = one node without HA (PostgreSQL storage)" : ""}`);
  // Warm-up: connections, JIT, the standby's forwarding connections, the load generator's compile.
  for (const [, base, tok] of targets) for (const [, path] of ops) await load(base, tok, 1, o.concurrency, path);
  const results: Record<string, Record<string, LoadResult[]>> = {};
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const [opName, path] of ops) {
      for (const [name, base, tok] of order) {
        const r = await load(base, tok, o.duration, o.concurrency, path);
        ((results[opName] ??= {})[name] ??= []).push(r);
        progress(`round ${round + 1} ${opName} via ${name}: ${r.rate.toFixed(0)}/s${r.errors ? ` (${r.errors} errors: ${r.first_error})` : ""}`);
      }
    }
  }
  const pick = (op: string) => ({ active: combine(results[op].active), standby: combine(results[op].standby), single: results[op].single ? combine(results[op].single) : undefined });
  // Latency of one KV read at a time: what forwarding adds to a request when nothing queues.
  const serial: Record<string, LoadResult> = {};
  for (const [name, base, tok] of targets) serial[name] = await load(base, tok, Math.min(o.duration, 5), 1, "/v1/secret/data/bench");
  return { creds: pick("creds"), kv: pick("kv"), kvSerial: { active: serial.active, standby: serial.standby, single: serial.single } };
}

// ---- 2. failover -------------------------------------------------------------------------------

type FailoverMode = "kill -9" | "SIGTERM" | "step-down";

/** One failover: ms from the event to the first successful KV write through a surviving node, and to the new active's sys/health 200. */
async function failoverOnce(cluster: HaCluster, token: string, mode: FailoverMode): Promise<{ writeMs: number; healthMs: number; newActive: string }> {
  const { node: active } = await cluster.waitForActive(30_000);
  const survivors = cluster.nodes.filter((n) => n !== active && n.child);
  let stop = false;
  let eventAt = Infinity;
  let firstWrite: number | undefined;
  const succeeded = new Set<HaClusterNode>();
  let n = 0;
  const writer = async (node: HaClusterNode) => {
    while (!stop) {
      const t = performance.now();
      let ok = false;
      try {
        const res = await fetch(`${node.base}/v1/secret/data/failover`, {
          method: "POST",
          redirect: "manual",
          headers: { "X-Vault-Token": token, "Content-Type": "application/json" },
          body: JSON.stringify({ data: { n: ++n } }),
          signal: AbortSignal.timeout(2_000),
        });
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {
        ok = false;
      }
      if (ok) {
        succeeded.add(node);
        if (t >= eventAt && firstWrite === undefined) firstWrite = performance.now();
      }
      await sleep(ok ? 5 : 10); // a failing write answers at once: do not take the CPU the takeover needs
    }
  };
  const writers = survivors.map(writer);
  try {
    // Steady state first: both survivors write (through the active).
    const ready = Date.now() + 15_000;
    while (succeeded.size < survivors.length) {
      if (Date.now() > ready) throw new Error(`failover (${mode}): writes through ${survivors.map((s) => s.name).join(", ")} did not succeed before the event`);
      await sleep(20);
    }
    await sleep(200);
    eventAt = performance.now();
    if (mode === "kill -9") active.signal("SIGKILL");
    else if (mode === "SIGTERM") active.signal("SIGTERM");
    else await api(active.base, token, "PUT", "sys/step-down");
    let healthMs: number | undefined;
    let newActive = "";
    const deadline = eventAt + 60_000;
    while ((firstWrite === undefined || healthMs === undefined) && performance.now() < deadline) {
      if (healthMs === undefined) {
        const statuses = await Promise.all(survivors.map((s) => healthStatus(s.base, 500)));
        const i = statuses.indexOf(200);
        if (i >= 0) {
          healthMs = performance.now() - eventAt;
          newActive = survivors[i].name;
        }
      }
      await sleep(10);
    }
    if (firstWrite === undefined || healthMs === undefined) throw new Error(`failover (${mode}): no successful write through ${survivors.map((s) => s.name).join(", ")} within 60 s`);
    return { writeMs: firstWrite - eventAt, healthMs, newActive };
  } finally {
    stop = true;
    await Promise.all(writers);
    if (mode !== "step-down" && eventAt !== Infinity) {
      // The node comes back (as a standby) for the next run.
      await active.stopped();
      await sleep(0);
      await active.start();
      track(cluster.nodes);
    }
    await cluster.waitForActive(60_000);
  }
}

async function failovers(o: Options, cluster: HaCluster, token: string): Promise<Record<FailoverMode, { writeMs: number[]; healthMs: number[] }>> {
  say(`failover: ${cluster.nodes.length} nodes, ha_lock_lifetime ${o.lockLifetime}, ${o.repeats} runs each; client writing a KV secret through the two other nodes`);
  const out = {} as Record<FailoverMode, { writeMs: number[]; healthMs: number[] }>;
  for (let i = 0; i < o.repeats; i++) {
    for (const mode of ["kill -9", "SIGTERM", "step-down"] as FailoverMode[]) {
      const r = await failoverOnce(cluster, token, mode);
      const entry = (out[mode] ??= { writeMs: [], healthMs: [] });
      entry.writeMs.push(Math.round(r.writeMs));
      entry.healthMs.push(Math.round(r.healthMs));
      progress(`${mode} run ${i + 1}: first write after ${Math.round(r.writeMs)} ms, ${r.newActive} sys/health 200 after ${Math.round(r.healthMs)} ms`);
      await sleep(500);
    }
  }
  return out;
}

// ---- 3. leases on PostgreSQL ---------------------------------------------------------------------

interface LeaseFigures {
  writeRate: number;
  rawRate: number;
  writeSeconds: number;
  firstReadyMs: number;
  takeoverMs: number;
  leaseTableMb: number;
  standbyRssBeforeMb?: number;
  rssAfterTakeoverMb?: number;
  peakRssMb?: number;
  leasesInStore: number;
  burst: number;
  burstRevokeMs: number;
  burstFirstRevokedMs?: number;
  /** CPU seconds the new active used from the burst's instant to the last revocation. */
  burstCpuS?: number;
  burstRemaining: number;
  burstStartedLateMs: number;
}

/** Runs `op(i)` for i in [0, total) with `concurrency` in flight; returns the seconds taken. */
async function inParallel(total: number, concurrency: number, op: (i: number) => Promise<unknown>, label: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const step = Math.max(1, Math.round(total / 20));
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        await op(i);
        if ((i + 1) % step === 0) process.stderr.write(`\r  ${label}: ${i + 1} / ${total}`);
      }
    }),
  );
  process.stderr.write("\n");
  return (performance.now() - t0) / 1000;
}

async function leases(o: Options, dbUrl: string, lockLifetime: string): Promise<LeaseFigures> {
  const keyHex = randomBytes(32).toString("hex");
  const regular = o.count - o.burst;
  say(`leases: ${o.count} leases (${o.burst} of them expiring together after the takeover) on PostgreSQL, ${o.concurrency} writes in flight`);

  // 1. Our path: ExpirationManager.open + activate on PostgresStorage (no HA fence: one writer).
  const store = await PostgresStorage.open({ connectionUrl: dbUrl, maxParallel: o.concurrency });
  const core = new Core({
    physical: store,
    plugins: [...builtinPlugins, noopEngine],
    logger: pino({ level: process.env.LEASEHOLD_BENCH_LOG ?? "warn" }),
    staticSealKey: Buffer.from(keyHex, "hex"),
    defaultLeaseTtl: 3600,
    maxLeaseTtl: 40 * 24 * 3600,
  });
  const names = store.names;
  let writeSeconds: number;
  try {
    await core.start();
    await core.initialize(1, 1);
    await core.mounts.enable("secrets", "bench/", { type: "bench-noop" });
    const creator = { tokenAccessor: "benchaccessor", authMount: "auth/token/", displayName: "token-bench", metadata: { app: "bench" }, entityId: "" };
    writeSeconds = await inParallel(
      regular,
      o.concurrency,
      async (j) => {
        const ttl = 3600 + ((j * 7919) % (30 * 24 * 3600));
        const lease = await core.leases.open("bench/", `bench/creds/role${j % 50}`, { type: "noop", ttl, renewable: true, internal: { username: `v-token-role-${j}` }, role: `role${j % 50}` }, creator);
        await core.leases.activate(lease.id, "bench/");
      },
      "leasehold path",
    );
    // The burst: provisional deadline a day away, moved to one instant just before the takeover.
    await inParallel(
      o.burst,
      o.concurrency,
      async (j) => {
        const lease = await core.leases.open("bench/", "bench/creds/burst", { type: "noop", ttl: 24 * 3600, renewable: false, internal: { username: `v-burst-${j}` }, role: "burst" }, creator);
        await core.leases.activate(lease.id, "bench/");
      },
      "burst leases",
    );
  } finally {
    await core.shutdown();
  }
  const writeRate = regular / writeSeconds;
  say(`  leasehold path (open + activate):   ${Math.round(writeRate)} leases/s (${writeSeconds.toFixed(1)} s)`);

  // 2. Baseline: raw pg single-row inserts of the same rows (as stored: encrypted) into a lease
  // table made by the same DDL (a second PostgresStorage table set, count trigger included).
  const rawPool = new pg.Pool({ connectionString: dbUrl, max: o.concurrency, types: pgTypes });
  rawPool.on("error", () => undefined);
  const rawStore = await PostgresStorage.open({ connectionUrl: dbUrl, table: "bench_raw_kv", maxParallel: 1 });
  const rawNames = rawStore.names;
  await rawStore.close();
  let rawRate: number;
  let leaseTableBytes = "0";
  try {
    const sample = (await rawPool.query<Record<string, unknown>>(`SELECT * FROM ${names.leases} WHERE role <> 'burst' LIMIT 1000`)).rows;
    const cols = Object.keys(sample[0]);
    const text = `INSERT INTO ${rawNames.leases} (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`;
    const rawRows = Math.min(o.rawCount ?? regular, regular);
    const rawSeconds = await inParallel(
      rawRows,
      o.concurrency,
      (j) => {
        const row: Record<string, unknown> = { ...sample[j % sample.length], id: `bench/creds/role${j % 50}/raw${j}` };
        return rawPool.query({ name: "raw-lease-insert", text, values: cols.map((c) => row[c]) });
      },
      "raw pg",
    );
    rawRate = rawRows / rawSeconds;
    say(`  raw pg INSERT, same rows and DDL:   ${Math.round(rawRate)} rows/s (${rawRows} rows, ${rawSeconds.toFixed(1)} s)  ratio ${(writeRate / rawRate).toFixed(3)}`);
    await rawPool.query(`DROP TABLE IF EXISTS ${rawNames.kv}, ${rawNames.leases}, ${rawNames.counts}, ${rawNames.migrations} CASCADE; DROP FUNCTION IF EXISTS ${rawNames.countsFn}() CASCADE`);
    await rawPool.query(`VACUUM ANALYZE ${names.leases}`);
    leaseTableBytes = (await rawPool.query<{ n: string }>(`SELECT pg_total_relation_size('${names.leases}')::text AS n`)).rows[0].n;
    say(`  lease table with its indexes: ${(Number(leaseTableBytes) / 1048576).toFixed(0)} MiB`);
  } catch (err) {
    await rawPool.end();
    throw err;
  }

  // 3. Two HA nodes (the real server plus the no-op engine) on that store; kill -9 the active.
  const cluster = await createHaCluster({ dbUrl, nodes: 2, lockLifetime });
  trackDir(cluster.dir);
  writeFileSync(cluster.keyFile, keyHex + "\n", { mode: 0o600 });
  const burstCount = async () => (await rawPool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${names.leases} WHERE mount = 'bench/' AND role = 'burst'`)).rows[0].n;
  try {
    const [first, second] = cluster.nodes;
    const t0 = performance.now();
    const s1 = await startBenchNode(first);
    track(cluster.nodes);
    for (let s = s1; s !== 200; s = await healthStatus(first.base, 1000)) {
      if (performance.now() - t0 > 600_000) throw new Error(`${first.name} did not become active (sys/health ${s})`);
      await sleep(50);
    }
    const firstReadyMs = performance.now() - t0;
    say(`  ${first.name} active after ${Math.round(firstReadyMs)} ms from process start (loads ${o.count} leases), RSS ${memoryOf(first.child?.proc.pid)?.rssMb} MB`);
    const s2 = await startBenchNode(second);
    track(cluster.nodes);
    if (s2 !== 429) throw new Error(`${second.name} answered sys/health ${s2}, expected 429 (standby)`);
    await sleep(1_000);
    const standbyRssBefore = memoryOf(second.child?.proc.pid)?.rssMb;

    // The burst's instant: --burst-delay seconds from now, written before the new active loads
    // its window of deadlines (its clock reads the lease table when it becomes active).
    const burstAt = Date.now() + o.burstDelayS * 1000;
    await rawPool.query(`UPDATE ${names.leases} SET expire_time = $1, due_at = $1 WHERE mount = 'bench/' AND role = 'burst'`, [burstAt]);
    const burstBefore = await burstCount();

    const killAt = performance.now();
    first.signal("SIGKILL");
    let takeoverMs: number | undefined;
    while (takeoverMs === undefined) {
      if ((await healthStatus(second.base, 1000)) === 200) takeoverMs = performance.now() - killAt;
      else if (performance.now() - killAt > 600_000) throw new Error(`${second.name} did not take over within 600 s`);
      else await sleep(10);
    }
    const rssAfter = memoryOf(second.child?.proc.pid)?.rssMb;
    const leasesInStore = (await rawPool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${names.leases}`)).rows[0].n;
    say(`  kill -9 of ${first.name}: ${second.name} active (sys/health 200) after ${Math.round(takeoverMs)} ms, RSS ${rssAfter} MB (${standbyRssBefore} MB as standby)`);

    // 4. The burst.
    const burstStartedLateMs = Math.max(0, Date.now() - burstAt);
    if (burstStartedLateMs > 0) say(`  WARNING: the takeover ended ${burstStartedLateMs} ms after the burst's instant: raise --burst-delay`);
    while (Date.now() < burstAt) await sleep(5);
    const cpuBefore = cpuSecondsOf(second.child?.proc.pid);
    let remaining = burstBefore;
    let firstRevokedMs: number | undefined;
    while (remaining > 0 && Date.now() - burstAt < 300_000) {
      await sleep(20);
      remaining = await burstCount();
      if (remaining < burstBefore) firstRevokedMs ??= Date.now() - burstAt;
    }
    const burstRevokeMs = Date.now() - burstAt;
    const mem = memoryOf(second.child?.proc.pid);
    const cpuAfter = cpuSecondsOf(second.child?.proc.pid);
    const burstCpuS = cpuBefore !== undefined && cpuAfter !== undefined ? round2(cpuAfter - cpuBefore) : undefined;
    say(`  burst: ${burstBefore} leases expiring at one instant revoked ${remaining ? `only partly (${remaining} left)` : "all"} ${burstRevokeMs} ms after it (the first ${firstRevokedMs} ms after it: ${Math.round(burstBefore / Math.max(0.001, (burstRevokeMs - (firstRevokedMs ?? 0)) / 1000))} revocations/s), peak RSS ${mem?.peakMb} MB, ${burstCpuS} s of the node's CPU`);
    return {
      writeRate,
      rawRate,
      writeSeconds,
      firstReadyMs,
      takeoverMs,
      leaseTableMb: Math.round(Number(leaseTableBytes) / 1048576),
      standbyRssBeforeMb: standbyRssBefore,
      rssAfterTakeoverMb: rssAfter,
      peakRssMb: mem?.peakMb,
      leasesInStore,
      burst: burstBefore,
      burstRevokeMs,
      burstFirstRevokedMs: firstRevokedMs,
      burstCpuS,
      burstRemaining: remaining,
      burstStartedLateMs,
    };
  } finally {
    await cluster.destroy();
    await rawPool.end();
  }
}

// ---- main --------------------------------------------------------------------------------------

export async function main(args: string[]): Promise<void> {
  const o = parseOptions(args);
  installCleanupOnSignals();
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "leasehold-bench-ha-"));
  trackDir(dir);
  const postgres = await startBenchPostgres("leasehold-bench-ha", ["-c", "max_connections=400", ...(o.fsyncOff ? ["-c", "fsync=off"] : [])]);
  say(`PostgreSQL: embedded, ${o.fsyncOff ? "fsync=off" : "default durability (fsync on)"}`);
  const admin = new pg.Client({ connectionString: postgres.url });
  admin.on("error", () => undefined);
  let cluster: HaCluster | undefined;
  let single: CliProcess | undefined;
  const out: Record<string, unknown> = { benchmark: "ha", count: o.count, duration: o.duration, concurrency: o.concurrency, rounds: o.rounds, repeats: o.repeats, lock_lifetime: o.lockLifetime, postgres: o.fsyncOff ? "embedded-fsync-off" : "embedded-default" };
  /** [key in the JSON, what was measured, met, the goal]. */
  const goals: [string, string, boolean, string][] = [];
  try {
    await admin.connect();
    const tag = randomBytes(3).toString("hex");
    if (o.parts.has("throughput") || o.parts.has("failover")) {
      const haUrl = await createDatabase(admin, postgres.url, `bench_ha_${tag}`);
      cluster = await createHaCluster({ dbUrl: haUrl, nodes: 3, lockLifetime: o.lockLifetime });
      trackDir(cluster.dir);
      progress("starting 3 HA nodes...");
      const startAll = cluster.startAll();
      // Track as they come up: startAll resolves only once all three answer.
      const tracking = setInterval(() => track(cluster!.nodes), 100);
      const token = await startAll.finally(() => clearInterval(tracking));
      track(cluster.nodes);
      const { node: active } = await cluster.waitForActive(30_000);
      const targetUrl = await createDatabase(admin, postgres.url, `bench_target_${tag}`);
      await setUpEngines(active.base, token, targetUrl, o.concurrency);

      if (o.parts.has("throughput")) {
        const singleUrl = await createDatabase(admin, postgres.url, `bench_single_${tag}`);
        const s = await startSingleNode(dir, singleUrl);
        single = s.child;
        trackProcess(single.proc);
        await setUpEngines(s.base, s.token, targetUrl, o.concurrency);
        const t = await throughput(o, cluster, token, s);
        single.proc.kill("SIGTERM");
        await single.exited;
        single = undefined;
        const line = (label: string, r: LoadResult, extra = "") =>
          say(`${label.padEnd(34)} ${r.rate.toFixed(0).padStart(6)}/s  p50 ${r.p50_ms.toFixed(2)} ms  p99 ${r.p99_ms.toFixed(2)} ms${r.errors ? `  ${r.errors} errors: ${r.first_error}` : ""}${extra}`);
        const figures: Record<string, unknown> = {};
        for (const op of ["creds", "kv"] as const) {
          const f = t[op];
          const ratio = f.standby.rate / f.active.rate;
          const label = op === "creds" ? "GET database/creds (10 s TTL)" : "GET secret/data (KV v2 read)";
          if (f.single) line(`${label} single node, no HA`, f.single);
          line(`${label} via active`, f.active, f.single ? `  ratio to single ${(f.active.rate / f.single.rate).toFixed(3)}` : "");
          line(`${label} via standby`, f.standby, `  ratio to active ${ratio.toFixed(3)}`);
          const cost = 1 - ratio;
          goals.push([`forwarding_${op}`, `forwarding cost, ${op}: ${(cost * 100).toFixed(1)}% of throughput (p50 ${f.active.p50_ms.toFixed(2)} -> ${f.standby.p50_ms.toFixed(2)} ms)`, cost < GOALS.forwardingCost, `< ${GOALS.forwardingCost * 100}%`]);
          figures[op] = {
            active_per_s: Math.round(f.active.rate),
            standby_per_s: Math.round(f.standby.rate),
            single_per_s: f.single ? Math.round(f.single.rate) : undefined,
            standby_to_active: round3(ratio),
            active_to_single: f.single ? round3(f.active.rate / f.single.rate) : undefined,
            p50_ms: { active: round2(f.active.p50_ms), standby: round2(f.standby.p50_ms), single: f.single ? round2(f.single.p50_ms) : undefined },
            p99_ms: { active: round2(f.active.p99_ms), standby: round2(f.standby.p99_ms), single: f.single ? round2(f.single.p99_ms) : undefined },
            errors: f.active.errors + f.standby.errors + (f.single?.errors ?? 0),
          };
        }
        const k = t.kvSerial;
        say(
          `GET secret/data, 1 in flight: p50 ${k.active.p50_ms.toFixed(2)} ms via active, ${k.standby.p50_ms.toFixed(2)} ms via standby (+${(k.standby.p50_ms - k.active.p50_ms).toFixed(2)} ms, ratio ${(k.standby.p50_ms / k.active.p50_ms).toFixed(2)})` +
            (k.single ? `, ${k.single.p50_ms.toFixed(2)} ms on a single node` : ""),
        );
        figures.kv_one_in_flight_p50_ms = { active: round2(k.active.p50_ms), standby: round2(k.standby.p50_ms), single: k.single ? round2(k.single.p50_ms) : undefined };
        out.throughput = figures;
      }

      if (o.parts.has("failover")) {
        const f = await failovers(o, cluster, token);
        const figures: Record<string, unknown> = {};
        for (const [mode, r] of Object.entries(f) as [FailoverMode, { writeMs: number[]; healthMs: number[] }][]) {
          const w = spread(r.writeMs);
          const h = spread(r.healthMs);
          say(`failover ${mode.padEnd(9)} first write ms min ${w.min} median ${w.median} max ${w.max}; new active sys/health 200 ms min ${h.min} median ${h.median} max ${h.max}`);
          const limit = mode === "kill -9" ? GOALS.failoverKillMs : GOALS.failoverGracefulMs;
          goals.push([`failover_${mode === "kill -9" ? "kill" : mode === "SIGTERM" ? "sigterm" : "step_down"}`, `failover after ${mode}: max ${w.max} ms`, w.max < limit, `< ${limit / 1000} s`]);
          figures[mode === "kill -9" ? "kill" : mode === "SIGTERM" ? "sigterm" : "step_down"] = { write_ms: r.writeMs, write: w, health_ms: r.healthMs };
        }
        out.failover = figures;
      }
      await cluster.destroy();
      cluster = undefined;
    }

    if (o.parts.has("leases")) {
      const leaseUrl = await createDatabase(admin, postgres.url, `bench_leases_${tag}`);
      const l = await leases(o, leaseUrl, o.lockLifetime);
      const scaled = o.count < GOALS.takeoverAtLeases ? ` (at ${o.count} leases; the goal is for ${GOALS.takeoverAtLeases})` : "";
      goals.push(["takeover", `takeover with ${o.count} leases: ${Math.round(l.takeoverMs)} ms${scaled}`, l.takeoverMs < GOALS.takeoverMs, `< ${GOALS.takeoverMs / 1000} s`]);
      const burstNote = l.burst < 10_000 ? ` (at ${l.burst}; the goal is for 10000)` : "";
      goals.push(["burst", `${l.burst} simultaneous expiries revoked in ${l.burstRevokeMs} ms${l.burstRemaining ? ` (${l.burstRemaining} left)` : ""}${burstNote}`, l.burstRemaining === 0 && l.burstRevokeMs < GOALS.burstMs, `< ${GOALS.burstMs / 1000} s`]);
      out.leases = {
        write_rate_per_s: Math.round(l.writeRate),
        raw_insert_rate_per_s: Math.round(l.rawRate),
        write_ratio: round3(l.writeRate / l.rawRate),
        lease_table_mb: l.leaseTableMb,
        first_active_ms: Math.round(l.firstReadyMs),
        takeover_ms: Math.round(l.takeoverMs),
        standby_rss_mb: l.standbyRssBeforeMb,
        rss_after_takeover_mb: l.rssAfterTakeoverMb,
        peak_rss_mb: l.peakRssMb,
        leases_in_store: l.leasesInStore,
        burst: l.burst,
        burst_revoke_ms: l.burstRevokeMs,
        burst_first_revoked_ms: l.burstFirstRevokedMs,
        burst_node_cpu_s: l.burstCpuS,
        burst_remaining: l.burstRemaining,
        burst_started_late_ms: l.burstStartedLateMs,
      };
    }
  } finally {
    if (single) single.proc.kill("SIGKILL");
    await cluster?.destroy().catch(() => undefined);
    killTracked();
    await admin.end().catch(() => undefined);
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  say("goals:");
  for (const [, what, ok, goal] of goals) say(`  ${pass(ok)}  ${what}  (goal ${goal})`);
  out.goals = Object.fromEntries(goals.map(([key, , ok]) => [key, ok]));
  out.total_seconds = Math.round((performance.now() - t0) / 1000);
  say(JSON.stringify(out));
}
