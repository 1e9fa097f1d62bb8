import { z } from "zod";
import { UserError, addressAllowed, authResultFromTokenFields, checkLoginAddress } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { expired, type AppRoleStore, type SecretIdEntry } from "../store.js";

const loginSchema = z.object({ role_id: z.string().optional(), secret_id: z.string().optional() });

/**
 * Vault's wording and status: one message for an unknown role ID and an unknown, expired or used-up
 * secret ID, answered 400 (Vault returns `logical.ErrorResponse` with `ErrInvalidCredentials`, which
 * its HTTP layer maps to 400; hvac raises `InvalidRequest`). Only the token's own `token_bound_cidrs`
 * refuse with 403 `permission denied`, as the other methods do.
 */
const INVALID = "invalid role or secret ID";

async function login(store: AppRoleStore, req: HandlerRequest<z.infer<typeof loginSchema>>): Promise<HandlerResponse> {
  const { role_id: roleId, secret_id: secretId } = req.data;
  if (!roleId) throw new UserError("missing role_id");
  const name = await store.roleNameById(roleId);
  const role = name ? await store.roles.get(name) : undefined;
  if (!role || role.role_id !== roleId) throw new UserError(INVALID);
  const remote = req.connection.remoteAddress;
  // Judged only once the secret ID is known good (as Vault does), so the answer never tells a caller
  // without the secret ID that the role ID exists; and judged before a use is taken.
  const checkRoleCidrs = () => {
    if (!addressAllowed(remote, role.secret_id_bound_cidrs)) throw new UserError(`source address ${JSON.stringify(remote)} unauthorized by CIDR restrictions on the role`);
  };

  let secret: SecretIdEntry | undefined;
  if (role.bind_secret_id) {
    if (!secretId) throw new UserError("missing secret_id");
    const h = await store.hash(secretId);
    // Every check happens before the use is taken, and the take happens under the secret ID's
    // lock: two logins can never both consume the last use, and a refused login consumes nothing.
    secret = await store.withSecretIdLock(role.name, h, async () => {
      const e = await store.getSecretId(role.name, h);
      if (!e) return undefined;
      if (expired(e)) {
        await store.deleteSecretId(role.name, h, e.secret_id_accessor);
        return undefined;
      }
      checkRoleCidrs();
      if (!addressAllowed(remote, e.cidr_list)) throw new UserError(`source address ${JSON.stringify(remote)} unauthorized through CIDR restrictions on the secret ID`);
      checkLoginAddress({ token_bound_cidrs: e.token_bound_cidrs.length ? e.token_bound_cidrs : role.token_bound_cidrs }, remote);
      if (e.secret_id_num_uses === 1) {
        await store.deleteSecretId(role.name, h, e.secret_id_accessor);
      } else if (e.secret_id_num_uses > 1) {
        await store.putSecretId(role.name, h, { ...e, secret_id_num_uses: e.secret_id_num_uses - 1, last_updated_time: new Date().toISOString() });
      }
      return e;
    });
    if (!secret) throw new UserError(INVALID);
  } else {
    checkRoleCidrs();
    checkLoginAddress(role, remote);
  }

  const fields = secret?.token_bound_cidrs.length ? { ...role, token_bound_cidrs: secret.token_bound_cidrs } : role;
  return {
    auth: authResultFromTokenFields(fields, {
      metadata: { ...(secret?.metadata ?? {}), role_name: role.name },
      displayName: "",
      aliasName: role.role_id,
    }),
  };
}

export function loginPath(store: AppRoleStore): PathDefinition {
  return {
    pattern: "login",
    operations: { update: { schema: loginSchema, handler: (r) => login(store, r as HandlerRequest<z.infer<typeof loginSchema>>), summary: "Log in with a RoleID and a SecretID." } },
  };
}
