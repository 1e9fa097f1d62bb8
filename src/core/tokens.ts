import { randomBytes } from "node:crypto";
import { PermissionDenied, UserError } from "../sdk/errors.js";
import type { CallerIdentity, StorageView } from "../sdk/types.js";
import { formatDuration } from "../sdk/durations.js";
import { hmacHex, randomBase62 } from "./ids.js";

/**
 * Vault's `framework.CalculateTTL` as tokens use it, at creation (`increment` 0) and renewal. The
 * effective max is the mount's max lowered by `explicit_max_ttl`. A periodic token gets its period,
 * capped by that max (with a warning), and only `explicit_max_ttl` bounds it from creation; any
 * other token gets the increment, its base TTL or the mount default, never past creation + max.
 * Seconds throughout; times in ms.
 */
export function tokenTtl(o: { increment: number; baseTtl: number; defaultTtl: number; period: number; explicitMax: number; mountMax: number; creationTime: number; now: number }): { ttl: number; warnings: string[] } {
  let maxTtl = o.mountMax;
  if (o.explicitMax > 0 && (maxTtl <= 0 || o.explicitMax < maxTtl)) maxTtl = o.explicitMax;
  const warnings: string[] = [];
  let ttl: number;
  let maxValid: number | undefined;
  if (o.period > 0) {
    ttl = o.period;
    if (maxTtl > 0 && ttl > maxTtl) {
      warnings.push(`period of "${formatDuration(ttl)}" exceeded the effective max_ttl of "${formatDuration(maxTtl)}"; period value is capped accordingly`);
      ttl = maxTtl;
    }
    if (o.explicitMax > 0) maxValid = o.creationTime + o.explicitMax * 1000;
  } else {
    ttl = o.increment > 0 ? o.increment : o.baseTtl > 0 ? o.baseTtl : o.defaultTtl > 0 ? o.defaultTtl : maxTtl;
    if (maxTtl > 0) maxValid = o.creationTime + maxTtl * 1000;
  }
  if (maxValid !== undefined) {
    const remaining = Math.floor((maxValid - o.now) / 1000);
    if (remaining <= 0) throw new UserError("past the max TTL, cannot renew");
    if (ttl > remaining) {
      warnings.push(`TTL of "${formatDuration(ttl)}" exceeded the effective max_ttl of "${formatDuration(remaining)}"; TTL value is capped accordingly`);
      ttl = remaining;
    }
  }
  return { ttl, warnings };
}

/** A token as stored: never the token itself, only its HMAC. Times are unix milliseconds. */
export interface TokenEntry {
  hmac: string;
  accessor: string;
  /** HMAC of the parent token; null for orphans. */
  parent: string | null;
  policies: string[];
  meta: Record<string, string> | null;
  displayName: string;
  /**
   * Remaining uses; 0 means unlimited, and REVOCATION_PENDING (-1) means the token is spent or being
   * revoked: every lookup refuses it (its last request may still be running).
   */
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
  /** A revoked token's entry is gone: revoke any lease still recorded under its accessor. */
  sweep(accessor: string): Promise<void>;
}

export interface CreateTokenParams {
  policies: string[];
  meta?: Record<string, string> | null;
  displayName: string;
  numUses?: number;
  /** Requested TTL, seconds; 0 = the mount's default (`defaultTtl`). */
  ttl: number;
  /** The issuing mount's default TTL, used when `ttl` is 0. */
  defaultTtl?: number;
  explicitMaxTtl?: number;
  period?: number;
  renewable: boolean;
  path: string;
  authMount: string;
  role?: string;
  parent: TokenEntry | null;
  mountMaxTtl: number;
  boundCidrs?: string[];
  /** The creating token expires: it may not create a token that never does (Vault). */
  creatorExpires?: boolean;
  /** Dev mode: a chosen token id. */
  id?: string;
}

/**
 * `num_uses` of a token that may not be used again (Vault's `tokenRevocationPending`): its last use
 * is in flight, or its tree is being revoked. Never 0, which means "unlimited".
 */
