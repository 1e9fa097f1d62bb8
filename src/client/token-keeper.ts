/**
 * Logs in with an auth method and keeps the client's token alive: renews it (`renew-self`) at
 * about two thirds of its TTL and, once it can no longer be renewed (max TTL, revoked, not
 * renewable), logs in again before it expires. Tokens replaced this way are remembered until they
 * expire, because the leases they created die with them: `deadlineOf(token)` tells a secret's
 * keeper when that is, and `revokeAll()` revokes them all (the agent's `revoke_on_shutdown`).
 */
import type { AuthMethod } from "./auth-methods.js";
import { AbortError, Backoff, sleep } from "./backoff.js";
import { isRetryable, type LeaseholdClient } from "./client.js";
import { LeaseKeeper, type LeaseKeeperEvents } from "./lease-keeper.js";
import type { VaultAuth, VaultResponse } from "./types.js";

export interface TokenKeeperOptions {
  client: LeaseholdClient;
  method: AuthMethod;
  /** Backoff between failed logins: doubles with jitter from min to max (Vault Agent: 1 s to 5 min). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  threshold?: number;
  keepAlive?: boolean;
  /** Called after every successful login, the first included. */
  onLogin?(auth: VaultAuth, previous: VaultAuth | undefined): void | Promise<void>;
  onRenewed?: LeaseKeeperEvents<VaultAuth>["onRenewed"];
  onError?: LeaseKeeperEvents<VaultAuth>["onError"];
}

export class TokenKeeper {
  private keeper: LeaseKeeper<VaultAuth> | undefined;
  /** Earlier tokens of this keeper and when they expire (ms since the epoch; undefined: never). */
  private readonly retired = new Map<string, number | undefined>();

  constructor(private readonly options: TokenKeeperOptions) {}

  /** The token in use; undefined before the first login. */
  get auth(): VaultAuth | undefined {
    return this.keeper?.current;
  }

  /**
   * Logs in and starts the renewal loop. With `retry`, failures are retried with backoff until
   * success or `signal` aborts (the agent); without, the first failure is thrown (an app's
   * start-up should fail loudly on a wrong credential). Connection errors and 5xx are retried by
   * the client itself either way.
   */
  async start(options: { retry?: boolean; signal?: AbortSignal } = {}): Promise<VaultAuth> {
    const { client, method } = this.options;
    const backoff = new Backoff(this.options.minBackoffMs ?? 1_000, this.options.maxBackoffMs ?? 300_000);
    let auth: VaultAuth;
    for (;;) {
      try {
        auth = await method.login(client, options.signal);
        break;
      } catch (err) {
        if (!options.retry || options.signal?.aborted) throw err;
        const delay = backoff.next();
        this.options.onError?.(err instanceof Error ? err : new Error(String(err)), { expired: false, willRetryInMs: delay });
        // The caller awaits this login: the wait keeps the process alive whatever `keepAlive` says
        // (that option is about the background renewals, which must not block an app's exit).
        await sleep(delay, options.signal, true);
      }
    }
    // The token's TTL runs from the login, not from when onLogin is done.
    const obtainedAt = Date.now();
    client.token = auth.client_token;
    await this.options.onLogin?.(auth, undefined);
    this.keeper = new LeaseKeeper<VaultAuth>({
      initial: auth,
      obtainedAt,
      lease: (a) => (a.lease_duration > 0 ? { id: a.accessor, durationSeconds: a.lease_duration, renewable: a.renewable } : undefined),
      renew: async (a, increment, signal) => {
        const res = await client.request<VaultResponse<unknown>>("PUT", "auth/token/renew-self", { token: a.client_token, body: { increment: `${increment}s` }, signal });
        const renewed = res.body?.auth;
        if (!renewed) throw new Error("auth/token/renew-self answered without an auth block");
        return { durationSeconds: renewed.lease_duration, renewable: renewed.renewable, value: { ...a, ...renewed, client_token: a.client_token } };
      },
      fetch: (signal) => method.login(client, signal),
      onReplaced: async (next, previous, previousExpiry) => {
        // A method that hands back the same token (tokenAuth) has nothing to retire.
        if (previous.client_token !== next.client_token) this.retired.set(previous.client_token, previousExpiry);
        client.token = next.client_token;
        await this.options.onLogin?.(next, previous);
      },
      onRenewed: this.options.onRenewed,
      onError: this.options.onError,
      threshold: this.options.threshold,
      replaceWhenCapped: true,
      minBackoffMs: this.options.minBackoffMs,
      maxBackoffMs: this.options.maxBackoffMs,
      keepAlive: this.options.keepAlive,
    }).start();
    return auth;
  }

  /**
   * When the leases created with `token` die with it (ms since the epoch): known once the token
   * can no longer be renewed; undefined while it can, when it never expires, or when it is not
   * one of this keeper's.
   */
  deadlineOf(token: string | undefined): number | undefined {
    if (token === undefined) return undefined;
    if (this.keeper && this.keeper.current.client_token === token) return this.keeper.finalExpiry;
    return this.retired.get(token);
  }

  /**
   * Logs in again first if the current token will not be renewed and has less than a third of its
   * life left: a new lease should not be bound to a token that dies soon (leases die with it).
   */
  async ensureFresh(now = Date.now()): Promise<void> {
    const keeper = this.keeper;
    const final = keeper?.finalExpiry;
    if (!keeper || final === undefined) return;
    const lifetime = keeper.current.lease_duration * 1000;
    if (final - now < lifetime / 3) await keeper.replaceSoon();
  }

  /** Every token of this keeper that may still be valid, the current one first. */
  liveTokens(now = Date.now()): string[] {
    const tokens: string[] = [];
    if (this.keeper) tokens.push(this.keeper.current.client_token);
    for (const [token, expiry] of this.retired) {
      if (expiry === undefined || expiry > now) tokens.push(token);
      else this.retired.delete(token);
    }
    return tokens;
  }

  /** Stops renewing (the token stays valid until it expires). */
  async stop(): Promise<void> {
    await this.keeper?.stop();
  }

  /**
   * Revokes every live token with `revoke-self` (which revokes the leases each created); returns
   * how many were revoked. Failures are reported to `onError` and skipped.
   */
  async revokeAll(): Promise<number> {
    await this.stop();
    let revoked = 0;
    for (const token of this.liveTokens()) {
      try {
        await this.options.client.request("PUT", "auth/token/revoke-self", { token, body: {} });
        revoked++;
      } catch (err) {
        if (err instanceof AbortError) throw err;
        // A token that already expired or was revoked answers 403: nothing left to revoke.
        if (!isRetryable(err)) continue;
        this.options.onError?.(err instanceof Error ? err : new Error(String(err)), { expired: false, willRetryInMs: -1 });
      }
    }
    this.retired.clear();
    return revoked;
  }
}
