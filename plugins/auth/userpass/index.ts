import { PermissionDenied } from "../../../src/sdk/index.js";
import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { loginPaths } from "./paths/login.js";
import { userPaths } from "./paths/users.js";
import { warmUpDummyHash } from "./password-hash.js";
import { UserStore } from "./store.js";

/**
 * Vault's policyutil.EquivalentPolicies: the same set, leaving `default` out (the core may add it
 * after the user was saved).
 */
function equivalentPolicies(a: string[], b: string[]): boolean {
  const set = (l: string[]) => new Set(l.filter((p) => p !== "default"));
  const x = set(a);
  const y = set(b);
  return x.size === y.size && [...x].every((p) => y.has(p));
}

/**
 * Userpass: people log in with a username and password configured on the mount (`users/`).
 * Passwords are kept only as scrypt hashes. Vault's `auth/userpass` paths and fields.
 */
export const userpassPlugin: PluginFactory = {
  type: "userpass",
  kind: "auth",
  description: "Userpass: log in with a username and password (stored as scrypt hashes).",
  async create(ctx): Promise<Backend> {
    const store = new UserStore(ctx.storage);
    // So that the first login for an unknown user costs one derivation, like every later one.
    warmUpDummyHash().catch((err: unknown) => ctx.logger.warn({ err }, "userpass: could not precompute the dummy password hash"));
    return {
      paths: [...loginPaths(store), ...userPaths(store)],
      unauthenticatedPaths: ["login", "login/*"],
      // Vault's pathLoginRenew: no renewal once the user is gone or its policies changed.
      async renewAuth(token) {
        const name = token.metadata.username ?? "";
        const user = name ? await store.users.get(name) : undefined;
        if (!user) throw new PermissionDenied(`user ${JSON.stringify(name)} no longer exists, not renewing`);
        if (!equivalentPolicies(user.token_policies, token.policies)) throw new PermissionDenied("policies have changed, not renewing");
      },
    };
  },
};
