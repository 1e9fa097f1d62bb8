import { z } from "zod";
import { InternalError, NotFound, UserError, zBool, zDuration, zInt } from "../../sdk/index.js";
import type { HandlerResponse, PathDefinition } from "../../sdk/types.js";
import { immediateChildren } from "../../storage/types.js";
import type { Core } from "../core.js";
import { describeLease, type RevokeOutcome } from "../leases/manager.js";

const leaseIdField = z.string().min(1, "lease_id is required");

/** Vault accepts the lease id in the body or at the end of the path. */
function idFrom(params: Record<string, string>, body: { lease_id?: string }): string {
  const id = (params.id || body.lease_id || "").replace(/^\/+/, "");
  if (!id) throw new UserError("lease_id is required");
  return id;
}

function prefixOf(params: Record<string, string>): string {
  const p = (params.prefix ?? "").replace(/^\/+/, "");
  if (p === "") throw new UserError("a prefix is required (e.g. database/creds/app)");
  return p;
}

/** Turns bulk-revocation outcomes into a response: 204 when clean, an error naming failures otherwise. */
function bulkResult(kind: string, prefix: string, r: { matched: number; revoked: number; failed: RevokeOutcome[] }, forced: RevokeOutcome[] = []): HandlerResponse {
  // 204 when everything went; a 500 naming the failures otherwise (they stay scheduled for retry).
  if (r.failed.length) {
    throw new InternalError(
      `${kind}: ${r.failed.length} of ${r.matched} leases under ${prefix} could not be revoked and will be retried with backoff (first error: ${r.failed[0].error}); use sys/leases/revoke-force/${prefix} to remove the records anyway`,
    );
  }
  if (forced.length) {
    return { data: { matched: r.matched, revoked: r.revoked, forced: forced.map((f) => f.id) }, warnings: forced.slice(0, 20).map((f) => `lease ${f.id} removed although its revocation failed: ${f.error}`) };
  }
  return {};
}

