import * as https from "node:https";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BadRequestError,
  ConnectionError,
  Leasehold,
  NotFoundError,
  PermissionDeniedError,
  VaultHttpError,
  appRoleAuth,
  databasePool,
  tlsCertificate,
  tokenAuth,
  type DatabaseCredentials,
  type Secret,
} from "leasehold/client";
import type { RunningServer } from "../../src/server/run.js";
import { connect, createTestDatabase, freePort, ok, rand, roleExists, templatedUrl, waitFor, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * The application library against the real server and the real PostgreSQL: logins kept alive,
 * leases renewed and replaced, a pg pool that follows its credentials, TLS pairs that rotate.
 */
let server: RunningServer;
let base: string;
let db: TestDatabase;
const rootPassword = () => decodeURIComponent(new URL(inject("pgUrl")).password);
const CREATE = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON items TO "{{name}}";`;

const root = (): Leasehold => new Leasehold({ env: {}, address: base, token: "root", minBackoffMs: 100, maxBackoffMs: 500 });

async function appRoleCredentials(role: string): Promise<{ roleId: string; secretId: string }> {
  const roleId = (await ok(call(base, "GET", `auth/approle/role/${role}/role-id`, { token: "root" }))).data.role_id as string;
  const secretId = (await ok(call(base, "PUT", `auth/approle/role/${role}/secret-id`, { token: "root", body: {} }))).data.secret_id as string;
  return { roleId, secretId };
}

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "lib");
  await db.admin.query("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2), (3);");
  server = await startTestServer({ rootTokenId: "root", maxLeaseTtl: 87600 * 3600, leaseRetry: { baseMs: 100, capMs: 500, maxAttempts: 30 } });
  base = server.url;
  const admin = (method: string, path: string, body?: unknown, status = 204) => ok(call(base, method, path, { token: "root", body }), status);
  await admin("POST", "sys/mounts/database", { type: "database" });
  await admin("POST", "database/config/pg", {
    plugin_name: "postgresql-database-plugin",
    connection_url: templatedUrl(db.url),
    username: "postgres",
    password: rootPassword(),
    allowed_roles: "*",
  });
  await admin("POST", "database/roles/short", { db_name: "pg", creation_statements: CREATE, default_ttl: "3s", max_ttl: "8s" });
  await admin("POST", "database/roles/pool", { db_name: "pg", creation_statements: CREATE, default_ttl: "2s", max_ttl: "4s" });
  await admin("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
  await admin("POST", "pki/root/generate/internal", { common_name: "Library Test Root", key_type: "ec", key_bits: 256, ttl: "87600h" }, 200);
  await admin("POST", "pki/roles/svc", { allowed_domains: "svc.internal", allow_subdomains: true, allow_localhost: true, allow_ip_sans: true, max_ttl: "1h", not_before_duration: "0s" }, 200);
  await admin("POST", "sys/auth/approle", { type: "approle" });
  await admin("POST", "sys/policies/acl/app", {
    policy: 'path "database/creds/*" { capabilities = ["read"] }\npath "pki/issue/*" { capabilities = ["update"] }\npath "secret/*" { capabilities = ["read", "create", "update", "list"] }',
  });
  await admin("POST", "auth/approle/role/app", { token_policies: "app", token_ttl: "3s", token_max_ttl: "6s" });
});

afterAll(async () => {
  if (server) {
    await call(base, "PUT", "sys/leases/revoke-prefix/database/", { token: "root" });
    await server.stop();
  }
  await db?.drop();
});

describe("Leasehold: login and token upkeep", () => {
  it("logs in with AppRole, renews the token, and logs in again before the max TTL", async () => {
    const { roleId, secretId } = await appRoleCredentials("app");
    const lh = new Leasehold({ env: {}, address: base, minBackoffMs: 100, maxBackoffMs: 500 });
    const logins: string[] = [];
    try {
      const auth = await lh.login(appRoleAuth({ roleId, secretId }), { onLogin: (a) => logins.push(a.client_token) });
      expect(auth.policies).toContain("app");
      expect(lh.token).toBe(auth.client_token);
      // The 6 s max TTL forces a second login at ~85-90% of it; the first token was renewed meanwhile.
      await waitFor(() => logins.length >= 2, "a second login", 12_000);
      expect(lh.token).toBe(logins[1]);
      expect(logins[1]).not.toBe(logins[0]);
      const self = await lh.read<{ ttl: number }>("auth/token/lookup-self");
      expect(self?.data?.ttl).toBeGreaterThan(0);
    } finally {
      await lh.close();
    }
  }, 20_000);

  it("throws a typed error for a refused credential, without retrying it", async () => {
    const lh = new Leasehold({ env: {}, address: base, retries: 3, retryMinMs: 2_000 });
    const started = Date.now();
    try {
      const err = await lh.login(appRoleAuth({ roleId: "nope", secretId: "nope" })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VaultHttpError);
      // Vault answers a refused AppRole credential with 400 "invalid role or secret ID".
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as VaultHttpError).status).toBe(400);
      expect((err as VaultHttpError).errors.join(" ")).toMatch(/invalid|role/i);
      expect(Date.now() - started).toBeLessThan(1_500); // a retry would have waited ≥ 1 s
    } finally {
      await lh.close();
    }
  });

  it("reads, writes and lists with typed errors for 403 and 404", async () => {
    const lh = root();
    try {
      await lh.write("sys/mounts/kv2", { type: "kv", options: { version: "2" } });
      const { version } = await lh.kv.put("app/config", { color: "blue" }, { mount: "kv2" });
      expect(version).toBe(1);
      expect((await lh.kv.get<{ color: string }>("app/config", { mount: "kv2" }))?.data.data.color).toBe("blue");
      expect(await lh.kv.list("app", { mount: "kv2" })).toEqual(["config"]);
      expect(await lh.read("kv2/data/missing")).toBeUndefined();
      await expect(lh.write("nowhere/at/all", {})).rejects.toBeInstanceOf(NotFoundError);
      const limited = new Leasehold({ env: {}, address: base });
      await limited.login(tokenAuth((await lh.write<never>("auth/token/create", { policies: ["app"], ttl: "1m" }))!.auth!.client_token));
      await expect(limited.read("kv2/data/app/config")).rejects.toBeInstanceOf(PermissionDeniedError);
      await limited.close();
    } finally {
      await lh.close();
    }
  });

  it("retries an unreachable server and then names the address", async () => {
    const port = await freePort();
    const lh = new Leasehold({ env: {}, address: `http://127.0.0.1:${port}`, token: "x", retries: 2, retryMinMs: 50, retryMaxMs: 100 });
    const started = Date.now();
    const err = await lh.read("secret/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(50); // at least one backoff happened
    await lh.close();
  });
});

