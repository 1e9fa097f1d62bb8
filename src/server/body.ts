import type { IncomingMessage } from "node:http";
import { PayloadTooLarge, UserError } from "../sdk/errors.js";
import { RAW_BODY_FIELD } from "../sdk/fields.js";

/**
 * Request body limits. Every body is read into memory, scanned, parsed and then walked several times
 * (handlers, storage, audit HMACs), so what a body may cost is bounded before any of that:
 *
 * - size: `max_request_size` of the listener (Vault's default, 32 MiB) only for data writes to a
 *   secrets engine (KV and the like) by a caller whose token was checked; 1 MiB everywhere else
 *   (`sys/`, `auth/`, logins and other unauthenticated paths), which is far more than any of those
 *   take. 413 past it, as Vault answers.
 * - shape: at most 500 levels of nesting (Vault's `max_json_depth`) and about 100,000 JSON values in
 *   all (containers and commas are counted), checked by a byte scan before
 *   `JSON.parse` builds anything. 400 past either. 32 MiB of `[],` would otherwise be ~11 million
 *   arrays: seconds of parsing and walking with the event loop stopped and gigabytes of heap.
 *   Long strings are cheap (the scan jumps over them with `indexOf`), so a large secret value is fine.
 */
export const DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024;
/** Body limit for everything that is not a data write to a secrets engine. */
export const CONTROL_MAX_REQUEST_SIZE = 1024 * 1024;
/** Deepest JSON nesting accepted (Vault's `max_json_depth` default). */
export const MAX_BODY_DEPTH = 500;
/** Most JSON values (array elements, object members, containers) one body may hold. */
export const MAX_BODY_ELEMENTS = 100_000;

/** The client went away before its body was complete: nothing to answer, nothing went wrong here. */
export class ClientAborted extends Error {
  constructor() {
    super("client closed the connection before the request body was complete");
    this.name = "ClientAborted";
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** What a byte means to the scan outside strings (0: nothing). */
const OPEN = 1;
const CLOSE = 2;
const COMMA = 3;
const STRING = 4;
const SYNTAX = new Uint8Array(256);
SYNTAX[0x5b] = OPEN; // [
SYNTAX[0x7b] = OPEN; // {
SYNTAX[0x5d] = CLOSE; // ]
SYNTAX[0x7d] = CLOSE; // }
SYNTAX[0x2c] = COMMA;
SYNTAX[QUOTE] = STRING;

/** Index of the quote closing the string whose opening quote is at `open`, or -1. */
function stringEnd(buf: Buffer, open: number): number {
  // Fast path: the next quote, unless escaped (found natively, so long strings cost nearly nothing).
  const q = buf.indexOf(QUOTE, open + 1);
  if (q === -1) return -1;
  let k = q - 1;
  while (k > open && buf[k] === BACKSLASH) k--;
  if ((q - 1 - k) % 2 === 0) return q;
  // Escaped quotes inside: walk the rest byte by byte, skipping each escaped character.
  for (let i = q + 1; i < buf.length; i++) {
    const b = buf[i];
    if (b === BACKSLASH) i++;
    else if (b === QUOTE) return i;
  }
  return -1;
}

/**
 * Checks the structure of a JSON text before it is parsed: nesting depth and number of values. Only
 * counts (it does not validate: `JSON.parse` does that next), in one linear pass; string contents are
 * skipped, so brackets inside strings are not counted. Works on UTF-8 bytes: every byte of a
 * multi-byte character is >= 0x80, so it cannot look like syntax. Measured here on 32 MiB bodies: a
 * single string takes about 2 ms, digits or whitespace about 100 ms, and a body of tiny containers
 * stops at the value limit within a few ms.
 */
export function checkJsonShape(buf: Buffer, maxDepth = MAX_BODY_DEPTH, maxElements = MAX_BODY_ELEMENTS): void {
  let depth = 0;
  // Containers plus commas: every value but the first scalar of each container (close enough, and cheap).
  let elements = 0;
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const kind = SYNTAX[buf[i]];
    if (kind === 0) continue;
    if (kind === STRING) {
      const end = stringEnd(buf, i);
      if (end === -1) return; // unterminated: JSON.parse refuses it
      i = end;
    } else if (kind === OPEN) {
      if (++depth > maxDepth) throw new UserError(`failed to parse JSON input: nesting deeper than ${maxDepth} levels`);
      if (++elements > maxElements) throw tooManyElements(maxElements);
    } else if (kind === CLOSE) {
      depth--;
    } else if (++elements > maxElements) {
      throw tooManyElements(maxElements);
    }
  }
}

function tooManyElements(limit: number): UserError {
  return new UserError(`failed to parse JSON input: more than ${limit} values in the body`);
}

/** Vault's wording (Go's MaxBytesReader) with the limit that applied. */
export function bodyTooLarge(limit: number): PayloadTooLarge {
  return new PayloadTooLarge(`http: request body too large (the limit for this path is ${limit} bytes)`);
}

/** `application/*` media types that carry neither JSON nor a form: passed to handlers as raw bytes. */
function isBinaryMediaType(mime: string): boolean {
  return mime.startsWith("application/") && mime !== "application/json" && !mime.endsWith("+json") && mime !== "application/x-www-form-urlencoded";
}

/**
 * Reads the body straight from Node's request stream with a hard size limit (building a WHATWG
 * `Request` body stream for every POST cost about a quarter of a small request's time).
 * `onTooLarge` runs when the limit is passed mid-stream (the rest is never read, so the caller marks
 * the connection to close).
 */
export function readRawBody(incoming: IncomingMessage, limit: number, onTooLarge: () => void): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"] ?? "0");
  if (declared > limit) {
    onTooLarge();
    return Promise.reject(bodyTooLarge(limit));
  }
  if (incoming.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err?: Error) => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        incoming.pause();
        onTooLarge();
        finish(bodyTooLarge(limit));
      } else chunks.push(chunk);
    };
    const onEnd = () => finish();
    // Node reports a client that hangs up mid-body as an `aborted` error (ECONNRESET), then `close`.
    const onError = () => finish(new ClientAborted());
    const onClose = () => finish(new ClientAborted());
    incoming.on("data", onData);
    incoming.once("end", onEnd);
    incoming.once("error", onError);
    incoming.once("close", onClose);
  });
}

/**
 * Turns body bytes into handler data. JSON or form-encoded bodies must be objects; other
 * `application/*` bodies (OCSP requests) arrive as `{ [RAW_BODY_FIELD]: { content_type, base64 } }`.
 */
export function decodeBody(body: Buffer, contentType: string): Record<string, unknown> {
  const mime = contentType.toLowerCase().split(";")[0].trim();
  if (isBinaryMediaType(mime)) return body.length ? { [RAW_BODY_FIELD]: { content_type: mime, base64: body.toString("base64") } } : {};
  const text = body.toString("utf8");
  if (text.trim() === "") return {};
  // As Vault: a form only when declared as one and not looking like JSON, because `curl --data
  // @payload.json` (Vault's own documentation) sends JSON with the form content type.
  if (mime === "application/x-www-form-urlencoded" && !/^\s*[[{]/.test(text)) {
    let pairs = 1;
    for (let i = text.indexOf("&"); i !== -1; i = text.indexOf("&", i + 1)) if (++pairs > MAX_BODY_ELEMENTS) throw tooManyElements(MAX_BODY_ELEMENTS);
    return Object.fromEntries(new URLSearchParams(text));
  }
  checkJsonShape(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`failed to parse JSON input: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new UserError("failed to parse JSON input: the body must be a JSON object");
  return parsed as Record<string, unknown>;
}
