/**
 * `leasehold operator migrate`: an offline copy of a whole store (every key/value entry and every
 * lease row) from one backend to another, SQLite or PostgreSQL in any combination.
 *
 * The copy works below the barrier: values and the sealed/HMAC'd lease columns are ciphertext and
 * travel as stored, so no unseal key is needed and the destination unseals with the same keys.
 * It reads the source from one snapshot (one read transaction) and writes the destination in
 * batches, each one transaction. The destination must be empty: nothing is ever overwritten.
 * `core/seal-config` (whose presence makes a store "initialised") is written last, so a copy that
 * stops halfway leaves a destination that a server reports as uninitialised, not a store that
 * unseals with data missing.
 */
import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import type { StorageConfig } from "../server/config.js";
import { PostgresStorage, describeConnection } from "./postgres.js";
import { SqliteStorage } from "./sqlite.js";
import type { BulkStorage, LeaseRow, PhysicalStorage, StoredEntry } from "./types.js";

/** The key whose presence makes a store initialised (src/core/seal.ts): copied last. */
const SEAL_CONFIG_KEY = "core/seal-config";
export const DEFAULT_BATCH_SIZE = 500;
/** Vault's `-max-parallel` default. */
export const DEFAULT_MAX_PARALLEL = 10;

export type MigrationStorage = PhysicalStorage & BulkStorage;

/** One side of a migration: the opened store and how to name it to an operator. */
export interface MigrationEndpoint {
  storage: MigrationStorage;
  /** `sqlite /var/lib/leasehold.db`, `postgresql://leasehold@db:5432/leasehold (table "public"."leasehold_kv_store")`. */
  description: string;
  /** What an operator runs to empty it again. */
  emptyHint: string;
}

export interface MigrationProgress {
  entries: number;
  leases: number;
  totalEntries: number;
  totalLeases: number;
}

export interface MigrationSummary {
  entries: number;
  leases: number;
  /** Wall-clock milliseconds of the copy (open and checks excluded). */
  ms: number;
}

export interface MigrateOptions {
  /** Entries or lease rows per destination transaction. */
  batchSize?: number;
  /** Destination batches in flight at once (PostgreSQL; SQLite writes one at a time anyway). */
  maxParallel?: number;
  /** Called after each batch lands. */
  onProgress?: (p: MigrationProgress) => void;
}

/** A migration that cannot or did not complete; the message says what to do next. */
export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
  }
}

/**
 * Opens one side of a migration. Both sides take SQLite files exclusively (a server still using
 * the source makes this fail); a source must already exist, where a destination is created.
 */
