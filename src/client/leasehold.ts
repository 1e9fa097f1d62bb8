/**
 * `Leasehold`: the library applications use to fetch credentials at start-up and keep them
 * fresh, built on the same `LeaseholdClient` as the CLI and the agent.
 *
 *   const lh = new Leasehold();                       // LEASEHOLD_ADDR / VAULT_ADDR (one or a list), CA, retries from the env
 *   await lh.login(kubernetesAuth({ role: "app" }));  // token renewed in the background
 *   const creds = await lh.database.creds("app");     // { data: { username, password }, lease_id, ... }
 *   lh.watch(creds, { onReplaced: (next) => reconnect(next.data) });
 *   ...
 *   await lh.close({ revoke: true });
 */
import { homedir } from "node:os";
import type { AuthMethod } from "./auth-methods.js";
import { LeaseholdClient, type ClientOptions, type QueryValue } from "./client.js";
import { ClientConfigError } from "./errors.js";
import { LeaseKeeper, secretLifetime, type LeaseKeeperEvents } from "./lease-keeper.js";
import { renewLease, revokeObtained } from "./leases.js";
import { clientOptionsFromSettings, resolveClientSettings } from "./settings.js";
import { TokenKeeper } from "./token-keeper.js";
import type { VaultAuth, VaultResponse } from "./types.js";

export interface LeaseholdOptions extends Partial<ClientOptions> {
  /** Where `LEASEHOLD_*`/`VAULT_*` settings are read from; `process.env` by default. Options win over it. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Backoff between failed re-logins and refetches (default 1 s to 60 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A secret with a lease, as `database.creds`, `pki.issue` and `read`/`write` answer it. */
export type Secret<TData = Record<string, unknown>> = VaultResponse<TData> & { data: TData };

/** `database/creds/:role`. */
export interface DatabaseCredentials {
  username: string;
  password: string;
}

/** `pki/issue/:role`. */
export interface IssuedCertificate {
  certificate: string;
  private_key: string;
  private_key_type: string;
  issuing_ca: string;
  ca_chain: string[];
  serial_number: string;
  /** Unix seconds. */
  expiration: number;
}

/** `kv/data/:path` (KV version 2). */
export interface KvV2Data<T = Record<string, unknown>> {
  data: T;
  metadata: { version: number; created_time: string; deletion_time: string; destroyed: boolean; custom_metadata: Record<string, string> | null };
}

export interface WatchOptions<T> extends LeaseKeeperEvents<T> {
  /** How to obtain a replacement; given for secrets from this client's typed calls, required otherwise. */
  fetch?: (signal: AbortSignal) => Promise<T>;
  /** Fraction of the lease after which a replacement is fetched (default 0.9, less up to 0.05 of jitter). */
  threshold?: number;
  /** For secrets without a lease (KV): re-read this often and call `onReplaced` when they changed. */
  staticIntervalMs?: number;
}

/** A running watch: `current` is the latest secret; `stop()` ends renewals. */
export interface SecretWatch<T> {
  readonly current: T;
  /** When the current secret's lease ends (ms since the epoch), if it has one. */
  readonly expiry: number | undefined;
  stop(): Promise<void>;
}

/** How a secret was obtained, so `watch` can obtain a replacement and knows which token's life bounds it. */
interface Origin {
  refetch: (signal: AbortSignal) => Promise<VaultResponse<unknown>>;
  token: string | undefined;
}

export class Leasehold {
  readonly client: LeaseholdClient;
  private tokenKeeper: TokenKeeper | undefined;
  private readonly origins = new WeakMap<object, Origin>();
  /** The running watches (any secret type: only stopping and re-planning are needed here). */
  private readonly watches = new Set<Pick<LeaseKeeper<unknown>, "stop" | "reschedule">>();
  /** Lease ids this client obtained, for `close({ revoke: true })`. */
  private readonly obtained = new Set<string>();
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(options: LeaseholdOptions = {}) {
    const { env = process.env, minBackoffMs, maxBackoffMs, ...clientOptions } = options;
    // Addresses given as options replace LEASEHOLD_ADDR/VAULT_ADDR entirely (a list is not merged with them).
    const ownAddresses = clientOptions.address !== undefined || clientOptions.addresses !== undefined;
    const settings = resolveClientSettings(ownAddresses ? { ...env, LEASEHOLD_ADDR: undefined, VAULT_ADDR: undefined } : env, {}, homedir());
    const defined = Object.fromEntries(Object.entries(clientOptions).filter(([, v]) => v !== undefined)) as Partial<ClientOptions>;
    const fromEnv = clientOptionsFromSettings({ ...settings, token: env.LEASEHOLD_TOKEN || env.VAULT_TOKEN || undefined });
    if (ownAddresses) {
      fromEnv.address = undefined;
      fromEnv.addresses = undefined;
    }
    this.client = new LeaseholdClient({ ...fromEnv, ...defined });
    this.minBackoffMs = minBackoffMs ?? 1_000;
    this.maxBackoffMs = maxBackoffMs ?? 60_000;
  }

