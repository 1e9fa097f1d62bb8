import type { Socket } from "node:net";

/** Reads HTTP/1.1 responses off a raw socket, one at a time (Content-Length or chunked). */
export class ResponseReader {
  private buf = Buffer.alloc(0);
  private wake?: () => void;
  closed = false;
  constructor(sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }
  private label = "";
  private async more(): Promise<void> {
    if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString("latin1"))}`);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      this.wake = resolve;
      timer = setTimeout(() => reject(new Error(`${this.label}: no complete response within 5 s; got so far: ${JSON.stringify(this.buf.toString("latin1").slice(0, 500))}`)), 5000);
    }).finally(() => clearTimeout(timer));
    this.wake = undefined;
  }
  async next(label = "response"): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    this.label = label;
    let end: number;
    while ((end = this.buf.indexOf("\r\n\r\n")) === -1) await this.more();
    const [statusLine, ...lines] = this.buf.subarray(0, end).toString("latin1").split("\r\n");
    this.buf = this.buf.subarray(end + 4);
    const headers: Record<string, string> = {};
    for (const l of lines) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
    const status = Number(statusLine.split(" ")[1]);
    let body = Buffer.alloc(0);
    if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      while (this.buf.length < n) await this.more();
      body = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
    } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = this.buf.indexOf("\r\n")) === -1) await this.more();
        const size = parseInt(this.buf.subarray(0, lineEnd).toString("latin1"), 16);
        while (this.buf.length < lineEnd + 2 + size + 2) await this.more();
        parts.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        this.buf = this.buf.subarray(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    }
    return { status, headers, body: body.toString("utf8") };
  }

  /** True when nothing more arrives within `ms` (the connection may close). */
  async nothingWithin(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.buf.length === 0;
  }
}