export async function openMigrationEndpoint(config: StorageConfig, role: "source" | "destination"): Promise<MigrationEndpoint> {
  if (config.type === "sqlite") {
    let storage: SqliteStorage;
    try {
      storage = new SqliteStorage({ path: config.path, synchronous: config.synchronous, mustExist: role === "source", exclusive: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "SQLITE_BUSY") {
        throw new MigrationError(`the ${role} SQLite file ${config.path} is in use by another process: stop the leasehold server using it (and anything else that has it open), then run the command again`, { cause: err });
      }
      if (code === "SQLITE_CANTOPEN" && role === "source") throw new MigrationError(`the source SQLite file ${config.path} does not exist: check path in storage_source`, { cause: err });
      throw new MigrationError(`cannot open the ${role} SQLite file ${config.path}: ${(err as Error).message}`, { cause: err });
    }
    return { storage, description: `sqlite ${config.path}`, emptyHint: `delete ${config.path} (and its -wal and -shm files)` };
  }
  let storage: PostgresStorage;
  try {
    storage = await PostgresStorage.open({
      connectionUrl: config.connectionUrl,
      table: config.table,
      schema: config.schema,
      maxParallel: config.maxParallel,
      mustExist: role === "source",
      applicationName: "leasehold-migrate",
    });
  } catch (err) {
    throw new MigrationError(`cannot open the ${role}: ${(err as Error).message}`, { cause: err });
  }
  const n = storage.names;
  return {
    storage,
    description: `${describeConnection(config.connectionUrl)} (table ${n.kv})`,
    emptyHint: `DROP TABLE ${n.kv}, ${n.leases}, ${n.counts}, ${n.migrations}; DROP FUNCTION ${n.countsFn}()`,
  };
}

/** Whether two storage configs name the same store (the copy would read what it writes). */
export function sameStore(a: StorageConfig, b: StorageConfig): boolean {
  if (a.type === "sqlite" && b.type === "sqlite") return canonicalPath(a.path) === canonicalPath(b.path);
  if (a.type === "postgresql" && b.type === "postgresql") {
    return describeConnection(a.connectionUrl) === describeConnection(b.connectionUrl) && a.table === b.table && (a.schema ?? "") === (b.schema ?? "");
  }
  return false;
}

function canonicalPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/**
 * Other sessions of a leasehold server on the source's PostgreSQL database: a hint that the
 * source is still in use (they may also belong to another cluster with its own tables).
 */
export async function otherServerSessions(storage: MigrationStorage): Promise<number> {
  if (!(storage instanceof PostgresStorage)) return 0;
  const { rows } = await storage.pool.query<{ n: number }>(
    "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'leasehold' AND pid <> pg_backend_pid()",
  );
  return rows[0].n;
}

/** Copies every entry and lease row of `source` into the empty `destination`. */
export async function copyStore(source: MigrationEndpoint, destination: MigrationEndpoint, opts: MigrateOptions = {}): Promise<MigrationSummary> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxParallel = Math.max(1, opts.maxParallel ?? DEFAULT_MAX_PARALLEL);
  const dest = destination.storage;

  const present = await dest.snapshot((s) => s.size());
  if (present.entries > 0 || present.leases > 0) {
    throw new MigrationError(
      `the destination ${destination.description} is not empty (${present.entries} entries, ${present.leases} leases), so nothing was copied: ` +
        `leasehold only migrates into an empty store. If it holds an interrupted copy, empty it (${destination.emptyHint}) and run the command again; ` +
        `if it is a store in use, point storage_destination somewhere else.`,
    );
  }

  const started = Date.now();
  const done = { entries: 0, leases: 0 };
  let totals = { entries: 0, leases: 0 };
  let sealConfig: StoredEntry | undefined;
  // Batches written at once; the first failure stops reading and is reported.
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const submit = async (entries: StoredEntry[], leases: LeaseRow[]) => {
    while (inflight.size >= maxParallel) await Promise.race(inflight);
    if (failure) return;
    const p = dest.load(entries, leases).then(
      () => {
        done.entries += entries.length;
        done.leases += leases.length;
        opts.onProgress?.({ ...done, totalEntries: totals.entries, totalLeases: totals.leases });
      },
      (err: unknown) => void (failure ??= err),
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  try {
    await source.storage.snapshot(async (snap) => {
      totals = await snap.size();
      if (totals.entries === 0 && totals.leases === 0) {
        throw new MigrationError(`the source ${source.description} is empty: nothing to copy (check the storage_source block)`);
      }
      for (let after: string | null = null; !failure; ) {
        const page = await snap.entries(after, batchSize);
        if (!page.length) break;
        after = page[page.length - 1].key;
        const rest = page.filter((e) => e.key !== SEAL_CONFIG_KEY);
        if (rest.length !== page.length) sealConfig = page.find((e) => e.key === SEAL_CONFIG_KEY);
        if (rest.length) await submit(rest, []);
      }
      for (let after: string | null = null; !failure; ) {
        const page = await snap.leaseRows(after, batchSize);
        if (!page.length) break;
        after = page[page.length - 1].id;
        await submit([], page);
      }
      await Promise.all(inflight);
    });
    if (failure) throw failure;
    if (sealConfig) await submit([sealConfig], []);
    await Promise.all(inflight);
    if (failure) throw failure;
  } catch (err) {
    await Promise.allSettled(inflight);
    if (err instanceof MigrationError && done.entries === 0 && done.leases === 0) throw err;
    throw new MigrationError(
      `the copy stopped after ${done.entries} of ${totals.entries} entries and ${done.leases} of ${totals.leases} leases: ${(err as Error)?.message ?? String(err)}. ` +
        `The destination is incomplete (a server started on it reports it uninitialised): empty it (${destination.emptyHint}) and run the command again.`,
      { cause: err },
    );
  }

  // The destination must now hold exactly the snapshot, and its trigger-kept lease counts must agree.
  const landed = await dest.snapshot((s) => s.size());
  const counted = await dest.leases.count({});
  if (landed.entries !== totals.entries || landed.leases !== totals.leases || counted !== totals.leases) {
    throw new MigrationError(
      `the destination holds ${landed.entries} entries and ${landed.leases} leases (lease counters: ${counted}) after copying ${totals.entries} and ${totals.leases}: ` +
        `was something else writing to it? Empty it (${destination.emptyHint}) and run the command again.`,
    );
  }
  return { entries: done.entries, leases: done.leases, ms: Date.now() - started };
}
