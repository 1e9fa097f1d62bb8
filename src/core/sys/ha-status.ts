import { hostname } from "node:os";
import type { PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { VERSION } from "../version.js";

/**
 * `GET sys/ha-status`: Vault's list of the cluster's nodes, answered by the active node (a standby
 * forwards the request like any other). Each node: `hostname`, `api_address`, `cluster_address`,
 * `active_node`, `last_echo` (null for the active, as in Vault; else the node's last heartbeat,
 * RFC 3339, by PostgreSQL's clock), `version`, `clock_skew_ms` (the node's clock minus the active's,
 * both measured against PostgreSQL at their previous heartbeats), `echo_duration_ms` (the round trip
 * of the node's previous heartbeat to PostgreSQL), plus leasehold's `node_id` and `started_at`.
 * Vault Enterprise's `upgrade_version`, `redundancy_zone` and `replication_primary_canary_age_ms`
 * are left out: leasehold has no equivalent to report.
 *
 * Only nodes heard from within 3 lock lifetimes are listed (src/cluster/members.ts). Without
 * `ha_enabled`, the node lists itself alone as the active node, as Vault does.
 *
 * Access is Vault's: a token with `read` on `sys/ha-status` (not a sudo path). `nodes` is also
 * copied to the top level of the body: Vault's Go client and `vault operator members` decode it
 * from there.
 */
export function haStatusPaths(core: Core): PathDefinition[] {
  return [
    {
      pattern: "ha-status",
      operations: {
        read: {
          summary: "The nodes of the HA cluster heard from lately, and which one is active.",
          handler: async () => {
            if (!core.ha) {
              const self = { hostname: hostname(), api_address: "", cluster_address: "", active_node: true, last_echo: null, version: VERSION, clock_skew_ms: 0, echo_duration_ms: 0 };
              return { data: { nodes: [self] }, copyDataToTopLevel: true };
            }
            const members = await core.ha.members();
            const activeSkew = members.find((m) => m.activeNode)?.clockSkewMs ?? 0;
            const nodes = members.map((m) => ({
              hostname: m.hostname,
              api_address: m.apiAddr,
              cluster_address: m.clusterAddr,
              active_node: m.activeNode,
              last_echo: m.activeNode ? null : m.lastEcho.toISOString(),
              version: m.version,
              clock_skew_ms: m.activeNode ? 0 : m.clockSkewMs - activeSkew,
              echo_duration_ms: m.echoDurationMs,
              node_id: m.nodeId,
              started_at: m.startedAt.toISOString(),
            }));
            return { data: { nodes }, copyDataToTopLevel: true };
          },
        },
      },
    },
  ];
}
