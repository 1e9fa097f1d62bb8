/**
 * The KV version 2 engine as the console uses it, through the public `/v1/` API with the
 * operator's token: mounts, LIST of metadata, data read/write, delete and undelete of versions.
 * Paths are sent segment by segment URL-encoded, so a key named "a b" or "ä" reaches the engine intact.
 */
import { ApiError, call, type VaultResponse } from "../api";

/** A KV mount the token can see. */
export interface KvMount {
  /** Without the trailing slash, e.g. "secret". */
  path: string;
  /** "1" or "2" (Vault's `options.version`). */
  version: string;
  description: string;
}

/** One version's record in the metadata (Vault's field names). */
export interface KvVersionInfo {
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
}

/** `<mount>/metadata/<path>`: every version of a secret. */
export interface KvMetadata {
  current_version: number;
  oldest_version: number;
  created_time: string;
  updated_time: string;
  versions: Record<string, KvVersionInfo>;
}

/** A read of `<mount>/data/<path>`: the values, or null when that version is deleted or destroyed. */
export interface KvSecret {
  data: Record<string, unknown> | null;
  metadata: { version: number; created_time: string; deletion_time: string; destroyed: boolean };
}

/** Encodes each segment of a secret's path, keeping the slashes between them. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

interface MountEntry {
  type?: string;
  description?: string;
  options?: Record<string, string> | null;
}

function kvMountsOf(table: Record<string, unknown>): KvMount[] {
  return Object.entries(table)
    .filter((e): e is [string, MountEntry] => typeof e[1] === "object" && e[1] !== null && (e[1] as MountEntry).type === "kv")
    .map(([path, m]) => ({ path: path.replace(/\/+$/, ""), version: m.options?.version ?? "1", description: m.description ?? "" }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * The KV mounts: `sys/mounts` when the token may read it, else `sys/internal/ui/mounts` (in the
 * default policy), which lists the mounts the token can do something under, as Vault's UI does.
 */
export async function kvMounts(token: string): Promise<KvMount[]> {
  try {
    const answer = await call<VaultResponse<Record<string, unknown>>>("GET", "sys/mounts", { token });
    return kvMountsOf(answer.data ?? {});
  } catch (err) {
    if (!(err instanceof ApiError && err.forbidden)) throw err;
    const answer = await call<VaultResponse<{ secret?: Record<string, unknown> }>>("GET", "sys/internal/ui/mounts", { token });
    return kvMountsOf(answer.data?.secret ?? {});
  }
}

/** LIST `<mount>/metadata/<dir>`: the keys under a folder ("name/" for a sub-folder); [] when nothing is there (Vault answers 404). */
export async function listSecrets(token: string, mount: string, dir: string): Promise<string[]> {
  try {
    const answer = await call<VaultResponse<{ keys?: string[] }>>("GET", `${mount}/metadata/${encodePath(dir)}?list=true`, { token });
    return answer.data?.keys ?? [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

/**
 * Reads a secret (the latest version, or `version`). A deleted or destroyed version comes back
 * with `data: null` and its metadata (Vault answers 404 with the metadata in the body); a path
 * that never held a secret throws the 404.
 */
export async function readSecret(token: string, mount: string, path: string, version?: number): Promise<KvSecret> {
  const query = version ? `?version=${version}` : "";
  const url = `/v1/${mount}/data/${encodePath(path)}${query}`;
  // Not through call(): the 404 of a deleted version carries the metadata we need.
  let res: Response;
  try {
    res = await fetch(url, { headers: { "X-Vault-Token": token }, credentials: "omit", cache: "no-store" });
  } catch {
    throw new Error("The server cannot be reached: check that it is running, then try again.");
  }
  const body = (await res.json().catch(() => undefined)) as { data?: KvSecret | null; errors?: string[] } | undefined;
  if (res.ok && body?.data) return body.data;
  if (res.status === 404 && body?.data?.metadata) return { data: null, metadata: body.data.metadata };
  throw new ApiError(res.status, body?.errors ?? [], `${mount}/data/${path}`);
}

/** `<mount>/metadata/<path>`. */
export async function readMetadata(token: string, mount: string, path: string): Promise<KvMetadata> {
  const answer = await call<VaultResponse<KvMetadata>>("GET", `${mount}/metadata/${encodePath(path)}`, { token });
  return answer.data;
}

/** Writes a new version; answers its number. */
export async function writeSecret(token: string, mount: string, path: string, data: Record<string, string>): Promise<number> {
  const answer = await call<VaultResponse<{ version: number }>>("POST", `${mount}/data/${encodePath(path)}`, { token, body: { data } });
  return answer.data.version;
}

/** Soft-deletes the latest version (undelete brings it back). */
export async function deleteLatest(token: string, mount: string, path: string): Promise<void> {
  await call("DELETE", `${mount}/data/${encodePath(path)}`, { token });
}

/** Brings soft-deleted versions back. */
export async function undeleteVersions(token: string, mount: string, path: string, versions: number[]): Promise<void> {
  await call("POST", `${mount}/undelete/${encodePath(path)}`, { token, body: { versions } });
}

/** What a failed KV call says to a person: the server's words, then what to do next. */
export function kvErrorText(err: unknown, what: string, apiPath: string): string {
  if (err instanceof ApiError) {
    const said = err.message;
    if (err.status === 403) return `Your token may not ${what} (${apiPath}): ${said}. Ask an operator for a policy that grants it, or log in with a token that has it.`;
    if (err.status === 404) return `Nothing at ${apiPath} (${said}). Check the path, or go back to the folder and pick the secret from the list.`;
    if (err.status === 400) return `The server refused to ${what}: ${said}. Correct the input and try again.`;
    if (err.status === 503) return `The server is sealed or in standby (${said}): unseal it or use the active node, then try again.`;
    return `Could not ${what}: ${said}. Try again; if it keeps failing, check the server's log.`;
  }
  return err instanceof Error ? err.message : String(err);
}
