import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { TLSSocket } from "node:tls";
import { Hono, type Context } from "hono";
import type { HttpBindings } from "@hono/node-server";
import type { Logger } from "pino";
import type { Core, CoreRequest, CoreResponse } from "../core/core.js";
import { isLeaseholdError, PayloadTooLarge, UnsupportedOperation, UserError, type LeaseholdError } from "../sdk/errors.js";
import { RAW_BODY_FIELD } from "../sdk/fields.js";

/** Vault's limit on request bodies. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Deepest JSON nesting accepted: handlers, storage and audit walk bodies recursively. */
export const MAX_BODY_DEPTH = 500;

/** True when `value` nests objects/arrays deeper than `limit` (checked without recursion). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > limit) return true;
    for (const child of Object.values(v)) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return false;
}

type Env = { Bindings: HttpBindings };

/** The error envelope: `{"errors": [...]}` (an empty NotFound gives `[]`, as Vault does). */
export function errorBody(err: LeaseholdError): { errors: string[] } {
  return { errors: [err.message, ...err.details].filter((m) => m !== "") };
}

/** `application/*` media types that carry neither JSON nor a form: passed to handlers as raw bytes. */
function isBinaryMediaType(mime: string): boolean {
  return mime.startsWith("application/") && mime !== "application/json" && !mime.endsWith("+json") && mime !== "application/x-www-form-urlencoded";
}

/**
 * Reads the body straight from Node's request stream with a hard size limit (building a WHATWG
 * `Request` body stream for every POST cost about a quarter of a small request's time). JSON or
 * form-encoded bodies must be objects; other `application/*` bodies (OCSP requests) arrive as
 * `{ [RAW_BODY_FIELD]: { content_type, base64 } }`.
 */
