import { request } from "node:https";

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as received. */
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
}

/**
 * One HTTPS request on a fresh TLS connection (node:https; fetch cannot take a private CA or a
 * client certificate), optionally presenting a client certificate (PEM, leaf first then chain).
 */
export function httpsCall(
  base: string,
  method: string,
  path: string,
  opts: { ca?: string; cert?: string; key?: string; token?: string; body?: unknown; servername?: string; headers?: Record<string, string> } = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(`/v1/${path}`, base);
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: opts.servername,
        agent: false,
        headers: {
          ...opts.headers,
          ...(opts.token ? { "X-Vault-Token": opts.token } : {}),
          ...(payload !== undefined ? { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(payload);
  });
}
