import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** What an outbound JSON call answered. `body` is undefined when the answer was not JSON. */
export interface JsonAnswer {
  status: number;
  body: unknown;
}

export interface JsonRequest {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** Sent as JSON; URLSearchParams are sent as a form (`application/x-www-form-urlencoded`, an OAuth token request). */
  body?: unknown;
  /** PEM bundle trusted for an https URL instead of the system store (the cluster CA, an IdP CA). */
  ca?: string;
  timeoutMs?: number;
  /** Answers larger than this are refused (a JWKS or a TokenReview is a few kilobytes). */
  maxBytes?: number;
}

/** Raised for transport failures (refused connection, TLS error, timeout, oversized answer). */
export class OutboundError extends Error {}

/**
 * A small JSON client on node:http/https: fetch cannot take a private CA on Node 20, and the
 * cluster API and IdPs commonly sit behind one. Redirects are not followed.
 */
export function requestJson(url: string, opts: JsonRequest = {}): Promise<JsonAnswer> {
  const u = new URL(url);
  if (u.protocol !== "https:" && u.protocol !== "http:") return Promise.reject(new OutboundError(`unsupported URL scheme ${u.protocol}`));
  const form = opts.body instanceof URLSearchParams ? opts.body : undefined;
  const payload = opts.body === undefined ? undefined : Buffer.from(form ? form.toString() : JSON.stringify(opts.body), "utf8");
  const maxBytes = opts.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const send = u.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(
      u,
      {
        method: opts.method ?? "GET",
        ...(u.protocol === "https:" && opts.ca ? { ca: opts.ca } : {}),
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
        headers: {
          Accept: "application/json",
          ...(payload ? { "Content-Type": form ? "application/x-www-form-urlencoded" : "application/json", "Content-Length": String(payload.length) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            req.destroy(new OutboundError(`answer larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", (e) => reject(new OutboundError(e.message)));
      },
    );
    req.on("timeout", () => req.destroy(new OutboundError("request timed out")));
    req.on("error", (e) => reject(e instanceof OutboundError ? e : new OutboundError(e.message)));
    req.end(payload);
  });
}
