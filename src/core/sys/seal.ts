import { z } from "zod";
import { UserError, zBool, zInt } from "../../sdk/index.js";
import type { HandlerResponse, PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { VERSION } from "../version.js";
import { currentRequest } from "../request-context.js";

function json(status: number, body: unknown): HandlerResponse {
  return { raw: { status, contentType: "application/json", body: JSON.stringify(body) } };
}

/** `sys/seal-status` body (also answered by `sys/unseal`). */
export async function sealStatus(core: Core): Promise<Record<string, unknown>> {
  const cfg = await core.seal.config();
  const sealed = core.sealed;
  const progress = core.seal.progress;
  return {
    type: core.seal.sealType,
    initialized: cfg !== undefined,
    sealed,
    t: cfg?.secret_threshold ?? 0,
    n: cfg?.secret_shares ?? 0,
    progress: sealed ? progress.progress : 0,
    nonce: sealed ? progress.nonce : "",
    version: VERSION,
    build_date: "",
    migration: false,
    ...(sealed ? {} : { cluster_name: core.clusterName, cluster_id: core.clusterId }),
    recovery_seal: core.seal.sealType === "static",
    storage_type: core.barrier.physical.kind,
  };
}

const healthSchema = z.object({
  standbyok: zBool.optional(),
  perfstandbyok: zBool.optional(),
  activecode: zInt.optional(),
  standbycode: zInt.optional(),
  drsecondarycode: zInt.optional(),
  performancestandbycode: zInt.optional(),
  sealedcode: zInt.optional(),
  uninitcode: zInt.optional(),
});

export function sealPaths(core: Core): PathDefinition[] {
  return [
    {
      pattern: "health",
      operations: {
        read: {
          schema: healthSchema,
          handler: async (req) => {
            const q = req.data as z.infer<typeof healthSchema>;
            const initialized = await core.seal.isInitialized();
            const standby = !core.sealed && core.standby;
            // Vault: a standby is 429 (so a load balancer sends traffic to the active) unless standbyok.
            const status = !initialized ? (q.uninitcode ?? 501) : core.sealed ? (q.sealedcode ?? 503) : standby && !q.standbyok ? (q.standbycode ?? 429) : (q.activecode ?? 200);
            return json(status, {
              initialized,
              sealed: core.sealed,
              standby,
              performance_standby: false,
              replication_performance_mode: "disabled",
              replication_dr_mode: "disabled",
              server_time_utc: Math.floor(Date.now() / 1000),
              version: VERSION,
              cluster_name: core.clusterName,
              cluster_id: core.clusterId,
            });
          },
        },
      },
    },
    {
      pattern: "seal-status",
      operations: { read: { handler: async () => json(200, await sealStatus(core)) } },
    },
    {
      pattern: "leader",
      operations: {
        read: {
          handler: async () => {
            if (!core.ha) {
              return json(200, { ha_enabled: false, is_self: true, active_time: "0001-01-01T00:00:00Z", leader_address: "", leader_cluster_address: "", performance_standby: false, raft_committed_index: 0, raft_applied_index: 0 });
            }
            // The lock row is the truth (PostgreSQL's clock): every node reads the same holder.
            const leader = await core.ha.leader();
            const isSelf = leader?.isSelf === true && !core.sealed && !core.standby;
            return json(200, {
              ha_enabled: true,
              is_self: isSelf,
              // Vault: the time this node became active; the zero time on a standby.
              active_time: isSelf && leader?.activeTime ? leader.activeTime.toISOString() : "0001-01-01T00:00:00Z",
              leader_address: leader?.apiAddr ?? "",
              leader_cluster_address: leader?.clusterAddr ?? "",
              performance_standby: false,
              performance_standby_last_remote_wal: 0,
            });
          },
        },
      },
    },
    {
      pattern: "init",
      operations: {
        read: { handler: async () => json(200, { initialized: await core.seal.isInitialized() }) },
        update: {
          schema: z.object({
            secret_shares: zInt.optional(),
            secret_threshold: zInt.optional(),
            recovery_shares: zInt.optional(),
            recovery_threshold: zInt.optional(),
            pgp_keys: z.unknown().optional(),
            root_token_pgp_key: z.unknown().optional(),
            stored_shares: z.unknown().optional(),
          }),
          handler: async (req) => {
            const d = req.data as { secret_shares?: number; secret_threshold?: number; recovery_shares?: number; recovery_threshold?: number; pgp_keys?: unknown; root_token_pgp_key?: unknown };
            if (d.pgp_keys || d.root_token_pgp_key) throw new UserError("PGP-encrypted unseal keys are not supported by leasehold");
            const isStatic = core.seal.sealType === "static";
            const shares = isStatic ? (d.recovery_shares ?? d.secret_shares ?? 1) : d.secret_shares;
            const threshold = isStatic ? (d.recovery_threshold ?? d.secret_threshold ?? 1) : d.secret_threshold;
            if (shares === undefined || threshold === undefined) throw new UserError("secret_shares and secret_threshold are required (e.g. 5 and 3)");
            const { keys, rootToken } = await core.initialize(shares, threshold);
            const hex = keys.map((k) => k.toString("hex"));
            const b64 = keys.map((k) => k.toString("base64"));
            return json(
              200,
              isStatic ? { keys: [], keys_base64: [], recovery_keys: hex, recovery_keys_base64: b64, root_token: rootToken } : { keys: hex, keys_base64: b64, root_token: rootToken },
            );
          },
        },
      },
    },
    {
      pattern: "unseal",
      operations: {
        update: {
          schema: z.object({ key: z.string().optional(), reset: zBool.optional(), migrate: zBool.optional() }),
          handler: async (req) => {
            const d = req.data as { key?: string; reset?: boolean };
            if (!(await core.seal.isInitialized())) throw new UserError("Vault is not initialized");
            if (d.reset) core.seal.resetProgress();
            else if (!d.key) throw new UserError("'key' must be specified in request body as JSON, or 'reset' set to true");
            else await core.submitUnsealKey(d.key);
            return json(200, await sealStatus(core));
          },
        },
      },
    },
    {
      pattern: "step-down",
      operations: {
        update: {
          handler: async (req) => {
            // As Vault: a node that is not active (or not in a cluster) has nothing to give up.
            if (!core.ha) return;
            // After this request has been answered (as Vault, asynchronously): the hand-over drains the
            // requests in flight, this one included, and going standby closes the audit devices.
            const ha = core.ha;
            (currentRequest(req).afterResponse ??= []).push(async () => {
              setImmediate(() => void ha.stepDown().catch(() => undefined));
            });
          },
        },
      },
    },
    {
      pattern: "seal",
      operations: {
        update: {
          handler: async (req) => {
            // Seal once this request has been audited, so its response entry is still written.
            (currentRequest(req).afterResponse ??= []).push(() => core.sealNow());
          },
        },
      },
    },
  ];
}
