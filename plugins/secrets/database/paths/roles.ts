import { z } from "zod";
import { NotFound, UserError, zDuration, zName } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { checkName, type DatabaseEngine } from "../engine.js";
import { zStatements } from "../statements.js";
import { NAME_RE, type RoleEntry } from "../store.js";

const writeSchema = z.object({
  db_name: zName.optional(),
  creation_statements: zStatements.optional(),
  revocation_statements: zStatements.optional(),
  rollback_statements: zStatements.optional(),
  renew_statements: zStatements.optional(),
  default_ttl: zDuration.optional(),
  max_ttl: zDuration.optional(),
  credential_type: z.literal("password", { message: 'only "password" credentials are supported' }).optional(),
});

type WriteData = z.infer<typeof writeSchema>;

/** `database/roles/:name` (plus list): dynamic roles. */
export function rolePaths(engine: DatabaseEngine): PathDefinition[] {
  return [
    {
      pattern: "roles/?",
      operations: {
        list: {
          summary: "List the dynamic roles.",
          handler: async () => {
            const keys = await engine.store.listRoles();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "roles/(?<name>[^/]+)",
      existenceCheck: async (req) => NAME_RE.test(req.params.name ?? "") && (await engine.store.role(req.params.name)) !== undefined,
      operations: {
        read: { summary: "Read a dynamic role.", handler: (req) => readRole(engine, req) },
        create: { schema: writeSchema, summary: "Create a dynamic role.", handler: (req: HandlerRequest<WriteData>) => writeRole(engine, req) },
        update: { schema: writeSchema, summary: "Change a dynamic role (fields not sent keep their value).", handler: (req: HandlerRequest<WriteData>) => writeRole(engine, req) },
        delete: {
          summary: "Delete a dynamic role (its leases stay revocable).",
          handler: async (req) => {
            const name = checkName(req.params.name, "role");
            await engine.store.lock(`role/${name}`, () => engine.store.deleteRole(name));
          },
        },
      },
    },
  ];
}

async function readRole(engine: DatabaseEngine, req: HandlerRequest): Promise<HandlerResponse> {
  const name = checkName(req.params.name, "role");
  const role = await engine.store.role(name);
  if (!role) throw new NotFound();
  return {
    data: {
      credential_type: "password",
      db_name: role.db_name,
      creation_statements: role.creation_statements,
      revocation_statements: role.revocation_statements,
      rollback_statements: role.rollback_statements,
      renew_statements: role.renew_statements,
      default_ttl: role.default_ttl,
      max_ttl: role.max_ttl,
    },
  };
}

async function writeRole(engine: DatabaseEngine, req: HandlerRequest<WriteData>): Promise<void> {
  const name = checkName(req.params.name, "role");
  const d = req.data;
  await engine.store.lock(`role/${name}`, async () => {
    const existing = await engine.store.role(name);
    if (!existing && (await engine.store.staticRole(name))) throw new UserError(`"${name}" is already a static role: role and static role names must differ`);
    const role: RoleEntry = {
      db_name: d.db_name ?? existing?.db_name ?? "",
      creation_statements: d.creation_statements ?? existing?.creation_statements ?? [],
      revocation_statements: d.revocation_statements ?? existing?.revocation_statements ?? [],
      rollback_statements: d.rollback_statements ?? existing?.rollback_statements ?? [],
      renew_statements: d.renew_statements ?? existing?.renew_statements ?? [],
      default_ttl: d.default_ttl ?? existing?.default_ttl ?? 0,
      max_ttl: d.max_ttl ?? existing?.max_ttl ?? 0,
    };
    if (!role.db_name) throw new UserError("db_name is required");
    if (!role.creation_statements.length) throw new UserError("creation_statements are required");
    if (role.max_ttl > 0 && role.default_ttl > role.max_ttl) throw new UserError("default_ttl cannot be greater than max_ttl");
    await engine.store.putRole(name, role);
  });
}
