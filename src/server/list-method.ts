import type { Server as HttpServer } from "node:http";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { Server as TlsServer } from "node:tls";

/**
 * Vault clients send the non-standard `LIST` method, which Node's HTTP parser rejects
 * (`HPE_INVALID_METHOD`) before any JavaScript runs. We catch that parse error, rewrite the request
 * line to `GET <url>?list=true` (the equivalent Vault accepts), release the failed parser and hand
 * the connection to a fresh one, which parses the rewritten request and whatever follows it.
 *
 * What makes this safe against request smuggling: the rewrite starts exactly where the failing
 * request starts, never at a `LIST ` found elsewhere in the bytes (a body of an earlier request,
 * already handled, may contain any text). llhttp fails a `LIST` at its `S` (`LI` is a prefix of
 * `LINK`), so the failing request starts two bytes before the error position the parser reports,
 * and a `LIST ` must be there; the byte before it must not be a method character (otherwise the
 * method was something longer, such as `UNLIST`, and the request is refused). Those two bytes may
 * have arrived in an earlier TCP segment, so each connection keeps the last bytes it received; and
 * when the request line itself is not complete yet (`LIS` | `T /v1/... HTTP/1.1`), the rest is
 * read before the rewrite.
 *
 * Each parser's socket listeners are recorded when Node attaches it and removed when it is replaced,
 * so a keep-alive connection carrying thousands of LISTs keeps a constant number of listeners.
 */

/** Node's own parser release (used by its upgrade path): frees the parser and drops it from the timeout list. */
const { freeParser } = createRequire(import.meta.url)("_http_common") as { freeParser?: (parser: unknown, req: unknown, socket: unknown) => void };

const LIST_PREFIX = Buffer.from("LIST ");
/** Bytes of earlier segments kept per connection (enough for `LI` and the byte before it). */
const TAIL_BYTES = 8;
/** Longest LIST request line waited for before the connection is refused. */
const MAX_REQUEST_LINE = 16 * 1024;
/** Socket events Node's HTTP connection handler listens to. */
const PARSER_EVENTS = ["data", "end", "close", "drain", "error", "timeout", "resume", "pause"] as const;

type Listener = (...args: unknown[]) => void;

interface ConnectionState {
  /** The last bytes received before the chunk being parsed. */
  tail: Buffer;
  /** True once more bytes were received than `tail` holds (so `tail` does not start the stream). */
  truncated: boolean;
  /** Listeners Node added for the current parser, removed when it is replaced. */
  parserListeners: [string, Listener][];
  /** Listeners present before Node's handler ran (set between the prepended and the appended connection listener). */
  before?: Map<string, Set<Listener>>;
  /** A chunk already handled by the rewrite (it must not become the tail a second time). */
  ignore?: Buffer;
}

const states = new WeakMap<Socket, ConnectionState>();

function snapshot(socket: Socket): Map<string, Set<Listener>> {
  return new Map(PARSER_EVENTS.map((ev) => [ev, new Set(socket.listeners(ev) as Listener[])]));
}

function added(socket: Socket, before: Map<string, Set<Listener>>): [string, Listener][] {
  const out: [string, Listener][] = [];
  for (const ev of PARSER_EVENTS) for (const l of socket.listeners(ev) as Listener[]) if (!before.get(ev)!.has(l)) out.push([ev, l]);
  return out;
}

export function acceptListMethod(server: HttpServer): void {
  const event = server instanceof TlsServer ? "secureConnection" : "connection";
  // Node's HTTP connection handler, called again for each fresh parser (re-emitting the event
  // would also re-run every other listener of it, and grow theirs).
  const httpListener = server.listeners(event).find((l) => l.name === "connectionListener") as ((this: HttpServer, socket: Socket) => void) | undefined;
  if (!httpListener || !freeParser) throw new Error("this Node.js version's HTTP server cannot be extended to accept the LIST method");

  server.prependListener(event, (socket: Socket) => {
    states.set(socket, { tail: Buffer.alloc(0), truncated: false, parserListeners: [], before: snapshot(socket) });
  });
  server.on(event, (socket: Socket) => {
    const st = states.get(socket);
    if (!st?.before) return;
    st.parserListeners = added(socket, st.before);
    st.before = undefined;
    // Seeing the bytes also switches Node from reading the socket in C++ to 'data' events, as for TLS.
    socket.on("data", (chunk: Buffer) => {
      if (chunk === st.ignore) {
        st.ignore = undefined;
        return;
      }
      st.truncated ||= st.tail.length + chunk.length > TAIL_BYTES;
      st.tail = chunk.length >= TAIL_BYTES ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES)) : Buffer.concat([st.tail, chunk]).subarray(-TAIL_BYTES);
    });
  });

  server.on("clientError", (err: NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number }, socket: Socket) => {
    const st = states.get(socket);
    if (err.code === "HPE_INVALID_METHOD" && st && err.rawPacket && typeof err.bytesParsed === "number" && !socket.destroyed) {
      const view = Buffer.concat([st.tail, err.rawPacket]);
      const start = st.tail.length + err.bytesParsed - 2;
      if (startsList(view, start) && (start > 0 ? !isMethodChar(view[start - 1]) : !st.truncated)) {
        st.ignore = err.rawPacket;
        takeOver(server, httpListener, socket, st, view.subarray(start));
        return;
      }
    }
    refuse(socket, err.code);
  });
}

