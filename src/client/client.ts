import * as http from "node:http";
import * as https from "node:https";
import { AbortError, backoffDelay, sleep } from "./backoff.js";
import { checkAddress, checkAddresses } from "./addresses.js";
import { ClientConfigError, ConnectionError, SealedError, VaultHttpError, connectionErrorFrom, httpErrorFor } from "./errors.js";
import type { VaultListData, VaultResponse } from "./types.js";

export interface ClientOptions {
  /** Server address, e.g. `http://127.0.0.1:8200` (a path prefix is kept: `https://host/vault`). */
  address?: string;
  /**
   * More addresses of the same cluster, tried after `address` (or alone): on a connection failure
   * or a sealed/standby 503 the client moves to the next one at once, and then stays on the one
   * that answered. All must use the same scheme. With a load balancer in front, give just its address.
   */
  addresses?: readonly string[];
  token?: string;
  /** PEM text of the CA certificate(s) that sign the server's certificate (`readPem` loads a file). */
  caCert?: string;
  /** PEM text of a client certificate and its key, for mTLS and the `cert` auth method. */
  clientCert?: string;
  clientKey?: string;
  /** Do not verify the server's certificate (tests and first contact only). */
  skipVerify?: boolean;
  /** Gives up on a request that has been silent this long. Default 60 s, as Vault's client. */
  timeoutMs?: number;
  /**
   * Gives up on a connection not established this long (a node that drops packets), so the next
   * address is tried well before `timeoutMs`. Default 10 s (never more than `timeoutMs`).
   */
  connectTimeoutMs?: number;
  /** Sent as `X-Vault-Namespace`. */
  namespace?: string;
  /**
   * Retries of a request that got no answer or a 5xx (never a 4xx: those are the caller's
   * mistake), with exponential backoff and jitter. Default 0 here; `Leasehold` and the CLI use
   * `VAULT_MAX_RETRIES`/`LEASEHOLD_MAX_RETRIES`, default 2 (Vault's default).
   */
  retries?: number;
  /** Told when the client moves from an address that failed to the next one (the agent logs it). */
  onFailover?: (info: { from: string; to: string; error: Error }) => void;
  /** First retry delay (doubles each retry, with jitter); default 250 ms. */
  retryMinMs?: number;
  /** Longest retry delay; default 5 s. */
  retryMaxMs?: number;
}

export type QueryValue = string | number | boolean | readonly string[] | undefined;

export interface RequestOptions {
  /** Serialised as JSON. */
  body?: unknown;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** Overrides the client's token for this request; `null` sends none. */
  token?: string | null;
  /** Return 4xx/5xx answers instead of throwing (for `sys/health`, whose status codes carry meaning). */
  allowErrorStatus?: boolean;
  /** Overrides the client's `retries` for this request. */
  retries?: number;
  /** Aborts the request in flight and the waits between retries (rejects with AbortError). */
  signal?: AbortSignal;
}

export interface ClientResponse<TBody = unknown> {
  status: number;
  /** Parsed JSON; the text when the body is not JSON (`pki/ca/pem`, metrics); undefined when empty (204). */
  body: TBody | undefined;
  headers: http.IncomingHttpHeaders;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * A small client for leasehold's (and Vault's) `/v1/` API. It uses `node:http`/`node:https`
 * rather than fetch because a private CA and client certificates must be configurable per client.
 */
export class LeaseholdClient {
  /** Every server address, in the order given (`address` first). */
  readonly addresses: readonly string[];
  token: string | undefined;
  readonly namespace: string | undefined;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly bases: readonly URL[];
  /** Index of the address requests go to first: the one that last answered (sticky, no round-robin). */
  private current = 0;
  private readonly agent: http.Agent;
  private readonly onFailover: ClientOptions["onFailover"];

