import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import pg from "pg";
import { expect } from "vitest";
import { call } from "../helpers/server.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `fn` returns something truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const rand = () => randomBytes(4).toString("hex");

/** The same server URL with other credentials and/or another database. */
export function urlWith(url: string, opts: { user?: string; password?: string; database?: string }): string {
  const u = new URL(url);
  if (opts.user !== undefined) u.username = encodeURIComponent(opts.user);
  if (opts.password !== undefined) u.password = encodeURIComponent(opts.password);
  if (opts.database !== undefined) u.pathname = `/${encodeURIComponent(opts.database)}`;
  return u.toString();
}

/** `postgresql://{{username}}:{{password}}@host:port/db`: the config's templated URL for `url`. */
export function templatedUrl(url: string): string {
  const u = new URL(url);
  return `postgresql://{{username}}:{{password}}@${u.host}${u.pathname}`;
}

export async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => undefined); // a terminated session must not crash the test process
  await c.connect();
  return c;
}

/** Whether `user`/`password` can log in to the database of `url`. */
export async function canLogin(url: string, user: string, password: string): Promise<boolean> {
  try {
    const c = await connect(urlWith(url, { user, password }));
    await c.end();
    return true;
  } catch {
    return false;
  }
}

export interface TestDatabase {
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /** A superuser session in it. */
  admin: pg.Client;
  drop(): Promise<void>;
}

/** A fresh database on the test server, so test files do not see each other's tables. */
export async function createTestDatabase(serverUrl: string, label: string): Promise<TestDatabase> {
  const name = `lh_${label}_${rand()}`;
  const root = await connect(serverUrl);
  await root.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await root.end();
  const url = urlWith(serverUrl, { database: name });
  const admin = await connect(url);
  return {
    name,
    url,
    admin,
    drop: async () => {
      await admin.end().catch(() => undefined);
      const r = await connect(serverUrl);
      await r.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`).catch(() => undefined);
      await r.end();
    },
  };
}

export async function roleExists(admin: pg.Client, name: string): Promise<boolean> {
  const r = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name]);
  return r.rowCount === 1;
}

export async function validUntil(admin: pg.Client, name: string): Promise<number> {
  const r = await admin.query<{ v: Date }>("SELECT rolvaliduntil AS v FROM pg_roles WHERE rolname = $1", [name]);
  expect(r.rowCount).toBe(1);
  return r.rows[0].v.getTime();
}

/** Leases of one mount in the lease table (any state). */
export async function leaseCount(base: string, mount = "database/"): Promise<number> {
  const r = await call(base, "GET", "sys/leases/count", { token: "root" });
  expect(r.status).toBe(200);
  return (r.body.data.by_mount as Record<string, number>)[mount] ?? 0;
}

export async function ok(p: Promise<{ status: number; body: unknown }>, status = 200): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  const r = await p;
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
