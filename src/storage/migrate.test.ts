/**
 * The store copy behind `leasehold operator migrate`, on real backends: SQLite files in a temp
 * directory and the embedded PostgreSQL server (a database of its own for this file). Each copy
 * is checked entry by entry and lease row by lease row (every column, the sealed creator and the
 * HMAC'd creator fields included), and the destination's trigger-kept lease counts against the source's.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, waitFor, type TestDatabase } from "../../test/database/helpers.js";
import type { StorageConfig } from "../server/config.js";
import { PostgresStorage } from "./postgres.js";
import { MigrationError, copyStore, openMigrationEndpoint, otherServerSessions, sameStore, type MigrationEndpoint, type MigrationProgress } from "./migrate.js";
import { SqliteStorage } from "./sqlite.js";
import type { LeaseRow, LeaseState } from "./types.js";

let db: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "leasehold-migrate-"));
let files = 0;
let tables = 0;

beforeAll(async () => {
  db = await createTestDatabase(inject("pgUrl"), "migrate");
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const sqlite = (): StorageConfig => ({ type: "sqlite", path: join(dir, `store-${++files}.db`), synchronous: "NORMAL" });
const postgres = (): StorageConfig => ({ type: "postgresql", connectionUrl: db.url, table: `mig_${process.pid}_${++tables}`, maxParallel: 4, haTable: "unused" });

const STATES: LeaseState[] = ["active", "pending", "revoking", "irrevocable"];

/** A lease as the expiration manager writes it: sealed `internal` and `creator`, HMAC'd creator fields. */
function lease(i: number): LeaseRow {
  const mount = ["database/", "pki/", "auth/token/"][i % 3];
  const path = `${mount}creds/role${i % 4}`;
  return {
    id: `${path}/${String(i).padStart(5, "0")}`,
    kind: mount === "auth/token/" ? "token" : "secret",
    mount,
    path,
    role: `role${i % 4}`,
    secret_type: "creds",
    internal: Buffer.from([0, 255, i % 256, 10, 13]),
    issue_time: 1_700_000_000_000 + i,
    expire_time: 1_700_003_600_000 + i,
    max_expire_time: 1_700_086_400_000,
    last_renewal: i % 2 ? 1_700_000_100_000 : null,
    renewable: (i % 2) as 0 | 1,
    token_accessor: `hmac-acc-${i % 7}`,
    auth_mount: "auth/token/",
    display_name: `hmac-dn-${i % 5}`,
    metadata: ` tag${i % 3} tagZ `,
    creator: i % 10 === 9 ? null : Buffer.from(`sealed-creator-${i}`),
    entity_id: i % 2 ? `entity-${i}` : "",
    state: STATES[i % 4],
    revoke_attempts: i % 4 === 2 ? 3 : 0,
    revoke_error: i % 4 === 2 ? "connection refused" : null,
    due_at: i % 4 === 3 ? null : 1_700_003_600_000 + i,
  };
}

/** Entries as the barrier leaves them: binary values, nested keys, one past U+FFFF, the seal config. */
function entries(n: number): { key: string; value: Buffer }[] {
  const out = [
    { key: "core/seal-config", value: Buffer.from('{"type":"shamir","secret_shares":1,"secret_threshold":1}') },
    { key: "core/keyring", value: Buffer.from([1, 2, 3, 0, 254]) },
    { key: "logical/uuid/😀", value: Buffer.alloc(0) },
  ];
  for (let i = 0; i < n; i++) out.push({ key: `sys/token/id/h${String(i).padStart(4, "0")}`, value: Buffer.from([i % 256, 0, 255, (i * 7) % 256]) });
  return out;
}

async function fill(ep: MigrationEndpoint, nEntries: number, nLeases: number): Promise<void> {
  for (const e of entries(nEntries)) await ep.storage.put(e.key, e.value);
  for (let i = 0; i < nLeases; i++) await ep.storage.leases.insert(lease(i));
}

/** Everything a store holds, read through the snapshot primitive. */
async function contents(ep: MigrationEndpoint) {
  return ep.storage.snapshot(async (s) => ({ size: await s.size(), entries: await s.entries(null, 1e6), leases: await s.leaseRows(null, 1e6) }));
}

const byMountState = async (ep: MigrationEndpoint) =>
  [...(await ep.storage.leases.countsByMountAndState())].sort((a, b) => `${a.mount}|${a.state}`.localeCompare(`${b.mount}|${b.state}`));

