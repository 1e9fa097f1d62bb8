import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LEASE_MIGRATIONS } from "./sqlite-leases.js";
import { SqliteStorage } from "./sqlite.js";
import { prefixUpperBound } from "./types.js";

describe("SqliteStorage migrations", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("moves a store written with WITHOUT ROWID tables to rowid tables, keeping every entry, lease and index", async () => {
    const dir = mkdtempSync(join(tmpdir(), "leasehold-sqlite-"));
    dirs.push(dir);
    const path = join(dir, "old.db");
    // The schema as the first nine migrations left it.
    const old = new Database(path);
    old.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
    const first = [`CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`, ...LEASE_MIGRATIONS];
    first.forEach((sql, i) => {
      old.exec(sql);
      old.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(i + 1, new Date().toISOString());
    });
    old.prepare("INSERT INTO kv (key, value) VALUES (?, ?)").run("sys/token/id/abc", Buffer.from("sealed"));
    old
      .prepare(
        `INSERT INTO leases (id, kind, mount, path, role, secret_type, internal, issue_time, expire_time, max_expire_time, renewable, state, due_at)
         VALUES ('database/creds/ro/x1', 'secret', 'database/', 'database/creds/ro', 'ro', 'creds', ?, 1, 2, 3, 1, 'active', 2)`,
      )
      .run(Buffer.from("internal"));
    old.close();

    const store = new SqliteStorage({ path });
    try {
      expect((await store.get("sys/token/id/abc"))?.toString()).toBe("sealed");
      expect(await store.list("sys/token/")).toEqual(["id/"]);
      const lease = await store.leases.get("database/creds/ro/x1");
      expect(lease?.internal.toString()).toBe("internal");
      expect(lease?.due_at).toBe(2);
      const tables = store.db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('kv', 'leases')").all() as { name: string; sql: string }[];
      expect(tables.map((t) => t.name).sort()).toEqual(["kv", "leases"]);
      for (const t of tables) expect(t.sql).not.toMatch(/WITHOUT ROWID/i);
      const indexes = (store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leases' AND sql IS NOT NULL").all() as { name: string }[]).map((i) => i.name).sort();
      expect(indexes).toEqual(["leases_due", "leases_identity", "leases_irrevocable", "leases_legacy_creator", "leases_mount_role", "leases_pending", "leases_revoking", "leases_token"]);
      // The old row's creator fields are still clear: it is listed for conversion at unseal.
      expect((await store.leases.legacyCreators(10)).map((r) => r.id)).toEqual(["database/creds/ro/x1"]);
      // The counts table starts from what the old store held.
      expect(await store.leases.stats()).toEqual({ byState: { active: 1 }, byMount: { "database/": 1 } });
      await store.put("sys/token/id/abc", Buffer.from("again"));
      expect((await store.get("sys/token/id/abc"))?.toString()).toBe("again");
    } finally {
      await store.close();
    }
    // Reopening applies nothing twice.
    const again = new SqliteStorage({ path });
    expect((await again.get("sys/token/id/abc"))?.toString()).toBe("again");
    await again.close();
  });

  it("keeps lease counts by mount and state equal to a full count through inserts, updates and deletes", async () => {
    const store = new SqliteStorage({ path: ":memory:" });
    const truth = () =>
      store.db.prepare("SELECT mount, state, COUNT(*) AS n FROM leases GROUP BY mount, state ORDER BY mount, state").all() as { mount: string; state: string; n: number }[];
    const kept = async () => [...(await store.leases.countsByMountAndState())].sort((a, b) => (a.mount + a.state < b.mount + b.state ? -1 : 1));
    const row = (id: string, mount: string, state: "pending" | "active") => ({
      id, kind: "secret" as const, mount, path: id.slice(0, id.lastIndexOf("/")), role: "r", secret_type: "creds", internal: Buffer.from("x"),
      issue_time: 1, expire_time: 2, max_expire_time: 3, last_renewal: null, renewable: 1 as const, token_accessor: "", auth_mount: "", display_name: "",
      metadata: "{}", entity_id: "", state, revoke_attempts: 0, revoke_error: null, due_at: 2,
    });
    try {
      for (let i = 0; i < 30; i++) await store.leases.insert(row(`m${i % 3}/creds/r/${i}`, `m${i % 3}/`, i % 2 ? "active" : "pending"));
      expect(await kept()).toEqual(truth());
      for (let i = 0; i < 30; i += 4) await store.leases.update(`m${i % 3}/creds/r/${i}`, { state: "revoking" });
      for (let i = 1; i < 30; i += 5) await store.leases.update(`m${i % 3}/creds/r/${i}`, { due_at: 9 }); // not a counted column
      for (let i = 2; i < 30; i += 3) await store.leases.delete(`m${i % 3}/creds/r/${i}`);
      expect(await kept()).toEqual(truth());
      expect(await store.leases.count({})).toBe((store.db.prepare("SELECT COUNT(*) AS n FROM leases").get() as { n: number }).n);
      const stats = await store.leases.stats();
      expect(Object.values(stats.byMount).reduce((a, b) => a + b, 0)).toBe(await store.leases.count({}));
      // Mounts with nothing left are not reported.
      for (let i = 0; i < 30; i += 3) await store.leases.delete(`m0/creds/r/${i}`);
      expect((await store.leases.stats()).byMount["m0/"]).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe("prefix range scans", () => {
  it("bounds every string with the prefix, including characters past U+FFFF, and nothing else", () => {
    expect(prefixUpperBound("app/")).toBe("app0");
    expect(prefixUpperBound("")).toBeUndefined();
    expect(prefixUpperBound("a\u{10ffff}")).toBe("b");
    expect(prefixUpperBound("\u{10ffff}")).toBeUndefined();
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    expect(prefixUpperBound("x😀")).toBe("x😁");
    // BINARY order is UTF-8 byte order: compare as SQLite does.
    const lt = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")) < 0;
    for (const k of ["app/😀x", "app/\uffff", "app/\u{10ffff}\u{10ffff}", "app/"]) expect(lt(k, prefixUpperBound("app/")!)).toBe(true);
    expect(lt("app0", prefixUpperBound("app/")!)).toBe(false);
  });

  it("lists keys whose next character is outside the Basic Multilingual Plane, and no key of a sibling prefix", async () => {
    const store = new SqliteStorage({ path: ":memory:" });
    try {
      for (const k of ["app/😀x", "app/plain", "app/\uffffz", "app/dir/😀/deep", "app0", "apq/x", "ap/x"]) await store.put(k, Buffer.from("v"));
      expect(await store.list("app/")).toEqual(["dir/", "plain", "\uffffz", "😀x"]);
      expect(await store.list("app/dir/")).toEqual(["😀/"]);
      expect(await store.list("")).toEqual(["ap/", "app/", "app0", "apq/"]);
    } finally {
      await store.close();
    }
  });

  it("selects lease ids under a prefix whose next character is outside the Basic Multilingual Plane", async () => {
    const store = new SqliteStorage({ path: ":memory:" });
    const row = (id: string) => ({
      id, kind: "secret" as const, mount: "m/", path: id.slice(0, id.lastIndexOf("/")), role: "r", secret_type: "creds", internal: Buffer.from("x"),
      issue_time: 1, expire_time: 2, max_expire_time: 3, last_renewal: null, renewable: 1 as const, token_accessor: "", auth_mount: "", display_name: "",
      metadata: "", entity_id: "", state: "active" as const, revoke_attempts: 0, revoke_error: null, due_at: 2,
    });
    try {
      for (const id of ["m/creds/😀/a", "m/creds/ro/b", "m/creds0/c"]) await store.leases.insert(row(id));
      expect(await store.leases.select({ pathPrefix: "m/creds/" }, "", 10)).toEqual(["m/creds/ro/b", "m/creds/😀/a"]);
      expect(await store.leases.count({ pathPrefix: "m/creds/" })).toBe(2);
    } finally {
      await store.close();
    }
  });
});
