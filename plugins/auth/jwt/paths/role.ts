import { z } from "zod";
import { UserError, mergeTokenFields, parseDuration, tokenFieldsResponse, tokenFieldsShape, zBool, zCommaList, zStringMap } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition, TokenFields } from "../../../../src/sdk/index.js";
import { NamedRecords, roleCrudPaths, roleNameOf } from "../../shared/roles.js";
import { checkBoundClaims, checkClaimMappings, type BoundValue } from "../claims.js";

/** A jwt role as stored (Vault's field names; leeways in seconds, 0 = default, -1 = none). */
export interface JwtRole extends TokenFields {
  name: string;
  role_type: "jwt";
  bound_audiences: string[];
  bound_subject: string;
  bound_claims: Record<string, BoundValue>;
  bound_claims_type: "string" | "glob";
  user_claim: string;
  user_claim_json_pointer: boolean;
  claim_mappings: Record<string, string>;
  groups_claim: string;
  clock_skew_leeway: number;
  expiration_leeway: number;
  not_before_leeway: number;
}

/** A leeway: a duration, or -1 (any negative) for "none". */
const zLeeway = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const s = String(v).trim();
  if (s.startsWith("-")) {
    if (s === "-1" || s === "-1s") return -1;
    ctx.addIssue({ code: "custom", message: "a leeway is a duration, 0 for the default or -1 for none" });
    return z.NEVER;
  }
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

export const roleSchema = z.object({
  role_type: z.string().optional(),
  bound_audiences: zCommaList.optional(),
  bound_subject: z.string().optional(),
  bound_claims: z.record(z.string(), z.unknown()).optional(),
  bound_claims_type: z.enum(["string", "glob"]).optional(),
  user_claim: z.string().optional(),
  user_claim_json_pointer: zBool.optional(),
  claim_mappings: zStringMap.optional(),
  groups_claim: z.string().optional(),
  clock_skew_leeway: zLeeway.optional(),
  expiration_leeway: zLeeway.optional(),
  not_before_leeway: zLeeway.optional(),
  ...tokenFieldsShape,
});

/** Effective leeways in seconds (Vault's defaults: clock skew 60 s, exp and nbf 150 s). */
export function leewaysOf(role: JwtRole): { exp: number; nbf: number; iat: number } {
  const eff = (v: number, dflt: number) => (v < 0 ? 0 : v === 0 ? dflt : v);
  const skew = eff(role.clock_skew_leeway, 60);
  return { exp: eff(role.expiration_leeway, 150) + skew, nbf: eff(role.not_before_leeway, 150) + skew, iat: skew };
}

export function roleView(role: JwtRole): Record<string, unknown> {
  const { name: _name, ...rest } = role;
  return { ...rest, ...tokenFieldsResponse(role) };
}

async function writeRole(roles: NamedRecords<JwtRole>, req: HandlerRequest<z.infer<typeof roleSchema>>): Promise<void> {
  const name = roleNameOf(req.params.name);
  const d = req.data;
  await roles.update(name, async (cur) => {
    if (d.role_type !== undefined && d.role_type !== "jwt") {
      throw new UserError(`role_type ${JSON.stringify(d.role_type)} is not supported: leasehold verifies JWTs presented at login ("jwt" roles) and does not run the OIDC browser flow`);
    }
    const boundClaimsType = d.bound_claims_type ?? cur?.bound_claims_type ?? "string";
    const next: JwtRole = {
      ...mergeTokenFields(cur, d),
      name,
      role_type: "jwt",
      bound_audiences: d.bound_audiences ?? cur?.bound_audiences ?? [],
      bound_subject: d.bound_subject ?? cur?.bound_subject ?? "",
      bound_claims: checkBoundClaims(d.bound_claims ?? cur?.bound_claims ?? {}, boundClaimsType),
      bound_claims_type: boundClaimsType,
      user_claim: d.user_claim ?? cur?.user_claim ?? "",
      user_claim_json_pointer: d.user_claim_json_pointer ?? cur?.user_claim_json_pointer ?? false,
      claim_mappings: checkClaimMappings(d.claim_mappings ?? cur?.claim_mappings ?? {}),
      groups_claim: d.groups_claim ?? cur?.groups_claim ?? "",
      clock_skew_leeway: d.clock_skew_leeway ?? cur?.clock_skew_leeway ?? 0,
      expiration_leeway: d.expiration_leeway ?? cur?.expiration_leeway ?? 0,
      not_before_leeway: d.not_before_leeway ?? cur?.not_before_leeway ?? 0,
    };
    if (!next.user_claim) throw new UserError("a user claim must be defined on the role");
    if (!next.bound_audiences.length && !next.bound_subject && !Object.keys(next.bound_claims).length && !next.token_bound_cidrs.length) {
      throw new UserError("must have at least one bound constraint when creating/updating a role");
    }
    await roles.put(name, next);
  });
}

export function rolePaths(roles: NamedRecords<JwtRole>): PathDefinition[] {
  return roleCrudPaths(roles, { schema: roleSchema, write: writeRole, view: roleView, createSummary: "Create a role: which tokens may log in and what they get." });
}
