import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { checkRenewalThroughRole } from "../shared/roles.js";
import { loginPath } from "./paths/login.js";
import { rolePaths } from "./paths/role.js";
import { secretIdPaths } from "./paths/secret-id.js";
import { AppRoleStore } from "./store.js";

/**
 * AppRole: a machine logs in with a RoleID (which role) and a SecretID (proof), each SecretID
 * bounded by uses, TTL and source CIDRs. Vault's `auth/approle` paths and fields.
 */
export const approlePlugin: PluginFactory = {
  type: "approle",
  kind: "auth",
  description: "AppRole: machines log in with a RoleID and a SecretID (use-counted, expiring, CIDR-bound).",
  async create(ctx): Promise<Backend> {
    const store = new AppRoleStore(ctx.storage);
    return {
      paths: [loginPath(store), ...rolePaths(store), ...secretIdPaths(store)],
      unauthenticatedPaths: ["login"],
      // Vault refuses to renew when the role is gone or its policies changed since the login.
      async renewAuth(token) {
        checkRenewalThroughRole(token.metadata.role_name ? await store.roles.get(token.metadata.role_name) : undefined, token.metadata.role_name, token.policies);
      },
    };
  },
};
