import * as http from "node:http";
import * as https from "node:https";
import { AbortError, backoffDelay, sleep } from "./backoff.js";
import { ClientConfigError, ConnectionError, VaultHttpError, connectionErrorFrom, httpErrorFor } from "./errors.js";
import type { VaultListData, VaultResponse } from "./types.js";

export interface ClientOptions {
  /** Server address, e.g. `http://127.0.0.1:8200` (a path prefix is kept: `https://host/vault`). */
  address: string;
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
  /** Sent as `X-Vault-Namespace`. */
  namespace?: string;
  /**
   * Retries of a request that got no answer or a 5xx (never a 4xx: those are the caller's
   * mistake), with exponential backoff and jitter. Default 0 here; `Leasehold` and the CLI use
   * `VAULT_MAX_RETRIES`/`LEASEHOLD_MAX_RETRIES`, default 2 (Vault's default).
   */
  retries?: number;
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

/**
 * A small client for leasehold's (and Vault's) `/v1/` API. It uses `node:http`/`node:https`
 * rather than fetch because a private CA and client certificates must be configurable per client.
 */
export class LeaseholdClient {
  readonly address: string;
  token: string | undefined;
  readonly namespace: string | undefined;
  readonly timeoutMs: number;
  readonly retries: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(options: ClientOptions) {
    let base: URL;
    try {
      base = new URL(options.address);
    } catch (cause) {
      throw new ClientConfigError(`invalid server address ${JSON.stringify(options.address)}: expected e.g. http://127.0.0.1:8200`, { cause });
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new ClientConfigError(`invalid server address ${JSON.stringify(options.address)}: the scheme must be http or https`);
    }
    this.base = base;
    this.address = options.address.replace(/\/+$/, "");
    this.token = options.token || undefined;
    this.namespace = options.namespace || undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = Math.max(0, options.retries ?? 0);
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

  /**
   * Sends a request to `/v1/<path>`, retrying connection failures and 5xx answers as configured;
   * throws VaultHttpError on 4xx/5xx and ConnectionError when unreachable.
   */
  async request<TBody = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<ClientResponse<TBody>> {
    const retries = Math.max(0, options.retries ?? this.retries);
    for (let attempt = 0; ; attempt++) {
      try {
        // With allowErrorStatus an error status is an answer the caller wants to see, not retried.
        return await this.requestOnce<TBody>(method, path, options);
      } catch (err) {
        if (attempt >= retries || !isRetryable(err)) throw err;
        // Keeps the process alive: between attempts nothing else may (the keep-alive agent
        // unrefs its idle socket), and a caller awaiting this request must get its answer.
        await sleep(backoffDelay(attempt, this.retryMinMs, this.retryMaxMs), options.signal, true);
      }
    }
  }

  private requestOnce<TBody>(method: string, path: string, options: RequestOptions): Promise<ClientResponse<TBody>> {
    if (options.signal?.aborted) return Promise.reject(new AbortError("request aborted"));
    const url = this.urlFor(path, options.query);
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
    const transport = url.protocol === "https:" ? https : http;

    return new Promise<ClientResponse<TBody>>((resolve, reject) => {
      const req = transport.request(url, { method: verb, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) => reject(connectionErrorFrom(err, this.address)));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
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
      const signal = options.signal;
      const onAbort = () => req.destroy(new AbortError("request aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => signal?.removeEventListener("abort", onAbort));
      req.on("error", (err) => reject(err instanceof AbortError ? err : connectionErrorFrom(err, this.address)));
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

  private urlFor(path: string, query?: Record<string, QueryValue>): URL {
    const prefix = this.base.pathname.replace(/\/+$/, "");
    const relative = path.replace(/^\/+/, "").replace(/^v1\//, "");
    const url = new URL(this.base.toString());
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
