// Closed-loop HTTP load for the `ha` benchmark, run as a child process so it does not share an event
// loop with the nodes it measures or with the benchmark's own bookkeeping:
//   tsx ha-load.ts <base> <token> <seconds> <concurrency> <path> [warmup-seconds]
// Each of <concurrency> keep-alive connections sends `GET <path>` one request at a time until time
// is up; answers other than 200 are errors. The first [warmup-seconds] (default 0.5) are not
// counted. Prints one JSON line: {ops, errors, seconds, rate, p50_ms, p99_ms, first_error}.
import net from "node:net";

const [base, token, secondsArg, concArg, path, warmupArg] = process.argv.slice(2);
const target = new URL(base);
const seconds = Number(secondsArg);
const concurrency = Number(concArg);
const warmupMs = Number(warmupArg ?? 0.5) * 1000;
const HEADER_END = Buffer.from("\r\n\r\n");

interface Answer {
  status: number;
  text: string;
}

/**
 * One keep-alive HTTP/1.1 connection on a raw socket, one request at a time: on a 2-core machine
 * node:http's client costs several times more per request than this, taken from the servers measured.
 * Understands Content-Length and chunked bodies (a standby relays the active's answer).
 */
class Connection {
  private socket!: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: (r: Answer) => void;
  private open = false;

  private connect(): void {
    this.buf = Buffer.alloc(0);
    this.socket = net.connect(Number(target.port), target.hostname);
    this.socket.setNoDelay(true);
    this.open = true;
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    const broken = (message: string) => {
      this.open = false;
      const w = this.waiter;
      this.waiter = undefined;
      w?.({ status: 0, text: message });
    };
    this.socket.on("error", (e) => broken(e.message));
    this.socket.on("close", () => broken("connection closed"));
  }

  request(path: string): Promise<Answer> {
    if (!this.open) this.connect();
    const head = `GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\nX-Vault-Token: ${token}\r\nContent-Length: 0\r\n\r\n`;
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.socket.write(head);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const headerEnd = this.buf.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = this.buf.subarray(0, headerEnd).toString("latin1");
    const status = Number(head.slice(9, 12));
    let body: Buffer;
    let total: number;
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let at = headerEnd + 4;
      for (;;) {
        const lineEnd = this.buf.indexOf("\r\n", at);
        if (lineEnd < 0) return;
        const size = parseInt(this.buf.subarray(at, lineEnd).toString("latin1"), 16);
        if (this.buf.length < lineEnd + 2 + size + 2) return;
        parts.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
      total = at;
    } else {
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const length = m ? Number(m[1]) : 0; // 204 answers carry no body
      total = headerEnd + 4 + length;
      if (this.buf.length < total) return;
      body = this.buf.subarray(headerEnd + 4, total);
    }
    this.buf = this.buf.subarray(total);
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ status, text: body.toString("utf8") });
  }

  close(): void {
    this.socket?.destroy();
  }
}

const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const started = performance.now();
const countFrom = started + warmupMs;
const deadline = countFrom + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    const conn = new Connection();
    while (performance.now() < deadline) {
      const t = performance.now();
      const r = await conn.request(path);
      if (t < countFrom) continue;
      if (r.status !== 200) {
        errors++;
        firstError ??= `${r.status} ${r.text.slice(0, 300)}`;
        if (r.status === 0) await new Promise((res) => setTimeout(res, 50)); // refused: do not spin
        continue;
      }
      latencies.push(performance.now() - t);
    }
    conn.close();
  }),
);
const measured = (performance.now() - countFrom) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
process.stdout.write(JSON.stringify({ ops: latencies.length, errors, seconds: measured, rate: latencies.length / measured, p50_ms: pct(0.5), p99_ms: pct(0.99), first_error: firstError }) + "\n");
