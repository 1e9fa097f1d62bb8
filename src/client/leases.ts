/** The lease calls the library and the agent both make: renewal, and revoking what a client obtained. */
import type { LeaseholdClient } from "./client.js";
import { ClientConfigError } from "./errors.js";
import type { TokenKeeper } from "./token-keeper.js";
import type { VaultResponse } from "./types.js";

/** `PUT sys/leases/renew`: the renewed envelope (`lease_duration` is the new TTL in seconds). */
export async function renewLease(client: LeaseholdClient, leaseId: string, incrementSeconds?: number, signal?: AbortSignal): Promise<VaultResponse<unknown>> {
  const body: Record<string, unknown> = { lease_id: leaseId };
  if (incrementSeconds !== undefined) body.increment = incrementSeconds;
  const res = await client.request<VaultResponse<unknown>>("PUT", "sys/leases/renew", { body, signal });
  if (!res.body) throw new ClientConfigError("sys/leases/renew answered without a body");
  return res.body;
}

/**
 * Revokes each lease (`sys/leases/revoke`; a refusal is reported to `onLeaseError` and skipped,
 * since policies often deny it), then every live token of `tokens` with revoke-self, which
 * revokes the leases each created anyway. Counts what was revoked.
 */
export async function revokeObtained(
  client: LeaseholdClient,
  leaseIds: Iterable<string>,
  tokens: TokenKeeper | undefined,
  options: { retries?: number; onLeaseRevoked?: (leaseId: string) => void; onLeaseError?: (leaseId: string, err: Error) => void } = {},
): Promise<{ leases: number; tokens: number }> {
  let leases = 0;
  for (const leaseId of [...leaseIds]) {
    try {
      await client.request("PUT", "sys/leases/revoke", { body: { lease_id: leaseId }, retries: options.retries });
      leases++;
      options.onLeaseRevoked?.(leaseId);
    } catch (err) {
      options.onLeaseError?.(leaseId, err instanceof Error ? err : new Error(String(err)));
    }
  }
  return { leases, tokens: (await tokens?.revokeAll()) ?? 0 };
}