  /** The token requests carry (after `login`, the logged-in one; it changes when the client logs in again). */
  get token(): string | undefined {
    return this.client.token;
  }

  /**
   * Logs in and keeps the token alive in the background: renewed at about two thirds of its TTL,
   * logged in again before it expires once renewal no longer extends it. A refused credential
   * throws (4xx); an unreachable server is retried as the client's `retries` say.
   */
  async login(method: AuthMethod, events: { onLogin?: (auth: VaultAuth) => void; onError?: (err: Error) => void } = {}): Promise<VaultAuth> {
    await this.tokenKeeper?.stop();
    const keeper = new TokenKeeper({
      client: this.client,
      method,
      minBackoffMs: this.minBackoffMs,
      maxBackoffMs: this.maxBackoffMs,
      onLogin: (auth, previous) => {
        // Leases created with the previous token now have a deadline: let their watches re-plan.
        if (previous) for (const w of this.watches) w.reschedule();
        events.onLogin?.(auth);
      },
      onError: (err) => events.onError?.(err),
    });
    const auth = await keeper.start({ retry: false });
    this.tokenKeeper = keeper;
    return auth;
  }

  /** `GET path`; undefined for nothing there (404 without errors). */
  read<TData = Record<string, unknown>>(path: string, query?: Record<string, QueryValue>): Promise<VaultResponse<TData> | undefined> {
    return this.remember(() => this.client.read<TData>(path, query));
  }

  /** `PUT path` with `data`; undefined for a 204. */
  write<TData = Record<string, unknown>>(path: string, data: Record<string, unknown> = {}): Promise<VaultResponse<TData> | undefined> {
    return this.remember(() => this.client.write<TData>(path, data));
  }

  /** The keys under `path` (empty when there are none). */
  async list(path: string): Promise<string[]> {
    const res = await this.client.list(path);
    return res?.data?.keys ?? [];
  }

  async delete(path: string): Promise<void> {
    await this.client.delete(path);
  }

  /** KV version 2 helpers; `mount` is `secret` unless given. */
  readonly kv = {
    get: async <T = Record<string, unknown>>(path: string, options: { mount?: string; version?: number } = {}): Promise<Secret<KvV2Data<T>> | undefined> => {
      const res = await this.read<KvV2Data<T>>(`${mountOf(options.mount, "secret")}/data/${trim(path)}`, { version: options.version });
      return res?.data ? (res as Secret<KvV2Data<T>>) : undefined;
    },
    put: async (path: string, data: Record<string, unknown>, options: { mount?: string; cas?: number } = {}): Promise<{ version: number }> => {
      const body: Record<string, unknown> = { data };
      if (options.cas !== undefined) body.options = { cas: options.cas };
      const res = await this.client.write<{ version: number }>(`${mountOf(options.mount, "secret")}/data/${trim(path)}`, body);
      return { version: Number(res?.data?.version ?? 0) };
    },
    delete: async (path: string, options: { mount?: string } = {}): Promise<void> => {
      await this.client.delete(`${mountOf(options.mount, "secret")}/data/${trim(path)}`);
    },
    list: async (path = "", options: { mount?: string } = {}): Promise<string[]> => this.list(`${mountOf(options.mount, "secret")}/metadata/${trim(path)}`),
  };

  /** The database secrets engine; `mount` is `database` unless given. */
  readonly database = {
    /** Fresh credentials under a lease (`GET <mount>/creds/<role>`). */
    creds: async (role: string, options: { mount?: string } = {}): Promise<Secret<DatabaseCredentials>> =>
      this.leased<DatabaseCredentials>(() => this.client.read<DatabaseCredentials>(`${mountOf(options.mount, "database")}/creds/${trim(role)}`), `database credentials for role ${role}`),
  };

