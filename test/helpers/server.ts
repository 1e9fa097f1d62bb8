import pino from "pino";
import { startDevServer, type DevServerOptions, type RunningServer } from "../../src/server/run.js";

/** Starts the real dev server on a free loopback port, logs silenced. */
export async function startTestServer(opts: Omit<DevServerOptions, "address" | "logger"> = {}): Promise<RunningServer> {
  return startDevServer({ address: "127.0.0.1:0", logger: pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" }), ...opts });
}

/** Minimal JSON-over-fetch helper for tests: returns status and parsed body. */
export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  const res = await fetch(`${base}/v1/${path}`, {
    method,
    headers: { ...(opts.token ? { "X-Vault-Token": opts.token } : {}), ...(opts.body !== undefined ? { "Content-Type": "application/json" } : {}), ...opts.headers },
    body: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}
