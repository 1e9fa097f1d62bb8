import { Agent, request as httpsRequest } from "node:https";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { Counter, Histogram, type Registry } from "prom-client";
import { CLUSTER_SERVER_NAME, type ClusterTlsMaterial } from "./tls.js";

/**
 * Request forwarding (Vault's): a standby relays a client's request to the active node over the
 * cluster listener (mutual TLS with the cluster certificate) and relays the answer back, so a client
 * may talk to any node.
 *
 * What the active must know of the original connection travels in `FORWARDED_*` headers: the
 * caller's address (CIDR bindings, login rate limits, audit) and its TLS client certificate chain
 * (cert logins). The active believes them only on its cluster listener, where every peer proved it
 * holds the cluster key; on the public listeners they are never read, and a standby strips any
 * such header a client sent before adding its own.
 */

/** The caller's IP address as the standby saw it. */
export const FORWARDED_REMOTE_ADDR = "x-leasehold-forwarded-remote-addr";
/** `authorized` / `unauthorized` (the TLS layer's verdict on the client certificate) or `none` (plain HTTP). */
export const FORWARDED_TLS = "x-leasehold-forwarded-tls";
/** The caller's client certificate and then its chain, each base64 DER, comma-separated. */
export const FORWARDED_CLIENT_CERT = "x-leasehold-forwarded-client-cert";

const FORWARDED_PREFIX = "x-leasehold-forwarded-";

/** Hop-by-hop headers (RFC 9110 7.6.1) and those the relay sets itself. */
const NOT_RELAYED = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade", "host", "transfer-encoding"]);

/** The connection facts a forwarded request carries (what `connectionOf` reads from a socket). */
export interface ForwardedConnection {
  remoteAddress: string;
  tlsAuthorized?: boolean;
  peerCertificate?: Buffer;
  peerCertificateChain?: Buffer[];
}

/** Encodes the caller's connection into the forwarding headers. */
export function forwardedHeaders(conn: ForwardedConnection): Record<string, string> {
  const h: Record<string, string> = { [FORWARDED_REMOTE_ADDR]: conn.remoteAddress, [FORWARDED_TLS]: conn.tlsAuthorized === undefined ? "none" : conn.tlsAuthorized ? "authorized" : "unauthorized" };
  if (conn.peerCertificate) h[FORWARDED_CLIENT_CERT] = [conn.peerCertificate, ...(conn.peerCertificateChain ?? [])].map((b) => b.toString("base64")).join(",");
  return h;
}

/**
 * Decodes them on the active's cluster listener; undefined when the request carries none (then the
 * peer's own socket is the caller: a request a node makes for itself).
 */
export function readForwardedConnection(headers: IncomingHttpHeaders): ForwardedConnection | undefined {
  const addr = headers[FORWARDED_REMOTE_ADDR];
  if (typeof addr !== "string") return undefined;
  const conn: ForwardedConnection = { remoteAddress: addr };
  const tls = headers[FORWARDED_TLS];
  if (tls === "authorized" || tls === "unauthorized") conn.tlsAuthorized = tls === "authorized";
  const certs = headers[FORWARDED_CLIENT_CERT];
  if (typeof certs === "string" && certs !== "") {
    const ders = certs.split(",").map((s) => Buffer.from(s.trim(), "base64"));
    conn.peerCertificate = ders[0];
    conn.peerCertificateChain = ders.slice(1);
  }
  return conn;
}

/** What is relayed: a client's request as it arrived (its body streamed), or one the standby makes itself. */
export interface RelayedRequest {
  method: string;
  /** Origin-form target: `/v1/...?query`. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The client's request to stream the body from, or a body of the standby's own. */
  body?: IncomingMessage | Buffer;
}

/** A client's request, relayed as it arrived. */
export function relayOf(incoming: IncomingMessage): RelayedRequest {
  const announced = incoming.headers["content-length"] !== undefined ? incoming.headers["content-length"] !== "0" : incoming.headers["transfer-encoding"] !== undefined;
  return { method: incoming.method ?? "GET", url: incoming.url ?? "/", headers: incoming.headers, body: announced ? incoming : undefined };
}

/** The relayed answer of the active node. */
export interface ForwardedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Forwarding did not reach the active node, or it hung up before answering: the caller falls back to a redirect. */
export class ForwardingFailed extends Error {
  constructor(
    message: string,
    /** True when the request may have reached the active (it was sent, no answer came back). */
    readonly maybeDelivered: boolean,
  ) {
    super(message);
  }
}

export interface ForwarderOptions {
  /** Reads the cluster's TLS material (from the barrier); undefined until the active has made it. */
  loadTls: () => Promise<ClusterTlsMaterial | undefined>;
  /** How long to wait for the connection and the TLS handshake (default 3 s). */
  connectTimeoutMs?: number;
  /** How long to wait for the answer once the request is sent (the listener's max_request_duration plus a margin). */
  responseTimeoutMs: number;
  registry: Registry;
}

/**
 * The standby's side: one pool of mutual-TLS connections to the active node's cluster listener,
 * made again when the cluster certificate changes.
 */
export class Forwarder {
  private tls?: ClusterTlsMaterial;
  private agent?: Agent;
  private readonly requests: Counter<"outcome">;
  private readonly duration: Histogram;

  constructor(private readonly opts: ForwarderOptions) {
    this.requests = new Counter({
      name: "leasehold_ha_forwarded_requests_total",
      help: "Requests this standby relayed to the active node, by outcome: forwarded (answered by the active), redirected (the active could not be reached: 307 to its api_addr), failed (sent, but no answer came back)",
      labelNames: ["outcome"],
      registers: [opts.registry],
    });
    this.duration = new Histogram({
      name: "leasehold_ha_forwarding_duration_seconds",
      help: "Time a standby spent relaying a request to the active node and its answer back",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [opts.registry],
    });
  }