export const REVOCATION_PENDING = -1;

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
  async create(p: CreateTokenParams): Promise<{ token: string; entry: TokenEntry; warnings: string[] }> {
    const token = p.id ?? `lhs.${randomBase62(24)}`;
    if (p.id !== undefined && (p.id.length < 1 || p.id.length > 256 || /[\s]/.test(p.id))) throw new UserError("id: invalid token id");
    const hmac = await this.hash(token);
    if (await this.storage.get(`id/${hmac}`)) throw new UserError("cannot create a token with a duplicate ID");
    const now = Date.now();
    const period = p.period ?? 0;
    const explicitMax = p.explicitMaxTtl ?? 0;
    let ttl = 0;
    let warnings: string[] = [];
    // A root-policy token without a TTL or period never expires (Vault); every other one gets one.
    if (period > 0 || p.ttl > 0 || !p.policies.includes("root")) {
      ({ ttl, warnings } = tokenTtl({ increment: 0, baseTtl: p.ttl, defaultTtl: p.defaultTtl ?? 0, period, explicitMax, mountMax: p.mountMaxTtl, creationTime: now, now }));
    }
    if (ttl === 0 && explicitMax > 0) ttl = explicitMax;
    if (ttl === 0 && p.creatorExpires) throw new UserError("expiring root tokens cannot create non-expiring root tokens");
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
      explicitMaxTtl: explicitMax,
      period,
      renewable: p.renewable && ttl > 0,
      path: p.path,
      authMount: p.authMount,
      role: p.role ?? "",
      entityId: "",
      boundCidrs: p.boundCidrs ?? [],
      mountMaxTtl: p.mountMaxTtl,
    };
    await this.writeEntry(entry);
    await this.storage.putJSON(await this.accessorKey(entry.accessor), { hmac, accessor: entry.accessor });
    if (entry.parent) await this.storage.putJSON(`parent/${entry.parent}/${hmac}`, {});
    // The parent's revocation may have been marked while this child was written: the tree walk
    // could have missed the child's index entry, so the child removes itself.
    if (p.parent && !(await this.stillUsable(p.parent.hmac))) {
      await this.revokeTree(entry);
      throw new PermissionDenied();
    }
    if (entry.expireTime !== null && this.leaseHooks) {
      entry.leaseId = await this.leaseHooks.created(entry);
      await this.writeEntry(entry);
    }
    return { token, entry, warnings };
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

  /**
   * Looks a token up; undefined when unknown or no longer usable (see `usable`). Expired tokens are
   * revoked on sight.
   */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (!token) return undefined;
    const entry = await this.getByHmac(await this.hash(token));
    if (!entry) return undefined;
    return (await this.usable(entry)) ? entry : undefined;
  }

  /**
   * Whether a token may act: neither it nor any ancestor is revocation-pending, expired or gone.
   * A token dies with its parent: a child of a tree being revoked is refused from the moment the
   * root's mark is stored, before the walk reaches it. When the token or an ancestor has expired,
   * the expired one's tree is revoked on sight (whatever a background expiry has not reached yet).
   */
  async usable(entry: TokenEntry): Promise<boolean> {
    const now = Date.now();
    let cur: TokenEntry | undefined = entry;
    for (let depth = 0; cur && depth < 1000; depth++) {
      if (cur.numUses === REVOCATION_PENDING) return false;
      if (cur.expireTime !== null && cur.expireTime <= now) {
        await this.revokeTree(cur);
        return false;
      }
      if (!cur.parent) return true;
      cur = await this.getByHmac(cur.parent);
    }
    // The parent is gone (revoked while this child was being written, or a revocation interrupted).
    return false;
  }

  /** The stored entry of a token, usable or not (revocation paths). */
  async getByToken(token: string): Promise<TokenEntry | undefined> {
    return token ? this.getByHmac(await this.hash(token)) : undefined;
  }

  /** Re-reads a token from the store and tells whether it may still act (see `usable`). */
  async stillUsable(hmac: string): Promise<boolean> {
    const entry = await this.getByHmac(hmac);
    return !!entry && (await this.usable(entry));
  }

  /** The accessor index: keyed by an HMAC of the accessor, so a copy of the store yields no handle. */
  private async accessorKey(accessor: string): Promise<string> {
    return `accessor/${hmacHex(await this.key(), `accessor:${accessor}`)}`;
  }

  /** The stored entry an accessor points at, usable or not (revocation paths). */
  async getByAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(accessor)) return undefined;
    const ref = await this.storage.getJSON<{ hmac: string }>(await this.accessorKey(accessor));
    return ref ? this.getByHmac(ref.hmac) : undefined;
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    const entry = await this.getByAccessor(accessor);
    return entry && (await this.usable(entry)) ? entry : undefined;
  }

  /**
   * Counts one use of a limited-use token. Returns true when that was the last use: the entry is
   * then stored as REVOCATION_PENDING (never 0, which would mean unlimited), so every other request
   * is refused while this one runs, and the caller revokes the token once the request is done.
   */
  async consumeUse(entry: TokenEntry): Promise<boolean> {
    if (entry.numUses === 0) return false;
    return this.storage.withLock(`id/${entry.hmac}`, async () => {
      const cur = await this.getByHmac(entry.hmac);
      if (!cur || cur.numUses <= 0) throw new PermissionDenied();
      cur.numUses = cur.numUses === 1 ? REVOCATION_PENDING : cur.numUses - 1;
      await this.writeEntry(cur);
      entry.numUses = cur.numUses;
      return cur.numUses === REVOCATION_PENDING;
    });
  }

  /**
   * Renews: the new TTL is `increment` (or the creation TTL, or the period) from now, capped as
   * `tokenTtl` says. Returns the granted TTL and Vault's warnings when it was capped.
   */
  async renew(entry: TokenEntry, increment: number): Promise<{ entry: TokenEntry; ttl: number; warnings: string[] }> {
    if (!entry.renewable || entry.expireTime === null) throw new UserError("lease is not renewable");
    return this.storage.withLock(`id/${entry.hmac}`, async () => {
      const cur = await this.getByHmac(entry.hmac);
      if (!cur) throw new PermissionDenied();
      const now = Date.now();
      const { ttl, warnings } = tokenTtl({ increment, baseTtl: cur.creationTtl, defaultTtl: 0, period: cur.period, explicitMax: cur.explicitMaxTtl, mountMax: cur.mountMaxTtl, creationTime: cur.creationTime, now });
      cur.expireTime = now + ttl * 1000;
      await this.writeEntry(cur);
      await this.leaseHooks?.renewed(cur);
      return { entry: cur, ttl, warnings };
    });
  }

  /** Remaining TTL in whole seconds (0 for tokens that never expire). */
  static ttlOf(entry: TokenEntry, now = Date.now()): number {
    return entry.expireTime === null ? 0 : Math.max(0, Math.round((entry.expireTime - now) / 1000));
  }

  private async children(hmac: string): Promise<string[]> {
    return (await this.storage.list(`parent/${hmac}/`)).filter((k) => !k.endsWith("/"));
  }

  /**
   * Marks a token REVOCATION_PENDING in the store. From then on neither it nor any descendant passes
   * a lookup (see `usable`), so nothing it holds can mint children or credentials while its tree is
   * walked. Returns false when the token is already gone.
   */
  private async markRevocationPending(hmac: string): Promise<boolean> {
    return this.storage.withLock(`id/${hmac}`, async () => {
      const cur = await this.getByHmac(hmac);
      if (!cur) return false;
      if (cur.numUses !== REVOCATION_PENDING) {
        cur.numUses = REVOCATION_PENDING;
        await this.writeEntry(cur);
      }
      return true;
    });
  }

  /**
   * Revokes a token and every descendant. The root of the tree is marked first (persisted), then
   * the tree is walked and removed children first, so an interrupted revocation never leaves a
   * usable child; each one's leases go through the lease hooks.
   */
  async revokeTree(entry: TokenEntry): Promise<number> {
    if (!(await this.markRevocationPending(entry.hmac))) return 0;
    let count = 0;
    const stack: string[] = [entry.hmac];
    const order: string[] = [];
    while (stack.length) {
      const h = stack.pop()!;
      order.push(h);
      stack.push(...(await this.children(h)));
    }
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
    await this.storage.delete(await this.accessorKey(e.accessor));
    if (e.parent) await this.storage.delete(`parent/${e.parent}/${e.hmac}`);
    // A request that looked the token up before its mark may have opened a lease since the first
    // sweep; with the entry gone no new one can start, so one more sweep catches the stragglers.
    if (this.leaseHooks) await this.leaseHooks.sweep(e.accessor);
  }

  /**
   * `auth/token/tidy`: removes what a crash or an interrupted revocation can leave behind. Expired
   * tokens and tokens left revocation-pending are revoked (with their trees and leases); a token
   * whose parent is gone is revoked (it is unusable already, see `usable`); accessor entries with
   * no token are deleted after their leases are swept; parent index entries with no child are
   * deleted. A last use still in flight is pending too: its token is revoked a little early, which
   * is what its request does when it ends.
   */
  async tidy(): Promise<{ revokedTokens: number; danglingAccessors: number; danglingParentEntries: number }> {
    const out = { revokedTokens: 0, danglingAccessors: 0, danglingParentEntries: 0 };
    const now = Date.now();
    for (const key of (await this.storage.list("id/")).filter((k) => !k.endsWith("/"))) {
      const e = await this.getByHmac(key);
      if (!e) continue;
      const parentGone = e.parent !== null && !(await this.getByHmac(e.parent));
      if (e.numUses === REVOCATION_PENDING || (e.expireTime !== null && e.expireTime <= now) || parentGone) out.revokedTokens += await this.revokeTree(e);
    }
    for (const ref of await this.accessorIndex()) {
      if (ref.hmac && (await this.getByHmac(ref.hmac))) continue;
      if (this.leaseHooks && ref.hmac) await this.leaseHooks.sweep(ref.accessor ?? ref.key);
      await this.storage.delete(`accessor/${ref.key}`);
      out.danglingAccessors++;
    }
    for (const parent of (await this.storage.list("parent/")).filter((k) => k.endsWith("/"))) {
      for (const child of await this.children(parent.slice(0, -1))) {
        if (await this.getByHmac(child)) continue;
        await this.storage.delete(`parent/${parent}${child}`);
        out.danglingParentEntries++;
      }
    }
    return out;
  }

  /**
   * The accessor index as stored: each entry's storage key (under `accessor/`), the token's HMAC and
   * the accessor itself (absent in entries written in clear by older versions, whose key is the
   * accessor). An entry that cannot be read has no `hmac`.
   */
  async accessorIndex(): Promise<{ key: string; hmac?: string; accessor?: string }[]> {
    const out: { key: string; hmac?: string; accessor?: string }[] = [];
    for (const key of (await this.storage.list("accessor/")).filter((k) => !k.endsWith("/"))) {
      const ref = await this.storage.getJSON<{ hmac: string; accessor?: string }>(`accessor/${key}`);
      out.push({ key, hmac: ref?.hmac, accessor: ref?.accessor });
    }
    return out;
  }

  /** Every token's accessor (the index is keyed by HMAC; each entry holds the accessor itself). */
  async listAccessors(): Promise<string[]> {
    return (await this.accessorIndex()).flatMap((r) => (r.accessor ? [r.accessor] : [])).sort();
  }

  /**
   * Moves accessor index entries written in clear (`accessor/<accessor>`, before the index was
   * keyed by HMAC) to their HMAC keys. Run once after unseal; returns how many were moved.
   */
  async migrateAccessorIndex(): Promise<number> {
    let moved = 0;
    for (const ref of await this.accessorIndex()) {
      if (!ref.hmac || ref.accessor) continue;
      await this.storage.putJSON(await this.accessorKey(ref.key), { hmac: ref.hmac, accessor: ref.key });
      await this.storage.delete(`accessor/${ref.key}`);
      moved++;
    }
    return moved;
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
