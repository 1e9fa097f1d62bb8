import type { Logger } from "pino";
import { z } from "zod";
import { PermissionDenied, UserError, authResultFromTokenFields, checkLoginAddress, matchesAnyGlob } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { ASYMMETRIC_ALGS, JwtRefusal, audiencesOf, checkTimeClaims, decodeJwt, verifyJwtSignature, type KeySource } from "../../shared/jwt.js";
import { NamedRecords, roleNameOf } from "../../shared/roles.js";
import { reviewCredentials, type KubeConfig } from "../config.js";
import { serviceAccountOf } from "../service-account.js";
import { reviewToken } from "../token-review.js";
import type { KubeRole } from "./role.js";

const loginSchema = z.object({ role: z.string().optional(), jwt: z.string().optional() });

/** The mount's config with its parsed `pem_keys` (undefined until configured). */
export interface KubeState {
  config: KubeConfig;
  pemKeys?: KeySource;
}

/**
 * Vault's kubernetes method refuses a token with 403 (hvac raises `Forbidden`): `permission denied`
 * for an unreadable or badly signed token and for a failed TokenReview, the validator's reason for
 * a claim (time, issuer, audience), and `service account name not authorized` / `namespace not
 * authorized` for the role's bindings. Missing fields and an unknown role are 400.
 */
function refusal(err: unknown): unknown {
  if (!(err instanceof JwtRefusal)) return err;
  return err.kind === "claims" ? new PermissionDenied(err.reason) : new PermissionDenied();
}

/** Clock skew tolerated between the cluster and the broker for `exp`/`nbf`/`iat`. */
const SKEW = { exp: 60, nbf: 60, iat: 60 };

async function login(req: HandlerRequest<z.infer<typeof loginSchema>>, roles: NamedRecords<KubeRole>, state: () => Promise<KubeState | undefined>, logger: Logger): Promise<HandlerResponse> {
  if (!req.data.role) throw new UserError("missing role");
  if (!req.data.jwt) throw new UserError("missing jwt");
  const jwt = req.data.jwt;
  const s = await state();
  if (!s) throw new UserError("could not load backend configuration: write auth/<mount>/config first");
  const roleName = roleNameOf(req.data.role);
  const role = await roles.get(roleName);
  if (!role) throw new UserError(`invalid role name ${JSON.stringify(roleName)}`);
  checkLoginAddress(role, req.connection.remoteAddress);

  // Local checks first: a token that fails them never reaches the cluster.
  let claims: Record<string, unknown>;
  try {
    ({ claims } = s.pemKeys ? await verifyJwtSignature(jwt, ASYMMETRIC_ALGS, s.pemKeys) : decodeJwt(jwt));
    // The validator's order: issuer, audience, then the time claims.
    if (s.config.issuer && !s.config.disable_iss_validation && claims.iss !== s.config.issuer) throw new PermissionDenied("invalid issuer (iss) claim");
    if (role.audience && !audiencesOf(claims).includes(role.audience)) throw new PermissionDenied("invalid audience (aud) claim: audience claim does not match any expected audience");
    checkTimeClaims(claims, SKEW, { requireExp: false });
  } catch (err) {
    throw refusal(err);
  }
  const sa = serviceAccountOf(claims);
  if (!matchesAnyGlob(role.bound_service_account_names, sa.name)) throw new PermissionDenied("service account name not authorized");
  if (!matchesAnyGlob(role.bound_service_account_namespaces, sa.namespace)) throw new PermissionDenied("namespace not authorized");
  // However the bindings are written, a token that names no service account never reaches the cluster.
  if (!sa.name || !sa.namespace) throw new PermissionDenied("service account name not authorized");

  const creds = await reviewCredentials(s.config, jwt);
  const { uid } = await reviewToken({ host: s.config.kubernetes_host, ...creds }, jwt, sa, role.audience, logger);

  return {
    auth: authResultFromTokenFields(role, {
      metadata: {
        role: role.name,
        service_account_name: sa.name,
        service_account_namespace: sa.namespace,
        service_account_uid: uid,
        service_account_secret_name: sa.secretName,
      },
      displayName: `${sa.namespace}-${sa.name}`,
      aliasName: role.alias_name_source === "serviceaccount_name" ? `${sa.namespace}/${sa.name}` : uid,
    }),
  };
}

export function loginPath(roles: NamedRecords<KubeRole>, state: () => Promise<KubeState | undefined>, logger: Logger): PathDefinition {
  return {
    pattern: "login",
    operations: {
      update: { schema: loginSchema, handler: (r) => login(r as HandlerRequest<z.infer<typeof loginSchema>>, roles, state, logger), summary: "Log in with a service account token." },
    },
  };
}