describe("Leasehold: watching leased secrets", () => {
  it("renews database credentials, replaces them before max TTL, and the current user always exists", async () => {
    const { roleId, secretId } = await appRoleCredentials("app");
    const lh = new Leasehold({ env: {}, address: base, minBackoffMs: 100, maxBackoffMs: 500 });
    await lh.login(appRoleAuth({ roleId, secretId }));
    const renewed: number[] = [];
    const replaced: string[] = [];
    const errors: Error[] = [];
    const creds = await lh.database.creds("short");
    const watch = lh.watch(creds, {
      onRenewed: (_s, expiresAt) => renewed.push(expiresAt),
      onReplaced: (next: Secret<DatabaseCredentials>) => void replaced.push(next.data.username),
      onError: (e) => errors.push(e),
    });
    try {
      const deadline = Date.now() + 13_000;
      let checks = 0;
      while (Date.now() < deadline) {
        // The user the application holds right now exists in PostgreSQL.
        expect(await roleExists(db.admin, watch.current.data.username)).toBe(true);
        checks++;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(checks).toBeGreaterThan(20);
      expect(renewed.length).toBeGreaterThanOrEqual(1);
      expect(replaced.length).toBeGreaterThanOrEqual(1);
      expect(new Set([creds.data.username, ...replaced]).size).toBe(replaced.length + 1);
      expect(errors).toEqual([]);
      // The first user is gone: its lease ran out (or died with the first token) and was revoked.
      await waitFor(async () => !(await roleExists(db.admin, creds.data.username)), "the first user to be dropped", 10_000);
    } finally {
      await watch.stop();
      await lh.close();
    }
  }, 30_000);

  it("close({ revoke: true }) revokes the leases and the token it obtained", async () => {
    const { roleId, secretId } = await appRoleCredentials("app");
    const lh = new Leasehold({ env: {}, address: base });
    await lh.login(appRoleAuth({ roleId, secretId }));
    const token = lh.token!;
    const creds = await lh.database.creds("short");
    expect(await roleExists(db.admin, creds.data.username)).toBe(true);
    await lh.close({ revoke: true });
    await waitFor(async () => !(await roleExists(db.admin, creds.data.username)), "the user to be dropped");
    expect((await call(base, "GET", "auth/token/lookup-self", { token })).status).toBe(403);
  });
});

describe("databasePool", () => {
  it("keeps serving queries across several credential replacements, never on a dropped role", async () => {
    const lh = root();
    const rotations: Array<[string, string]> = [];
    const errors: Error[] = [];
    const pool = await databasePool(lh, "pool", { host: new URL(db.url).hostname, port: Number(new URL(db.url).port), database: db.name, max: 4 }, {
      onRotated: (user, previous) => rotations.push([user, previous]),
      onError: (e) => errors.push(e),
    });
    const usersSeen = new Set<string>();
    let queries = 0;
    try {
      const until = Date.now() + 12_000;
      while (Date.now() < until && rotations.length < 3) {
        const [a, b] = await Promise.all([pool.query<{ u: string; n: string }>("SELECT current_user AS u, count(*)::text AS n FROM items"), pool.query<{ u: string }>("SELECT current_user AS u")]);
        expect(a.rows[0].n).toBe("3");
        usersSeen.add(a.rows[0].u).add(b.rows[0].u);
        queries += 2;
        // Every session of a leasehold user on this database belongs to a role that still exists.
        const sessions = await db.admin.query<{ usename: string; live: boolean }>(
          "SELECT a.usename, EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = a.usename) AS live FROM pg_stat_activity a WHERE a.datname = $1 AND a.usename LIKE 'v-%'",
          [db.name],
        );
        for (const s of sessions.rows) expect(s.live, `session of dropped role ${s.usename}`).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(rotations.length).toBeGreaterThanOrEqual(3);
      expect(usersSeen.size).toBeGreaterThanOrEqual(3);
      expect(pool.username).toBe(rotations.at(-1)![0]);
      expect(queries).toBeGreaterThan(20);
      // Idle connections of the users rotated away from are closed at once, not at lease expiry.
      const [, oldest] = rotations[0];
      await waitFor(async () => (await db.admin.query("SELECT 1 FROM pg_stat_activity WHERE usename = $1", [oldest])).rowCount === 0, "old user's sessions to close", 3_000);
      expect(errors).toEqual([]);
    } finally {
      await pool.end();
      await lh.close();
    }
  }, 30_000);

  it("a client from connect() keeps its user until released, then the pool moves on", async () => {
    const lh = root();
    const pool = await databasePool(lh, "pool", { host: new URL(db.url).hostname, port: Number(new URL(db.url).port), database: db.name, max: 2 });
    try {
      const client = await pool.connect();
      const first = (await client.query<{ u: string }>("SELECT current_user AS u")).rows[0].u;
      expect(first).toBe(pool.username);
      await waitFor(() => pool.username !== first, "a rotation", 8_000);
      expect((await client.query<{ u: string }>("SELECT current_user AS u")).rows[0].u).toBe(first);
      client.release();
      await waitFor(async () => (await db.admin.query("SELECT 1 FROM pg_stat_activity WHERE usename = $1", [first])).rowCount === 0, "the released client to close", 3_000);
      expect((await pool.query<{ u: string }>("SELECT current_user AS u")).rows[0].u).toBe(pool.username);
    } finally {
      await pool.end();
      await lh.close();
    }
  }, 20_000);
});

describe("tlsCertificate", () => {
  it("rotates a server's certificate and clients keep connecting across the rotation", async () => {
    const lh = root();
    const serials: string[] = [];
    const cert = await tlsCertificate(lh, "svc", { common_name: "api.svc.internal", alt_names: "localhost", ip_sans: "127.0.0.1", ttl: "5s" }, { onRotated: (c) => serials.push(c.serial_number) });
    const server = https.createServer(cert.serverOptions(), (_req, res) => res.end("ok"));
    cert.attach(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const ca = cert.ca;
    const get = () =>
      new Promise<{ body: string; serial: string }>((resolve, reject) => {
        const req = https.get({ host: "127.0.0.1", port, path: "/", ca, servername: "localhost", agent: false }, (res) => {
          const serial = (res.socket as import("node:tls").TLSSocket).getPeerCertificate().serialNumber;
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ body, serial }));
        });
        req.on("error", reject);
      });
    try {
      const before = await get();
      expect(before.body).toBe("ok");
      expect(before.serial.toLowerCase()).toBe(cert.serialNumber.replace(/:/g, "").toLowerCase());
      const seen = new Set([before.serial]);
      const until = Date.now() + 14_000;
      while (Date.now() < until && seen.size < 3) {
        const r = await get(); // every request must succeed, before, during and after rotations
        expect(r.body).toBe("ok");
        seen.add(r.serial);
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(serials.length).toBeGreaterThanOrEqual(2);
      expect(seen.size).toBeGreaterThanOrEqual(3);
      // A rotated pair was issued well before the previous one expired (two thirds of 5 s).
      expect(cert.expiration * 1000).toBeGreaterThan(Date.now());
    } finally {
      await cert.stop();
      await new Promise<void>((r) => server.close(() => r()));
      await lh.close();
    }
  }, 30_000);
});

describe("tlsCertificate for mTLS", () => {
  it("both sides rotate their pairs and keep authenticating each other", async () => {
    const lh = root();
    // Lifetimes of seconds rotate often; 5 s leaves room for a busy test machine to be late.
    const serverCert = await tlsCertificate(lh, "svc", { common_name: "server.svc.internal", alt_names: "localhost", ttl: "5s" });
    const clientCert = await tlsCertificate(lh, "svc", { common_name: "client.svc.internal", ttl: "5s" });
    const server = https.createServer(serverCert.serverOptions({ requestCert: true, rejectUnauthorized: true }), (req, res) => {
      const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
      res.end(`${peer.subject.CN} ${peer.serialNumber}`);
    });
    serverCert.attach(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const get = () =>
      new Promise<string>((resolve, reject) => {
        // The client's current pair and the CA both sides trust, fresh for every request.
        const options: https.RequestOptions & import("node:tls").ConnectionOptions = { host: "127.0.0.1", port, path: "/", servername: "localhost", secureContext: clientCert.secureContext, agent: false };
        const req = https.get(options, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
      });
    try {
      const clientSerials = new Set<string>();
      const until = Date.now() + 14_000;
      while (Date.now() < until && clientSerials.size < 3) {
        const [cn, serial] = (await get()).split(" ");
        expect(cn).toBe("client.svc.internal");
        clientSerials.add(serial);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(clientSerials.size).toBeGreaterThanOrEqual(3); // the server saw the client's rotated pairs
      // A client without a certificate is refused by the server.
      const anonymous = await new Promise<string>((resolve) => {
        const req = https.get({ host: "127.0.0.1", port, path: "/", servername: "localhost", ca: serverCert.ca, agent: false }, (res) => resolve(String(res.statusCode)));
        req.on("error", (e) => resolve(e.message));
      });
      expect(anonymous).toMatch(/certificate|socket hang up|ECONNRESET|alert/i);
    } finally {
      await serverCert.stop();
      await clientCert.stop();
      await new Promise<void>((r) => server.close(() => r()));
      await lh.close();
    }
  }, 30_000);
});

// Silence "unused" for helpers some runs do not need.
void connect;
void rand;
void pg;