  /** Counts a request the HTTP layer redirected instead (no cluster address, or forwarding failed). */
  countRedirect(): void {
    this.requests.inc({ outcome: "redirected" });
  }

  private async agentFor(reload: boolean): Promise<Agent> {
    if (this.agent && !reload) return this.agent;
    const tls = await this.opts.loadTls();
    if (!tls) throw new ForwardingFailed("the cluster certificate is not in storage yet (the active node makes it when it becomes active)", false);
    if (!this.agent || !this.tls || tls.cert !== this.tls.cert) {
      this.agent?.destroy();
      this.tls = tls;
      this.agent = new Agent({ keepAlive: true, maxSockets: 128, cert: tls.cert, key: tls.key, ca: tls.cert, servername: CLUSTER_SERVER_NAME, minVersion: "TLSv1.3" });
    }
    return this.agent;
  }

  /**
   * Relays `incoming` (its body streamed, not read here) to the cluster listener at `clusterAddr`
   * with the caller's connection facts, and returns the answer. Throws ForwardingFailed when the
   * active cannot be reached (the caller redirects instead, as Vault falls back to a redirect).
   */
  async forward(clusterAddr: string, relayed: RelayedRequest, conn: ForwardedConnection): Promise<ForwardedResponse> {
    const started = process.hrtime.bigint();
    let target: URL;
    try {
      target = new URL(clusterAddr);
    } catch {
      throw new ForwardingFailed(`the active node's cluster_addr ${JSON.stringify(clusterAddr)} is not a URL`, false);
    }
    const first = await this.send(target, relayed, conn, false).catch(async (err: unknown) => {
      // A failed handshake before anything was sent: the certificate may have been made again.
      if (err instanceof ForwardingFailed && !err.maybeDelivered && err.message.includes("handshake")) return this.send(target, relayed, conn, true);
      throw err;
    });
    this.requests.inc({ outcome: "forwarded" });
    this.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return first;
  }

  private async send(target: URL, relayed: RelayedRequest, conn: ForwardedConnection, reload: boolean): Promise<ForwardedResponse> {
    const agent = await this.agentFor(reload);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(relayed.headers)) {
      if (value === undefined || NOT_RELAYED.has(name) || name.startsWith(FORWARDED_PREFIX)) continue;
      headers[name] = value;
    }
    Object.assign(headers, forwardedHeaders(conn));
    // Node's client and server refuse the LIST method: the equivalent GET with list=true.
    let method = relayed.method;
    let path = relayed.url;
    if (method.toUpperCase() === "LIST") {
      method = "GET";
      path += (path.includes("?") ? "&" : "?") + "list=true";
    }
    const body = relayed.body;
    if (Buffer.isBuffer(body)) headers["content-length"] = String(body.length);
    else if (body && relayed.headers["transfer-encoding"] !== undefined) headers["transfer-encoding"] = "chunked";
    return new Promise<ForwardedResponse>((resolve, reject) => {
      let sent = false;
      let settled = false;
      const fail = (message: string, delivered: boolean) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(new ForwardingFailed(message, delivered));
      };
      const req = httpsRequest({ protocol: "https:", hostname: target.hostname.replace(/^\[|\]$/g, ""), port: target.port || 8201, method, path, headers, agent });
      const connectTimer = setTimeout(() => fail(`no TLS handshake with the active node's cluster listener ${target.host} within ${this.opts.connectTimeoutMs ?? 3000} ms`, false), this.opts.connectTimeoutMs ?? 3000);
      let responseTimer: NodeJS.Timeout | undefined;
      // The body is streamed only once the handshake is done: a failed handshake leaves it unread, so
      // the request can be sent again (new certificate) or redirected.
      const onSecure = () => {
        clearTimeout(connectTimer);
        sent = true;
        responseTimer = setTimeout(() => fail(`the active node did not answer within ${this.opts.responseTimeoutMs} ms`, true), this.opts.responseTimeoutMs);
        if (Buffer.isBuffer(body)) req.end(body);
        else if (body) {
          // A client that hangs up mid-body: the relay stops too (the active sees a cut request, as it would directly).
          body.once("close", () => {
            if (!body.complete) fail("the client closed the connection before its request body was complete", true);
          });
          body.pipe(req);
        } else req.end();
      };
      req.on("socket", (socket: TLSSocket) => {
        if (req.reusedSocket) onSecure();
        else socket.once("secureConnect", onSecure);
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        const handshake = !sent && (err.code?.startsWith("ERR_SSL") || err.code?.includes("CERT") || /handshake|certificate|alert/i.test(err.message));
        fail(`forwarding to the active node ${target.host} failed${handshake ? " (TLS handshake)" : ""}: ${err.code ?? err.message}`, sent);
      });
      req.on("response", (res) => {
        clearTimeout(connectTimer);
        const chunks: Buffer[] = [];
        res.on("data", (b: Buffer) => chunks.push(b));
        res.on("error", () => fail("the active node's answer was cut off", true));
        res.on("end", () => {
          clearTimeout(responseTimer);
          if (settled) return;
          if (!res.complete) return fail("the active node's answer was cut off", true);
          settled = true;
          const out: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined || NOT_RELAYED.has(name) || name === "content-length" || name === "date") continue;
            out[name] = Array.isArray(value) ? value.join(", ") : value;
          }
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
      });
    });
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}
