// HTTP throughput: sys/health and a KV v2 read through the real server, against a bare hono
// hello-world on @hono/node-server measured in the same run with the same load generator.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Hono } from "hono";
import pino from "pino";
import { listen } from "../../src/server/listen.js";
import { startDevServer } from "../../src/server/run.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "../../node_modules/.bin/tsx");

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
}

async function load(url: string, seconds: number, concurrency: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const args = [join(here, "lib/load.ts"), url, String(seconds), String(concurrency), ...Object.entries(headers).map(([k, v]) => `${k}=${v}`)];
  const { stdout } = await run(tsx, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

export async function main(args: string[]): Promise<void> {
  const seconds = Number(args[args.indexOf("--seconds") + 1] || 5) || 5;
  const concurrency = Number(args[args.indexOf("--concurrency") + 1] || 32) || 32;

  const hello = new Hono();
  hello.get("/", (c) => c.json({ hello: "world" }));
  const baseline = await listen(hello, { address: "127.0.0.1:0" });

  const server = await startDevServer({ address: "127.0.0.1:0", rootTokenId: "bench-root", logger: pino({ level: "silent" }) });
  const write = await fetch(`${server.url}/v1/secret/data/bench`, {
    method: "POST",
    headers: { "X-Vault-Token": "bench-root", "Content-Type": "application/json" },
    body: JSON.stringify({ data: { username: "app", password: "correct-horse-battery-staple" } }),
  });
  if (write.status !== 200) throw new Error(`seeding the KV secret failed: ${write.status}`);

  console.log(`load: ${seconds}s per run, ${concurrency} concurrent keep-alive connections, load generator in a separate process`);
  const base = await load(`${baseline.url}/`, seconds, concurrency);
  console.log(`baseline hono hello-world: ${base.rps.toFixed(0)} req/s (p50 ${base.p50_ms.toFixed(2)} ms, p99 ${base.p99_ms.toFixed(2)} ms)`);
  const health = await load(`${server.url}/v1/sys/health`, seconds, concurrency);
  console.log(`sys/health:               ${health.rps.toFixed(0)} req/s (p50 ${health.p50_ms.toFixed(2)} ms, p99 ${health.p99_ms.toFixed(2)} ms), ratio ${(health.rps / base.rps).toFixed(3)}`);
  const kv = await load(`${server.url}/v1/secret/data/bench`, seconds, concurrency, { "X-Vault-Token": "bench-root" });
  console.log(`KV v2 read:               ${kv.rps.toFixed(0)} req/s (p50 ${kv.p50_ms.toFixed(2)} ms, p99 ${kv.p99_ms.toFixed(2)} ms), ratio ${(kv.rps / base.rps).toFixed(3)}`);

  await server.stop();
  await baseline.close();
  const errors = base.errors + health.errors + kv.errors;
  console.log(
    JSON.stringify({
      benchmark: "http",
      seconds,
      concurrency,
      baseline_rps: Math.round(base.rps),
      health_rps: Math.round(health.rps),
      kv_read_rps: Math.round(kv.rps),
      health_ratio: Number((health.rps / base.rps).toFixed(3)),
      kv_read_ratio: Number((kv.rps / base.rps).toFixed(3)),
      kv_read_p99_ms: Number(kv.p99_ms.toFixed(2)),
      errors,
    }),
  );
}
