import type { Backend, DatabasePluginFactory, PluginFactory } from "../../../src/sdk/index.js";
import { ConnectionRegistry } from "./connections.js";
import type { DatabaseEngine } from "./engine.js";
import { configPaths } from "./paths/config.js";
import { OrphanSweep } from "./orphans.js";
import { credsPath } from "./paths/creds.js";
import { rolePaths } from "./paths/roles.js";
import { staticPaths } from "./paths/static.js";
import { StaticRotation } from "./rotation.js";
import { credsSecretType } from "./secret-creds.js";
import { DatabaseStore } from "./store.js";

/**
 * The `database` secrets engine: connection configs, dynamic roles (`creds`, leased and revoked by
 * the core), static roles (rotated on a schedule). Database specifics live in the plugins it is
 * given (`postgresql-database-plugin`, ...), composed in plugins/index.ts.
 */
export function databaseEngine(opts: { plugins: DatabasePluginFactory[] }): PluginFactory {
  const plugins: ReadonlyMap<string, DatabasePluginFactory> = new Map(opts.plugins.map((p) => [p.name, p]));
  return {
    type: "database",
    kind: "secrets",
    description: `Dynamic and static database credentials (${[...plugins.keys()].join(", ")})`,
    async create(ctx): Promise<Backend> {
      const logger = ctx.logger.child({ mount: ctx.mount.path, engine: "database" });
      const store = new DatabaseStore(ctx.storage);
      const connections = new ConnectionRegistry({ store, plugins, logger });
      const rotation = new StaticRotation({ store, connections, logger });
      const engine: DatabaseEngine = { store, connections, plugins, rotation, logger, neverCreated: new Set(), templates: new Map() };
      const orphans = new OrphanSweep({ store, connections, logger, defaultTemplate: (live) => live.factory.usernames.defaultTemplate });
      await rotation.start();
      orphans.start();
      return {
        paths: [...configPaths(engine), ...rolePaths(engine), credsPath(engine), ...staticPaths(engine)],
        secretTypes: { creds: credsSecretType(engine) },
        async close() {
          await rotation.stop();
          await orphans.stop();
          await connections.closeAll();
        },
      };
    },
  };
}
