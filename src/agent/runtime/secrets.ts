/**
 * The agent's secrets: the `SecretSource` templates render from. Each distinct request (kind,
 * path, parameters) is fetched once and then kept fresh by a `LeaseKeeper` from the shared client
 * code: renewed at about two thirds of its TTL, fetched again before its max TTL (or before the
 * token that created it expires), re-read every `static_secret_render_interval` when it has no
 * lease. A replacement calls `onChange`, and the agent renders again.
 *
 * KV version 2 paths are rewritten as Vault Agent does: `secret "secret/app"` on a KV v2 mount
 * reads `secret/data/app` (the mount's version comes from `sys/internal/ui/mounts/<path>`).
 */
import { AbortError, LeaseKeeper, isRetryable, renewLease, secretLifetime, type LeaseholdClient, type TokenKeeper, type VaultResponse } from "../../client/index.js";
import type { SecretResult, SecretSource } from "../template/index.js";
import type { AgentLogger } from "./logger.js";

export interface AgentSecretsOptions {
  client: LeaseholdClient;
  tokens: TokenKeeper;
  logger: AgentLogger;
  /** Re-read secrets without a lease this often. */
  staticIntervalMs: number;
  /** Fraction of a lease after which a replacement is fetched (Vault's `lease_renewal_threshold`). */
  threshold: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A secret was replaced (or a static one changed): render again. */
  onChange(): void;
}

interface Entry {
  key: string;
  description: string;
  /** Fetches it again (same kind, path and parameters). */
  fetch: (signal?: AbortSignal) => Promise<Fetched>;
  keeper?: LeaseKeeper<Fetched>;
  /** While the first fetch runs. */
  first?: Promise<Fetched>;
}

/** An answer and the token that obtained it (its leases die with that token). */
interface Fetched {
  result: SecretResult;
  token: string | undefined;
}

export class AgentSecrets implements SecretSource {
  private readonly entries = new Map<string, Entry>();
  /** Aborted by `stop()`: a fetch still running then must not start a keeper nobody stops. */
  private readonly stopping = new AbortController();
  /**
   * The KV mount of each path read (undefined: not KV). Keyed by the whole path, not its first
   * segment: mounts nest (`team/v1` and `team/v2` can be different engines or KV versions).
   */
  private readonly kvVersions = new Map<string, Promise<{ mount: string; version: number } | undefined>>();

  constructor(private readonly options: AgentSecretsOptions) {}

  read(path: string): Promise<SecretResult> {
    return this.get("read", path, {});
  }

  write(path: string, data: Record<string, string>): Promise<SecretResult> {
    return this.get("write", path, data);
  }

  pkiCert(path: string, data: Record<string, string>): Promise<SecretResult> {
    return this.get("pkiCert", path, data);
  }

  /** Lease ids of the secrets in use now. */
  leaseIds(): string[] {
    return [...this.entries.values()].map((e) => e.keeper?.current.result.lease_id).filter((id): id is string => !!id);
  }

  /** Leases that died with a replaced token may have a new deadline: re-plan every keeper. */
  reschedule(): void {
    for (const entry of this.entries.values()) entry.keeper?.reschedule();
  }

