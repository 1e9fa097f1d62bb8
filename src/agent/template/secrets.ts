/**
 * What templates fetch: the `SecretSource` interface the agent implements, the request a
 * `secret`/`pkiCert` call makes, and the cache that fetches each distinct request once.
 */

/** A Vault response envelope, as templates see it: `.Data`, `.LeaseID`, `.LeaseDuration`, `.Renewable`. */
export interface SecretResult {
  data: Record<string, unknown>;
  lease_id: string;
  /** Seconds. */
  lease_duration: number;
  renewable: boolean;
}

/**
 * Where templates get secrets from; the agent implements it over the HTTP client (with its token,
 * retries and KV v2 path handling). Errors it throws reach the caller of `renderTemplate` unchanged.
 */
export interface SecretSource {
  /** GET `path` (`secret "path"` with no parameters). */
  read(path: string): Promise<SecretResult>;
  /** PUT `path` with `data` (`secret "pki/issue/web" "common_name=a"`). */
  write(path: string, data: Record<string, string>): Promise<SecretResult>;
  /**
   * `pkiCert "path" "k=v"...`: issue a certificate (a PUT like `write`). The agent may return a
   * cached certificate that is still valid instead of issuing a new one; without this method the
   * renderer calls `write`.
   */
  pkiCert?(path: string, data: Record<string, string>): Promise<SecretResult>;
}

/** `read` for `secret` without parameters, `write` with them, `pkiCert` for `pkiCert`. */
export type SecretKind = "read" | "write" | "pkiCert";

/** One secret a template asks for. Two requests with the same `key` are the same request. */
export interface SecretRequest {
  kind: SecretKind;
  /** Without leading or trailing slashes or spaces. */
  path: string;
  /** The parameters as written (`"common_name=a"`). */
  args: string[];
  /** The parameters parsed: keys and values trimmed, empty arguments skipped, later keys win. */
  data: Record<string, string>;
  /** Identity for de-duplication: kind, path and the sorted parameters. */
  key: string;
}

/**
 * Builds the request for `secret`/`pkiCert` the way consul-template does: with no arguments after
 * the path `secret` reads, with any (even empty ones) it writes. Throws `Error` with a message
 * (no position) for an empty path or an argument that is not `k=v`.
 */
export function secretRequest(fn: "secret" | "pkiCert", rawPath: string, args: readonly string[]): SecretRequest {
  const path = rawPath.trim().replace(/^\/+|\/+$/g, "");
  if (path === "") throw new Error(`${fn}: invalid path ${JSON.stringify(rawPath)}`);
  const data: Record<string, string> = {};
  for (const arg of args) {
    if (arg.length === 0) continue;
    const eq = arg.indexOf("=");
    if (eq < 0) throw new Error(`${fn}: ${JSON.stringify(arg)} is not a k=v pair`);
    Object.defineProperty(data, arg.slice(0, eq).trim(), { value: arg.slice(eq + 1).trim(), enumerable: true, writable: true, configurable: true });
  }
  const kind: SecretKind = fn === "pkiCert" ? "pkiCert" : args.length === 0 ? "read" : "write";
  const entries = Object.keys(data)
    .sort()
    .map((k) => [k, data[k]]);
  return { kind, path, args: [...args], data, key: JSON.stringify([kind, path, entries]) };
}

/**
 * Fetches each distinct request once and shares the answer (or the failure) with every later and
 * concurrent asker. A render makes its own unless given one; pass one cache to several renders
 * to fetch a secret once across templates rendered together. It never expires anything, and a
 * failure stays cached too: use one cache per render pass (or `clear()` it between passes).
 */
export class SecretCache {
  private readonly entries = new Map<string, Promise<SecretResult>>();

  fetch(source: SecretSource, req: SecretRequest): Promise<SecretResult> {
    let p = this.entries.get(req.key);
    if (!p) {
      p = Promise.resolve().then(() => {
        switch (req.kind) {
          case "read":
            return source.read(req.path);
          case "write":
            return source.write(req.path, { ...req.data });
          case "pkiCert":
            return source.pkiCert ? source.pkiCert(req.path, { ...req.data }) : source.write(req.path, { ...req.data });
        }
      });
      this.entries.set(req.key, p);
    }
    return p;
  }

  /** Forgets every answer, so the next fetch asks the source again. */
  clear(): void {
    this.entries.clear();
  }
}
