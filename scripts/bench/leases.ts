// `npm run bench -- leases [--count N] [--burst 10000]`: writes N leases through the lease manager's
// own code path, restarts a server on the store (separate process) and reports start-up time, RSS and
// how long 10,000 simultaneous expiries take to revoke; the write rate is compared with raw
// better-sqlite3 inserts of the same rows measured in the same run.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import type { LeaseRow } from "../../src/storage/types.js";
import { benchCore } from "./lib/bench-core.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "../../node_modules/.bin/tsx");

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

export async function main(args: string[]): Promise<void> {
  const count = arg(args, "--count", 1_000_000);
  const burst = Math.min(arg(args, "--burst", 10_000), count);
  const burstDelayS = arg(args, "--burst-delay", 10);
  const batch = 5_000;
  const dir = mkdtempSync(join(tmpdir(), "leasehold-bench-leases-"));
  const dbPath = join(dir, "leasehold.db");
  const keyHex = randomBytes(32).toString("hex");
  const keyPath = join(dir, "unseal.key");
  writeFileSync(keyPath, keyHex, { mode: 0o600 });

  // 1. Our path: ExpirationManager.open + activate (encrypts internals, inserts pending, activates).
  const core = benchCore(dbPath, Buffer.from(keyHex, "hex"));
  await core.start();
  await core.initialize(1, 1);
  await core.mounts.enable("secrets", "bench/", { type: "bench-noop" });
  const db = (core.barrier.physical as SqliteStorage).db;
  const creator = { tokenAccessor: "benchaccessor", authMount: "auth/token/", displayName: "token-bench", metadata: { app: "bench" }, entityId: "" };
  const rows: LeaseRow[] = [];
  const regular = count - burst;
  console.log(`writing ${count} leases (${burst} expiring together ${burstDelayS}s after the writes end) into ${dbPath}`);
  const t0 = performance.now();
  for (let i = 0; i < regular; i += batch) {
    db.exec("BEGIN");
    for (let j = i; j < Math.min(i + batch, regular); j++) {
      const ttl = 3600 + ((j * 7919) % (30 * 24 * 3600));
      const lease = await core.leases.open("bench/", `bench/creds/role${j % 50}`, { type: "noop", ttl, renewable: true, internal: { username: `v-token-role-${j}` }, role: `role${j % 50}` }, creator);
      await core.leases.activate(lease.id, "bench/");
      if (j < 1000) rows.push((await core.leases.store.get(lease.id))!);
    }
    db.exec("COMMIT");
    if ((i / batch) % 40 === 0) process.stderr.write(`\r  ${i + batch} / ${count}`);
  }
  const writeEnd = performance.now();
  const writeRate = regular / ((writeEnd - t0) / 1000);
  const provisionalBurstAt = Date.now() + 24 * 3600 * 1000;
  db.exec("BEGIN");
  for (let j = 0; j < burst; j++) {
    const ttl = Math.max(1, Math.round((provisionalBurstAt - Date.now()) / 1000));
    const lease = await core.leases.open("bench/", "bench/creds/burst", { type: "noop", ttl, renewable: false, internal: { username: `v-burst-${j}` }, role: "burst" }, creator);
    await core.leases.activate(lease.id, "bench/");
  }
  db.exec("COMMIT");
  process.stderr.write("\n");
  await core.shutdown();
  console.log(`leasehold path: ${Math.round(writeRate)} leases/s (${((writeEnd - t0) / 1000).toFixed(1)} s), store ${(statSync(dbPath).size / 1048576).toFixed(0)} MiB`);

  // 2. Baseline: raw better-sqlite3 inserts of the same rows (already encrypted), same schema, same batches.
  const rawPath = join(dir, "raw.db");
  const raw = new SqliteStorage({ path: rawPath });
  const cols = Object.keys(rows[0]);
  const insert = raw.db.prepare(`INSERT INTO leases (${cols.join(", ")}) VALUES (${cols.map((c) => `@${c}`).join(", ")})`);
  const r0 = performance.now();
  for (let i = 0; i < regular; i += batch) {
    raw.db.transaction(() => {
      for (let j = i; j < Math.min(i + batch, regular); j++) {
        const template = rows[j % rows.length];
        insert.run({ ...template, id: `bench/creds/role${j % 50}/raw${j}`, state: "active" });
      }
    })();
  }
  const rawRate = regular / ((performance.now() - r0) / 1000);
  await raw.close();
  console.log(`raw better-sqlite3:  ${Math.round(rawRate)} rows/s`);

  // 3. Restart on the store in a fresh process and watch the burst. The burst leases all get one
  // deadline, `--burst-delay` seconds from now, so the restarted server is up before it comes.
  const burstAt = Date.now() + burstDelayS * 1000;
  const setup = new SqliteStorage({ path: dbPath });
  setup.db.prepare("UPDATE leases SET expire_time = ?, due_at = ? WHERE mount = 'bench/' AND role = 'burst'").run(burstAt, burstAt);
  await setup.close();
  console.log("restarting a server on the store (separate process)...");
  const { stdout } = await run(tsx, [join(here, "lib/leases-restart.ts"), dbPath, keyPath, String(burstAt), String(burst)], { maxBuffer: 1 << 20, timeout: 300_000 });
  const child = JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, number>;
  console.log(`ready: ${child.core_ready_ms} ms after opening the store (${child.process_ready_ms} ms since process start, incl. loading Node modules), RSS ${child.rss_mb} MB (peak ${child.peak_rss_mb} MB)`);
  console.log(`burst: ${child.burst_leases} leases expiring at the same instant revoked in ${child.burst_revoke_ms} ms (${child.burst_remaining} left)`);
  rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      benchmark: "leases",
      count,
      write_rate_per_s: Math.round(writeRate),
      raw_insert_rate_per_s: Math.round(rawRate),
      write_ratio: Number((writeRate / rawRate).toFixed(3)),
      ready_ms: child.core_ready_ms,
      process_ready_ms: child.process_ready_ms,
      rss_mb: child.rss_mb,
      peak_rss_mb: child.peak_rss_mb,
      burst: child.burst_leases,
      burst_revoke_ms: child.burst_revoke_ms,
      burst_remaining: child.burst_remaining,
    }),
  );
}
