import { z } from "zod";
import { zBool, zInt } from "../../../src/sdk/index.js";
import type { Backend, HandlerRequest, PluginFactory } from "../../../src/sdk/index.js";
import { NamedRecords } from "../shared/roles.js";
import { certPaths, type CertRole } from "./paths/certs.js";
import { AnchorCache, loadCertConfig, loginPath, renewCertAuth, type CertConfig } from "./paths/login.js";

const configSchema = z.object({
  disable_binding: zBool.optional(),
  enable_identity_alias_metadata: zBool.optional(),
  ocsp_cache_size: zInt.optional(),
});

/**
 * TLS certificates: a workload logs in with the client certificate of its mTLS connection, which
 * must chain to a trusted certificate (`certs/:name`) and meet its name constraints (CN, DNS, URI
 * SANs such as SPIFFE IDs). Vault's `auth/cert` paths and fields.
 */
export const certPlugin: PluginFactory = {
  type: "cert",
  kind: "auth",
  description: "TLS certificates: log in with the client certificate of the mTLS connection.",
  async create(ctx): Promise<Backend> {
    const certs = new NamedRecords<CertRole>(ctx.storage, "certs/");
    const anchors = new AnchorCache();
    return {
      paths: [
        loginPath(certs, anchors),
        ...certPaths(certs),
        {
          pattern: "config",
          operations: {
            read: { handler: async () => ({ data: { ...(await loadCertConfig(ctx.storage)) } }) },
            update: {
              schema: configSchema,
              handler: async (r: HandlerRequest) => {
                const d = r.data as z.infer<typeof configSchema>;
                await ctx.storage.withLock("config", async () => {
                  const cur = await loadCertConfig(ctx.storage);
                  await ctx.storage.putJSON("config", { disable_binding: d.disable_binding ?? cur.disable_binding } satisfies CertConfig);
                });
              },
            },
          },
        },
      ],
      unauthenticatedPaths: ["login"],
      renewAuth: (token, conn) => renewCertAuth(certs, anchors, ctx.storage, token, conn),
    };
  },
};
