import { createHmac, randomBytes } from "node:crypto";
import type { LeaseFilter, LeaseRow, LeaseState, LeaseStore } from "../../storage/types.js";

/** Where the index key lives: a barrier view (the key is only readable once unsealed). */
export interface IndexKeyStorage {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, value: Buffer): Promise<void>;
}

/** Seals and opens the creator fields (the barrier; the lease id is authenticated with the data). */
export interface CreatorCipher {
  encrypt(path: string, plaintext: Buffer): Buffer;
  decrypt(path: string, ciphertext: Buffer): Buffer;
}

const KEY_NAME = "creator-index-key";
/** Rows converted per transaction at unseal. */
const CONVERT_BATCH = 500;
/** Creators whose index values are kept (a token opens many leases; each HMAC costs ~5 µs). */
const INDEX_CACHE_SIZE = 1024;

/** The creator fields as they are sealed in the `creator` column. */
interface SealedCreator {
  token_accessor: string;
  display_name: string;
  metadata: Record<string, string>;
}

type CreatorPatchKeys = "token_accessor" | "display_name" | "metadata" | "creator";
const CREATOR_COLUMNS: readonly CreatorPatchKeys[] = ["token_accessor", "display_name", "metadata", "creator"];

function parseMetadata(json: string): Record<string, string> {
  try {
    const parsed = JSON.parse(json) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  } catch {
    return {};
  }
}

/**
 * The lease table as the rest of the core sees it, with the creator token's accessor, display name
 * and metadata in clear, while the table holds none of them: a copy of the SQLite file must not
 * hand out accessors (handles for `lookup-accessor`/`revoke-accessor`) or the user names and hosts
 * of token metadata.
 *
 * In the table, `token_accessor` and `display_name` are HMAC-SHA256 values under a key kept in the
 * barrier (indexed, so revoking a token's leases stays an index lookup), `metadata` is the list of
 * HMAC tags of its `key=value` pairs (a selector's pairs match by tag), and `creator` holds the
 * clear values sealed with AES-GCM by the barrier, for the listings that show them.
 */
export class CreatorSealingStore implements LeaseStore {
  private key?: Promise<Buffer>;
  /** Index values (HMACs, tags) by creator, most recent last. Cleared with the key. */
  private readonly indexCache = new Map<string, { token_accessor: string; display_name: string; metadata: string }>();
  /** Resolves once rows written before sealing are converted; filters on creator fields wait for it. */
  private converted: Promise<unknown> = Promise.resolve();

  constructor(
    /** The physical lease table. */
    readonly raw: LeaseStore,
    private readonly cipher: CreatorCipher,
    private readonly keys: IndexKeyStorage,
  ) {}

  // ---- keys ------------------------------------------------------------------------------

  /** The index key: read from the barrier on first use after unseal, created the first time ever. */
  private indexKey(): Promise<Buffer> {
    this.key ??= (async () => {
      let k = await this.keys.get(KEY_NAME);
      if (!k) {
        k = randomBytes(32);
        await this.keys.put(KEY_NAME, k);
      }
      return k;
    })().catch((err: unknown) => {
      this.key = undefined; // sealed or a storage error: try again next time
      throw err;
    });
    return this.key;
  }

  /** Forgets the key (seal). */
  forget(): void {
    this.key = undefined;
    this.indexCache.clear();
  }

  private static mac(key: Buffer, domain: string, value: string): string {
    // Each field has its own domain: an accessor's HMAC never equals a display name's.
    return createHmac("sha256", key).update(domain).update("\0").update(value, "utf8").digest("base64url");
  }

  private static tags(key: Buffer, metadata: Record<string, string>): string {
    const tags = Object.entries(metadata).map(([k, v]) => CreatorSealingStore.mac(key, "metadata", JSON.stringify([k, v])));
    return tags.length ? ` ${tags.join(" ")} ` : "";
  }

  private static sealPath(id: string): string {
    return `lease-creator/${id}`;
  }

  private async stored(id: string, c: SealedCreator): Promise<{ token_accessor: string; display_name: string; metadata: string; creator: Buffer }> {
    const key = await this.indexKey();
    const json = JSON.stringify(c);
    let index = this.indexCache.get(json);
    if (index) this.indexCache.delete(json);
    else {
      index = {
        // Empty stays empty: "no creator" (leases opened by the system) is not a secret.
        token_accessor: c.token_accessor ? CreatorSealingStore.mac(key, "accessor", c.token_accessor) : "",
        display_name: c.display_name ? CreatorSealingStore.mac(key, "display_name", c.display_name) : "",
        metadata: CreatorSealingStore.tags(key, c.metadata),
      };
      if (this.indexCache.size >= INDEX_CACHE_SIZE) this.indexCache.delete(this.indexCache.keys().next().value!);
    }
    this.indexCache.set(json, index);
    // The sealed copy is per lease: the lease id is authenticated with it.
    return { ...index, creator: this.cipher.encrypt(CreatorSealingStore.sealPath(id), Buffer.from(json, "utf8")) };
  }

