import Database from "better-sqlite3";
import { LEASE_COLUMNS } from "./lease-sql.js";
import { LEASE_COUNTS_MIGRATION, LEASE_CREATOR_MIGRATION, LEASE_MIGRATIONS, LEASE_ROWID_MIGRATION, SqliteLeaseStore } from "./sqlite-leases.js";
import { immediateChildren, prefixUpperBound, type BulkStorage, type LeaseRow, type LeaseStore, type PhysicalStorage, type StoreSnapshot, type StoredEntry } from "./types.js";

/** Schema migrations, applied in order and recorded in `schema_migrations`. Append only. */
const MIGRATIONS: string[] = [
  `CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`,
  ...LEASE_MIGRATIONS,
  // kv as a rowid table: a WITHOUT ROWID table keeps whole rows in its B-tree, and our values (barrier
  // ciphertexts of certificates, token entries: 300 bytes to a few KiB) are far past the 1/20 of a page
  // where SQLite advises against it. Measured here with 1.1 KB values and random keys: an upsert took
  // 73 µs in memory and 197 µs in a WAL file before, 12 µs and 53 µs after; a point read 16 → 4 µs.
  `CREATE TABLE kv_rowid (key TEXT PRIMARY KEY, value BLOB NOT NULL);
   INSERT INTO kv_rowid (key, value) SELECT key, value FROM kv;
   DROP TABLE kv;
   ALTER TABLE kv_rowid RENAME TO kv`,
  LEASE_ROWID_MIGRATION,
  LEASE_COUNTS_MIGRATION,
  LEASE_CREATOR_MIGRATION,
];

export interface SqliteOptions {
  /** File path, or `:memory:` for the dev server. */
  path: string;
  /**
   * `NORMAL` (default) survives a killed process; a power loss may drop the last commits.
   * `FULL` fsyncs every commit.
   */
  synchronous?: "NORMAL" | "FULL";
  /** Fail instead of creating a new, empty database when the file does not exist (a migration's source). */
  mustExist?: boolean;
  /**
   * Take the file for this connection alone (`locking_mode = EXCLUSIVE`), as `operator migrate`
   * does: opening fails with SQLITE_BUSY while another process (a running server) has the file
   * open, and no other process can open it until this connection closes.
   */
  exclusive?: boolean;
}

/** The embedded store: one SQLite file in WAL mode, prepared statements, migrations in code. */
export class SqliteStorage implements PhysicalStorage, BulkStorage {
  readonly kind = "sqlite";
  readonly db: Database.Database;
  readonly leases: LeaseStore;
  private readonly stmts;

  constructor(opts: SqliteOptions) {
    this.db = new Database(opts.path, { fileMustExist: opts.mustExist === true });
    if (opts.exclusive) {
      // Before the first access: in WAL mode every open connection holds a shared lock on the file,
      // so taking the exclusive lock here is what tells us another process has it open.
      this.db.pragma("locking_mode = EXCLUSIVE");
      this.db.pragma("busy_timeout = 1000");
      try {
        this.db.exec("BEGIN EXCLUSIVE; COMMIT");
      } catch (err) {
        this.db.close();
        throw err;
      }
    }
    if (opts.path !== ":memory:") this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${opts.synchronous ?? "NORMAL"}`);
    this.db.pragma("busy_timeout = 5000");
    // 64 MiB page cache: lease indexes take random inserts; the default 2 MiB thrashes past ~100k leases.
    this.db.pragma("cache_size = -65536");
    this.db.pragma("foreign_keys = ON");
    this.migrate();
    this.leases = new SqliteLeaseStore(this.db);
    this.stmts = {
      get: this.db.prepare<[string], { value: Buffer }>("SELECT value FROM kv WHERE key = ?"),
      put: this.db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      del: this.db.prepare("DELETE FROM kv WHERE key = ?"),
      range: this.db.prepare<[string, string], { key: string }>("SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key"),
      rangeFrom: this.db.prepare<[string], { key: string }>("SELECT key FROM kv WHERE key >= ? ORDER BY key"),
      scanFirst: this.db.prepare<[number], StoredEntry>("SELECT key, value FROM kv ORDER BY key LIMIT ?"),
      scanAfter: this.db.prepare<[string, number], StoredEntry>("SELECT key, value FROM kv WHERE key > ? ORDER BY key LIMIT ?"),
      leaseFirst: this.db.prepare<[number], LeaseRow>("SELECT * FROM leases ORDER BY id LIMIT ?"),
      leaseAfter: this.db.prepare<[string, number], LeaseRow>("SELECT * FROM leases WHERE id > ? ORDER BY id LIMIT ?"),
      size: this.db.prepare<[], { entries: number; leases: number }>("SELECT (SELECT COUNT(*) FROM kv) AS entries, (SELECT COUNT(*) FROM leases) AS leases"),
      insertEntry: this.db.prepare("INSERT INTO kv (key, value) VALUES (?, ?)"),
      insertLease: this.db.prepare(`INSERT INTO leases (${LEASE_COLUMNS.join(", ")}) VALUES (${LEASE_COLUMNS.map((c) => `@${c}`).join(", ")})`),
    };
  }

  private migrate(): void {
    this.db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
    const row = this.db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as { v: number };
    const apply = this.db.transaction(() => {
      for (let v = row.v; v < MIGRATIONS.length; v++) {
        this.db.exec(MIGRATIONS[v]);
        this.db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(v + 1, new Date().toISOString());
      }
    });
    apply();
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.stmts.get.get(key)?.value;
  }

  async put(key: string, value: Buffer): Promise<void> {
    this.stmts.put.run(key, value);
  }

  async delete(key: string): Promise<void> {
    this.stmts.del.run(key);
  }

  async list(prefix: string): Promise<string[]> {
    // Every key with the prefix, and no other, sorts in [prefix, its upper bound).
    const upper = prefixUpperBound(prefix);
    const rows = upper === undefined ? this.stmts.rangeFrom.all(prefix) : this.stmts.range.all(prefix, upper);
    return immediateChildren(prefix, rows.map((r) => r.key));
  }

  async batch(ops: { key: string; value: Buffer | null }[]): Promise<void> {
    this.db.transaction(() => {
      for (const op of ops) {
        if (op.value === null) this.stmts.del.run(op.key);
        else this.stmts.put.run(op.key, op.value);
      }
    })();
  }

  async snapshot<T>(fn: (snap: StoreSnapshot) => Promise<T>): Promise<T> {
    // One read transaction: in WAL mode its first read fixes the snapshot every later page sees.
    this.db.exec("BEGIN");
    try {
      const s = this.stmts;
      return await fn({
        size: async () => s.size.get()!,
        entries: async (after, limit) => (after === null ? s.scanFirst.all(limit) : s.scanAfter.all(after, limit)),
        leaseRows: async (after, limit) => (after === null ? s.leaseFirst.all(limit) : s.leaseAfter.all(after, limit)),
      });
    } finally {
      if (this.db.inTransaction) this.db.exec("COMMIT");
    }
  }

  async load(entries: readonly StoredEntry[], leases: readonly LeaseRow[]): Promise<void> {
    this.db.transaction(() => {
      for (const e of entries) this.stmts.insertEntry.run(e.key, e.value);
      for (const r of leases) this.stmts.insertLease.run({ creator: null, ...r });
    })();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