/** `view[start..]` is `LIST ` or, when it ends sooner, the beginning of it. */
function startsList(view: Buffer, start: number): boolean {
  if (start < 0) return false;
  const n = Math.min(LIST_PREFIX.length, view.length - start);
  return n >= 3 && view.subarray(start, start + n).equals(LIST_PREFIX.subarray(0, n));
}

/** Characters of an HTTP method as llhttp knows them (`M-SEARCH` has the hyphen). */
function isMethodChar(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || b === 0x2d;
}

/**
 * Answers a malformed request (JSON, as every other error) and closes the connection. Answers to
 * requests read before it are sent first, in order: nothing more is read from the connection.
 */
function refuse(socket: Socket, code: string | undefined): void {
  // A request whose body was still arriving can never be completed now (nor answered): the
  // connection is dropped, which its handler sees as the client going away. So is one that ended.
  const current = (socket as Socket & { parser?: { incoming?: { complete?: boolean } | null } | null }).parser?.incoming;
  if (!socket.writable || socket.destroyed || socket.readableEnded || (current && !current.complete)) {
    socket.destroy();
    return;
  }
  socket.pause();
  whenNoResponseInFlight(socket, () => {
    if (!socket.writable || socket.destroyed) return;
    const [status, message] =
      code === "HPE_HEADER_OVERFLOW"
        ? ["431 Request Header Fields Too Large", "request headers too large"]
        : code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? ["408 Request Timeout", "request timed out: headers or body not received in time"]
          : ["400 Bad Request", "malformed HTTP request"];
    const body = JSON.stringify({ errors: [message] });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    // A client that does not read its answer must not hold the connection open.
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}

/** Releases the failed parser, completes the request line if needed, rewrites it and attaches a fresh parser. */
function takeOver(server: HttpServer, httpListener: (this: HttpServer, socket: Socket) => void, socket: Socket, st: ConnectionState, pending: Buffer): void {
  for (const [ev, l] of st.parserListeners) socket.removeListener(ev, l);
  st.parserListeners = [];
  const s = socket as Socket & { parser?: unknown };
  freeParser!(s.parser, null, socket);
  s.parser = null;

  const attach = (bytes: Buffer) => {
    const rewritten = rewriteListRequest(bytes);
    if (!rewritten) return refuse(socket, "HPE_INVALID_METHOD");
    socket.pause();
    socket.unshift(rewritten);
    // Pipelined requests the old parser already read may still be answering: a fresh parser's
    // responses would queue on a different connection state and never be sent, so the
    // connection changes hands only once nothing is in flight.
    whenNoResponseInFlight(socket, () => {
      if (socket.destroyed) return;
      const before = snapshot(socket);
      httpListener.call(server, socket);
      st.parserListeners = added(socket, before);
      socket.resume();
    });
  };
  if (pending.includes("\r\n")) return attach(pending);

  // The request line is still arriving: collect it (within the header timeout and a size limit).
  let collected = pending;
  const limitMs = server.headersTimeout > 0 ? server.headersTimeout : 60_000;
  const timer = setTimeout(() => done(undefined, "ERR_HTTP_REQUEST_TIMEOUT"), limitMs);
  const onData = (chunk: Buffer) => {
    collected = Buffer.concat([collected, chunk]);
    if (collected.includes("\r\n")) done(collected);
    else if (collected.length > MAX_REQUEST_LINE) done(undefined, "HPE_HEADER_OVERFLOW");
  };
  const onEnd = () => done(undefined, "HPE_INVALID_METHOD");
  const done = (bytes: Buffer | undefined, failure?: string) => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    if (bytes) attach(bytes);
    else refuse(socket, failure);
  };
  socket.on("data", onData);
  socket.once("end", onEnd);
  socket.once("close", onEnd);
  socket.resume();
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
