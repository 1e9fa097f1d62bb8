import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import type { Hono } from "hono";
import { acceptListMethod } from "./list-method.js";

export interface ListenOptions {
  /** `host:port`; port 0 picks a free one. */
  address: string;
  tls?: { cert: string; key: string; ca?: string };
}

export interface RunningListener {
  server: Server;
  url: string;
  close(): Promise<void>;
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
  const server = (
    opts.tls
      ? createAdaptorServer({
          fetch: app.fetch,
          createServer: createHttpsServer,
          serverOptions: { key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: false },
        })
      : createAdaptorServer({ fetch: app.fetch, createServer: createHttpServer })
  ) as Server;
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
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
    url: `${opts.tls ? "https" : "http"}://${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 5_000).unref();
      }),
  };
}
