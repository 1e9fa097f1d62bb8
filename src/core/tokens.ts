import { randomBytes } from "node:crypto";
import { PermissionDenied, UserError } from "../sdk/errors.js";
import type { CallerIdentity, StorageView } from "../sdk/types.js";
import { hmacHex, randomBase62 } from "./ids.js";

/** A token as stored: never the token itself, only its HMAC. Times are unix milliseconds. */
export interface TokenEntry {
  hmac: string;
  accessor: string;
  /** HMAC of the parent token; null for orphans. */
  parent: string | null;
  policies: string[];
  meta: Record<string, string> | null;
  displayName: string;
  /** Remaining uses; 0 means unlimited. */
  numUses: number;
  creationTime: number;
  /** TTL granted at creation, seconds (0 = never expires). */
  creationTtl: number;
  /** Current expiry, ms; null = never. */
  expireTime: number | null;
  explicitMaxTtl: number;
  period: number;
  renewable: boolean;
  /** The path that created the token (`auth/token/create`, `auth/approle/login`). */
  path: string;
  /** Mount of the auth method that issued it, e.g. `auth/token/`. */
  authMount: string;
  role: string;
  entityId: string;
  boundCidrs: string[];
  /** Maximum TTL of the mount at creation, seconds (0 = none). */
  mountMaxTtl: number;
  /** The token's own lease (tokens with a TTL expire through the lease manager). */
  leaseId?: string;
}

/** How the lease manager follows a token's life. */
export interface TokenLeaseHooks {
  /** A token with a TTL was created: open its lease; returns the lease id. */
  created(entry: TokenEntry): Promise<string | undefined>;
  renewed(entry: TokenEntry): Promise<void>;
  /** A token is being revoked: its leases die with it. */
  revoked(entry: TokenEntry): Promise<void>;
}

export interface CreateTokenParams {
  policies: string[];
  meta?: Record<string, string> | null;
  displayName: string;
  numUses?: number;
  ttl: number;
  explicitMaxTtl?: number;
  period?: number;
  renewable: boolean;
  path: string;
  authMount: string;
  role?: string;
  parent: TokenEntry | null;
  mountMaxTtl: number;
  boundCidrs?: string[];
  /** Dev mode: a chosen token id. */
  id?: string;
}

/** How many token entries the in-memory cache keeps (oldest dropped first). */
export const TOKEN_CACHE_SIZE = 10_000;

/**
 * Token store: creation, lookup by token or accessor, renewal, and tree revocation.
 *
 * Every request looks its token up, which without a cache is a storage read and an AES-GCM
 * decryption (about 20 µs). Entries are therefore cached in memory, keyed by the token's HMAC (the
 * token itself is never kept), under rules that keep the cache exactly as strict as the store:
 * - an entry is cached only from a storage read during which no write or delete of any token
 *   happened (a generation counter), so a read racing a revocation can never resurrect it;
 * - every write or delete of a token entry drops it from the cache first (this store is the only
 *   writer of `sys/token/`, and the server is a single process);
 * - limited-use tokens (`num_uses`) are never cached: each use is counted against storage;
 * - expiry is checked on every lookup against the entry's expiry time, cached or not.
 * Callers get a copy, so mutating what they received never changes the cache.
 */
export class TokenStore {
  private hmacKey?: Buffer;
  /** The lease manager's view of tokens (set by the core). */
  leaseHooks?: TokenLeaseHooks;
  private readonly cache = new Map<string, TokenEntry>();
  /** Bumped by every write or delete of a token entry: see the class comment. */
  private generation = 0;

  constructor(private readonly storage: StorageView, private readonly cacheSize = TOKEN_CACHE_SIZE) {}

  private async key(): Promise<Buffer> {
    if (this.hmacKey) return this.hmacKey;
    let k = await this.storage.get("hmac-key");
    if (!k) {
      k = randomBytes(32);
      await this.storage.put("hmac-key", k);
    }
    this.hmacKey = k;
    return k;
  }

  /** Forget cached key material and token entries (on seal). */
  reset(): void {
    this.hmacKey = undefined;
    this.invalidateAll();
  }

  /** Drops every cached entry (tests, seal). */
  invalidateAll(): void {
    this.generation++;
    this.cache.clear();
  }

  private invalidate(hmac: string): void {
    this.generation++;
    this.cache.delete(hmac);
  }

  /** The only way token entries are written: the cache forgets the entry before the write. */
  private async writeEntry(entry: TokenEntry): Promise<void> {
    this.invalidate(entry.hmac);
    await this.storage.putJSON(`id/${entry.hmac}`, entry);
    this.invalidate(entry.hmac);
  }

  private async deleteEntry(hmac: string): Promise<void> {
    this.invalidate(hmac);
    await this.storage.delete(`id/${hmac}`);
    this.invalidate(hmac);
  }

