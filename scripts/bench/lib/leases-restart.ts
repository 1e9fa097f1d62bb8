// Child process of the `leases` benchmark: starts a server on an existing store (auto-unsealed by
// the static key) and reports how long until it answers, its RSS, and how long the burst of
// simultaneous expiries takes to revoke. Prints one JSON line.
import "reflect-metadata";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { listen } from "../../../src/server/listen.js";
import { buildApp } from "../../../src/server/app.js";
import { benchCore } from "./bench-core.js";

const [dbPath, keyPath, burstAtArg, burstCountArg] = process.argv.slice(2);
const burstAt = Number(burstAtArg);
const burstCount = Number(burstCountArg);
const coreStart = performance.now();
const core = benchCore(dbPath, Buffer.from(readFileSync(keyPath, "utf8").trim(), "hex"));
await core.start();
const listener = await listen(buildApp(core, core.logger), { address: "127.0.0.1:0" });
const health = await fetch(`${listener.url}/v1/sys/health`);
if (health.status !== 200) throw new Error(`server not healthy after start: ${health.status}`);
const readyMs = performance.now();
const rssMb = process.memoryUsage().rss / 1048576;
const total = await core.leases.store.count({});

// Wait for the burst deadline, then measure until every burst lease is gone.
let remaining = await core.leases.store.count({ mount: "bench/", role: "burst" });
const before = remaining;
while (Date.now() < burstAt) await new Promise((r) => setTimeout(r, 20));
const burstStart = Date.now();
let peakRss = process.memoryUsage().rss;
while (remaining > 0 && Date.now() - burstStart < 120_000) {
  await new Promise((r) => setTimeout(r, 20));
  remaining = await core.leases.store.count({ mount: "bench/", role: "burst" });
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const burstMs = Date.now() - burstStart;
await listener.close();
await core.shutdown();
process.stdout.write(
  JSON.stringify({
    process_ready_ms: Math.round(readyMs), // since this process started (includes Node and module loading)
    core_ready_ms: Math.round(readyMs - coreStart), // opening the store, unsealing, scheduling, listening
    rss_mb: Math.round(rssMb),
    peak_rss_mb: Math.round(peakRss / 1048576),
    leases_in_store: total,
    burst_leases: before,
    burst_expected: burstCount,
    burst_remaining: remaining,
    burst_revoke_ms: burstMs,
  }) + "\n",
);
