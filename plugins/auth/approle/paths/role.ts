import { randomUUID } from "node:crypto";
import { z } from "zod";
import { NotFound, UserError, mergeTokenFields, parseCidrs, tokenFieldsResponse, tokenFieldsShape, zBool, zCommaList, zDuration, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition } from "../../../../src/sdk/index.js";
import { listAnswer, roleNameOf } from "../../shared/roles.js";
import type { AppRole, AppRoleStore } from "../store.js";

const roleSchema = z.object({
  bind_secret_id: zBool.optional(),
  secret_id_bound_cidrs: zCommaList.optional(),
  bound_cidr_list: zCommaList.optional(),
  secret_id_num_uses: zInt.optional(),
  secret_id_ttl: zDuration.optional(),
  local_secret_ids: zBool.optional(),
  role_id: z.string().optional(),
  ...tokenFieldsShape,
});

const roleIdSchema = z.object({ role_id: z.string().min(1, "missing role_id") });

/** Role names are case-insensitive in Vault's approle (stored lower-cased). */
export const approleName = (raw: string | undefined) => roleNameOf(raw, "role", true);

export function roleView(role: AppRole): Record<string, unknown> {
  return {
    bind_secret_id: role.bind_secret_id,
    secret_id_bound_cidrs: role.secret_id_bound_cidrs,
    secret_id_num_uses: role.secret_id_num_uses,
    secret_id_ttl: role.secret_id_ttl,
    local_secret_ids: role.local_secret_ids,
    ...tokenFieldsResponse(role),
  };
}

export async function requireRole(store: AppRoleStore, raw: string | undefined): Promise<AppRole> {
  const role = await store.roles.get(approleName(raw));
  if (!role) throw new UserError(`role "${approleName(raw)}" does not exist`);
  return role;
}

async function writeRole(store: AppRoleStore, req: HandlerRequest<z.infer<typeof roleSchema>>): Promise<void> {
  const name = approleName(req.params.name);
  const d = req.data;
  await store.roles.update(name, async (cur) => {
    const next: AppRole = {
      ...mergeTokenFields(cur, d),
      name,
      role_id: cur?.role_id ?? "",
      bind_secret_id: d.bind_secret_id ?? cur?.bind_secret_id ?? true,
      secret_id_bound_cidrs: d.secret_id_bound_cidrs ?? d.bound_cidr_list ?? cur?.secret_id_bound_cidrs ?? [],
      secret_id_num_uses: d.secret_id_num_uses ?? cur?.secret_id_num_uses ?? 0,
      secret_id_ttl: d.secret_id_ttl ?? cur?.secret_id_ttl ?? 0,
      local_secret_ids: cur ? cur.local_secret_ids : (d.local_secret_ids ?? false),
    };
    if (cur && d.local_secret_ids !== undefined && d.local_secret_ids !== cur.local_secret_ids) throw new UserError("local_secret_ids can only be modified during role creation");
    if (next.secret_id_num_uses < 0) throw new UserError("secret_id_num_uses cannot be negative");
    parseCidrs(next.secret_id_bound_cidrs, "secret_id_bound_cidrs");
    if (!next.bind_secret_id && !next.secret_id_bound_cidrs.length && !next.token_bound_cidrs.length) {
      throw new UserError("at least one constraint should be enabled on the role");
    }
    const newRoleId = d.role_id !== undefined && d.role_id !== "" ? d.role_id : cur?.role_id || randomUUID();
    if (newRoleId !== next.role_id) {
      const owner = await store.roleNameById(newRoleId);
      if (owner && owner !== name) throw new UserError("role_id already in use");
      if (next.role_id) await store.deleteRoleId(next.role_id);
      await store.putRoleId(newRoleId, name);
      next.role_id = newRoleId;
    }
    await store.roles.put(name, next);
  });
}

async function deleteRole(store: AppRoleStore, raw: string): Promise<void> {
  const name = approleName(raw);
  await store.roles.update(name, async (cur) => {
    if (!cur) return;
    for (const h of await store.secretIdHmacs(name)) {
      const entry = await store.getSecretId(name, h);
      await store.deleteSecretId(name, h, entry?.secret_id_accessor);
    }
    if (cur.role_id && (await store.roleNameById(cur.role_id)) === name) await store.deleteRoleId(cur.role_id);
    await store.roles.delete(name);
  });
}

export function rolePaths(store: AppRoleStore): PathDefinition[] {
  return [
    {
      pattern: "role/?",
      operations: { list: { handler: async () => listAnswer(await store.roles.names()), summary: "List the AppRoles." } },
    },
    {
      pattern: "role/(?<name>[^/]+)",
      existenceCheck: async (r) => (await store.roles.get(approleName(r.params.name))) !== undefined,
      operations: {
        read: {
          handler: async (r) => {
            const role = await store.roles.get(approleName(r.params.name));
            if (!role) throw new NotFound();
            return { data: roleView(role) };
          },
          summary: "Read an AppRole.",
        },
        create: { schema: roleSchema, handler: (r) => writeRole(store, r), summary: "Create an AppRole." },
        update: { schema: roleSchema, handler: (r) => writeRole(store, r), summary: "Update an AppRole (only the fields sent change)." },
        delete: { handler: (r) => deleteRole(store, r.params.name), summary: "Delete an AppRole and every secret ID issued against it." },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/role-id",
      operations: {
        read: {
          handler: async (r) => {
            const role = await store.roles.get(approleName(r.params.name));
            if (!role) throw new NotFound();
            return { data: { role_id: role.role_id } };
          },
          summary: "Read the RoleID of an AppRole.",
        },
        update: {
          schema: roleIdSchema,
          handler: async (r) => {
            const name = approleName(r.params.name);
            const roleId = (r.data as z.infer<typeof roleIdSchema>).role_id;
            await store.roles.update(name, async (cur) => {
              if (!cur) throw new UserError(`role "${name}" does not exist`);
              if (cur.role_id === roleId) return;
              const owner = await store.roleNameById(roleId);
              if (owner && owner !== name) throw new UserError("role_id already in use");
              if (cur.role_id) await store.deleteRoleId(cur.role_id);
              await store.putRoleId(roleId, name);
              await store.roles.put(name, { ...cur, role_id: roleId });
            });
          },
          summary: "Set a custom RoleID.",
        },
      },
    },
  ];
}