  /** How many distinct secrets are kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Stops every renewal; reads still in flight fail with an AbortError instead of keeping their secret. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.entries.values()].map((e) => e.keeper?.stop()));
  }

  /**
   * The current value of a request: from its keeper, or fetched the first time and kept from then
   * on. A failed first fetch is forgotten, so the next render pass tries again.
   */
  private async get(kind: "read" | "write" | "pkiCert", path: string, data: Record<string, string>): Promise<SecretResult> {
    if (this.stopping.signal.aborted) throw new AbortError();
    const key = JSON.stringify([kind, path, Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
    const existing = this.entries.get(key);
    if (existing?.keeper) return existing.keeper.current.result;
    if (existing?.first) return (await existing.first).result;

    const entry: Entry = {
      key,
      description: kind === "read" ? path : `${path} (${kind})`,
      fetch: (signal) => this.fetch(kind, path, data, signal),
    };
    this.entries.set(key, entry);
    entry.first = entry.fetch(this.stopping.signal);
    let first: Fetched;
    try {
      first = await entry.first;
      if (this.stopping.signal.aborted) throw new AbortError();
    } catch (err) {
      this.entries.delete(key); // the next render pass tries again
      throw err;
    } finally {
      entry.first = undefined;
    }
    entry.keeper = this.keep(entry, first);
    return first.result;
  }

  private keep(entry: Entry, first: Fetched): LeaseKeeper<Fetched> {
    const { logger, tokens, client } = this.options;
    return new LeaseKeeper<Fetched>({
      initial: first,
      lease: ({ result }) => secretLifetime(result),
      renew: async (value, increment, signal) => {
        const body = await renewLease(client, value.result.lease_id, increment, signal);
        const result = { ...value.result, lease_duration: body.lease_duration ?? 0, renewable: body.renewable ?? false };
        return { durationSeconds: result.lease_duration, renewable: result.renewable, value: { ...value, result } };
      },
      fetch: (signal) => entry.fetch(signal),
      deadline: ({ token }) => tokens.deadlineOf(token),
      same: (a, b) => JSON.stringify(a.result.data) === JSON.stringify(b.result.data),
      threshold: this.options.threshold,
      staticIntervalMs: this.options.staticIntervalMs,
      minBackoffMs: this.options.minBackoffMs,
      maxBackoffMs: this.options.maxBackoffMs,
      keepAlive: true,
      onRenewed: ({ result }, expiresAt) =>
        logger.debug({ secret: entry.description, lease_id: result.lease_id, expires: new Date(expiresAt).toISOString() }, "renewed lease"),
      onReplaced: ({ result }, previous) => {
        logger.info({ secret: entry.description, lease_id: result.lease_id, previous_lease_id: previous.result.lease_id || undefined }, "fetched a new version of the secret");
        this.options.onChange();
      },
      onError: (err, info) => {
        const fields = { secret: entry.description, error: err.message, retry_in_ms: info.willRetryInMs };
        if (info.expired) logger.error(fields, "the secret's lease has EXPIRED and could not be replaced: the application holds a revoked credential");
        else if (isRetryable(err)) logger.warn(fields, "could not renew or replace the secret; retrying");
        else logger.warn(fields, "the server refused to renew the secret; fetching a new one");
      },
    }).start();
  }

  private async fetch(kind: "read" | "write" | "pkiCert", rawPath: string, data: Record<string, string>, signal?: AbortSignal): Promise<Fetched> {
    const { client, tokens } = this.options;
    await tokens.ensureFresh();
    const token = client.token;
    const path = kind === "read" ? await this.kvPath(rawPath) : rawPath;
    // Stopped meanwhile: do not obtain a secret (a new database user, a certificate) nobody will use.
    if (signal?.aborted) throw new AbortError();
    const res =
      kind === "read"
        ? await client.request<VaultResponse<Record<string, unknown>>>("GET", path, { signal })
        : await client.request<VaultResponse<Record<string, unknown>>>("PUT", path, { body: data, signal });
    const body = res.body;
    if (!body || typeof body !== "object") throw new Error(`${path} answered no secret`);
    return {
      token,
      result: { data: body.data ?? {}, lease_id: body.lease_id ?? "", lease_duration: body.lease_duration ?? 0, renewable: body.renewable ?? false },
    };
  }

  /** `mount/rest` → `mount/data/rest` when the mount is KV version 2 (and the path does not already say so). */
  private async kvPath(path: string): Promise<string> {
    let lookup = this.kvVersions.get(path);
    if (!lookup) {
      lookup = this.options.client
        .request<VaultResponse<{ path?: string; type?: string; options?: Record<string, string> | null }>>("GET", `sys/internal/ui/mounts/${path}`)
        .then((res) => {
          const d = res.body?.data;
          if (!d?.path || d.type !== "kv") return undefined;
          return { mount: d.path.replace(/\/+$/, ""), version: Number(d.options?.version ?? 1) };
        })
        .catch((err: unknown) => {
          // A refusal (no access to the mounts endpoint) is an answer: read the path as written.
          // An unreachable or failing server is not: forget the lookup and fail this read, or the
          // secret would be read from the wrong path for good once the server is back.
          if (!isRetryable(err)) return undefined;
          this.kvVersions.delete(path);
          throw err;
        });
      this.kvVersions.set(path, lookup);
    }
    const kv = await lookup;
    if (!kv || kv.version !== 2 || !path.startsWith(`${kv.mount}/`)) return path;
    const rest = path.slice(kv.mount.length + 1);
    if (rest.startsWith("data/")) return path;
    return `${kv.mount}/data/${rest}`;
  }
}