/** `sys/leases/*` and the legacy `sys/renew`, `sys/revoke*` aliases. */
export function leasePaths(core: Core): PathDefinition[] {
  const lookup = async (id: string): Promise<HandlerResponse> => {
    const row = await core.leases.get(id);
    if (!row) throw new UserError("invalid lease");
    return { data: describeLease(row) };
  };

  const renew = async (id: string, increment: number): Promise<HandlerResponse> => {
    const { ttl, warnings } = await core.leases.renew(id, increment);
    return { data: null, leaseInfo: { id, ttl, renewable: true }, warnings };
  };

  const revoke = async (id: string, sync: boolean): Promise<HandlerResponse> => {
    const row = await core.leases.get(id);
    if (!row) return {}; // Vault: revoking an unknown lease is a success
    if (!sync) {
      await core.leases.revokeLater(id);
      return { status: 202 };
    }
    const outcome = await core.leases.revoke(id, { row });
    if (!outcome.ok) throw new InternalError(`lease revocation failed and will be retried with backoff: ${outcome.error}`);
    return {};
  };

  /** Vault's whole-segment prefix rule, shared with the selectors' `path_prefix`. */
  const resolvePrefix = (prefix: string) => core.leases.resolvePrefix(prefix);

  const revokePrefix = async (raw: string, sync: boolean): Promise<HandlerResponse> => {
    const { exact, prefix } = await resolvePrefix(raw);
    if (exact) return revoke(exact, sync);
    if (!sync) {
      let after = "";
      for (;;) {
        const ids = await core.leases.store.select({ pathPrefix: prefix }, after, 1000);
        if (!ids.length) break;
        for (const id of ids) await core.leases.revokeLater(id);
        after = ids[ids.length - 1];
      }
      return { status: 202 };
    }
    return bulkResult("revoke-prefix", prefix, await core.leases.revokeMatching({ pathPrefix: prefix }));
  };

  const revokeForce = async (raw: string): Promise<HandlerResponse> => {
    const { exact, prefix } = await resolvePrefix(raw);
    if (exact) {
      const o = await core.leases.revoke(exact, { force: true });
      return bulkResult("revoke-force", prefix, { matched: 1, revoked: o.ok ? 1 : 0, failed: o.ok ? [] : [o] }, o.forced ? [o] : []);
    }
    const r = await core.leases.revokeMatching({ pathPrefix: prefix }, { force: true });
    return bulkResult("revoke-force", prefix, r, r.forced);
  };

  const renewSchema = z.object({ lease_id: z.string().optional(), increment: zDuration.optional() });
  const revokeSchema = z.object({ lease_id: z.string().optional(), sync: zBool.optional() });
  const syncSchema = z.object({ sync: zBool.optional() });

  const paths: PathDefinition[] = [
    { pattern: "leases/lookup", operations: { update: { schema: z.object({ lease_id: leaseIdField }), handler: (r) => lookup((r.data as { lease_id: string }).lease_id) } } },
    {
      // The slash is required: `leases/lookupdatabase/...` is not `leases/lookup/database/...` (and
      // would miss the root path `leases/lookup/*`, listing lease ids without sudo).
      pattern: "leases/lookup/(?<prefix>.*)",
      operations: {
        list: {
          handler: async (r) => {
            const raw = (r.params.prefix ?? "").replace(/^\/+/, "");
            const prefix = raw === "" || raw.endsWith("/") ? raw : raw + "/";
            const ids: string[] = [];
            let after = "";
            // Listing a huge prefix is an operator action; cap it rather than read millions of ids.
            while (ids.length < 100_000) {
              const batch = await core.leases.store.select({ pathPrefix: prefix }, after, 5000);
              if (!batch.length) break;
              ids.push(...batch);
              after = batch[batch.length - 1];
            }
            const keys = immediateChildren(prefix, ids);
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    { pattern: "(?:leases/)?renew", operations: { update: { schema: renewSchema, handler: (r) => { const d = r.data as z.infer<typeof renewSchema>; return renew(idFrom({}, d), d.increment ?? 0); } } } },
    { pattern: "(?:leases/)?renew/(?<id>.+)", operations: { update: { schema: renewSchema, handler: (r) => { const d = r.data as z.infer<typeof renewSchema>; return renew(idFrom(r.params, d), d.increment ?? 0); } } } },
    { pattern: "(?:leases/)?revoke", operations: { update: { schema: revokeSchema, handler: (r) => { const d = r.data as z.infer<typeof revokeSchema>; return revoke(idFrom({}, d), d.sync ?? true); } } } },
    { pattern: "(?:leases/)?revoke/(?<id>.+)", operations: { update: { schema: revokeSchema, handler: (r) => { const d = r.data as z.infer<typeof revokeSchema>; return revoke(idFrom(r.params, d), d.sync ?? true); } } } },
    { pattern: "(?:leases/)?revoke-prefix/(?<prefix>.+)", operations: { update: { schema: syncSchema, handler: (r) => revokePrefix(prefixOf(r.params), (r.data as { sync?: boolean }).sync ?? true) } } },
    { pattern: "(?:leases/)?revoke-force/(?<prefix>.+)", operations: { update: { handler: (r) => revokeForce(prefixOf(r.params)) } } },
    {
      pattern: "leases/tidy",
      operations: {
        update: {
          handler: async () => {
            const removed = await core.tidyTokenLeases();
            return { status: 202, data: { removed_dangling_token_leases: removed }, warnings: ["Tidy operation successfully started. Any information from the operation will be printed to leasehold's server logs."] };
          },
        },
      },
    },
    {
      pattern: "leases/count",
      operations: {
        read: {
          schema: z.object({ type: z.enum(["irrevocable", "all"]).optional(), include_child_namespaces: zBool.optional() }),
          handler: async (r) => {
            const type = (r.data as { type?: string }).type ?? "all";
            const stats = await core.leases.store.stats();
            const total = Object.values(stats.byState).reduce((a, b) => a + b, 0);
            const count = type === "irrevocable" ? (stats.byState.irrevocable ?? 0) : total;
            return { data: { lease_count: count, counts: { root: count }, by_state: stats.byState, by_mount: stats.byMount } };
          },
        },
      },
    },
    {
      pattern: "leases",
      operations: {
        read: {
          schema: z.object({ type: z.enum(["irrevocable"], { message: "type must be \"irrevocable\"" }), limit: zInt.optional(), include_child_namespaces: zBool.optional() }),
          handler: async (r) => {
            const limit = Math.min((r.data as { limit?: number }).limit ?? 10_000, 10_000);
            const ids = await core.leases.store.inState("irrevocable", "", limit);
            const leases = [];
            for (const id of ids) {
              const row = await core.leases.get(id);
              if (row) leases.push({ lease_id: row.id, mount_id: core.mounts.get(row.mount)?.entry.accessor ?? row.mount, mount: row.mount, namespace: "", expire_time: new Date(row.expire_time).toISOString(), error: row.revoke_error ?? "", revoke_attempts: row.revoke_attempts });
            }
            return { data: { lease_count: leases.length, leases } };
          },
        },
      },
    },
  ];
  return paths;
}
