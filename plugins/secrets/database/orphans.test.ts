import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connect, rand, templatedUrl } from "../../../test/database/helpers.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { postgresDatabasePlugin } from "../../database/postgres/index.js";
import { ConnectionRegistry } from "./connections.js";
import { ORPHAN_GRACE_MS, OrphanSweep, usernamePrefix } from "./orphans.js";
import { DatabaseStore } from "./store.js";
import { UsernameTemplate } from "./username-template.js";

describe("orphan sweep", () => {
  let admin: pg.Client;
  const tag = rand();
  const names = { orphan: `v-orph-${tag}-1`, fresh: `v-orph-${tag}-2`, foreign: `x-orph-${tag}`, staticUser: `v-static-${tag}`, noExpiry: `v-orph-${tag}-3` };

  beforeAll(async () => {
    admin = await connect(inject("pgUrl"));
    const longAgo = new Date(Date.now() - ORPHAN_GRACE_MS - 3600_000).toISOString();
    for (const n of [names.orphan, names.foreign, names.staticUser]) await admin.query(`CREATE ROLE ${pg.escapeIdentifier(n)} LOGIN VALID UNTIL ${pg.escapeLiteral(longAgo)}`);
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(names.fresh)} LOGIN VALID UNTIL ${pg.escapeLiteral(new Date(Date.now() - 3600_000).toISOString())}`);
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(names.noExpiry)} LOGIN`);
  });
  afterAll(async () => {
    for (const n of Object.values(names)) await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(n)}`);
    await admin.end();
  });

  it("derives the username prefix of a template", () => {
    expect(usernamePrefix(new UsernameTemplate(postgresDatabasePlugin.usernames.defaultTemplate))).toBe("v-");
    expect(usernamePrefix(new UsernameTemplate("app_{{.RoleName}}_{{random 8}}"))).toBe("app_");
    expect(usernamePrefix(new UsernameTemplate("{{.RoleName}}-{{random 8}}"))).toBe("");
  });

  it("drops only prefixed users that expired more than a day ago, never static role users", async () => {
    const { view } = await makeBarrierView("logical/db/");
    const store = new DatabaseStore(view);
    const url = new URL(inject("pgUrl"));
    await store.putConfig("pg", {
      plugin_name: postgresDatabasePlugin.name,
      plugin_version: "",
      verify_connection: true,
      allowed_roles: ["*"],
      root_rotation_statements: [],
      password_policy: "",
      username_template: "",
      connection_details: { connection_url: templatedUrl(inject("pgUrl")), username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) },
    });
    await store.putStaticRole("st", { db_name: "pg", username: names.staticUser, rotation_period: 3600, rotation_statements: [], password: "x", last_vault_rotation: new Date().toISOString() });
    const connections = new ConnectionRegistry({ store, plugins: new Map([[postgresDatabasePlugin.name, postgresDatabasePlugin]]), logger: pino({ level: "silent" }) });
    const sweep = new OrphanSweep({ store, connections, logger: pino({ level: "silent" }), defaultTemplate: (live) => live.factory.usernames.defaultTemplate });
    const dropped = await sweep.sweep();
    expect(dropped).toContain(names.orphan);
    const left = await admin.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname", [Object.values(names)]);
    expect(left.rows.map((r) => r.rolname).sort()).toEqual([names.fresh, names.noExpiry, names.staticUser, names.foreign].sort());
    await connections.closeAll();
  });
});
