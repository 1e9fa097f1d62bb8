// A closed-loop HTTP POST load generator for login benchmarks, run as a child process so it does
// not share the server's event loop:
//   tsx auth-load.ts <url> <seconds> <concurrency> <json body> [header=value ...]
// Every request sends the same JSON body. Prints one JSON line:
// {requests, errors, seconds, rps, p50_ms, p99_ms, statuses}. Only 200 answers count as requests.
import http from "node:http";

const [url, secondsArg, concArg, body, ...headerArgs] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concArg);
const payload = Buffer.from(body, "utf8");
const headers = {
  "Content-Type": "application/json",
  "Content-Length": String(payload.length),
  ...Object.fromEntries(headerArgs.map((h) => [h.slice(0, h.indexOf("=")), h.slice(h.indexOf("=") + 1)])),
};
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const target = new URL(url);
const latencies: number[] = [];
const statuses: Record<string, number> = {};
let errors = 0;
const warmup = 500;
const deadline = performance.now() + seconds * 1000;
const warmupEnd = performance.now() + warmup;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => {
        const code = String(res.statusCode);
        if (start >= warmupEnd) statuses[code] = (statuses[code] ?? 0) + 1;
        if (res.statusCode !== 200) errors++;
        else if (start >= warmupEnd) latencies.push(performance.now() - start);
        resolve();
      });
    });
    req.on("error", () => {
      errors++;
      resolve();
    });
    req.end(payload);
  });
}

async function worker(): Promise<void> {
  while (performance.now() < deadline) await once();
}

await Promise.all(Array.from({ length: concurrency }, worker));
latencies.sort((a, b) => a - b);
const measured = seconds - warmup / 1000;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
process.stdout.write(
  JSON.stringify({ requests: latencies.length, errors, seconds: measured, rps: latencies.length / measured, p50_ms: pct(0.5), p99_ms: pct(0.99), statuses }) + "\n",
);
agent.destroy();