  async hash(token: string): Promise<string> {
    return hmacHex(await this.key(), token);
  }

  /** Creates and stores a token; returns the token id (shown once) and its entry. */
  async create(p: CreateTokenParams): Promise<{ token: string; entry: TokenEntry }> {
    const token = p.id ?? `lhs.${randomBase62(24)}`;
    if (p.id !== undefined && (p.id.length < 1 || p.id.length > 256 || /[\s]/.test(p.id))) throw new UserError("id: invalid token id");
    const hmac = await this.hash(token);
    if (await this.storage.get(`id/${hmac}`)) throw new UserError("cannot create a token with a duplicate ID");
    const now = Date.now();
    const ttl = this.grantedTtl(p.ttl, p.period ?? 0, p.explicitMaxTtl ?? 0, p.mountMaxTtl, p.policies);
    const entry: TokenEntry = {
      hmac,
      accessor: randomBase62(24),
      parent: p.parent?.hmac ?? null,
      policies: p.policies,
      meta: p.meta && Object.keys(p.meta).length ? p.meta : null,
      displayName: p.displayName,
      numUses: p.numUses ?? 0,
      creationTime: now,
      creationTtl: ttl,
      expireTime: ttl > 0 ? now + ttl * 1000 : null,
      explicitMaxTtl: p.explicitMaxTtl ?? 0,
      period: p.period ?? 0,
      renewable: p.renewable && ttl > 0,
      path: p.path,
      authMount: p.authMount,
      role: p.role ?? "",
      entityId: "",
      boundCidrs: p.boundCidrs ?? [],
      mountMaxTtl: p.mountMaxTtl,
    };
    await this.writeEntry(entry);
    await this.storage.putJSON(`accessor/${entry.accessor}`, { hmac });
    if (entry.parent) await this.storage.putJSON(`parent/${entry.parent}/${hmac}`, {});
    if (entry.expireTime !== null && this.leaseHooks) {
      entry.leaseId = await this.leaseHooks.created(entry);
      await this.writeEntry(entry);
    }
    return { token, entry };
  }

  /**
   * TTL rules (Vault's): periodic tokens get the period; otherwise the requested TTL; both capped
   * by explicit_max_ttl and the mount's max TTL. A root-policy token without a TTL never expires.
   */
  private grantedTtl(ttl: number, period: number, explicitMax: number, mountMax: number, policies: string[]): number {
    let granted = period > 0 ? period : ttl;
    if (granted === 0 && !policies.includes("root")) granted = mountMax;
    for (const cap of [explicitMax, period > 0 ? 0 : mountMax]) if (cap > 0 && (granted === 0 || granted > cap)) granted = cap;
    return granted;
  }

