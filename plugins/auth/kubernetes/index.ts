import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { ConfigCache, configPath } from "../shared/config-cache.js";
import { KeySet, staticKeySource } from "../shared/jwt.js";
import { NamedRecords, checkRenewalThroughRole } from "../shared/roles.js";
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
        configPath({
          storage: ctx.storage,
          schema: configSchema,
          fromInput: configFromInput,
          view: configView,
          prepare: stateOf,
          cache: state,
          summary: "Configure the cluster: API host, CA, reviewer token, optional local verification keys.",
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
