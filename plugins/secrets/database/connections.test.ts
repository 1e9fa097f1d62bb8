import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { canLogin, connect, rand, templatedUrl } from "../../../test/database/helpers.js";
import type { StorageView } from "../../../src/sdk/index.js";
import { postgresDatabasePlugin } from "../../database/postgres/index.js";
import { ConnectionRegistry } from "./connections.js";
import { DatabaseStore, type ConnectionConfig } from "./store.js";

/**
 * rotate-root interrupted by a crash: the store holds the old root password and the pending new
 * one. Whichever logs in wins when the connection starts again; the other is forgotten.
 */
describe("connection registry: finishing an interrupted rotate-root", () => {
  let admin: pg.Client;
  const url = () => inject("pgUrl");
  const roles: string[] = [];

  beforeAll(async () => {
    admin = await connect(url());
  });
  afterAll(async () => {
    for (const r of roles) await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(r)}`);
    await admin.end();
  });

  async function setup(dbPassword: string): Promise<{ view: StorageView; registry: ConnectionRegistry; root: string }> {
    const root = `lh_rr_${rand()}`;
    roles.push(root);
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(root)} LOGIN PASSWORD ${pg.escapeLiteral(dbPassword)}`);
    const { view } = await makeBarrierView("logical/db/");
    const store = new DatabaseStore(view);
    const config: ConnectionConfig = {
      plugin_name: postgresDatabasePlugin.name,
      plugin_version: "",
      verify_connection: true,
      allowed_roles: ["*"],
      root_rotation_statements: [],
      password_policy: "",
      username_template: "",
      connection_details: { connection_url: templatedUrl(url()), username: root, password: "Old-Root-Password-1" },
      pending_root_password: "New-Root-Password-2",
    };
    await store.putConfig("pg", config);
    const registry = new ConnectionRegistry({ store, plugins: new Map([[postgresDatabasePlugin.name, postgresDatabasePlugin]]), logger: pino({ level: "silent" }) });
    return { view, registry, root };
  }

  it("keeps the old password when the crash came before the database changed", async () => {
    const { view, registry, root } = await setup("Old-Root-Password-1");
    const live = await registry.get("pg");
    expect(live?.config.connection_details.password).toBe("Old-Root-Password-1");
    const saved = await view.getJSON<ConnectionConfig>("config/pg");
    expect(saved?.pending_root_password).toBeUndefined();
    expect(saved?.connection_details.password).toBe("Old-Root-Password-1");
    expect(await canLogin(url(), root, "Old-Root-Password-1")).toBe(true);
    await registry.closeAll();
  });

  it("adopts the new password when the database already has it", async () => {
    const { view, registry } = await setup("New-Root-Password-2");
    const live = await registry.get("pg");
    expect(live?.config.connection_details.password).toBe("New-Root-Password-2");
    const saved = await view.getJSON<ConnectionConfig>("config/pg");
    expect(saved?.pending_root_password).toBeUndefined();
    expect(saved?.connection_details.password).toBe("New-Root-Password-2");
    await registry.closeAll();
  });
});