  async getByHmac(hmac: string): Promise<TokenEntry | undefined> {
    const hit = this.cache.get(hmac);
    if (hit) return { ...hit };
    const generation = this.generation;
    const entry = await this.storage.getJSON<TokenEntry>(`id/${hmac}`);
    if (entry && entry.numUses === 0 && generation === this.generation) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(hmac, { ...entry });
    }
    return entry;
  }

  /** Looks a token up; undefined when unknown. Expired tokens are revoked on sight. */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (!token) return undefined;
    const entry = await this.getByHmac(await this.hash(token));
    if (!entry) return undefined;
    return (await this.revokeIfExpired(entry)) ? undefined : entry;
  }

  /**
   * A token dies with its parent: when the token or any ancestor has expired, the expired one's
   * tree is revoked on sight (whatever a background expiry has not reached yet) and true is returned.
   */
  private async revokeIfExpired(entry: TokenEntry): Promise<boolean> {
    const now = Date.now();
    for (let cur: TokenEntry | undefined = entry, depth = 0; cur && depth < 1000; depth++) {
      if (cur.expireTime !== null && cur.expireTime <= now) {
        await this.revokeTree(cur);
        return true;
      }
      cur = cur.parent ? await this.getByHmac(cur.parent) : undefined;
    }
    return false;
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(accessor)) return undefined;
    const ref = await this.storage.getJSON<{ hmac: string }>(`accessor/${accessor}`);
    if (!ref) return undefined;
    const entry = await this.getByHmac(ref.hmac);
    if (entry && (await this.revokeIfExpired(entry))) return undefined;
    return entry;
  }

  /**
   * Counts one use of a limited-use token. Returns true when that was the last use: the caller
   * revokes the token once the request is done.
   */
  async consumeUse(entry: TokenEntry): Promise<boolean> {
    if (entry.numUses === 0) return false;
    return this.storage.withLock(`id/${entry.hmac}`, async () => {
      const cur = await this.getByHmac(entry.hmac);
      if (!cur || cur.numUses <= 0) throw new PermissionDenied();
      cur.numUses -= 1;
      await this.writeEntry(cur);
      entry.numUses = cur.numUses;
      return cur.numUses === 0;
    });
  }

  /**
   * Renews: the new TTL is `increment` (or the creation TTL, or the period) from now, capped by
   * explicit_max_ttl and the mount max TTL measured from creation. Returns the granted TTL and
   * whether it was capped.
   */
  async renew(entry: TokenEntry, increment: number): Promise<{ entry: TokenEntry; ttl: number; capped: boolean }> {
    if (!entry.renewable || entry.expireTime === null) throw new UserError("lease is not renewable");
    return this.storage.withLock(`id/${entry.hmac}`, async () => {
      const cur = await this.getByHmac(entry.hmac);
      if (!cur) throw new PermissionDenied();
      const now = Date.now();
      let ttl = cur.period > 0 ? cur.period : increment > 0 ? increment : cur.creationTtl;
      let capped = false;
      const caps = [cur.explicitMaxTtl, cur.period > 0 ? 0 : cur.mountMaxTtl].filter((c) => c > 0);
      for (const cap of caps) {
        const remaining = Math.floor((cur.creationTime + cap * 1000 - now) / 1000);
        if (ttl > remaining) {
          ttl = Math.max(0, remaining);
          capped = true;
        }
      }
      if (ttl <= 0) throw new UserError("past the max TTL, cannot renew");
      cur.expireTime = now + ttl * 1000;
      await this.writeEntry(cur);
      await this.leaseHooks?.renewed(cur);
      return { entry: cur, ttl, capped };
    });
  }

  /** Remaining TTL in whole seconds (0 for tokens that never expire). */
  static ttlOf(entry: TokenEntry, now = Date.now()): number {
    return entry.expireTime === null ? 0 : Math.max(0, Math.round((entry.expireTime - now) / 1000));
  }

  private async children(hmac: string): Promise<string[]> {
    return (await this.storage.list(`parent/${hmac}/`)).filter((k) => !k.endsWith("/"));
  }

  /** Revokes a token and every descendant, depth first; each one's leases go through `onRevoke`. */
  async revokeTree(entry: TokenEntry): Promise<number> {
    let count = 0;
    const stack: string[] = [entry.hmac];
    const order: string[] = [];
    while (stack.length) {
      const h = stack.pop()!;
      order.push(h);
      stack.push(...(await this.children(h)));
    }
    // Children first, so an interrupted revocation never leaves a child whose parent is gone.
    for (const h of order.reverse()) {
      const e = await this.getByHmac(h);
      if (!e) continue;
      await this.revokeOne(e);
      count++;
    }
    return count;
  }

  /** Revokes only this token; its children become orphans (revoke-orphan). */
  async revokeOrphan(entry: TokenEntry): Promise<void> {
    for (const child of await this.children(entry.hmac)) {
      await this.storage.withLock(`id/${child}`, async () => {
        const c = await this.getByHmac(child);
        if (c) {
          c.parent = null;
          await this.writeEntry(c);
        }
      });
      await this.storage.delete(`parent/${entry.hmac}/${child}`);
    }
    await this.revokeOne(entry);
  }

  private async revokeOne(e: TokenEntry): Promise<void> {
    if (this.leaseHooks) await this.leaseHooks.revoked(e);
    await this.deleteEntry(e.hmac);
    await this.storage.delete(`accessor/${e.accessor}`);
    if (e.parent) await this.storage.delete(`parent/${e.parent}/${e.hmac}`);
  }

  async listAccessors(): Promise<string[]> {
    return (await this.storage.list("accessor/")).filter((k) => !k.endsWith("/"));
  }

  /** The identity a token carries into handlers, leases and audit entries. */
  static identityOf(entry: TokenEntry): CallerIdentity {
    return {
      accessor: entry.accessor,
      displayName: entry.displayName,
      policies: entry.policies,
      metadata: entry.meta ?? {},
      entityId: entry.entityId,
      authMount: entry.authMount,
      isRoot: entry.policies.includes("root"),
    };
  }

  /** Vault's lookup shape. `id` is only known when the caller presented the token itself. */
  static describe(entry: TokenEntry, id = ""): Record<string, unknown> {
    return {
      accessor: entry.accessor,
      creation_time: Math.floor(entry.creationTime / 1000),
      creation_ttl: entry.creationTtl,
      display_name: entry.displayName,
      entity_id: entry.entityId,
      expire_time: entry.expireTime === null ? null : new Date(entry.expireTime).toISOString(),
      explicit_max_ttl: entry.explicitMaxTtl,
      id,
      issue_time: new Date(entry.creationTime).toISOString(),
      meta: entry.meta,
      num_uses: entry.numUses,
      orphan: entry.parent === null,
      path: entry.path,
      period: entry.period || undefined,
      policies: entry.policies,
      renewable: entry.renewable,
      role: entry.role || undefined,
      ttl: TokenStore.ttlOf(entry),
      type: "service",
    };
  }
}
