import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { TLSSocket } from "node:tls";
import { Hono, type Context } from "hono";
import type { HttpBindings } from "@hono/node-server";
import type { Logger } from "pino";
import { renderResponse, STANDBY_PATHS, type Core, type CoreRequest, type CoreResponse, type HaLeader } from "../core/core.js";
import { isLeaseholdError, LeaseholdError, PermissionDenied, StandbyError, UnsupportedOperation, UserError } from "../sdk/errors.js";
import { parseGoBool } from "../sdk/fields.js";
import { ForwardingFailed, readForwardedConnection, relayOf, type Forwarder, type ForwardedConnection } from "../cluster/forwarding.js";
import { metricsAnswer } from "../core/sys/audit.js";
import { ClientAborted, CONTROL_MAX_REQUEST_SIZE, decodeBody, DEFAULT_MAX_REQUEST_SIZE, readRawBody } from "./body.js";
import { mountConsole } from "./ui.js";

type Env = { Bindings: HttpBindings };

/** Per-listener request limits (the `listener "tcp"` block); see body.ts for the body limits. */
export interface AppLimits {
  /** `max_request_size`: the body limit of data writes to secrets engines (others get at most 1 MiB). */
  maxRequestSize: number;
  /** `max_request_duration`: how long the core may take to answer a request (0 = no limit). */
  maxRequestDurationMs: number;
}

/** Vault's defaults: 32 MiB, 90 s. */
export const DEFAULT_APP_LIMITS: AppLimits = { maxRequestSize: DEFAULT_MAX_REQUEST_SIZE, maxRequestDurationMs: 90_000 };

/** A request that ran past `max_request_duration`: answered 503 (what it was doing may still finish). */
export class RequestTimedOut extends LeaseholdError {
  readonly status = 503;
  readonly code = "request_timeout";
  constructor(ms: number) {
    super(`request took longer than max_request_duration (${ms / 1000}s): context deadline exceeded`);
  }
}

/** Status recorded in metrics for a client that hung up mid-body (nginx's "client closed request"). */
const CLIENT_CLOSED_STATUS = 499;

/** True when the request announces a body (a length above zero, or chunked). */
function hasBody(incoming: IncomingMessage): boolean {
  const length = incoming.headers["content-length"];
  return (length !== undefined && length !== "0") || incoming.headers["transfer-encoding"] !== undefined;
}

/** The error envelope: `{"errors": [...]}` (an empty NotFound gives `[]`, as Vault does). */
export function errorBody(err: LeaseholdError): { errors: string[] } {
  return { errors: [err.message, ...err.details].filter((m) => m !== "") };
}

function tokenOf(c: Context<Env>): string | undefined {
  const t = c.req.header("x-vault-token");
  if (t) return t.trim();
  const auth = c.req.header("authorization");
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim();
  return undefined;
}

/**
 * The caller's connection: the socket's, or on the cluster listener (every peer authenticated with
 * the cluster certificate) the one a standby forwarded.
 */
