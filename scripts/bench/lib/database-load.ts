// Closed-loop HTTP load for the database benchmark, run as a child process so it does not share the
// server's event loop:
//   tsx database-load.ts issue  <base> <token> <seconds> <concurrency> <ids-file>
//   tsx database-load.ts revoke <base> <token> <ids-file> <concurrency>
// `issue` reads database/creds/bench until time is up and writes the lease ids to <ids-file>;
// `revoke` revokes every lease in <ids-file> through sys/leases/revoke. Prints one JSON line:
// {ops, errors, seconds, rate, p50_ms, p99_ms, first_error}.
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";

const [mode, base, token, ...rest] = process.argv.slice(2);
const target = new URL(base);
const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;

function request(method: string, path: string, body: string | undefined, agent: http.Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: target.hostname, port: target.port, path, method, agent, headers: { "X-Vault-Token": token, ...(body ? { "Content-Type": "application/json" } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", (err) => resolve({ status: 0, text: err.message }));
    req.end(body);
  });
}

function fail(status: number, text: string): void {
  errors++;
  firstError ??= `${status} ${text.slice(0, 300)}`;
}

function report(seconds: number): void {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  process.stdout.write(JSON.stringify({ ops: latencies.length, errors, seconds, rate: latencies.length / seconds, p50_ms: pct(0.5), p99_ms: pct(0.99), first_error: firstError }) + "\n");
}

if (mode === "issue") {
  const [secondsArg, concArg, idsFile] = rest;
  const concurrency = Number(concArg);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ids: string[] = [];
  const started = performance.now();
  const deadline = started + Number(secondsArg) * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        const r = await request("GET", "/v1/database/creds/bench", undefined, agent);
        if (r.status !== 200) {
          fail(r.status, r.text);
          continue;
        }
        latencies.push(performance.now() - t);
        ids.push((JSON.parse(r.text) as { lease_id: string }).lease_id);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(idsFile, JSON.stringify(ids));
  report(seconds);
  agent.destroy();
} else if (mode === "revoke") {
  const [idsFile, concArg] = rest;
  const concurrency = Number(concArg);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ids = JSON.parse(readFileSync(idsFile, "utf8")) as string[];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const t = performance.now();
        const r = await request("PUT", "/v1/sys/leases/revoke", JSON.stringify({ lease_id: id }), agent);
        if (r.status !== 204) {
          fail(r.status, r.text);
          continue;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  report((performance.now() - started) / 1000);
  agent.destroy();
} else {
  process.stderr.write("usage: database-load.ts issue|revoke ...\n");
  process.exit(2);
}
