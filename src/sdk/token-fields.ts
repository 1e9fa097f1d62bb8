import { z } from "zod";
import { addressAllowed, parseCidrs } from "./cidr.js";
import { PermissionDenied, UserError } from "./errors.js";
import { zBool, zCommaList, zDuration, zInt } from "./fields.js";
import type { AuthResult } from "./types.js";

/**
 * The token fields every auth-method role carries (Vault's `tokenutil`): what a login through the
 * role mints. Durations are whole seconds; 0 means "the mount's default" (ttl, max_ttl) or "none".
 */
export interface TokenFields {
  token_ttl: number;
  token_max_ttl: number;
  token_policies: string[];
  token_bound_cidrs: string[];
  token_explicit_max_ttl: number;
  token_no_default_policy: boolean;
  token_num_uses: number;
  token_period: number;
  token_type: "service";
}

/**
 * zod shape to spread into a role schema: `z.object({ ...tokenFieldsShape, bound_x: ... })`.
 * The legacy names Vault still accepts (`policies`, `ttl`, `max_ttl`, `period`, `bound_cidrs`) are
 * honoured when the `token_*` name is absent.
 */
export const tokenFieldsShape = {
  token_ttl: zDuration.optional(),
  ttl: zDuration.optional(),
  token_max_ttl: zDuration.optional(),
  max_ttl: zDuration.optional(),
  token_policies: zCommaList.optional(),
  policies: zCommaList.optional(),
  token_bound_cidrs: zCommaList.optional(),
  bound_cidrs: zCommaList.optional(),
  token_explicit_max_ttl: zDuration.optional(),
  token_no_default_policy: zBool.optional(),
  token_num_uses: zInt.optional(),
  token_period: zDuration.optional(),
  period: zDuration.optional(),
  token_type: z.string().optional(),
};

const tokenFieldsObject = z.object(tokenFieldsShape);
/** What the shape parses to: every field optional (only the fields sent change). */
export type TokenFieldsInput = z.infer<typeof tokenFieldsObject>;

export function defaultTokenFields(): TokenFields {
  return {
    token_ttl: 0,
    token_max_ttl: 0,
    token_policies: [],
    token_bound_cidrs: [],
    token_explicit_max_ttl: 0,
    token_no_default_policy: false,
    token_num_uses: 0,
    token_period: 0,
    token_type: "service",
  };
}

/** Vault's policy sanitising for roles: trimmed, lower-cased, de-duplicated, sorted. */
function sanitisePolicies(list: string[]): string[] {
  return [...new Set(list.map((p) => p.trim().toLowerCase()).filter(Boolean))].sort();
}

/**
 * Applies a role write's token fields on top of the stored ones (or the defaults) and validates
 * the result. Throws `UserError` naming the field.
 */
export function mergeTokenFields(current: TokenFields | undefined, input: TokenFieldsInput): TokenFields {
  const cur = current ?? defaultTokenFields();
  const next: TokenFields = {
    token_ttl: input.token_ttl ?? input.ttl ?? cur.token_ttl,
    token_max_ttl: input.token_max_ttl ?? input.max_ttl ?? cur.token_max_ttl,
    token_policies: sanitisePolicies(input.token_policies ?? input.policies ?? cur.token_policies),
    token_bound_cidrs: input.token_bound_cidrs ?? input.bound_cidrs ?? cur.token_bound_cidrs,
    token_explicit_max_ttl: input.token_explicit_max_ttl ?? cur.token_explicit_max_ttl,
    token_no_default_policy: input.token_no_default_policy ?? cur.token_no_default_policy,
    token_num_uses: input.token_num_uses ?? cur.token_num_uses,
    token_period: input.token_period ?? input.period ?? cur.token_period,
    token_type: "service",
  };
  if (input.token_type !== undefined && !["", "service", "default"].includes(input.token_type)) {
    throw new UserError(`token_type: ${JSON.stringify(input.token_type)} is not supported: leasehold issues service tokens only`);
  }
  if (next.token_num_uses < 0) throw new UserError("token_num_uses cannot be negative");
  if (next.token_max_ttl > 0 && next.token_ttl > next.token_max_ttl) throw new UserError('"token_ttl" should not be greater than "token_max_ttl"');
  // Vault: "auth methods cannot create root tokens".
  if (next.token_policies.includes("root")) throw new UserError('token_policies: auth methods cannot create root tokens (remove "root")');
  parseCidrs(next.token_bound_cidrs, "token_bound_cidrs");
  return next;
}

/** The token fields as a role read shows them (whole seconds), plus the legacy `policies` and `period`. */
export function tokenFieldsResponse(f: TokenFields): Record<string, unknown> {
  return {
    token_ttl: f.token_ttl,
    token_max_ttl: f.token_max_ttl,
    token_policies: f.token_policies,
    token_bound_cidrs: f.token_bound_cidrs,
    token_explicit_max_ttl: f.token_explicit_max_ttl,
    token_no_default_policy: f.token_no_default_policy,
    token_num_uses: f.token_num_uses,
    token_period: f.token_period,
    token_type: "default",
    policies: f.token_policies,
    period: f.token_period,
  };
}

/**
 * `token_bound_cidrs` limits who may log in as well as where the token works (Vault checks it at
 * login too). Throws `PermissionDenied` when the client address is outside.
 */
export function checkLoginAddress(f: Pick<TokenFields, "token_bound_cidrs">, remoteAddress: string): void {
  if (!addressAllowed(remoteAddress, f.token_bound_cidrs)) throw new PermissionDenied();
}

/** The `AuthResult` a login through a role returns: the role's token fields plus the identity. */
export function authResultFromTokenFields(
  f: TokenFields,
  identity: { metadata: Record<string, string>; displayName: string; aliasName?: string; extraPolicies?: string[] },
): AuthResult {
  return {
    policies: sanitisePolicies([...f.token_policies, ...(identity.extraPolicies ?? [])]),
    metadata: identity.metadata,
    displayName: identity.displayName,
    aliasName: identity.aliasName,
    ttl: f.token_ttl || undefined,
    maxTtl: f.token_max_ttl || undefined,
    explicitMaxTtl: f.token_explicit_max_ttl || undefined,
    period: f.token_period || undefined,
    numUses: f.token_num_uses || undefined,
    renewable: true,
    noDefaultPolicy: f.token_no_default_policy,
    boundCidrs: f.token_bound_cidrs.length ? f.token_bound_cidrs : undefined,
  };
}

/**
 * Renewal check shared by the roles of every method (Vault refuses "policies have changed, not
 * renewing"): the policies a login through the role would grant now must equal the token's.
 */
export function policiesUnchanged(f: Pick<TokenFields, "token_policies" | "token_no_default_policy">, tokenPolicies: string[]): boolean {
  const want = new Set([...f.token_policies, ...(f.token_no_default_policy ? [] : ["default"])]);
  const have = new Set(tokenPolicies);
  return want.size === have.size && [...want].every((p) => have.has(p));
}
