/**
 * The console's only way to the server: the public `/v1/` API, with the operator's token in
 * `X-Vault-Token`, exactly as the CLI calls it. ACLs apply to the console as to any client.
 */

/** An answer other than 2xx, with Vault's `errors` list. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly path: string,
  ) {
    super(errors.length ? errors.join("; ") : `${status} ${statusText(status)}`);
  }

  /** The token may not do this (403). */
  get forbidden(): boolean {
    return this.status === 403;
  }
}

function statusText(status: number): string {
  const texts: Record<number, string> = { 400: "bad request", 403: "permission denied", 404: "not found", 405: "method not allowed", 429: "too many requests", 500: "internal server error", 503: "service unavailable (sealed or standby)" };
  return texts[status] ?? "error";
}

/** Vault's response envelope (the fields the console reads). */
export interface VaultResponse<T> {
  data: T;
  auth?: { client_token: string; policies: string[]; metadata?: Record<string, string> | null; lease_duration: number; renewable: boolean };
  warnings?: string[] | null;
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

/**
 * Calls `/v1/<path>`. Throws ApiError for a non-2xx answer (with the server's messages), and a
 * plain Error when the server cannot be reached at all.
 */
export async function call<T>(method: Method, path: string, opts: { token?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (opts.token) headers["X-Vault-Token"] = opts.token;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`/v1/${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), credentials: "omit", cache: "no-store" });
  } catch {
    throw new Error("The server cannot be reached: check that it is running and that this page's address is right, then try again.");
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!res.ok) {
    const errors = (parsed as { errors?: unknown } | undefined)?.errors;
    throw new ApiError(res.status, Array.isArray(errors) ? errors.map(String) : [], path);
  }
  return parsed as T;
}

/** What `sys/capabilities-self` says the token may do on each path. */
export type Capabilities = Record<string, string[]>;

/** Asks the server what the token may do on these paths (one request). */
export async function capabilitiesOf(token: string, paths: string[]): Promise<Capabilities> {
  const answer = await call<Record<string, unknown>>("POST", "sys/capabilities-self", { token, body: { paths } });
  const data = (answer.data ?? answer) as Record<string, unknown>;
  const caps: Capabilities = {};
  for (const p of paths) caps[p] = Array.isArray(data[p]) ? (data[p] as string[]) : [];
  return caps;
}

/** True when the capabilities allow `needed` (root allows everything; deny nothing). */
export function allows(caps: string[] | undefined, ...needed: string[]): boolean {
  if (!caps || caps.includes("deny")) return false;
  if (caps.includes("root")) return true;
  return needed.every((n) => caps.includes(n));
}

/**
 * Vault's LIST on `path` (sent as `GET ?list=true`, which every server takes): the `keys`, or an
 * empty list for a 404 (Vault's answer when nothing is under the prefix).
 */
export async function listKeys(token: string, path: string): Promise<string[]> {
  try {
    const answer = await call<VaultResponse<{ keys?: string[] }>>("GET", `${path}${path.includes("?") ? "&" : "?"}list=true`, { token });
    return answer.data?.keys ?? [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

/** What an error says to a person, with the server's messages when there are some. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