describe.each([
  ["sqlite → postgresql", sqlite, postgres],
  ["postgresql → sqlite", postgres, sqlite],
  ["sqlite → sqlite", sqlite, sqlite],
  ["postgresql → postgresql", postgres, postgres],
] as const)("copyStore %s", (_name, sourceConfig, destConfig) => {
  it("copies every entry and lease row as stored, keeps lease counts right, reports progress, and refuses to copy twice", { timeout: 60_000 }, async () => {
    // Filled through a fresh store opened as a destination would be (a source must already exist).
    const srcCfg = sourceConfig();
    const filler = await openMigrationEndpoint(srcCfg, "destination");
    await fill(filler, 40, 57);
    await filler.storage.close();

    const src = await openMigrationEndpoint(srcCfg, "source");
    const dst = await openMigrationEndpoint(destConfig(), "destination");
    try {
      const progress: MigrationProgress[] = [];
      // Small batches and several in flight, so paging and parallel writes are exercised.
      const summary = await copyStore(src, dst, { batchSize: 7, maxParallel: 3, onProgress: (p) => progress.push(p) });
      expect(summary).toMatchObject({ entries: 43, leases: 57 });

      const [a, b] = [await contents(src), await contents(dst)];
      expect(b.size).toEqual({ entries: 43, leases: 57 });
      expect(b.entries).toEqual(a.entries);
      expect(b.leases).toEqual(a.leases);
      // Spot-check the sealed creator and the HMAC'd fields of one lease, and a legacy (NULL creator) one.
      expect(b.leases.find((r) => r.id === lease(4).id)).toEqual(lease(4));
      expect(b.leases.find((r) => r.id === lease(9).id)?.creator).toBeNull();
      expect(await dst.storage.leases.select({ tokenAccessor: "hmac-acc-3", metadataTags: ["tag1"] }, "", 100)).toEqual(await src.storage.leases.select({ tokenAccessor: "hmac-acc-3", metadataTags: ["tag1"] }, "", 100));
      // The trigger-kept counters of the destination match the source's.
      expect(await byMountState(dst)).toEqual(await byMountState(src));
      expect(await dst.storage.leases.count({})).toBe(57);
      expect(await dst.storage.leases.stats()).toEqual(await src.storage.leases.stats());

      expect(progress.length).toBeGreaterThan(10);
      expect(progress.at(-1)).toEqual({ entries: 43, leases: 57, totalEntries: 43, totalLeases: 57 });
      for (let i = 1; i < progress.length; i++) expect(progress[i].entries + progress[i].leases).toBeGreaterThan(progress[i - 1].entries + progress[i - 1].leases);

      // Second run into the now non-empty destination: refused, nothing written.
      await expect(copyStore(src, dst)).rejects.toThrow(/is not empty \(43 entries, 57 leases\), so nothing was copied.*empty it \(/);
      expect((await contents(dst)).size).toEqual({ entries: 43, leases: 57 });
    } finally {
      await src.storage.close();
      await dst.storage.close();
    }
  });
});

describe("copyStore refusals and failures", () => {
  it("refuses a destination holding only one entry, or only one lease, and copies into an empty one (control)", async () => {
    const srcCfg = sqlite();
    const filler = await openMigrationEndpoint(srcCfg, "destination");
    await fill(filler, 3, 2);
    await filler.storage.close();
    const src = await openMigrationEndpoint(srcCfg, "source");
    const withEntry = await openMigrationEndpoint(postgres(), "destination");
    const withLease = await openMigrationEndpoint(sqlite(), "destination");
    const empty = await openMigrationEndpoint(postgres(), "destination");
    try {
      await withEntry.storage.put("anything", Buffer.from("x"));
      await withLease.storage.leases.insert(lease(1000));
      await expect(copyStore(src, withEntry)).rejects.toThrow(/not empty \(1 entries, 0 leases\)/);
      await expect(copyStore(src, withLease)).rejects.toThrow(/not empty \(0 entries, 1 leases\)/);
      expect((await contents(withEntry)).size).toEqual({ entries: 1, leases: 0 });
      expect((await contents(withLease)).size).toEqual({ entries: 0, leases: 1 });
      expect(await copyStore(src, empty)).toMatchObject({ entries: 6, leases: 2 });
    } finally {
      for (const ep of [src, withEntry, withLease, empty]) await ep.storage.close();
    }
  });

  it("refuses an empty source, a missing SQLite file (without creating it) and missing PostgreSQL tables (without creating them)", async () => {
    const emptyCfg = sqlite();
    const e = await openMigrationEndpoint(emptyCfg, "destination");
    await e.storage.close();
    const src = await openMigrationEndpoint(emptyCfg, "source");
    const dst = await openMigrationEndpoint(sqlite(), "destination");
    try {
      await expect(copyStore(src, dst)).rejects.toThrow(/source sqlite .* is empty: nothing to copy/);
    } finally {
      await src.storage.close();
      await dst.storage.close();
    }

    const missing = sqlite();
    await expect(openMigrationEndpoint(missing, "source")).rejects.toThrow(/does not exist: check path in storage_source/);
    expect(existsSync((missing as { path: string }).path)).toBe(false);

    const noTables = postgres();
    await expect(openMigrationEndpoint(noTables, "source")).rejects.toThrow(/there is no table .*mig_/);
    const name = (noTables as { table: string }).table;
    expect((await db.admin.query("SELECT to_regclass($1) AS t", [name])).rows[0].t).toBeNull();
  });

  it("refuses a SQLite source another process-style connection has open (a running server), and opens it once that closes", async () => {
    const cfg = sqlite();
    const filler = await openMigrationEndpoint(cfg, "destination");
    await fill(filler, 2, 0);
    await filler.storage.close();
    // What a server holds: an ordinary WAL connection that has read the file.
    const server = new SqliteStorage({ path: (cfg as { path: string }).path });
    expect(await server.get("core/keyring")).toBeDefined();
    await expect(openMigrationEndpoint(cfg, "source")).rejects.toThrow(/is in use by another process: stop the leasehold server/);
    await server.close();
    const src = await openMigrationEndpoint(cfg, "source");
    // While the migration holds it, a server cannot open it either.
    expect(() => new SqliteStorage({ path: (cfg as { path: string }).path })).toThrow(/locked/);
    await src.storage.close();
  });

  it("leaves the destination uninitialised (no core/seal-config) when the copy fails halfway, and says how to retry", async () => {
    const srcCfg = sqlite();
    const filler = await openMigrationEndpoint(srcCfg, "destination");
    await fill(filler, 30, 20);
    await filler.storage.close();
    const src = await openMigrationEndpoint(srcCfg, "source");
    const dstCfg = postgres();
    const dst = await openMigrationEndpoint(dstCfg, "destination");
    const table = (dstCfg as { table: string }).table;
    try {
      // A real failure in the database: the 12th lease row is refused.
      await db.admin.query(`CREATE FUNCTION ${table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = '${lease(11).id}' THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$`);
      await db.admin.query(`CREATE TRIGGER refuse BEFORE INSERT ON ${table}_leases FOR EACH ROW EXECUTE FUNCTION ${table}_refuse()`);
      const err = await copyStore(src, dst, { batchSize: 5, maxParallel: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationError);
      // Batches of 5 in id order: the ones before the refused row's batch landed.
      const ids = Array.from({ length: 20 }, (_, i) => lease(i).id).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const landed = Math.floor(ids.indexOf(lease(11).id) / 5) * 5;
      expect((err as Error).message).toContain(`the copy stopped after 32 of 33 entries and ${landed} of 20 leases: disk full (test).`);
      expect((err as Error).message).toMatch(/disk full \(test\)\. The destination is incomplete .* empty it \(DROP TABLE .*\) and run the command again/);
      expect(await dst.storage.get("core/seal-config")).toBeUndefined();
      expect(await dst.storage.get("core/keyring")).toBeDefined();
    } finally {
      await src.storage.close();
      await dst.storage.close();
    }
  });

  it("reads one snapshot: what another connection writes meanwhile is not in later pages (SQLite file, PostgreSQL)", async () => {
    const path = join(dir, "snapshot.db");
    const reader = new SqliteStorage({ path });
    const writer = new SqliteStorage({ path });
    const pgCfg = postgres();
    const pgEp = await openMigrationEndpoint(pgCfg, "destination");
    try {
      for (const [store, other] of [[reader, writer], [pgEp.storage, pgEp.storage]] as const) {
        for (let i = 0; i < 5; i++) await store.put(`k/${i}`, Buffer.from([i]));
        await store.snapshot(async (snap) => {
          const first = await snap.entries(null, 2);
          // `other` writes on another connection (the second SQLite handle; another pooled PostgreSQL session).
          await other.put("k/9", Buffer.from("late"));
          await other.leases.insert(lease(1));
          expect((await snap.entries(first[1].key, 10)).map((e) => e.key)).toEqual(["k/2", "k/3", "k/4"]);
          expect(await snap.leaseRows(null, 10)).toEqual([]);
          expect(await snap.size()).toEqual({ entries: 5, leases: 0 });
        });
        // Control: the writes did land, and a new snapshot sees them.
        expect(await store.snapshot((snap) => snap.size())).toEqual({ entries: 6, leases: 1 });
      }
    } finally {
      await reader.close();
      await writer.close();
      await pgEp.storage.close();
    }
  });

  it("counts the sessions a running server has on a PostgreSQL source, not its own", async () => {
    const cfg = postgres() as Extract<StorageConfig, { type: "postgresql" }>;
    const ep = await openMigrationEndpoint(cfg, "destination");
    try {
      expect(await otherServerSessions(ep.storage)).toBe(0);
      // A server's pool (application_name "leasehold") with a connection open.
      const server = await PostgresStorage.open({ connectionUrl: cfg.connectionUrl, table: cfg.table, maxParallel: 2 });
      await server.get("x");
      expect(await otherServerSessions(ep.storage)).toBeGreaterThanOrEqual(1);
      await server.close();
      // A closed session leaves pg_stat_activity when its backend has exited: shortly after.
      await waitFor(async () => (await otherServerSessions(ep.storage)) === 0, "the server's sessions to end");
    } finally {
      await ep.storage.close();
    }
  });

  it("knows when two configs name the same store", () => {
    const a = sqlite() as Extract<StorageConfig, { type: "sqlite" }>;
    expect(sameStore(a, { ...a, path: `${dir}/../${dir.split("/").pop()}/store-${files}.db` })).toBe(true);
    expect(sameStore(a, sqlite())).toBe(false);
    const p = postgres() as Extract<StorageConfig, { type: "postgresql" }>;
    expect(sameStore(p, { ...p })).toBe(true);
    expect(sameStore(p, { ...p, table: "other" })).toBe(false);
    expect(sameStore(p, a)).toBe(false);
  });
});
