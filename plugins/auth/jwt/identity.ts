import { UserError, authResultFromTokenFields } from "../../../src/sdk/index.js";
import type { AuthResult } from "../../../src/sdk/index.js";
import { claimAt, enforceBoundClaims, mapClaims } from "./claims.js";
import type { JwtRole } from "./paths/role.js";

/**
 * What a verified token's claims make of a login through a role, the same for a JWT presented at
 * `login` and for an ID token obtained by `oidc/callback` (Vault's `createIdentity` after
 * `validateBoundClaims`): the bound claims must hold, the user claim names the user, the groups
 * claim (when the role names one) must be a list of strings, and mapped claims become metadata.
 */
export function authFromClaims(role: JwtRole, claims: Record<string, unknown>): AuthResult {
  enforceBoundClaims(claims, role.bound_claims, role.bound_claims_type);
  const user = claimAt(claims, role.user_claim_json_pointer && !role.user_claim.startsWith("/") ? `/${role.user_claim}` : role.user_claim);
  if (typeof user !== "string" && typeof user !== "number") throw new UserError(`claim ${JSON.stringify(role.user_claim)} not found in token`);
  if (role.groups_claim) groupsOf(claims, role.groups_claim);
  const userName = String(user);
  return authResultFromTokenFields(role, {
    metadata: { ...mapClaims(claims, role.claim_mappings), role: role.name },
    displayName: userName,
    aliasName: userName,
  });
}

/**
 * The groups claim as Vault reads it: a list of strings, or one string. leasehold has no identity
 * groups, so the groups are checked (as Vault refuses a login without them) but not attached.
 */
export function groupsOf(claims: Record<string, unknown>, groupsClaim: string): string[] {
  const raw = claimAt(claims, groupsClaim);
  if (raw === undefined) throw new UserError(`${JSON.stringify(groupsClaim)} claim not found in token`);
  const list = Array.isArray(raw) ? raw : [raw];
  if (!list.every((g) => typeof g === "string")) throw new UserError(`${JSON.stringify(groupsClaim)} claim could not be converted to string list`);
  return list as string[];
}
