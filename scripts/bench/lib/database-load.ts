// Closed-loop HTTP load for the database benchmark, run as a child process so it does not share the
// server's event loop:
//   tsx database-load.ts issue  <base> <token> <seconds> <concurrency> <ids-file>
//   tsx database-load.ts revoke <base> <token> <ids-file> <concurrency>
// `issue` reads database/creds/bench until time is up and writes the lease ids to <ids-file>;
// `revoke` revokes every lease in <ids-file> through sys/leases/revoke. Prints one JSON line:
// {ops, errors, seconds, rate, p50_ms, p99_ms, first_error}.
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";

const [mode, base, token, ...rest] = process.argv.slice(2);
const target = new URL(base);
const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const HEADER_END = Buffer.from("\r\n\r\n");

/**
 * One keep-alive HTTP/1.1 connection on a raw socket, one request at a time (like wrk): on a
 * 2-core machine, every microsecond the load generator spends is taken from the server it
 * measures, and node:http's client costs several times more per request than this.
 */
class Connection {
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: (r: { status: number; text: string }) => void;

  constructor() {
    this.socket = net.connect(Number(target.port), target.hostname);
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    const broken = (message: string) => {
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ status: 0, text: message });
    };
    this.socket.on("error", (e) => broken(e.message));
    this.socket.on("close", () => broken("connection closed"));
  }

  request(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
    const payload = body === undefined ? "" : body;
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${target.host}\r\nX-Vault-Token: ${token}\r\n${body === undefined ? "" : "Content-Type: application/json\r\n"}Content-Length: ${Buffer.byteLength(payload)}\r\n\r\n`;
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.socket.write(head + payload);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const headerEnd = this.buf.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = this.buf.subarray(0, headerEnd).toString("latin1");
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const length = m ? Number(m[1]) : 0; // 204 answers carry no body
    const total = headerEnd + 4 + length;
    if (this.buf.length < total) return;
    const text = this.buf.subarray(headerEnd + 4, total).toString("utf8");
    this.buf = this.buf.subarray(total);
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ status, text });
  }

  close(): void {
    this.socket.destroy();
  }
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
  const ids: string[] = [];
  const started = performance.now();
  const deadline = started + Number(secondsArg) * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const conn = new Connection();
      while (performance.now() < deadline) {
        const t = performance.now();
        const r = await conn.request("GET", "/v1/database/creds/bench");
        if (r.status !== 200) {
          fail(r.status, r.text);
          continue;
        }
        latencies.push(performance.now() - t);
        ids.push((JSON.parse(r.text) as { lease_id: string }).lease_id);
      }
      conn.close();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(idsFile, JSON.stringify(ids));
  report(seconds);
} else if (mode === "revoke") {
  const [idsFile, concArg] = rest;
  const concurrency = Number(concArg);
  const ids = JSON.parse(readFileSync(idsFile, "utf8")) as string[];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const conn = new Connection();
      while (next < ids.length) {
        const id = ids[next++];
        const t = performance.now();
        const r = await conn.request("PUT", "/v1/sys/leases/revoke", JSON.stringify({ lease_id: id }));
        if (r.status !== 204) {
          fail(r.status, r.text);
          continue;
        }
        latencies.push(performance.now() - t);
      }
      conn.close();
    }),
  );
  report((performance.now() - started) / 1000);
} else {
  process.stderr.write("usage: database-load.ts issue|revoke ...\n");
  process.exit(2);
}
