import { z } from "zod";
import { UserError, mergeTokenFields, parseDuration, tokenFieldsResponse, tokenFieldsShape, zBool, zCommaList, zDuration, zStringMap } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition, TokenFields } from "../../../../src/sdk/index.js";
import { NamedRecords, roleCrudPaths, roleNameOf } from "../../shared/roles.js";
import { checkBoundClaims, checkClaimMappings, type BoundValue } from "../claims.js";

/**
 * A role as stored (Vault's field names; leeways in seconds, 0 = default, -1 = none). "jwt" roles
 * log in with a JWT at `login`; "oidc" roles through the browser flow (`oidc/auth_url`, `oidc/callback`).
 */
export interface JwtRole extends TokenFields {
  name: string;
  role_type: "jwt" | "oidc";
  /** OIDC: redirect URIs `oidc/auth_url` accepts (loopback URIs match on any port, RFC 8252). */
  allowed_redirect_uris: string[];
  /** OIDC: scopes asked for besides `openid`. */
  oidc_scopes: string[];
  /** OIDC: log the ID token's claims at debug level (troubleshooting only). */
  verbose_oidc_logging: boolean;
  /** OIDC: seconds since the user last authenticated at the provider; 0 = no limit. */
  max_age: number;
  /** OIDC: "client" (the CLI or UI receives the redirect); the only mode leasehold runs. */
  callback_mode: "client";
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
  allowed_redirect_uris: zCommaList.optional(),
  oidc_scopes: zCommaList.optional(),
  verbose_oidc_logging: zBool.optional(),
  max_age: zDuration.optional(),
  callback_mode: z.string().optional(),
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
  // Roles written before OIDC support lack the OIDC fields.
  const stored: Partial<JwtRole> = role;
  return {
    ...rest,
    allowed_redirect_uris: stored.allowed_redirect_uris ?? [],
    oidc_scopes: stored.oidc_scopes ?? [],
    verbose_oidc_logging: stored.verbose_oidc_logging ?? false,
    max_age: stored.max_age ?? 0,
    callback_mode: "client",
    ...tokenFieldsResponse(role),
  };
}

/**
 * The role type of a write. Vault makes every write without `role_type` an "oidc" role (which then
 * needs `allowed_redirect_uris`); leasehold infers instead, so that each write Vault accepts means
 * the same here: without `role_type`, a role naming `allowed_redirect_uris` is "oidc", an existing
 * role keeps its type, and a new role without redirect URIs (which Vault refuses) is "jwt".
 */
function roleTypeOf(given: string | undefined, cur: JwtRole | undefined, redirectUris: string[] | undefined): JwtRole["role_type"] {
  if (given !== undefined && given !== "") {
    if (given !== "jwt" && given !== "oidc") throw new UserError(`invalid 'role_type': ${given}`);
    return given;
  }
  if (redirectUris?.length) return "oidc";
  return cur?.role_type ?? "jwt";
}

async function writeRole(roles: NamedRecords<JwtRole>, req: HandlerRequest<z.infer<typeof roleSchema>>): Promise<HandlerResponse | undefined> {
  const name = roleNameOf(req.params.name);
  const d = req.data;
  return roles.update(name, async (cur) => {
    const roleType = roleTypeOf(d.role_type, cur, d.allowed_redirect_uris);
    if (d.callback_mode !== undefined && d.callback_mode !== "" && d.callback_mode !== "client") {
      throw new UserError(`callback_mode ${JSON.stringify(d.callback_mode)} is not supported: leasehold runs the "client" callback mode (the CLI or UI receives the provider's redirect)`);
    }
    const boundClaimsType = d.bound_claims_type ?? cur?.bound_claims_type ?? "string";
    const next: JwtRole = {
      ...mergeTokenFields(cur, d),
      name,
      role_type: roleType,
      allowed_redirect_uris: d.allowed_redirect_uris ?? cur?.allowed_redirect_uris ?? [],
      oidc_scopes: d.oidc_scopes ?? cur?.oidc_scopes ?? [],
      verbose_oidc_logging: d.verbose_oidc_logging ?? cur?.verbose_oidc_logging ?? false,
      max_age: d.max_age ?? cur?.max_age ?? 0,
      callback_mode: "client",
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
    if (next.role_type === "oidc" && !next.allowed_redirect_uris.length) throw new UserError("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.");
    for (const uri of next.allowed_redirect_uris) {
      if (!URL.canParse(uri)) throw new UserError(`allowed_redirect_uris: ${JSON.stringify(uri)} is not a URL`);
    }
    // An OIDC login's ID token must name the client ID as its audience; other roles need a binding.
    if (next.role_type !== "oidc" && !next.bound_audiences.length && !next.bound_subject && !Object.keys(next.bound_claims).length && !next.token_bound_cidrs.length) {
      throw new UserError("must have at least one bound constraint when creating/updating a role");
    }
    await roles.put(name, next);
    if (next.verbose_oidc_logging) {
      return { warnings: ["verbose_oidc_logging has been enabled for this role. This is not recommended in production since sensitive information may be present in OIDC responses."] };
    }
    return undefined;
  });
}

export function rolePaths(roles: NamedRecords<JwtRole>): PathDefinition[] {
  return roleCrudPaths(roles, { schema: roleSchema, write: writeRole, view: roleView, createSummary: "Create a role: which tokens may log in and what they get." });
}