async function readBody(c: Context<Env>): Promise<Record<string, unknown>> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new PayloadTooLarge(`request body too large: limit is ${MAX_BODY_BYTES} bytes`);
  const incoming = c.env.incoming;
  if (incoming.readableEnded) return {};
  const body = await new Promise<Buffer>((resolve, reject) => {
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
      if (size > MAX_BODY_BYTES) {
        // The rest of the body is never read, so the connection cannot carry another request.
        incoming.pause();
        c.header("Connection", "close");
        finish(new PayloadTooLarge(`request body too large: limit is ${MAX_BODY_BYTES} bytes`));
      } else chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new UserError("client closed the connection before the request body was complete"));
    incoming.on("data", onData);
    incoming.once("end", onEnd);
    incoming.once("error", onError);
    incoming.once("close", onClose);
  });
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  const mime = type.split(";")[0].trim();
  if (isBinaryMediaType(mime)) return body.length ? { [RAW_BODY_FIELD]: { content_type: mime, base64: body.toString("base64") } } : {};
  const text = body.toString("utf8");
  if (text.trim() === "") return {};
  // As Vault: a form only when declared as one and not looking like JSON, because `curl --data
  // @payload.json` (Vault's own documentation) sends JSON with the form content type.
  if (mime === "application/x-www-form-urlencoded" && !/^\s*[[{]/.test(text)) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`failed to parse JSON input: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new UserError("failed to parse JSON input: the body must be a JSON object");
  if (nestedDeeperThan(parsed, MAX_BODY_DEPTH)) throw new UserError(`failed to parse JSON input: nesting deeper than ${MAX_BODY_DEPTH} levels`);
  return parsed as Record<string, unknown>;
}

function tokenOf(c: Context<Env>): string | undefined {
  const t = c.req.header("x-vault-token");
  if (t) return t.trim();
  const auth = c.req.header("authorization");
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim();
  return undefined;
}

function connectionOf(incoming: IncomingMessage): CoreRequest["connection"] {
  const socket = incoming.socket;
  const conn: CoreRequest["connection"] = { remoteAddress: socket.remoteAddress ?? "" };
  if (socket instanceof TLSSocket) {
    conn.tlsAuthorized = socket.authorized;
    const peer = socket.getPeerCertificate(true);
    if (peer && peer.raw) {
      conn.peerCertificate = peer.raw;
      const chain: Buffer[] = [];
      let cur = peer.issuerCertificate;
      while (cur && cur.raw && !chain.some((c) => c.equals(cur!.raw))) {
        chain.push(cur.raw);
        cur = cur.issuerCertificate;
      }
      conn.peerCertificateChain = chain;
    }
  }
  return conn;
}

/** Maps HTTP method (+ `list` query) to the core's operation. */
function operationOf(method: string, list: boolean): CoreRequest["op"] {
  switch (method) {
    case "GET":
    case "HEAD":
      return list ? "list" : "read";
    case "LIST":
      return "list";
    case "POST":
    case "PUT":
      return "write";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default:
      throw new UnsupportedOperation(`unsupported method ${method}`);
  }
}

/** Writes a core response as an HTTP response. */
function send(c: Context<Env>, resp: CoreResponse): Response {
  if (resp.raw) return c.body(typeof resp.raw.body === "string" ? resp.raw.body : new Uint8Array(resp.raw.body), resp.status as 200, { "Content-Type": resp.raw.contentType });
  if (!resp.body) return c.body(null, resp.status as 204);
  return c.json(resp.body, resp.status as 200);
}

/**
 * Response wrapping is not implemented. A client that asks for it (`X-Vault-Wrap-TTL`, the CLI's
 * `-wrap-ttl`) expects the secret to come back only as a single-use wrapping token, so answering
 * in clear could put it where the wrapping was meant to keep it out of (a CI log, a ticket). The
 * request is refused before anything is done.
 */
function refuseWrapping(wrapTtl: string | undefined): void {
  if (wrapTtl === undefined || wrapTtl.trim() === "") return;
  throw new UserError("response wrapping (X-Vault-Wrap-TTL) is not supported by this server: nothing was done; send the request without it");
}

/**
 * The HTTP front: one catch-all `/v1/*` route (mounts change at runtime, so Hono's own router
 * cannot know them) that parses the request, asks the core, and renders Vault's envelopes.
 */
export function buildApp(core: Core, logger: Logger): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    if (isLeaseholdError(err)) {
      // 503 while sealed is the normal state of a sealed server, not an incident.
      if (err.status >= 500 && err.status !== 503) logger.error({ err, path: c.req.path }, "request failed");
      return c.json(errorBody(err), err.status as 400);
    }
    logger.error({ err, path: c.req.path }, "internal error");
    return c.json({ errors: ["internal error"] }, 500);
  });
  app.notFound((c) => c.json({ errors: [] }, 404));

  app.all("/v1/*", async (c) => {
    const started = process.hrtime.bigint();
    const method = c.req.method.toUpperCase();
    let status = 500;
    try {
      // The path as sent: URL parsing would resolve `.`/`..` (also `%2e%2e`) before we could refuse them.
      // An origin-form target (`/v1/...`, what clients send) needs no URL parse at all.
      const target = c.env.incoming.url ?? "";
      const url = target.startsWith("/") ? undefined : new URL(c.req.url);
      const sentPath = url ? url.pathname : target.replace(/[?#].*$/s, "");
      const query = url ? url.searchParams : new URLSearchParams(/\?([^#]*)/s.exec(target)?.[1] ?? "");
      let rawPath: string;
      try {
        rawPath = decodeURIComponent(sentPath.slice("/v1/".length));
      } catch {
        throw new UserError("invalid URL encoding in request path");
      }
      if (rawPath.startsWith("/")) throw new UserError(`invalid request path ${JSON.stringify(rawPath)}: empty, '.' and '..' segments are not allowed`);
      refuseWrapping(c.req.header("x-vault-wrap-ttl"));
      const listParam = query.get("list");
      const isList = listParam === "true" || listParam === "1";
      const op = operationOf(method, isList);
      let data: Record<string, unknown> = {};
      if (op === "read" || op === "list") {
        for (const [k, v] of query) if (k !== "list") data[k] = v;
      } else {
        data = await readBody(c);
      }
      const resp = await core.handle({
        id: randomUUID(),
        op,
        path: rawPath,
        data,
        token: tokenOf(c),
        connection: connectionOf(c.env.incoming),
      });
      status = resp.status;
      return send(c, resp);
    } catch (err) {
      status = isLeaseholdError(err) ? err.status : 500;
      throw err;
    } finally {
      core.metrics.requests.inc({ method, status: String(status) });
      core.metrics.requestDuration.observe({ method }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  });

  return app;
}
