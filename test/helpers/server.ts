import pino from "pino";
import { startDevServer, type DevServerOptions, type RunningServer } from "../../src/server/run.js";
import { openTestStorage } from "./storage-backend.js";

/**
 * Starts the real dev server on a free loopback port, logs silenced, on the store the run selects
 * (`LEASEHOLD_TEST_STORAGE`, see storage-backend.ts): SQLite in memory by default, a fresh
 * PostgreSQL database in the "postgresql" vitest project, dropped when the server stops.
 * An explicit `physical` is used as given.
 */
export async function startTestServer(opts: Omit<DevServerOptions, "address" | "logger"> = {}): Promise<RunningServer> {
  const logger = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" });
  if (opts.physical) return startDevServer({ address: "127.0.0.1:0", logger, ...opts });
  const storage = await openTestStorage();
  let server: RunningServer;
  try {
    server = await startDevServer({ address: "127.0.0.1:0", logger, ...opts, physical: storage.physical });
  } catch (err) {
    await storage.release();
    throw err;
  }
  const stop = server.stop;
  let stopped: Promise<void> | undefined;
  return {
    ...server,
    stop: () =>
      (stopped ??= (async () => {
        try {
          await stop();
        } finally {
          await storage.release();
        }
      })()),
  };
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