  constructor(options: ClientOptions) {
    const given = [
      ...(options.address !== undefined ? [checkAddress(options.address, "address")] : []),
      ...(options.addresses ?? []).map((a, i) => checkAddress(a, `addresses[${i}]`)),
    ];
    if (given.length === 0) throw new ClientConfigError("no server address: set address (or addresses), e.g. http://127.0.0.1:8200");
    this.addresses = checkAddresses(given, "the server addresses");
    this.bases = this.addresses.map((a) => new URL(a));
    const base = this.bases[0];
    this.token = options.token || undefined;
    this.namespace = options.namespace || undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.connectTimeoutMs = Math.min(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, this.timeoutMs);
    this.retries = Math.max(0, options.retries ?? 0);
    this.onFailover = options.onFailover;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.agent =
      base.protocol === "https:"
        ? new https.Agent({
            keepAlive: true,
            ca: options.caCert,
            cert: options.clientCert,
            key: options.clientKey,
            rejectUnauthorized: !options.skipVerify,
          })
        : new http.Agent({ keepAlive: true });
  }

  /** The address requests go to first: the one that last answered. */
  get address(): string {
    return this.addresses[this.current];
  }

  /**
   * Sends a request to `/v1/<path>`, retrying connection failures and 5xx answers as configured;
   * throws VaultHttpError on 4xx/5xx and ConnectionError when unreachable. With several
   * addresses, each attempt is a round over all of them (see `requestRound`).
   */
  async request<TBody = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<ClientResponse<TBody>> {
    const retries = Math.max(0, options.retries ?? this.retries);
    for (let attempt = 0; ; attempt++) {
      try {
        // With allowErrorStatus an error status is an answer the caller wants to see, not retried.
        return await this.requestRound<TBody>(method, path, options);
      } catch (err) {
        if (attempt >= retries || !isRetryable(err)) throw err;
        // Keeps the process alive: between attempts nothing else may (the keep-alive agent
        // unrefs its idle socket), and a caller awaiting this request must get its answer.
        await sleep(backoffDelay(attempt, this.retryMinMs, this.retryMaxMs), options.signal, true);
      }
    }
  }

  /**
   * One attempt: the current address, then (on an error `shouldFailOver` accepts) each other
   * address once, at once, without waiting. The address that answers becomes the current one;
   * when none does, the last HTTP answer (a 503) is thrown, or one ConnectionError naming every
   * address. The retry policy (which requests, how often, with what backoff) stays `request`'s.
   */
  private async requestRound<TBody>(method: string, path: string, options: RequestOptions): Promise<ClientResponse<TBody>> {
    const n = this.addresses.length;
    const start = this.current;
    const failures: Error[] = [];
    for (let i = 0; i < n; i++) {
      const index = (start + i) % n;
      try {
        const res = await this.requestOnce<TBody>(index, method, path, options);
        this.current = index;
        return res;
      } catch (err) {
        if (n === 1 || !shouldFailOver(err)) throw err;
        failures.push(err as Error);
        // Only the first request to see this address fail moves the client on: a concurrent
        // one failing on it later must not skip past the address another request moved to.
        if (this.current === index) {
          this.current = (index + 1) % n;
          this.onFailover?.({ from: this.addresses[index], to: this.addresses[this.current], error: err as Error });
        }
      }
    }
    const answered = failures.filter((f) => f instanceof VaultHttpError);
    if (answered.length > 0) throw answered[answered.length - 1];
    const last = failures[failures.length - 1] as ConnectionError;
    throw new ConnectionError(`none of the ${n} server addresses could be reached: ${failures.map((f) => f.message).join(" | ")}`, {
      address: this.addresses.join(","),
      code: last.code,
      cause: last,
    });
  }

