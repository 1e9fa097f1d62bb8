import { z } from "zod";
import { NotFound, PermissionDenied, policiesUnchanged } from "../../../src/sdk/index.js";
import type { Backend, HandlerRequest, PluginFactory } from "../../../src/sdk/index.js";
import { ConfigCache } from "../shared/config-cache.js";
import { NamedRecords } from "../shared/roles.js";
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
        {
          pattern: "config",
          operations: {
            read: {
              handler: async () => {
                const cfg = await loadConfig(ctx.storage);
                if (!cfg) throw new NotFound();
                return { data: configView(cfg) };
              },
            },
            update: {
              schema: configSchema,
              handler: async (r: HandlerRequest) => {
                const cfg = configFromInput(r.data as z.infer<typeof configSchema>);
                const v = await checkedValidator(cfg, logger);
                await ctx.storage.putJSON("config", cfg);
                validator.set(v);
              },
              summary: "Configure how tokens are verified (exactly one of oidc_discovery_url, jwks_url, jwt_validation_pubkeys).",
            },
          },
        },
        ...rolePaths(roles),
      ],
      unauthenticatedPaths: ["login"],
      async renewAuth(token) {
        const role = token.metadata.role ? await roles.get(token.metadata.role) : undefined;
        if (!role) throw new PermissionDenied("role could not be found during renewal");
        if (!policiesUnchanged(role, token.policies)) throw new PermissionDenied("policies have changed, not renewing");
      },
    };
  },
};
