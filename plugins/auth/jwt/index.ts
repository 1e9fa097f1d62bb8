import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { ConfigCache, configPath } from "../shared/config-cache.js";
import { NamedRecords, checkRenewalThroughRole } from "../shared/roles.js";
import { buildValidator, checkedValidator, configFromInput, configSchema, configView, loadConfig, type Validator } from "./config.js";
import { loginPath } from "./paths/login.js";
import { rolePaths, type JwtRole } from "./paths/role.js";

/**
 * JWT (with OIDC discovery for validation): a workload presents a JWT signed by a trusted issuer
 * (static keys, a JWKS URL, or an OpenID Provider found through discovery) and logs in through a
 * role that binds audiences, subject and claims. Vault's `auth/jwt` paths and fields, "jwt" roles.
 */
export const jwtPlugin: PluginFactory = {
  type: "jwt",
  kind: "auth",
  description: "JWT/OIDC: log in with a JWT verified against static keys, a JWKS URL or OIDC discovery.",
  async create(ctx): Promise<Backend> {
    const roles = new NamedRecords<JwtRole>(ctx.storage, "role/");
    const logger = ctx.logger.child({ auth: ctx.mount.path });
    // Built on first use and on every config write; keeps the JWKS cache for the mount's life.
    const validator = new ConfigCache<Validator>(() => loadConfig(ctx.storage).then((cfg) => (cfg ? buildValidator(cfg, logger) : undefined)));

    return {
      paths: [
        loginPath(roles, () => validator.get()),
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
      unauthenticatedPaths: ["login"],
      async renewAuth(token) {
        checkRenewalThroughRole(token.metadata.role ? await roles.get(token.metadata.role) : undefined, token.metadata.role, token.policies);
      },
    };
  },
};
