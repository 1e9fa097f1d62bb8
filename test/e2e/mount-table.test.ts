import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { builtinPlugins } from "../../plugins/index.js";
import { Core } from "../../src/core/core.js";
import type { PluginFactory } from "../../src/sdk/types.js";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import { leasingEngine } from "../helpers/leasing-engine.js";

/**
 * A mount whose type the running build does not know (a plugin removed, a downgrade) stays in the
 * stored mount table: it is unavailable, its path stays taken, and a later change to the table
 * does not drop it, so it comes back with its data once the type is known again.
 */
describe("mount table: entries of an unknown type", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-mount-table-"));
  const path = join(dir, "leasehold.db");
  const engine = leasingEngine();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function boot(plugins: PluginFactory[], keys?: Buffer[]): Promise<{ core: Core; keys: Buffer[] }> {
    const core = new Core({ physical: new SqliteStorage({ path }), plugins, logger: pino({ level: "silent" }), defaultLeaseTtl: 3600, maxLeaseTtl: 86_400 });
    await core.start();
    if (!keys) return { core, keys: (await core.initialize(1, 1)).keys };
    for (const k of keys) await core.submitUnsealKey(k.toString("base64"));
    return { core, keys };
  }

  it("survives a table change made while its type is missing, and comes back", async () => {
    const first = await boot([...builtinPlugins, engine.plugin]);
    const keys = first.keys;
    if (first.core.sealed) for (const k of keys) await first.core.submitUnsealKey(k.toString("base64"));
    await first.core.mounts.enable("secrets", "tl/", { type: "test-leases" });
    await first.core.mounts.get("tl/")!.storage.put("kept", Buffer.from("data"));
    await first.core.shutdown();

    // A build without the test engine: the mount is unavailable, its path taken, and another
    // mount can be enabled (which rewrites the table).
    const second = await boot(builtinPlugins, keys);
    expect(second.core.mounts.get("tl/")).toBeUndefined();
    await expect(second.core.mounts.enable("secrets", "tl/", { type: "kv" })).rejects.toThrow(/already in use/);
    await second.core.mounts.enable("secrets", "other/", { type: "kv" });
    await second.core.shutdown();

    const third = await boot([...builtinPlugins, engine.plugin], keys);
    expect(third.core.mounts.get("tl/")?.entry.type).toBe("test-leases");
    expect(third.core.mounts.get("other/")?.entry.type).toBe("kv");
    expect((await third.core.mounts.get("tl/")!.storage.get("kept"))?.toString()).toBe("data");
    await third.core.shutdown();
  });
});
