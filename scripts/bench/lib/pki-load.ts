// A closed-loop HTTP/1.1 POST load generator, run as a child process so it does not share the
// server's event loop: `tsx pki-load.ts <url> <seconds> <concurrency> <body-file> [header=value ...]`.
// <body-file> holds one JSON body per line; requests cycle through them (distinct CSRs for `sign`).
// Each client keeps one keep-alive TCP connection and writes the next pre-encoded request as soon as
// the previous answer is in. It speaks HTTP on raw sockets (like wrk) rather than through
// `http.request`, because on a 2-core machine every microsecond the load generator spends is taken
// from the server it measures. An answer counts when its status is 200 and its body carries
// `"certificate"`. Prints one JSON line: {requests, errors, seconds, rps, p50_ms, p99_ms,
// client_cpu_us_per_request, first_error}.
import { readFileSync } from "node:fs";
import net from "node:net";

const [url, secondsArg, concArg, bodyFile, ...headerArgs] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concArg);
const target = new URL(url);
const bodies = readFileSync(bodyFile, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => Buffer.from(l, "utf8"));
const extraHeaders = headerArgs.map((h) => `${h.slice(0, h.indexOf("="))}: ${h.slice(h.indexOf("=") + 1)}\r\n`).join("");
const requests = bodies.map((body) =>
  Buffer.concat([
    Buffer.from(`POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n${extraHeaders}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`, "latin1"),
    body,
  ]),
);
let next = 0;
const MARK = Buffer.from('"certificate"');
const HEADER_END = Buffer.from("\r\n\r\n");

const warmupMs = Math.min(1000, seconds * 200);
const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const begin = performance.now();
const deadline = begin + seconds * 1000;
const warmupEnd = begin + warmupMs;

function fail(message: string): void {
  errors++;
  firstError ??= message;
}

/** One client: a connection, a request in flight, a parser for the answer. */
function client(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(target.port), target.hostname);
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let started = 0;
    const send = () => {
      if (performance.now() >= deadline) {
        socket.end();
        resolve();
        return;
      }
      started = performance.now();
      socket.write(requests[next++ % requests.length]);
    };
    socket.on("connect", send);
    socket.on("data", (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const headerEnd = buf.indexOf(HEADER_END);
      if (headerEnd < 0) return;
      const head = buf.subarray(0, headerEnd).toString("latin1");
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!m) {
        fail(`answer without Content-Length: ${head.slice(0, 200)}`);
        socket.destroy();
        resolve();
        return;
      }
      const total = headerEnd + 4 + Number(m[1]);
      if (buf.length < total) return;
      const status = Number(head.slice(9, 12));
      const answer = buf.subarray(headerEnd + 4, total);
      if (status !== 200 || answer.indexOf(MARK) < 0) fail(`${status}: ${answer.subarray(0, 300).toString("utf8")}`);
      else if (started >= warmupEnd) latencies.push(performance.now() - started);
      buf = buf.subarray(total);
      send();
    });
    socket.on("error", (e) => {
      fail(e.message);
      resolve();
    });
    socket.on("close", () => resolve());
  });
}

const cpuStart = process.cpuUsage();
await Promise.all(Array.from({ length: concurrency }, client));
const cpu = process.cpuUsage(cpuStart);
latencies.sort((a, b) => a - b);
const measured = seconds - warmupMs / 1000;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
process.stdout.write(
  JSON.stringify({ requests: latencies.length, errors, seconds: measured, rps: latencies.length / measured, p50_ms: pct(0.5), p99_ms: pct(0.99), client_cpu_us_per_request: (cpu.user + cpu.system) / Math.max(1, latencies.length + errors), first_error: firstError }) + "\n",
);
