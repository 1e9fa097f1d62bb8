/**
 * The PostgreSQL storage backend beyond the shared contract (src/storage/contract.test.ts): it
 * migrates and works as a role that owns only its schema, migrations are safe when several
 * processes start at once, ordering is bytewise under any database collation, the write fence
 * of the HA session plugs in, and connection errors never show the password.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PostgresStorage } from "../../src/storage/postgres.js";
import { connect, createTestDatabase, rand, urlWith, type TestDatabase } from "../database/helpers.js";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "pgstore");
});
afterAll(async () => {
  await db?.drop();
});

const v = (s: string) => Buffer.from(s, "utf8");

async function versions(admin: pg.Client, qualifiedMigrations: string): Promise<number[]> {
  return (await admin.query<{ version: number }>(`SELECT version FROM ${qualifiedMigrations} ORDER BY version`)).rows.map((r) => r.version);
}

describe("a role that owns only its own schema", () => {
  const role = `lh_owner_${rand()}`;
  const password = `pw-${rand()}-${rand()}`;
  let url = "";

  beforeAll(async () => {
    await db.admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await db.admin.query(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`); // "$user" in the default search_path
    await db.admin.query(`CREATE SCHEMA vaultdata_${role} AUTHORIZATION ${role}`);
    await db.admin.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    await db.admin.query(`REVOKE ALL ON DATABASE ${pg.escapeIdentifier(db.name)} FROM PUBLIC`);
    await db.admin.query(`GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(db.name)} TO ${role}`);
    url = urlWith(db.url, { user: role, password });
  });

  it("has no superuser, CREATEDB or CREATE on public (the setup is what it claims)", async () => {
    const c = await connect(url);
    try {
      const r = await c.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user");
      expect(r.rows[0]).toEqual({ rolsuper: false, rolcreatedb: false, rolcreaterole: false });
      await expect(c.query("CREATE TABLE public.probe (x int)")).rejects.toThrow(/permission denied/);
      await expect(c.query("CREATE EXTENSION IF NOT EXISTS pgcrypto")).rejects.toThrow(/permission denied|must be|not allowed/);
    } finally {
      await c.end();
    }
  });

  it("creates its tables in the current schema (the role's own) and works", async () => {
    const store = await PostgresStorage.open({ connectionUrl: url });
    try {
      expect(store.names.kv).toBe(`"${role}"."leasehold_kv_store"`);
      await store.put("sys/x/😀", v("one"));
      await store.batch([{ key: "sys/y", value: v("two") }]);
      expect(await store.list("sys/")).toEqual(["x/", "y"]);
      await store.leases.insert({
        id: "database/creds/ro/1", kind: "secret", mount: "database/", path: "database/creds/ro", role: "ro", secret_type: "creds", internal: v("i"),
        issue_time: 1, expire_time: 2, max_expire_time: 3, last_renewal: null, renewable: 1, token_accessor: "", auth_mount: "", display_name: "", metadata: "",
        entity_id: "", state: "pending", revoke_attempts: 0, revoke_error: null, due_at: 2,
      });
      await store.leases.update("database/creds/ro/1", { state: "active" });
      expect(await store.leases.stats()).toEqual({ byState: { active: 1 }, byMount: { "database/": 1 } });
    } finally {
      await store.close();
    }
    const tables = await db.admin.query<{ tablename: string; tableowner: string }>("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [role]);
    expect(tables.rows).toEqual(
      ["leasehold_ha_locks", "leasehold_ha_locks_members", "leasehold_kv_store", "leasehold_kv_store_lease_counts", "leasehold_kv_store_leases", "leasehold_kv_store_migrations"].map((t) => ({ tablename: t, tableowner: role })),
    );
    expect((await db.admin.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n).toBe(0);
    // Reopening applies nothing twice and finds the data.
    const again = await PostgresStorage.open({ connectionUrl: url });
    expect((await again.get("sys/x/😀"))?.toString()).toBe("one");
    await again.close();
    expect(await versions(db.admin, `"${role}".leasehold_kv_store_migrations`)).toEqual([1, 2, 3]);
  });

  it("uses the configured schema, and says so clearly when it does not exist", async () => {
    const store = await PostgresStorage.open({ connectionUrl: url, schema: `vaultdata_${role}`, table: "kv" });
    await store.put("a", v("b"));
    await store.close();
    expect((await db.admin.query(`SELECT count(*)::int AS n FROM "vaultdata_${role}".kv`)).rows[0].n).toBe(1);
    await expect(PostgresStorage.open({ connectionUrl: url, schema: "missing_schema" })).rejects.toThrow(/schema "missing_schema" does not exist/);
  });

  it("fails with the server's reason, not the password, when it may not create tables", async () => {
    const other = `lh_nocreate_${rand()}`;
    await db.admin.query(`CREATE ROLE ${other} LOGIN PASSWORD '${password}'`);
    await db.admin.query(`GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(db.name)} TO ${other}`);
    await db.admin.query(`GRANT USAGE ON SCHEMA public TO ${other}`);
    const err = await PostgresStorage.open({ connectionUrl: urlWith(db.url, { user: other, password }) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/permission denied for schema public \(SQLSTATE 42501\)/);
    expect(err?.message).toContain(`postgresql://${other}@`);
    expect(err?.message).not.toContain(password);
    // A wrong password: the same care.
    const bad = await PostgresStorage.open({ connectionUrl: urlWith(db.url, { user: role, password: "wrong-secret-pw" }) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(bad?.message).toMatch(/password authentication failed/);
    expect(bad?.message).not.toContain("wrong-secret-pw");
  });
});

describe("migrations started at once", () => {
  it("apply once when several pools open the same tables concurrently", async () => {
    const table = `race_${rand()}`;
    const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresStorage.open({ connectionUrl: db.url, table, maxParallel: 2 })));
    try {
      await Promise.all(stores.map((s, i) => s.put(`k/${i}`, v(String(i)))));
      expect(await stores[0].list("k/")).toEqual(["0", "1", "2", "3", "4", "5"]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    expect(await versions(db.admin, `public.${table}_migrations`)).toEqual([1, 2, 3]);
  });

  it("do not fail when two processes start on an empty database at the same moment", { timeout: 60_000 }, async () => {
    const table = `procs_${rand()}`;
    const dir = mkdtempSync(join(tmpdir(), "leasehold-pg-migrate-"));
    try {
      const script = join(dir, "open.mts"); // ESM: top-level await
      writeFileSync(
        script,
        `import { PostgresStorage } from ${JSON.stringify(join(REPO_ROOT, "src/storage/postgres.ts"))};
         // Both wait for the same instant, so their migrations really overlap.
         await new Promise((r) => setTimeout(r, Number(process.env.START_AT) - Date.now()));
         const s = await PostgresStorage.open({ connectionUrl: process.env.PG_URL!, table: process.env.PG_TABLE! });
         await s.put("who/" + process.pid, Buffer.from("x"));
         await s.close();`,
      );
      const startAt = Date.now() + 4000;
      const run = () =>
        new Promise<{ code: number | null; err: string }>((done) => {
          const p = spawn(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, env: { ...process.env, PG_URL: db.url, PG_TABLE: table, START_AT: String(startAt) }, stdio: ["ignore", "ignore", "pipe"] });
          let err = "";
          p.stderr.on("data", (b: Buffer) => (err += b.toString()));
          p.once("exit", (code) => done({ code, err }));
        });
      const results = await Promise.all([run(), run()]);
      expect(results).toEqual([
        { code: 0, err: "" },
        { code: 0, err: "" },
      ]);
      expect(await versions(db.admin, `public.${table}_migrations`)).toEqual([1, 2, 3]);
      expect((await db.admin.query(`SELECT count(*)::int AS n FROM public.${table} WHERE key LIKE 'who/%'`)).rows[0].n).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses tables migrated by a newer leasehold", async () => {
    const table = `newer_${rand()}`;
    const s = await PostgresStorage.open({ connectionUrl: db.url, table });
    await s.close();
    await db.admin.query(`INSERT INTO public.${table}_migrations (version) VALUES (99)`);
    await expect(PostgresStorage.open({ connectionUrl: db.url, table })).rejects.toThrow(/schema version 99, newer than this leasehold knows \(3\)/);
  });
});

describe("ordering under a database collation that is not C", () => {
  let other: TestDatabase | undefined;
  afterAll(async () => {
    await other?.drop();
  });

  it("lists and pages by code point although the database sorts linguistically", async () => {
    const root = await connect(inject("pgUrl"));
    const name = `lh_icu_${rand()}`;
    try {
      await root.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`);
    } finally {
      await root.end();
    }
    other = { name, url: urlWith(inject("pgUrl"), { database: name }), admin: await connect(urlWith(inject("pgUrl"), { database: name })), drop: async () => undefined };
    other.drop = async () => {
      await other!.admin.end();
      const r = await connect(inject("pgUrl"));
      await r.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await r.end();
    };
    // Control: this database's own order is not bytewise (lower case before upper, accents folded).
    const order = await other.admin.query<{ k: string }>("SELECT k FROM (VALUES ('b'), ('B'), ('a'), ('é')) t(k) ORDER BY k");
    expect(order.rows.map((r) => r.k)).not.toEqual(["B", "a", "b", "é"]);

    const store = await PostgresStorage.open({ connectionUrl: other.url });
    try {
      for (const k of ["p/b", "p/B", "p/a", "p/é", "p/😀", "p/\uffff", "p/A-"]) await store.put(k, v("x"));
      expect(await store.list("p/")).toEqual(["A-", "B", "a", "b", "é", "\uffff", "😀"]);
      const mk = (id: string) => ({
        id, kind: "secret" as const, mount: "p/", path: "p/c", role: "", secret_type: "s", internal: v("i"), issue_time: 1, expire_time: 2, max_expire_time: 3,
        last_renewal: null, renewable: 1 as const, token_accessor: "", auth_mount: "", display_name: "", metadata: "", entity_id: "", state: "active" as const, revoke_attempts: 0, revoke_error: null, due_at: null,
      });
      for (const id of ["p/c/b", "p/c/B", "p/c/é", "p/c/a"]) await store.leases.insert(mk(id));
      expect(await store.leases.select({ pathPrefix: "p/c/" }, "", 10)).toEqual(["p/c/B", "p/c/a", "p/c/b", "p/c/é"]);
      expect(await store.leases.select({ pathPrefix: "p/c/" }, "p/c/B", 2)).toEqual(["p/c/a", "p/c/b"]);
    } finally {
      await store.close();
    }
  });
});

describe("the write fence (where the HA epoch check plugs in)", () => {
  it("runs inside every write's transaction: a failing fence commits nothing, a passing one lets writes through", async () => {
    const table = `fence_${rand()}`;
    await db.admin.query(`CREATE TABLE ${table}_log (n serial PRIMARY KEY)`);
    let epochOk = true;
    const store = await PostgresStorage.open({
      connectionUrl: db.url,
      table,
      // What the HA session will do (read the lock row FOR SHARE); this one also leaves a trace
      // in the same transaction, to show it commits or rolls back with the write.
      fence: async (tx) => {
        await tx.query(`INSERT INTO ${table}_log DEFAULT VALUES`);
        if (!epochOk) throw new Error("fenced: the lock's epoch moved on");
      },
    });
    const traces = async () => (await db.admin.query(`SELECT count(*)::int AS n FROM ${table}_log`)).rows[0].n as number;
    try {
      await store.put("a", v("1"));
      await store.leases.insert({
        id: "m/c/r/1", kind: "secret", mount: "m/", path: "m/c/r", role: "r", secret_type: "s", internal: v("i"), issue_time: 1, expire_time: 2, max_expire_time: 3,
        last_renewal: null, renewable: 1, token_accessor: "", auth_mount: "", display_name: "", metadata: "", entity_id: "", state: "active", revoke_attempts: 0, revoke_error: null, due_at: 2,
      });
      expect(await traces()).toBe(2);
      // A write failing after the fence passed: the fence's trace is rolled back with it.
      await expect(store.batch([{ key: "z", value: v("x") }, { key: "y", value: undefined as unknown as Buffer }])).rejects.toThrow();
      expect(await traces()).toBe(2);
      expect(await store.get("z")).toBeUndefined();

      epochOk = false;
      await expect(store.put("a", v("2"))).rejects.toThrow(/fenced/);
      await expect(store.batch([{ key: "b", value: v("x") }, { key: "a", value: null }])).rejects.toThrow(/fenced/);
      await expect(store.leases.update("m/c/r/1", { state: "revoking" })).rejects.toThrow(/fenced/);
      await expect(store.leases.delete("m/c/r/1")).rejects.toThrow(/fenced/);
      // Reads are not fenced; nothing of the refused writes is there.
      expect((await store.get("a"))?.toString()).toBe("1");
      expect(await store.get("b")).toBeUndefined();
      expect((await store.leases.get("m/c/r/1"))?.state).toBe("active");
      expect(await store.leases.stats()).toEqual({ byState: { active: 1 }, byMount: { "m/": 1 } });
      epochOk = true;
      await store.put("a", v("3"));
      expect((await store.get("a"))?.toString()).toBe("3");
      expect(await traces()).toBe(3);
    } finally {
      await store.close();
    }
  });
});
