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
});

// The backends' behaviour (lists, lease selects and counts) is in contract.test.ts, run on SQLite and PostgreSQL alike.
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
});
