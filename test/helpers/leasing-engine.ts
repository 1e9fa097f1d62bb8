import { z } from "zod";
import { NotFound, zBool, zDuration, type PluginFactory } from "../../src/sdk/index.js";

/**
 * A small secrets engine for lease tests: `creds/:role` issues a credential recorded in
 * `issued` (standing in for the external system an engine would call) under a pending lease;
 * revoke removes it. `config` can make revocation or renewal fail, or slow, to exercise retries.
 * It goes through the same plugin contract and core path as the real engines.
 */
export interface LeasingEngineControl {
  /** Credentials that exist "outside": username → expiry (ms). */
  issued: Map<string, number>;
  revokeCalls: number;
  renewCalls: number;
  failRevoke: boolean;
  /** Credentials whose next revocation fails, once each (timing-proof: nothing to clear before a retry). */
  failRevokeOnce: Set<string>;
  failRenew: boolean;
  revokeDelayMs: number;
}

export function leasingEngine(type = "test-leases"): { plugin: PluginFactory; control: LeasingEngineControl } {
  const control: LeasingEngineControl = { issued: new Map(), revokeCalls: 0, renewCalls: 0, failRevoke: false, failRevokeOnce: new Set(), failRenew: false, revokeDelayMs: 0 };
  let counter = 0;
  const plugin: PluginFactory = {
    type,
    kind: "secrets",
    description: "test engine issuing leased credentials",
    async create() {
      return {
        paths: [
          {
            pattern: "config",
            operations: {
              update: {
                schema: z.object({ fail_revoke: zBool.optional(), fail_renew: zBool.optional(), revoke_delay_ms: z.number().optional() }),
                handler: async (req) => {
                  const d = req.data as { fail_revoke?: boolean; fail_renew?: boolean; revoke_delay_ms?: number };
                  if (d.fail_revoke !== undefined) control.failRevoke = d.fail_revoke;
                  if (d.fail_renew !== undefined) control.failRenew = d.fail_renew;
                  if (d.revoke_delay_ms !== undefined) control.revokeDelayMs = d.revoke_delay_ms;
                },
              },
            },
          },
          {
            pattern: "creds/(?<role>[a-z0-9-]+)",
            operations: {
              read: {
                schema: z.object({ ttl: zDuration.optional(), max_ttl: zDuration.optional(), renewable: zBool.optional(), fail_after_open: zBool.optional() }),
                handler: async (req) => {
                  const d = req.data as { ttl?: number; max_ttl?: number; renewable?: boolean; fail_after_open?: boolean };
                  const username = `u-${req.params.role}-${++counter}`;
                  // Persist before hand-out: the lease exists before the credential does.
                  const lease = await req.leases.open({ type: "creds", ttl: d.ttl, maxTtl: d.max_ttl, renewable: d.renewable ?? true, internal: { username }, role: req.params.role });
                  if (d.fail_after_open) throw new Error("the external system failed after the lease was opened");
                  control.issued.set(username, lease.expireTime.getTime());
                  return { data: { username, password: `pw-${username}` }, lease };
                },
              },
            },
          },
          {
            pattern: "static/(?<name>[a-z0-9-]+)",
            operations: {
              read: {
                handler: async (req) => {
                  const username = `s-${req.params.name}-${++counter}`;
                  control.issued.set(username, 0);
                  // The simple form: the core opens the lease after the handler (still before the answer leaves).
                  return { data: { username }, secret: { type: "creds", ttl: 60, renewable: false, internal: { username }, role: req.params.name } };
                },
              },
            },
          },
        ],
        secretTypes: {
          creds: {
            renew: async (lease) => {
              control.renewCalls++;
              if (control.failRenew) throw new Error("renewal refused by the external system");
              const username = String(lease.internal.username);
              if (!control.issued.has(username)) throw new NotFound(`no such credential ${username}`);
              control.issued.set(username, lease.expireTime.getTime());
            },
            revoke: async (lease) => {
              control.revokeCalls++;
              if (control.revokeDelayMs) await new Promise((r) => setTimeout(r, control.revokeDelayMs));
              if (control.failRevoke) throw new Error("external system unreachable");
              if (control.failRevokeOnce.delete(String(lease.internal.username))) throw new Error("external system unreachable");
              control.issued.delete(String(lease.internal.username)); // idempotent
            },
          },
        },
      };
    },
  };
  return { plugin, control };
}