  private open(row: LeaseRow): LeaseRow {
    const { creator, ...rest } = row;
    // NULL: written before creator fields were sealed and not converted yet; the columns are clear.
    if (!creator) return rest;
    const c = JSON.parse(this.cipher.decrypt(CreatorSealingStore.sealPath(row.id), creator).toString("utf8")) as SealedCreator;
    return { ...rest, token_accessor: c.token_accessor, display_name: c.display_name, metadata: JSON.stringify(c.metadata) };
  }

  private async storedFilter(f: LeaseFilter): Promise<LeaseFilter> {
    if (f.tokenAccessor === undefined && f.displayName === undefined && f.metadata === undefined) return f;
    await this.converted;
    const key = await this.indexKey();
    const out: LeaseFilter = { ...f };
    if (f.tokenAccessor !== undefined) out.tokenAccessor = f.tokenAccessor ? CreatorSealingStore.mac(key, "accessor", f.tokenAccessor) : "";
    if (f.displayName !== undefined) out.displayName = f.displayName ? CreatorSealingStore.mac(key, "display_name", f.displayName) : "";
    if (f.metadata !== undefined) {
      delete out.metadata;
      out.metadataTags = [...(f.metadataTags ?? []), ...Object.entries(f.metadata).map(([k, v]) => CreatorSealingStore.mac(key, "metadata", JSON.stringify([k, v])))];
    }
    return out;
  }

  // ---- conversion at unseal ----------------------------------------------------------------

  /**
   * Converts rows whose creator fields are still in clear (written by an older version): HMACs and
   * the sealed copy replace them, in batches; the freed bytes are overwritten and the file is
   * compacted afterwards. Selectors on creator fields wait until it is done. Returns the count.
   */
  convertLegacy(): Promise<number> {
    const run = (async () => {
      let n = 0;
      for (;;) {
        const rows = await this.raw.legacyCreators(CONVERT_BATCH);
        if (!rows.length) break;
        const out = [];
        for (const r of rows) {
          out.push({ id: r.id, ...(await this.stored(r.id, { token_accessor: r.token_accessor, display_name: r.display_name, metadata: parseMetadata(r.metadata) })) });
        }
        await this.raw.rewriteCreators(out, false);
        n += rows.length;
      }
      if (n) await this.raw.rewriteCreators([], true);
      return n;
    })();
    this.converted = run.catch(() => undefined);
    return run;
  }

  // ---- LeaseStore --------------------------------------------------------------------------

  async insert(row: LeaseRow): Promise<void> {
    const c: SealedCreator = { token_accessor: row.token_accessor, display_name: row.display_name, metadata: parseMetadata(row.metadata) };
    await this.raw.insert({ ...row, ...(await this.stored(row.id, c)) });
  }

  async get(id: string): Promise<LeaseRow | undefined> {
    const row = await this.raw.get(id);
    return row && this.open(row);
  }

  async update(id: string, patch: Partial<Omit<LeaseRow, "id">>): Promise<void> {
    CreatorSealingStore.refuseCreatorPatch(patch);
    await this.raw.update(id, patch);
  }

  delete(id: string): Promise<boolean> {
    return this.raw.delete(id);
  }

  async getMany(ids: readonly string[]): Promise<LeaseRow[]> {
    return (await this.raw.getMany(ids)).map((row) => this.open(row));
  }

  async updateMany(ids: readonly string[], patch: Partial<Omit<LeaseRow, "id">>): Promise<void> {
    CreatorSealingStore.refuseCreatorPatch(patch);
    await this.raw.updateMany(ids, patch);
  }

  deleteMany(ids: readonly string[]): Promise<string[]> {
    return this.raw.deleteMany(ids);
  }

  /** The creator is fixed when a lease is opened; nothing rewrites it (and a clear value must not slip in). */
  private static refuseCreatorPatch(patch: Partial<Omit<LeaseRow, "id">>): void {
    const bad = CREATOR_COLUMNS.filter((c) => c in patch);
    if (bad.length) throw new Error(`lease store: creator fields cannot be updated (${bad.join(", ")})`);
  }

  due(until: number, limit: number): Promise<{ id: string; due_at: number }[]> {
    return this.raw.due(until, limit);
  }

  async select(filter: LeaseFilter, after: string, limit: number): Promise<string[]> {
    return this.raw.select(await this.storedFilter(filter), after, limit);
  }

  async count(filter: LeaseFilter): Promise<number> {
    return this.raw.count(await this.storedFilter(filter));
  }

  stats(): Promise<{ byState: Record<string, number>; byMount: Record<string, number> }> {
    return this.raw.stats();
  }

  countsByMountAndState(): Promise<{ mount: string; state: string; n: number }[]> {
    return this.raw.countsByMountAndState();
  }

  inState(state: LeaseState, after: string, limit: number): Promise<string[]> {
    return this.raw.inState(state, after, limit);
  }

  legacyCreators(limit: number): Promise<LeaseRow[]> {
    return this.raw.legacyCreators(limit);
  }

  rewriteCreators(rows: { id: string; token_accessor: string; display_name: string; metadata: string; creator: Buffer }[], finish: boolean): Promise<void> {
    return this.raw.rewriteCreators(rows, finish);
  }
}
