/**
 * The secret engines of one type the token can see (`pki`, `database`), for the PKI and database
 * pages: `sys/mounts` when the token may read it, else `sys/internal/ui/mounts` (in the default
 * policy), as the KV pages do.
 */
import { ApiError, call, type VaultResponse } from "../api";

/** A mount of the wanted type. */
export interface EngineMount {
  /** Without the trailing slash, e.g. "pki". */
  path: string;
  description: string;
}

function mountsOf(table: Record<string, unknown>, type: string): EngineMount[] {
  return Object.entries(table)
    .filter(([, m]) => typeof m === "object" && m !== null && (m as { type?: string }).type === type)
    .map(([path, m]) => ({ path: path.replace(/\/+$/, ""), description: (m as { description?: string }).description ?? "" }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** The mounts of `type`, sorted by path. */
export async function engineMounts(token: string, type: string): Promise<EngineMount[]> {
  try {
    const answer = await call<VaultResponse<Record<string, unknown>>>("GET", "sys/mounts", { token });
    return mountsOf(answer.data ?? {}, type);
  } catch (err) {
    if (!(err instanceof ApiError && err.forbidden)) throw err;
    const answer = await call<VaultResponse<{ secret?: Record<string, unknown> }>>("GET", "sys/internal/ui/mounts", { token });
    return mountsOf(answer.data?.secret ?? {}, type);
  }
}

/** What a failed call says to a person: the server's words, then what to do next. */
export function engineErrorText(err: unknown, what: string, apiPath: string): string {
  if (err instanceof ApiError) {
    if (err.forbidden) return `Your token may not ${what} (${apiPath}). Ask an operator for a policy that grants it.`;
    if (err.status === 404) return `Nothing at ${apiPath}: check the mount and the name.`;
    return `Could not ${what} (${apiPath}): ${err.message}.`;
  }
  return err instanceof Error ? err.message : String(err);
}
