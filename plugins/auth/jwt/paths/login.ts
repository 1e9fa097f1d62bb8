import { z } from "zod";
import { UserError, checkLoginAddress } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { NamedRecords, roleNameOf } from "../../shared/roles.js";
import { audiencesOf, checkTimeClaims, verifyJwtSignature } from "../../shared/jwt.js";
import { authFromClaims } from "../identity.js";
import type { Validator } from "../config.js";
import { leewaysOf, type JwtRole } from "./role.js";

const loginSchema = z.object({ role: z.string().optional(), jwt: z.string().optional() });

/**
 * Status codes as Vault's jwt method answers them: every refusal of the token or its claims is a
 * 400 (`logical.ErrorResponse`; hvac raises `InvalidRequest`). Only a caller outside the role's
 * `token_bound_cidrs` gets 403 `permission denied` (`logical.ErrPermissionDenied`).
 */
async function login(req: HandlerRequest<z.infer<typeof loginSchema>>, roles: NamedRecords<JwtRole>, validator: () => Promise<Validator | undefined>): Promise<HandlerResponse> {
  const v = await validator();
  if (!v) throw new UserError("could not load configuration: write auth/<mount>/config first");
  if (!req.data.jwt) throw new UserError("missing token");
  const roleName = req.data.role || v.config.default_role;
  if (!roleName) throw new UserError("missing role");
  const role = await roles.get(roleNameOf(roleName));
  if (!role) throw new UserError(`role ${JSON.stringify(roleName)} could not be found`);
  if (role.role_type === "oidc") throw new UserError("role with oidc role_type is not allowed");
  checkLoginAddress(role, req.connection.remoteAddress);

  const { claims } = await verifyJwtSignature(req.data.jwt, v.config.jwt_supported_algs, v.keys);
  const issuer = await v.issuer();
  if (issuer !== undefined && claims.iss !== issuer) throw new UserError("error validating token: invalid issuer (iss) claim");
  if (role.bound_subject && claims.sub !== role.bound_subject) throw new UserError("error validating token: invalid subject (sub) claim");
  const aud = audiencesOf(claims);
  if (role.bound_audiences.length && !aud.some((a) => role.bound_audiences.includes(a))) throw new UserError("error validating token: invalid audience (aud) claim: audience claim does not match any expected audience");
  // Vault's order: issuer, subject, audience, then the time claims.
  checkTimeClaims(claims, leewaysOf(role), { requireExp: true });
  if (!role.bound_audiences.length && claims.aud !== undefined) {
    // Vault refuses too: a token meant for some audience must not open a role that names none.
    throw new UserError("audience claim found in JWT but no audiences bound to the role");
  }
  return { auth: authFromClaims(role, claims) };
}

export function loginPath(roles: NamedRecords<JwtRole>, validator: () => Promise<Validator | undefined>): PathDefinition {
  return {
    pattern: "login",
    operations: {
      update: { schema: loginSchema, handler: (r) => login(r as HandlerRequest<z.infer<typeof loginSchema>>, roles, validator), summary: "Log in with a signed JWT." },
    },
  };
}
