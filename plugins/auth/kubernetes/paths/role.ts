import { z } from "zod";
import { UserError, mergeTokenFields, tokenFieldsResponse, tokenFieldsShape, zCommaList } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition, TokenFields } from "../../../../src/sdk/index.js";
import { NamedRecords, roleCrudPaths, roleNameOf } from "../../shared/roles.js";

/** A kubernetes role as stored (Vault's field names). */
export interface KubeRole extends TokenFields {
  name: string;
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience: string;
  alias_name_source: "serviceaccount_uid" | "serviceaccount_name";
}

const roleSchema = z.object({
  bound_service_account_names: zCommaList.optional(),
  bound_service_account_namespaces: zCommaList.optional(),
  audience: z.string().optional(),
  alias_name_source: z.enum(["serviceaccount_uid", "serviceaccount_name"]).optional(),
  ...tokenFieldsShape,
});

export function roleView(role: KubeRole): Record<string, unknown> {
  const { name: _name, ...rest } = role;
  return { ...rest, ...tokenFieldsResponse(role) };
}

async function writeRole(roles: NamedRecords<KubeRole>, req: HandlerRequest<z.infer<typeof roleSchema>>): Promise<void> {
  const name = roleNameOf(req.params.name);
  const d = req.data;
  await roles.update(name, async (cur) => {
    const next: KubeRole = {
      ...mergeTokenFields(cur, d),
      name,
      bound_service_account_names: d.bound_service_account_names ?? cur?.bound_service_account_names ?? [],
      bound_service_account_namespaces: d.bound_service_account_namespaces ?? cur?.bound_service_account_namespaces ?? [],
      audience: d.audience ?? cur?.audience ?? "",
      alias_name_source: d.alias_name_source ?? cur?.alias_name_source ?? "serviceaccount_uid",
    };
    if (!next.bound_service_account_names.length) throw new UserError('"bound_service_account_names" can not be empty');
    if (!next.bound_service_account_namespaces.length) throw new UserError('"bound_service_account_namespaces" can not be empty');
    // Vault's guard: a role open to every service account of every namespace binds nothing.
    if (next.bound_service_account_names.includes("*") && next.bound_service_account_namespaces.includes("*")) {
      throw new UserError('service account name and namespace can\'t both be wildcards');
    }
    await roles.put(name, next);
  });
}

export function rolePaths(roles: NamedRecords<KubeRole>): PathDefinition[] {
  return roleCrudPaths(roles, { schema: roleSchema, write: writeRole, view: roleView, createSummary: "Create a role bound to service account names and namespaces." });
}
