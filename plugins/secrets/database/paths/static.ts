import { z } from "zod";
import { NotFound, UserError, zDuration, zName } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { isRootUser } from "../connections.js";
import { checkName, type DatabaseEngine } from "../engine.js";
import { databaseFailure } from "../errors.js";
import { zStatements } from "../statements.js";
import { NAME_RE, roleAllowed, type StaticRoleEntry } from "../store.js";

const writeSchema = z.object({
  db_name: zName.optional(),
  username: z.string().optional(),
  rotation_period: zDuration.optional(),
  rotation_statements: zStatements.optional(),
  credential_type: z.literal("password", { message: 'only "password" credentials are supported' }).optional(),
});

type WriteData = z.infer<typeof writeSchema>;

/** Vault's minimum rotation period. */
const MIN_ROTATION_PERIOD = 5;

/** `database/static-roles/:name`, `database/static-creds/:name`, `database/rotate-role/:name`. */
export function staticPaths(engine: DatabaseEngine): PathDefinition[] {
  return [
    {
      pattern: "static-roles/?",
      operations: {
        list: {
          summary: "List the static roles.",
          handler: async () => {
            const keys = await engine.store.listStaticRoles();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "static-roles/(?<name>[^/]+)",
      existenceCheck: async (req) => NAME_RE.test(req.params.name ?? "") && (await engine.store.staticRole(req.params.name)) !== undefined,
      operations: {
        read: { summary: "Read a static role.", handler: (req) => readStaticRole(engine, req) },
        create: { schema: writeSchema, summary: "Manage an existing database user's password (rotated now and every rotation_period).", handler: (req: HandlerRequest<WriteData>) => writeStaticRole(engine, req) },
        update: { schema: writeSchema, summary: "Change a static role's rotation period or statements.", handler: (req: HandlerRequest<WriteData>) => writeStaticRole(engine, req) },
        delete: {
          summary: "Stop managing the user (the database user itself is left as it is).",
          handler: async (req) => {
            const name = checkName(req.params.name, "static role");
            await engine.store.lock(`static-role/${name}`, async () => {
              await engine.store.deleteStaticRole(name);
              engine.rotation.forget(name);
            });
          },
        },
      },
    },
    {
      pattern: "static-creds/(?<name>[^/]+)",
      operations: {
        read: {
          summary: "The current password of a static role.",
          handler: async (req): Promise<HandlerResponse> => {
            const name = checkName(req.params.name, "static role");
            const entry = await engine.store.staticRole(name);
            if (!entry) throw new UserError(`unknown static role: ${name}`);
            if (!entry.password) throw new UserError(`static role "${name}" has not been rotated yet`);
            return {
              data: {
                username: entry.username,
                password: entry.password,
                last_vault_rotation: entry.last_vault_rotation,
                rotation_period: entry.rotation_period,
                ttl: engine.rotation.ttlOf(name, entry),
              },
            };
          },
        },
      },
    },
    {
      pattern: "rotate-role/(?<name>[^/]+)",
      operations: {
        update: {
          summary: "Rotate a static role's password now.",
          handler: async (req) => {
            const name = checkName(req.params.name, "static role");
            await engine.rotation.rotate(name);
          },
        },
      },
    },
  ];
}

async function readStaticRole(engine: DatabaseEngine, req: HandlerRequest): Promise<HandlerResponse> {
  const name = checkName(req.params.name, "static role");
  const entry = await engine.store.staticRole(name);
  if (!entry) throw new NotFound();
  return {
    data: {
      credential_type: "password",
      db_name: entry.db_name,
      username: entry.username,
      rotation_period: entry.rotation_period,
      rotation_statements: entry.rotation_statements,
      last_vault_rotation: entry.last_vault_rotation || undefined,
    },
  };
}

async function writeStaticRole(engine: DatabaseEngine, req: HandlerRequest<WriteData>): Promise<void> {
  const name = checkName(req.params.name, "static role");
  const d = req.data;
  await engine.store.lock(`static-role/${name}`, async () => {
    const existing = await engine.store.staticRole(name);
    if (existing) {
      if (d.username !== undefined && d.username !== existing.username) throw new UserError("cannot change the username of a static role");
      if (d.db_name !== undefined && d.db_name !== existing.db_name) throw new UserError("cannot change the db_name of a static role");
      const period = d.rotation_period ?? existing.rotation_period;
      if (period < MIN_ROTATION_PERIOD) throw new UserError(`rotation_period must be at least ${MIN_ROTATION_PERIOD} seconds`);
      const updated: StaticRoleEntry = { ...existing, rotation_period: period, rotation_statements: d.rotation_statements ?? existing.rotation_statements };
      await engine.store.putStaticRole(name, updated);
      engine.rotation.plan(name, updated);
      return;
    }
    if (!d.db_name) throw new UserError("db_name is required");
    if (!d.username) throw new UserError("username is required");
    // eslint-disable-next-line no-control-regex -- a username with control characters is refused
    if (/[\u0000-\u001f\u007f]/.test(d.username)) throw new UserError("username must not contain control characters");
    if (d.rotation_period === undefined) throw new UserError("rotation_period is required");
    if (d.rotation_period < MIN_ROTATION_PERIOD) throw new UserError(`rotation_period must be at least ${MIN_ROTATION_PERIOD} seconds`);
    if (await engine.store.role(name)) throw new UserError(`"${name}" is already a dynamic role: role and static role names must differ`);
    let live;
    try {
      live = await engine.connections.get(d.db_name);
    } catch (err) {
      throw databaseFailure(d.db_name, "connecting", err, engine.logger);
    }
    if (!live) throw new UserError(`database config "${d.db_name}" does not exist`);
    if (!roleAllowed(live.config.allowed_roles, name)) throw new UserError(`"${name}" is not an allowed role for database config "${d.db_name}"`);
    if (Buffer.byteLength(d.username, "utf8") > live.factory.usernames.maxBytes) throw new UserError(`username is longer than ${live.factory.usernames.maxBytes} bytes`);
    if (isRootUser(live, d.username)) throw new UserError(`"${d.username}" is the root user of config "${d.db_name}": rotate it with rotate-root`);
    const entry: StaticRoleEntry = {
      db_name: d.db_name,
      username: d.username,
      rotation_period: d.rotation_period,
      rotation_statements: d.rotation_statements ?? [],
      password: "",
      last_vault_rotation: "",
    };
    await engine.store.putStaticRole(name, entry);
    // Vault rotates on creation: it is the only way to know the password.
    try {
      await engine.rotation.rotateLocked(name);
    } catch (err) {
      await engine.store.deleteStaticRole(name);
      engine.rotation.forget(name);
      throw err;
    }
  });
}
