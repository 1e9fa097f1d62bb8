// A small closed-loop HTTP load generator, run as a child process so it does not share the
// server's event loop: `tsx load.ts <url> <seconds> <concurrency> [header=value ...]`.
// Prints one JSON line: {requests, errors, seconds, rps, p50_ms, p99_ms}.
import http from "node:http";

const [url, secondsArg, concArg, ...headerArgs] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concArg);
const headers = Object.fromEntries(headerArgs.map((h) => [h.slice(0, h.indexOf("=")), h.slice(h.indexOf("=") + 1)]));
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const target = new URL(url);
const latencies: number[] = [];
let errors = 0;
const deadline = performance.now() + seconds * 1000;
const warmupEnd = performance.now() + 500;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: "GET", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => {
        if (res.statusCode !== 200) errors++;
        if (start >= warmupEnd) latencies.push(performance.now() - start);
        resolve();
      });
    });
    req.on("error", () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

async function worker(): Promise<void> {
  while (performance.now() < deadline) await once();
}

await Promise.all(Array.from({ length: concurrency }, worker));
latencies.sort((a, b) => a - b);
const measured = seconds - 0.5;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
process.stdout.write(
  JSON.stringify({ requests: latencies.length, errors, seconds: measured, rps: latencies.length / measured, p50_ms: pct(0.5), p99_ms: pct(0.99) }) + "\n",
);
agent.destroy();
