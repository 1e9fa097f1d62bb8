import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContext } from "node:tls";
import { createAdaptorServer } from "@hono/node-server";
import type { Hono } from "hono";
import { acceptListMethod } from "./list-method.js";

/**
 * Connection timeouts of a listener, with Vault's names and defaults (`listener "tcp"`), in ms.
 * 0 means none, as in Vault (Go's net/http).
 */
export interface HttpTimeouts {
  /** `http_read_header_timeout` (10s): time to receive the request headers. */
  readHeaderTimeoutMs: number;
  /** `http_read_timeout` (30s): time to receive the whole request, body included. */
  readTimeoutMs: number;
  /** `http_write_timeout` (0, none): time from the end of the headers to the end of the response. */
  writeTimeoutMs: number;
  /** `http_idle_timeout` (5m): how long a keep-alive connection may wait for its next request. */
  idleTimeoutMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { readHeaderTimeoutMs: 10_000, readTimeoutMs: 30_000, writeTimeoutMs: 0, idleTimeoutMs: 300_000 };

export interface ListenOptions {
  /** `host:port`; port 0 picks a free one. */
  address: string;
  tls?: { cert: string; key: string; ca?: string };
  /**
   * Instead of `tls`: mutual TLS where every client must present a certificate that `context()`'s
   * CA accepts (the cluster listener). The context is asked for at each handshake (SNI); while it is
   * undefined, every handshake fails.
   */
  mutualTls?: { context: () => SecureContext | undefined };
  /** Defaults: `DEFAULT_HTTP_TIMEOUTS`. */
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * Maps Vault's timeouts onto Node's server: `headersTimeout` and `requestTimeout` (checked every
 * `connectionsCheckingInterval`, 30 s by default in Node, so shortened to a quarter of the shortest
 * timeout, between 50 ms and 1 s, for them to be enforced on time), `keepAliveTimeout`. As in Vault,
 * an idle timeout of 0 falls back to the read timeout, then to the header timeout. Node requires
 * the header timeout not to exceed the request timeout: the header timeout is capped by it (headers
 * are part of the request anyway).
 */
function nodeTimeouts(t: HttpTimeouts): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  const requestTimeout = t.readTimeoutMs;
  const headersTimeout = requestTimeout > 0 && (t.readHeaderTimeoutMs === 0 || t.readHeaderTimeoutMs > requestTimeout) ? requestTimeout : t.readHeaderTimeoutMs;
  const keepAliveTimeout = t.idleTimeoutMs || t.readTimeoutMs || t.readHeaderTimeoutMs;
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((v) => v > 0), 4_000);
  return { headersTimeout, requestTimeout, keepAliveTimeout, connectionsCheckingInterval: Math.max(50, Math.floor(shortest / 4)) };
}

export interface RunningListener {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Go's WriteTimeout: a response not finished this long after its request's headers closes the connection. */
function enforceWriteTimeout(server: Server, ms: number): void {
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const timer = setTimeout(() => req.socket.destroy(), ms);
    res.once("close", () => clearTimeout(timer));
  });
}

export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address.trim());
  if (!m) throw new Error(`listener address must be host:port, got ${JSON.stringify(address)}`);
  return { host: m[1] || "0.0.0.0", port: Number(m[2]) };
}

/**
 * Starts an HTTP or HTTPS listener for the app. With TLS the server asks for a client certificate
 * (for `auth/cert`) but does not require one, so token clients still connect.
 */
export async function listen<E extends object>(app: Hono<E>, opts: ListenOptions): Promise<RunningListener> {
  const { host, port } = splitAddress(opts.address);
  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...opts.timeouts };
  const { keepAliveTimeout, ...serverTimeouts } = nodeTimeouts(timeouts);
  const mutual = opts.mutualTls;
  const server = (
    mutual
      ? createAdaptorServer({
          fetch: app.fetch,
          createServer: createHttpsServer,
          serverOptions: {
            SNICallback: (_name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
              const ctx = mutual.context();
              if (ctx) cb(null, ctx);
              else cb(new Error("the cluster listener has no certificate yet"));
            },
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: "TLSv1.3",
            ...serverTimeouts,
          },
        })
      : opts.tls
      ? createAdaptorServer({
          fetch: app.fetch,
          createServer: createHttpsServer,
          serverOptions: { key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: false, ...serverTimeouts },
        })
      : createAdaptorServer({ fetch: app.fetch, createServer: createHttpServer, serverOptions: serverTimeouts })
  ) as Server;
  server.keepAliveTimeout = keepAliveTimeout;
  if (timeouts.writeTimeoutMs > 0) enforceWriteTimeout(server, timeouts.writeTimeoutMs);
  acceptListMethod(server);
  // Without a listener Node drops CONNECT requests by closing the socket; answer them instead.
  server.on("connect", (_req, socket: import("node:net").Socket) => {
    const body = JSON.stringify({ errors: ["unsupported method CONNECT"] });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `${opts.tls || mutual ? "https" : "http"}://${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 5_000).unref();
      }),
  };
}
