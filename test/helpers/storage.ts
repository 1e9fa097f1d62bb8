import { randomBytes } from "node:crypto";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import { Barrier } from "../../src/core/barrier.js";
import type { StorageView } from "../../src/sdk/types.js";

/** A real, unsealed barrier over an in-memory SQLite store, and a view on `prefix`. */
export async function makeBarrierView(prefix = "logical/test/"): Promise<{ view: StorageView; barrier: Barrier; physical: SqliteStorage }> {
  const physical = new SqliteStorage({ path: ":memory:" });
  const barrier = new Barrier(physical);
  await barrier.initialize(randomBytes(32));
  return { view: barrier.view(prefix), barrier, physical };
}