  private requestOnce<TBody>(index: number, method: string, path: string, options: RequestOptions): Promise<ClientResponse<TBody>> {
    if (options.signal?.aborted) return Promise.reject(new AbortError("request aborted"));
    const address = this.addresses[index];
    const url = this.urlFor(this.bases[index], path, options.query);
    const headers: Record<string, string> = { Accept: "application/json", "X-Vault-Request": "true" };
    const token = options.token === undefined ? this.token : options.token;
    if (token) headers["X-Vault-Token"] = token;
    if (this.namespace) headers["X-Vault-Namespace"] = this.namespace;
    let payload: Buffer | undefined;
    if (options.body !== undefined) {
      payload = Buffer.from(JSON.stringify(options.body), "utf8");
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    Object.assign(headers, options.headers);
    const verb = method.toUpperCase();
    return this.send<TBody>(url, verb, headers, payload, address, options, 1);
  }

  /**
   * One HTTP exchange. A standby without request forwarding answers 307 with the active node's
   * address: like Vault's client, the request (method, body, token) is sent there once more, at
   * most one redirect, and never to another scheme (a token must not fall back to plain http).
   */
  private send<TBody>(url: URL, verb: string, headers: Record<string, string>, payload: Buffer | undefined, address: string, options: RequestOptions, redirectsLeft: number): Promise<ClientResponse<TBody>> {
    const transport = url.protocol === "https:" ? https : http;
    return new Promise<ClientResponse<TBody>>((resolve, reject) => {
      const req = transport.request(url, { method: verb, headers, agent: this.agent }, (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if ((status === 301 || status === 302 || status === 307) && location && redirectsLeft > 0) {
          res.resume();
          let next: URL;
          // A redirect that cannot be followed is the answer: surfaced as is, never retried elsewhere.
          const refuse = (why: string) => reject(httpErrorFor({ status, errors: [why], method: verb, url: url.toString(), body: undefined }));
          try {
            next = new URL(location, url);
          } catch {
            refuse(`redirected to an invalid location ${JSON.stringify(location)}`);
            return;
          }
          if (next.protocol !== url.protocol) {
            refuse(`redirected from ${url.protocol} to ${next.origin}: not followed, a token never changes protocol`);
            return;
          }
          this.send<TBody>(next, verb, headers, payload, address, options, redirectsLeft - 1).then(resolve, reject);
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) => reject(connectionErrorFrom(err, address)));
        res.on("end", () => {
          const body = parseBody(Buffer.concat(chunks).toString("utf8"), res.headers["content-type"]);
          if (status >= 400 && !options.allowErrorStatus) {
            reject(httpErrorFor({ status, errors: errorsOf(body), method: verb, url: url.toString(), body }));
            return;
          }
          resolve({ status, body: body as TBody | undefined, headers: res.headers });
        });
      });
      req.setTimeout(this.timeoutMs, () => {
        const err = Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: "ETIMEDOUT" });
        req.destroy(err);
      });
      // A node that drops packets leaves the connect pending for minutes: give up sooner, so
      // the next address is tried (a pooled keep-alive socket is already connected).
      req.on("socket", (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          req.destroy(Object.assign(new Error(`no connection within ${this.connectTimeoutMs} ms`), { code: "ETIMEDOUT" }));
        }, this.connectTimeoutMs);
        const clear = () => clearTimeout(timer);
        socket.once("connect", clear);
        req.once("close", clear);
      });
      const signal = options.signal;
      const onAbort = () => req.destroy(new AbortError("request aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => signal?.removeEventListener("abort", onAbort));
      req.on("error", (err) => reject(err instanceof AbortError ? err : connectionErrorFrom(err, address)));
      req.end(payload);
    });
  }

  /**
   * `GET <path>`. Like Vault's client, a 404 means "nothing there" and gives `undefined`,
   * unless the 404 carries data or warnings (KV v2 answers a deleted version that way) or
   * error messages (an unknown route), which are thrown.
   */
  async read<TData = Record<string, unknown>>(path: string, query?: Record<string, QueryValue>): Promise<VaultResponse<TData> | undefined> {
    return this.readLike<TData>("GET", path, query);
  }

  /** Lists with `GET <path>?list=true` (Node cannot send the `LIST` method Vault's CLI uses). */
  async list(path: string): Promise<VaultResponse<VaultListData> | undefined> {
    return this.readLike<VaultListData>("GET", path, { list: "true" });
  }

  /** `PUT <path>` with `data` as the JSON body; `undefined` for a 204. */
  async write<TData = Record<string, unknown>>(path: string, data?: Record<string, unknown>): Promise<VaultResponse<TData> | undefined> {
    const res = await this.request<VaultResponse<TData>>("PUT", path, { body: data ?? {} });
    return envelopeOf(res);
  }

  /** `DELETE <path>`; `undefined` for a 204. */
  async delete<TData = Record<string, unknown>>(path: string, query?: Record<string, QueryValue>): Promise<VaultResponse<TData> | undefined> {
    const res = await this.request<VaultResponse<TData>>("DELETE", path, { query });
    return envelopeOf(res);
  }

  /** Releases pooled connections (the pool would otherwise only time out). */
  close(): void {
    this.agent.destroy();
  }

  private async readLike<TData>(method: string, path: string, query?: Record<string, QueryValue>): Promise<VaultResponse<TData> | undefined> {
    try {
      const res = await this.request<VaultResponse<TData>>(method, path, { query });
      return envelopeOf(res);
    } catch (err) {
      if (err instanceof VaultHttpError && err.status === 404) {
        const body = err.body as Partial<VaultResponse<TData>> | undefined;
        const hasContent = body != null && typeof body === "object" && (body.data != null || (body.warnings?.length ?? 0) > 0);
        if (hasContent) return body as VaultResponse<TData>;
        if (err.errors.length === 0) return undefined;
      }
      throw err;
    }
  }

  private urlFor(base: URL, path: string, query?: Record<string, QueryValue>): URL {
    const prefix = base.pathname.replace(/\/+$/, "");
    const relative = path.replace(/^\/+/, "").replace(/^v1\//, "");
    const url = new URL(base.toString());
    url.pathname = `${prefix}/v1/${relative}`;
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
      else url.searchParams.append(key, String(value));
    }
    return url;
  }
}

