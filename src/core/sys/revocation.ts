import { z } from "zod";
import { PermissionDenied, zBool } from "../../sdk/index.js";
import type { PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { currentRequest } from "../request-context.js";

/**
 * `sys/leasehold/revocation`: the safety-mode switch (beyond Vault).
 * - `GET` → `{enabled}`: whether expired leases are being revoked.
 * - `POST {enabled: true|false}` (needs `sudo`): turns revocation by time on or off at runtime.
 *   Turning it on revokes, promptly, every lease already past its deadline and the `pending`
 *   leftovers whose start-up reconciliation was deferred. Operator revocations
 *   (`sys/leases/revoke*`, `sys/leasehold/leases/revoke`) work either way.
 */
export function revocationPaths(core: Core): PathDefinition[] {
  const schema = z.object({ enabled: zBool });
  return [
    {
      pattern: "leasehold/revocation",
      operations: {
        read: { handler: async () => ({ data: { enabled: core.leases.expiryEnabled } }) },
        update: {
          schema,
          handler: async (req) => {
            if (!currentRequest(req).sudo) throw new PermissionDenied();
            const { enabled } = req.data as z.infer<typeof schema>;
            const was = core.leases.expiryEnabled;
            await core.leases.setExpiryEnabled(enabled);
            if (was !== enabled) {
              core.logger.warn({ enabled, by: req.identity?.displayName ?? "" }, enabled ? "lease revocation turned on" : "lease revocation turned OFF at runtime (safety mode)");
            }
            return { data: { enabled: core.leases.expiryEnabled } };
          },
        },
      },
    },
  ];
}
