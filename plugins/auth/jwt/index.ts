import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { ConfigCache, configPath } from "../shared/config-cache.js";
import { NamedRecords, checkRenewalThroughRole } from "../shared/roles.js";
import { buildValidator, checkedValidator, configFromInput, configSchema, configView, loadConfig, type Validator } from "./config.js";
import { OidcStateStore } from "./oidc-state.js";
import { loginPath } from "./paths/login.js";
import { oidcPaths } from "./paths/oidc.js";
import { rolePaths, type JwtRole } from "./paths/role.js";

/**
 * JWT (with OIDC discovery for validation): a workload presents a JWT signed by a trusted issuer
 * (static keys, a JWKS URL, or an OpenID Provider found through discovery) and logs in through a
 * role that binds audiences, subject and claims ("jwt" roles); or a person logs in through the
 * provider in a browser, the authorization code flow with PKCE ("oidc" roles). Vault's `auth/jwt`
 * paths and fields.
 */
export const jwtPlugin: PluginFactory = {
  type: "jwt",
  kind: "auth",
  description: "JWT/OIDC: log in with a JWT verified against static keys, a JWKS URL or OIDC discovery, or through an OpenID Provider in a browser.",
  async create(ctx): Promise<Backend> {
    const roles = new NamedRecords<JwtRole>(ctx.storage, "role/");
    const logger = ctx.logger.child({ auth: ctx.mount.path });
    // Built on first use and on every config write; keeps the JWKS cache for the mount's life.
    const validator = new ConfigCache<Validator>(() => loadConfig(ctx.storage).then((cfg) => (cfg ? buildValidator(cfg, logger) : undefined)));

    // OIDC logins in progress live in this node's memory, as in Vault (HA standbys forward to the active).
    const states = new OidcStateStore();

    return {
      paths: [
        loginPath(roles, () => validator.get()),
        ...oidcPaths({ roles, validator: () => validator.get(), states, logger }),
        configPath({
          storage: ctx.storage,
          schema: configSchema,
          fromInput: configFromInput,
          view: configView,
          prepare: (cfg) => checkedValidator(cfg, logger),
          cache: validator,
          summary: "Configure how tokens are verified (exactly one of oidc_discovery_url, jwks_url, jwt_validation_pubkeys).",
        }),
        ...rolePaths(roles),
      ],
      unauthenticatedPaths: ["login", "oidc/auth_url", "oidc/callback"],
      async renewAuth(token) {
        checkRenewalThroughRole(token.metadata.role ? await roles.get(token.metadata.role) : undefined, token.metadata.role, token.policies);
      },
    };
  },
};

/**
 * The same method under Vault's other type name: `vault auth enable oidc` mounts the jwt plugin at
 * `oidc/`, the mount `login -method=oidc` uses by default.
 */
export const oidcPlugin: PluginFactory = { ...jwtPlugin, type: "oidc" };