  /** The PKI engine; `mount` is `pki` unless given. */
  readonly pki = {
    /** A new key and certificate (`PUT <mount>/issue/<role>`); the key exists only in the answer. */
    issue: async (role: string, params: Record<string, unknown>, options: { mount?: string } = {}): Promise<Secret<IssuedCertificate>> =>
      this.leased<IssuedCertificate>(() => this.client.write<IssuedCertificate>(`${mountOf(options.mount, "pki")}/issue/${trim(role)}`, params), `a certificate from role ${role}`),
  };

  /** The lease API (`sys/leases/*`). */
  readonly leases = {
    renew: (leaseId: string, incrementSeconds?: number): Promise<VaultResponse<unknown>> => renewLease(this.client, leaseId, incrementSeconds),
    revoke: async (leaseId: string): Promise<void> => {
      await this.client.write("sys/leases/revoke", { lease_id: leaseId });
      this.obtained.delete(leaseId);
    },
    lookup: async (leaseId: string): Promise<{ id: string; ttl: number; renewable: boolean; expire_time: string | null; issue_time: string }> => {
      const res = await this.client.write<{ id: string; ttl: number; renewable: boolean; expire_time: string | null; issue_time: string }>("sys/leases/lookup", { lease_id: leaseId });
      if (!res?.data) throw new ClientConfigError("sys/leases/lookup answered without data");
      return res.data;
    },
  };

  /**
   * Keeps a secret fresh, as Vault's `LifetimeWatcher`: renews its lease at about two thirds of
   * the remaining TTL (with jitter), fetches a replacement at about 85-90% of its lifetime once
   * renewal stops extending it (max TTL) or it is not renewable, and tells the application.
   * Leases created with a token this client replaced are replaced before that token expires.
   */
  watch<T extends VaultResponse<unknown>>(secret: T, options: WatchOptions<T> = {}): SecretWatch<T> {
    const origin = this.origins.get(secret);
    const fetch = options.fetch ?? (origin?.refetch as ((signal: AbortSignal) => Promise<T>) | undefined);
    if (!fetch) throw new ClientConfigError("watch: this secret was not obtained through this client; pass options.fetch to say how to obtain a replacement");
    const keeper: LeaseKeeper<T> = new LeaseKeeper<T>({
      initial: secret,
      lease: secretLifetime,
      renew: async (s, increment) => {
        const res = await this.leases.renew(s.lease_id, increment);
        return { durationSeconds: res.lease_duration, renewable: res.renewable };
      },
      fetch,
      deadline: (s) => this.tokenKeeper?.deadlineOf(this.origins.get(s)?.token),
      same: (a, b) => JSON.stringify(a.data) === JSON.stringify(b.data),
      threshold: options.threshold,
      staticIntervalMs: options.staticIntervalMs,
      minBackoffMs: this.minBackoffMs,
      maxBackoffMs: this.maxBackoffMs,
      onRenewed: options.onRenewed,
      onReplaced: options.onReplaced,
      onError: options.onError,
    }).start();
    this.watches.add(keeper);
    return {
      get current() {
        return keeper.current;
      },
      get expiry() {
        return keeper.expiry;
      },
      stop: async () => {
        this.watches.delete(keeper);
        await keeper.stop();
      },
    };
  }

  /**
   * Stops every watch and the token's renewal. With `revoke`, also revokes the leases this client
   * obtained and, if it logged in itself, its tokens (which revokes what they created).
   */
  async close(options: { revoke?: boolean } = {}): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
    this.watches.clear();
    try {
      if (options.revoke) {
        await revokeObtained(this.client, this.obtained, this.tokenKeeper, { onLeaseRevoked: (leaseId) => this.obtained.delete(leaseId) });
      } else {
        await this.tokenKeeper?.stop();
      }
    } finally {
      this.client.close();
    }
  }

  private async remember<TData>(call: () => Promise<VaultResponse<TData> | undefined>): Promise<VaultResponse<TData> | undefined> {
    await this.tokenKeeper?.ensureFresh();
    const token = this.client.token;
    const res = await call();
    if (res) {
      this.origins.set(res, { refetch: async () => must(await this.remember(call), "the replacement request answered nothing"), token });
      if (res.lease_id) this.obtained.add(res.lease_id);
    }
    return res;
  }

  private async leased<TData>(call: () => Promise<VaultResponse<TData> | undefined>, what: string): Promise<Secret<TData>> {
    const res = await this.remember(call);
    if (!res?.data) throw new ClientConfigError(`the server answered no data for ${what}`);
    return res as Secret<TData>;
  }
}

function must<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new ClientConfigError(message);
  return value;
}

function trim(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

function mountOf(mount: string | undefined, fallback: string): string {
  return trim(mount ?? fallback) || fallback;
}

