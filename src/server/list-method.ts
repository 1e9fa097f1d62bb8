import type { Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";

const LIST_PREFIX = Buffer.from("LIST ");

/**
 * Vault clients send the non-standard `LIST` method, which Node's HTTP parser rejects
 * (`HPE_INVALID_METHOD`) before any JavaScript runs. We catch that parse error, rewrite the request
 * line to `GET <url>?list=true` (the equivalent Vault accepts), detach the failed parser and hand the
 * connection to a fresh one. Keep-alive connections may send several LIST requests in a row; each
 * one trips the parser again and is rewritten the same way.
 */
export function acceptListMethod(server: HttpServer): void {
  server.on("clientError", (err: NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number }, socket: Socket) => {
    // With pipelining the failing request may start in the middle of the packet: find its start.
    const start = err.rawPacket ? err.rawPacket.lastIndexOf(LIST_PREFIX, err.bytesParsed ?? 0) : -1;
    const raw = start >= 0 ? err.rawPacket!.subarray(start) : undefined;
    if (err.code === "HPE_INVALID_METHOD" && raw && !socket.destroyed) {
      const rewritten = rewriteListRequest(raw);
      if (rewritten) {
        detachParser(socket);
        socket.pause();
        socket.unshift(rewritten);
        // Pipelined requests the old parser already read may still be answering: a fresh parser's
        // responses would queue on a different connection state and never be sent, so the
        // connection changes hands only once nothing is in flight.
        whenNoResponseInFlight(socket, () => {
          if (socket.destroyed) return;
          server.emit(socket instanceof TLSSocket ? "secureConnection" : "connection", socket);
          // A fresh parser reads from the stream; make sure data flows again.
          socket.resume();
        });
        return;
      }
    }
    if (socket.writable && !socket.destroyed) {
      const body = JSON.stringify({ errors: [err.code === "HPE_HEADER_OVERFLOW" ? "request headers too large" : "malformed HTTP request"] });
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  });
}

/** Runs `fn` once the socket has no response in progress (Node keeps the current one in `_httpMessage`). */
function whenNoResponseInFlight(socket: Socket, fn: () => void): void {
  const res = (socket as Socket & { _httpMessage?: NodeJS.EventEmitter | null })._httpMessage;
  if (!res) return fn();
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    // Node's own 'finish' handler (registered first) has by now handed the socket to the next queued response.
    process.nextTick(() => whenNoResponseInFlight(socket, fn));
  };
  res.once("finish", next);
  res.once("close", next);
}

/** `LIST /v1/x HTTP/1.1` → `GET /v1/x?list=true HTTP/1.1`, keeping every following byte. */
export function rewriteListRequest(raw: Buffer): Buffer | undefined {
  const lineEnd = raw.indexOf("\r\n");
  if (lineEnd === -1) return undefined;
  const line = raw.subarray(0, lineEnd).toString("latin1");
  const m = /^LIST (\S+) (HTTP\/1\.[01])$/.exec(line);
  if (!m) return undefined;
  const url = m[1] + (m[1].includes("?") ? "&" : "?") + "list=true";
  return Buffer.concat([Buffer.from(`GET ${url} ${m[2]}`, "latin1"), raw.subarray(lineEnd)]);
}

/** Removes the failed HTTP parser's listeners and handle consumption from a socket. */
function detachParser(socket: Socket): void {
  // Node internals: the parser may consume the socket's handle directly (no 'data' events).
  const s = socket as Socket & { parser?: { unconsume?: () => void; finish?: () => void; free?: () => void } | null; _handle?: { _consumed?: boolean } | null };
  const parser = s.parser;
  if (parser) {
    try {
      parser.unconsume?.();
    } catch {
      /* not consumed */
    }
    s.parser = null;
  }
  if (s._handle) s._handle._consumed = false;
  for (const ev of ["data", "end", "close", "drain", "error", "timeout", "resume", "pause"] as const) {
    for (const l of socket.listeners(ev)) {
      const name = (l as { name?: string }).name ?? "";
      if (/^socketOn|^onParser|^noop$|^bound socketOn/.test(name) || ev === "data" || ev === "end") socket.removeListener(ev, l as (...a: unknown[]) => void);
    }
  }
}
