import pino from "pino";
import { builtinPlugins } from "../../../plugins/index.js";
import { Core } from "../../../src/core/core.js";
import { SqliteStorage } from "../../../src/storage/sqlite.js";
import { noopEngine } from "./noop-engine.js";

/** A Core over a SQLite file, static-sealed with `key`, with the no-op engine available. */
export function benchCore(dbPath: string, key: Buffer): Core {
  return new Core({
    physical: new SqliteStorage({ path: dbPath }),
    plugins: [...builtinPlugins, noopEngine],
    logger: pino({ level: process.env.LEASEHOLD_BENCH_LOG ?? "warn" }),
    staticSealKey: key,
    defaultLeaseTtl: 3600,
    maxLeaseTtl: 40 * 24 * 3600,
  });
}
