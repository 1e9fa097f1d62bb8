import { z } from "zod";
import { NotFound, PermissionDenied, policiesUnchanged } from "../../../src/sdk/index.js";
import type { Backend, HandlerRequest, PluginFactory } from "../../../src/sdk/index.js";
import { ConfigCache } from "../shared/config-cache.js";
import { KeySet, staticKeySource } from "../shared/jwt.js";
import { NamedRecords } from "../shared/roles.js";
import { configFromInput, configSchema, configView, type KubeConfig } from "./config.js";
import { loginPath, type KubeState } from "./paths/login.js";
import { rolePaths, type KubeRole } from "./paths/role.js";

function stateOf(config: KubeConfig): KubeState {
  return { config, pemKeys: config.pem_keys.length ? staticKeySource(KeySet.fromPems(config.pem_keys, "pem_keys")) : undefined };
}

/**
 * Kubernetes: a pod logs in with its service account token; the role binds service account names
 * and namespaces, and the cluster's TokenReview API confirms the token is live. Vault's
 * `auth/kubernetes` paths and fields.
 */
export const kubernetesPlugin: PluginFactory = {
  type: "kubernetes",
  kind: "auth",
  description: "Kubernetes: pods log in with their service account token, confirmed by the cluster's TokenReview API.",
  async create(ctx): Promise<Backend> {
    const roles = new NamedRecords<KubeRole>(ctx.storage, "role/");
    const logger = ctx.logger.child({ auth: ctx.mount.path });
    const state = new ConfigCache<KubeState>(() => ctx.storage.getJSON<KubeConfig>("config").then((c) => (c ? stateOf(c) : undefined)));

    return {
      paths: [
        loginPath(roles, () => state.get(), logger),
        {
          pattern: "config",
          operations: {
            read: {
              handler: async () => {
                const cfg = await ctx.storage.getJSON<KubeConfig>("config");
                if (!cfg) throw new NotFound();
                return { data: configView(cfg) };
              },
            },
            update: {
              schema: configSchema,
              handler: async (r: HandlerRequest) => {
                const cfg = configFromInput(r.data as z.infer<typeof configSchema>);
                await ctx.storage.putJSON("config", cfg);
                state.set(stateOf(cfg));
              },
              summary: "Configure the cluster: API host, CA, reviewer token, optional local verification keys.",
            },
          },
        },
        ...rolePaths(roles),
      ],
      unauthenticatedPaths: ["login"],
      async renewAuth(token) {
        const role = token.metadata.role ? await roles.get(token.metadata.role) : undefined;
        if (!role) throw new PermissionDenied(`role ${JSON.stringify(token.metadata.role ?? "")} could not be found during renewal`);
        if (!policiesUnchanged(role, token.policies)) throw new PermissionDenied("policies have changed, not renewing");
      },
    };
  },
};
