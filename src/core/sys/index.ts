import type { Backend } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { auditPaths, metricsPaths } from "./audit.js";
import { haStatusPaths } from "./ha-status.js";
import { hostInfoPaths } from "./host-info.js";
import { leasePaths } from "./leases.js";
import { leaseholdLeasePaths } from "./leasehold.js";
import { mountsPaths } from "./mounts.js";
import { policyPaths } from "./policies.js";
import { quotaPaths } from "./quotas.js";
import { revocationPaths } from "./revocation.js";
import { sealPaths } from "./seal.js";

/** The `sys/` backend: seal, mounts, policies, audit, metrics. */
export function systemBackend(core: Core): Backend {
  return {
    paths: [...sealPaths(core), ...mountsPaths(core), ...policyPaths(core), ...auditPaths(core), ...metricsPaths(core), ...leasePaths(core), ...leaseholdLeasePaths(core), ...quotaPaths(core), ...revocationPaths(core), ...hostInfoPaths(), ...haStatusPaths(core)],
    unauthenticatedPaths: ["health", "seal-status", "init", "unseal", "leader"],
    // Vault's root-protected sys paths: they need `sudo` besides the operation's capability.
    rootPaths: ["auth/*", "audit", "audit/*", "audit-hash/*", "seal", "step-down", "rotate", "leases/revoke-prefix/*", "leases/revoke-force/*", "leases/lookup/*", "leases", "revoke-prefix/*", "revoke-force/*", "leasehold/leases/revoke", "leasehold/leases"],
  };
}