function connectionOf(incoming: IncomingMessage, clusterPeer: boolean): CoreRequest["connection"] {
  if (clusterPeer) {
    const forwarded = readForwardedConnection(incoming.headers);
    if (forwarded) return forwarded;
  }
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

/** What distinguishes the listeners' apps besides their limits. */
export interface AppRole {
  /** HA: how a standby relays requests to the active node (absent: it redirects, 307). */
  forwarder?: Forwarder;
  /** The cluster listener's app: callers are cluster peers, their forwarded connection facts are believed, nothing is forwarded again. */
  clusterPeer?: boolean;
  /** Serve the operator console at `/ui/` (`ui = true`, or `--dev`); otherwise `/ui/` answers 404 as in Vault. */
  ui?: boolean;
}

/** How long a standby reuses the active node's address it read from the lock (a failure reads it again at once). */
const LEADER_CACHE_MS = 1_000;

/**
 * The HTTP front: one catch-all `/v1/*` route (mounts change at runtime, so Hono's own router
 * cannot know them) that parses the request, asks the core, and renders Vault's envelopes.
 */
export function buildApp(core: Core, logger: Logger, limits: Partial<AppLimits> = {}, role: AppRole = {}): Hono<Env> {
  const app = new Hono<Env>();
  const { forwarder, clusterPeer = false } = role;
  const { maxRequestSize, maxRequestDurationMs } = { ...DEFAULT_APP_LIMITS, ...limits };

  app.onError((err, c) => {
    if (err instanceof ClientAborted) {
      // Nobody is left to answer and nothing failed here: not an internal error.
      logger.debug({ path: c.req.path }, "client closed the connection before its request body was complete");
      return c.body(null, CLIENT_CLOSED_STATUS as 400);
    }
    if (err instanceof RequestTimedOut) {
      logger.warn({ path: c.req.path, max_request_duration_ms: maxRequestDurationMs }, "request exceeded max_request_duration");
      return c.json(errorBody(err), err.status);
    }
    if (isLeaseholdError(err)) {
      // 503 while sealed is the normal state of a sealed server, not an incident.
      if (err.status >= 500 && err.status !== 503) logger.error({ err, path: c.req.path }, "request failed");
      return c.json(errorBody(err), err.status as 400);
    }
    logger.error({ err, path: c.req.path }, "internal error");
    return c.json({ errors: ["internal error"] }, 500);
  });
  app.notFound((c) => c.json({ errors: [] }, 404));
  if (!clusterPeer) mountConsole(app, { enabled: role.ui === true, logger });

  /**
   * `max_request_duration` bounds the core's work (the body read is bounded by the listener's read
   * timeout, as in Vault). The request is answered at the deadline; its work cannot be cancelled
   * and may still finish.
   */
  const withDeadline = async (work: Promise<CoreResponse>): Promise<CoreResponse> => {
    if (maxRequestDurationMs <= 0) return work;
    let timer: NodeJS.Timeout | undefined;
    work.catch(() => undefined);
    const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new RequestTimedOut(maxRequestDurationMs)), maxRequestDurationMs)));
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  /** Parses the request and asks the core. */
  const serve = async (c: Context<Env>, method: string): Promise<CoreResponse> => {
    const incoming = c.env.incoming;
    // The path as sent: URL parsing would resolve `.`/`..` (also `%2e%2e`) before we could refuse them.
    // An origin-form target (`/v1/...`, what clients send) needs no URL parse at all.
    const target = incoming.url ?? "";
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
    // Vault reads `list` with Go's strconv.ParseBool (hvac sends `list=True`) and refuses other values.
    const listParam = query.get("list") ?? "";
    const isList = listParam === "" ? false : parseGoBool(listParam);
    if (isList === undefined) throw new UserError(`invalid value for list: ${JSON.stringify(listParam)} (use true or false)`);
    const op = operationOf(method, isList);
    const id = randomUUID();
    const token = tokenOf(c);
    const connection = connectionOf(incoming, clusterPeer);
    let data: Record<string, unknown> = {};
    if (op === "read" || op === "list") {
      for (const [k, v] of query) if (k !== "list") data[k] = v;
    } else if (hasBody(incoming)) {
      // Token first, body second: a request that would be refused for its token is refused before a
      // byte of its body is read (the body is then drained or the connection closed).
      let admitted: Awaited<ReturnType<Core["admitBeforeBody"]>>;
      try {
        admitted = await core.admitBeforeBody({ id, op, path: rawPath, token, connection });
      } catch (err) {
        // A small unread body is drained by Node and the connection kept; a large or chunked one is not worth reading.
        const length = Number(incoming.headers["content-length"] ?? Number.POSITIVE_INFINITY);
        if (!(length <= 64 * 1024)) c.header("Connection", "close");
        throw err;
      }
      const dataWrite = admitted.authenticated && admitted.kind === "secrets" && !admitted.builtin;
      const limit = dataWrite ? maxRequestSize : Math.min(CONTROL_MAX_REQUEST_SIZE, maxRequestSize);
      // Past the limit the rest of the body is never read, so the connection cannot carry another request.
      const raw = await readRawBody(incoming, limit, () => c.header("Connection", "close"));
      data = decodeBody(raw, c.req.header("content-type") ?? "");
    }
    return withDeadline(core.handle({ id, op, path: rawPath, data, token, connection }));
  };

  let cachedLeader: { leader: HaLeader | undefined; at: number } | undefined;
  const leaderNow = async (fresh: boolean): Promise<HaLeader | undefined> => {
    if (!fresh && cachedLeader && Date.now() - cachedLeader.at < LEADER_CACHE_MS) return cachedLeader.leader;
    const leader = await core.ha!.leader().catch(() => undefined);
    cachedLeader = { leader, at: Date.now() };
    return leader;
  };

  /** 307 to the same path and query on the active node's api_addr (method and body kept by the client). */
  const redirectTo = (c: Context<Env>, leader: HaLeader | undefined, url: URL): Response => {
    if (hasBody(c.env.incoming)) c.header("Connection", "close"); // the body is not read
    if (!leader || leader.isSelf || !leader.apiAddr) throw new StandbyError();
    let location: URL;
    try {
      location = new URL(leader.apiAddr);
    } catch {
      throw new StandbyError();
    }
    location.pathname = url.pathname;
    location.search = url.search;
    forwarder?.countRedirect();
    c.header("Location", location.toString());
    return c.body(null, 307);
  };

  /**
   * `sys/metrics` on a standby: its own figures (each node is scraped for itself, as in Vault), once
   * the active node, asked through the cluster with the caller's token and address, says the token
   * may read `sys/metrics`. A refusal of the token itself comes back as the active answered it.
   */
  const ownMetrics = async (c: Context<Env>, fw: Forwarder, clusterAddr: string, conn: ForwardedConnection, url: URL): Promise<Response> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    for (const h of ["x-vault-token", "authorization"]) {
      const v = c.req.header(h);
      if (v !== undefined) headers[h] = v;
    }
    const check = await fw.forward(clusterAddr, { method: "POST", url: "/v1/sys/capabilities-self", headers, body: Buffer.from(JSON.stringify({ paths: ["sys/metrics"] })) }, conn);
    if (check.status !== 200) return c.body(new Uint8Array(check.body), check.status as 400, check.headers);
    let caps: unknown;
    try {
      caps = (JSON.parse(check.body.toString("utf8")) as { data?: { capabilities?: unknown } }).data?.capabilities;
    } catch {
      caps = undefined;
    }
    if (!Array.isArray(caps) || !(caps.includes("read") || caps.includes("root"))) throw new PermissionDenied();
    const answer = await metricsAnswer(core, url.searchParams.get("format") ?? undefined);
    return send(c, renderResponse(randomUUID(), answer, null, "system"));
  };

  /**
   * HA: a standby answers its own status paths and relays everything else to the active node over
   * the cluster listener (request forwarding), so clients may talk to any node. When it cannot
   * forward (no forwarder, the active has no cluster_addr, or the active cannot be reached), it
   * falls back to what Vault does then: 307 to the same path and query on the active's api_addr,
   * or 503 with "standby" in the message (clients fail over) when no node is active. On the cluster
   * listener a standby never forwards again: 503.
   */
  const standbyAnswer = async (c: Context<Env>): Promise<Response | undefined> => {
    if (!core.standby || !core.ha) return undefined;
    const target = c.env.incoming.url ?? "";
    const url = new URL(target, "http://standby.invalid");
    let path: string;
    try {
      path = decodeURIComponent(url.pathname.slice("/v1/".length)).replace(/\/+$/, "");
    } catch {
      return undefined; // serve() refuses it
    }
    if (STANDBY_PATHS.has(path)) return undefined;
    if (clusterPeer) throw new StandbyError();
    // The cached address serves forwarding only (a failure reads it again); a redirect reads it fresh.
    let leader = await leaderNow(!forwarder);
    if (forwarder && leader && !leader.isSelf && leader.clusterAddr) {
      const conn = connectionOf(c.env.incoming, false);
      for (let attempt = 0; ; attempt++) {
        try {
          if (path === "sys/metrics" && (c.req.method === "GET" || c.req.method === "HEAD")) return await ownMetrics(c, forwarder, leader.clusterAddr, conn, url);
          const answer = await forwarder.forward(leader.clusterAddr, relayOf(c.env.incoming), conn);
          return c.body(new Uint8Array(answer.body), answer.status as 200, answer.headers);
        } catch (err) {
          if (!(err instanceof ForwardingFailed)) throw err;
          logger.debug({ err: err.message, leader: leader.clusterAddr }, "forwarding to the active node failed");
          if (err.maybeDelivered) {
            // It may have been done: never sent twice. The client decides (its library retries on 503 "standby").
            throw new StandbyError("node is in standby mode: forwarding to the active node failed before it answered; the request may or may not have been carried out");
          }
          // The active may have changed since the cached read: once more with a fresh one.
          const fresh = await leaderNow(true);
          if (attempt > 0 || !fresh || fresh.isSelf || !fresh.clusterAddr || fresh.clusterAddr === leader.clusterAddr) {
            leader = fresh;
            break;
          }
          leader = fresh;
        }
      }
    }
    return redirectTo(c, leader, url);
  };

  app.all("/v1/*", async (c) => {
    const started = process.hrtime.bigint();
    const method = c.req.method.toUpperCase();
    let status = 500;
    try {
      const redirect = await standbyAnswer(c);
      if (redirect) {
        status = redirect.status;
        return redirect;
      }
      const resp = await serve(c, method);
      status = resp.status;
      return send(c, resp);
    } catch (err) {
      status = err instanceof ClientAborted ? CLIENT_CLOSED_STATUS : isLeaseholdError(err) ? err.status : 500;
      throw err;
    } finally {
      core.metrics.requests.inc({ method, status: String(status) });
      core.metrics.requestDuration.observe({ method }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  });

  return app;
}
