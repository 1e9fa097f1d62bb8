import { inject } from "vitest";
import { PostgresStorage } from "../../src/storage/postgres.js";
import type { PhysicalStorage } from "../../src/storage/types.js";
import { createTestDatabase } from "../database/helpers.js";

/** The physical stores the storage-agnostic tests run on (vitest projects "sqlite" and "postgresql"). */
export type TestStorageKind = "sqlite" | "postgresql";

/** Env var that picks the store of in-process test servers; vitest.config.ts sets it per project. */
export const TEST_STORAGE_ENV = "LEASEHOLD_TEST_STORAGE";

/** The store this test run uses: `LEASEHOLD_TEST_STORAGE` (`sqlite`, the default, or `postgresql`). */
export function testStorageKind(): TestStorageKind {
  const value = process.env[TEST_STORAGE_ENV] ?? "sqlite";
  if (value === "sqlite" || value === "postgresql") return value;
  throw new Error(`${TEST_STORAGE_ENV}=${JSON.stringify(value)}: use "sqlite" (the default) or "postgresql"`);
}

/** An empty store for one test server, and how to get rid of what it left behind once the server stopped. */
export interface TestStorage {
  /** The store to pass as `physical`; undefined means the dev server's own SQLite in memory. */
  physical?: PhysicalStorage;
  /** Closes the store (idempotent with the server's own close) and drops its database. */
  release(): Promise<void>;
}

/**
 * A fresh store of the selected kind. On PostgreSQL: a database of its own on the embedded server
 * (`inject("pgUrl")`), so servers running at the same time in the same run never see each other's
 * rows, with the tables created and migrated by `PostgresStorage.open` as a real server does.
 */
export async function openTestStorage(label = "srv"): Promise<TestStorage> {
  if (testStorageKind() === "sqlite") return { release: async () => undefined };
  const db = await createTestDatabase(inject("pgUrl"), label);
  // The helper's superuser session is not needed: the store opens its own pool.
  await db.admin.end().catch(() => undefined);
  let physical: PostgresStorage;
  try {
    physical = await PostgresStorage.open({ connectionUrl: db.url });
  } catch (err) {
    await db.drop();
    throw err;
  }
  return {
    physical,
    release: async () => {
      await physical.close().catch(() => undefined);
      await db.drop();
    },
  };
}