/** 5xx answers worth another try: not 501 (the server does not implement it, and never will). */
function isRetryableStatus(status: number): boolean {
  return status >= 500 && status !== 501;
}

/** A connection failure or a retryable 5xx; never a 4xx. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  return err instanceof VaultHttpError && isRetryableStatus(err.status);
}

/**
 * Whether a failed attempt should move on to the next address: a connection failure (refused,
 * reset, unreachable, timed out, unresolvable) other than a TLS failure, which is a configuration
 * mistake or an interception and must surface; or a 503 from a sealed or standby node, which
 * refuses before running anything, so even a non-idempotent request is safe to send elsewhere.
 * Other answers (4xx, 500, a 503 for a request that ran too long) come from a node that works:
 * they stay with the retry policy, on the same node.
 */
export function shouldFailOver(err: unknown): boolean {
  if (err instanceof ConnectionError) return !err.tlsFailure;
  return err instanceof SealedError && err.errors.some((e) => /\b(sealed|standby)\b/i.test(e));
}

function envelopeOf<TData>(res: ClientResponse<VaultResponse<TData>>): VaultResponse<TData> | undefined {
  if (res.status === 204 || res.body === undefined) return undefined;
  return res.body;
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (text.length === 0) return undefined;
  const looksJson = contentType === undefined || /json/i.test(contentType) || /^\s*[[{]/.test(text);
  if (!looksJson) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function errorsOf(body: unknown): string[] {
  if (body && typeof body === "object" && Array.isArray((body as { errors?: unknown }).errors)) {
    return (body as { errors: unknown[] }).errors.map((e) => String(e));
  }
  if (typeof body === "string" && body.trim() !== "") return [body.trim()];
  return [];
}
