import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { NotFound, UserError } from "../sdk/errors.js";
import type { Backend, MountInfo, PluginFactory, StorageView } from "../sdk/types.js";
import type { Barrier } from "./barrier.js";
import { randomBase62 } from "./ids.js";

/** A mount as stored in the mount table (Vault's field names). */
export interface MountEntry {
  path: string;
  type: string;
  description: string;
  accessor: string;
  uuid: string;
  config: { default_lease_ttl: number; max_lease_ttl: number };
  options: Record<string, string>;
  local: boolean;
  seal_wrap: boolean;
  /** Set for built-in mounts (`sys/`, `auth/token/`) that cannot be disabled or moved. */
  builtin?: boolean;
  /**
   * Names the storage view when it is not `uuid`: an options change that rewrites the data (KV 1
   * to 2) copies it into a fresh view and then switches, so a crash never leaves it half-converted.
   */
  storage_id?: string;
  /** Views to delete at the next load: a copy abandoned by a crash, or the view a switch left behind. */
  stale_views?: string[];
}

export interface LiveMount {
  entry: MountEntry;
  backend: Backend;
  storage: StorageView;
  info: MountInfo;
  kind: "secrets" | "auth";
}

/** A live mount as the table holds it: its storage can be closed for a data rewrite. */
interface TableMount extends LiveMount {
  storage: MountStorage;
}

/** What tune accepts; `undefined` keeps a setting, a TTL of 0 means "the system's". */
export interface TunePatch {
  default_lease_ttl?: number;
  max_lease_ttl?: number;
  description?: string;
  options?: Record<string, string>;
}

/** Vault's answer while a mount's data is being rewritten (its KV upgrade check). */
const UPGRADING_MESSAGE = "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.";

/** Stands in for a mount's engine while its data is rewritten: reads find nothing, writes are refused. */
const UPGRADING_BACKEND: Backend = {
  paths: [
    {
      pattern: ".*",
      operations: {
        read: { handler: async () => { throw new NotFound(); } },
        list: { handler: async () => { throw new NotFound(); } },
        create: { handler: async () => { throw new UserError(UPGRADING_MESSAGE); } },
        update: { handler: async () => { throw new UserError(UPGRADING_MESSAGE); } },
        patch: { handler: async () => { throw new UserError(UPGRADING_MESSAGE); } },
        delete: { handler: async () => { throw new UserError(UPGRADING_MESSAGE); } },
      },
    },
  ],
};

/**
 * A mount's storage view that can be closed: writes already started are awaited, later ones are
 * refused. A request that reached the engine just before its data is copied elsewhere must not
 * write into the old view after the copy has read it.
 */
class MountStorage implements StorageView {
  private pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(readonly inner: StorageView) {}

  private write<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new UserError(UPGRADING_MESSAGE));
    const p = op();
    this.pending.add(p);
    const done = () => this.pending.delete(p);
    p.then(done, done);
    return p;
  }

  /** Refuses further writes and resolves once the writes under way have finished. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  get(key: string) {
    return this.inner.get(key);
  }
  getJSON<T>(key: string) {
    return this.inner.getJSON<T>(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  put(key: string, value: Buffer) {
    return this.write(() => this.inner.put(key, value));
  }
  putJSON(key: string, value: unknown) {
    return this.write(() => this.inner.putJSON(key, value));
  }
  delete(key: string) {
    return this.write(() => this.inner.delete(key));
  }
  withLock<T>(key: string, fn: () => Promise<T>) {
    return this.inner.withLock(key, fn);
  }
}

/** Vault parses the `version` option as an integer, the empty string being 0. */
function optionVersion(raw: string | undefined): number {
  const s = (raw ?? "").trim();
  if (s === "") return 0;
  if (!/^[+-]?\d+$/.test(s)) throw new UserError(`unable to parse options: invalid version ${JSON.stringify(raw)}`);
  return Number(s);
}

/** Paths no secrets engine may take. */
const RESERVED = ["sys/", "auth/", "audit/", "identity/", "cubbyhole/"];

/** Validates and normalises a mount path: no leading slash, trailing slash, no empty or dot segments. */
export function normaliseMountPath(path: string): string {
  let p = path.trim().replace(/^\/+/, "");
  if (!p.endsWith("/")) p += "/";
  const segments = p.slice(0, -1).split("/");
  if (p === "/" || segments.some((s) => s === "" || s === "." || s === "..")) throw new UserError(`invalid mount path ${JSON.stringify(path)}`);
  if (!/^[A-Za-z0-9_.\-/]+$/.test(p)) throw new UserError(`invalid mount path ${JSON.stringify(path)}: use letters, digits, '_', '-', '.' and '/'`);
  if (p.length > 256) throw new UserError("mount path too long");
  return p;
}

/**
 * The mount table: secrets engines at `<path>/` and auth methods at `auth/<path>/`, persisted in
 * the barrier, each with its own storage view. Resolves a request path by longest prefix.
 */
export class MountTable {
  private mounts = new Map<string, TableMount>();
  /** Entries of the stored table whose type this build does not know (see `load`). */
  private readonly unavailable = new Map<string, { entry: MountEntry; kind: "secrets" | "auth" }>();
  /** Serialises tune and disable per mount path: an options change may take a while. */
  private busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly barrier: Barrier,
    private readonly plugins: Map<string, PluginFactory>,
    private readonly builtins: { entry: MountEntry; kind: "secrets" | "auth"; backend: Backend }[],
    private readonly logger: Logger,
    private readonly systemTtl: { defaultLeaseTtl: number; maxLeaseTtl: number },
  ) {
    // The built-in mounts are always present, sealed or not: `sys/health`, `sys/init` and
    // `sys/unseal` must resolve before the first unseal and after `sys/seal`.
    this.resetToBuiltins();
  }

  private resetToBuiltins(): void {
    this.mounts.clear();
    this.unavailable.clear();
    for (const b of this.builtins) this.mounts.set(b.entry.path, this.live(b.entry, b.kind, b.backend));
  }

  private tableKey(kind: "secrets" | "auth"): string {
    return kind === "secrets" ? "core/mounts" : "core/auth";
  }

  /** Loads both tables and instantiates every backend (at unseal). */
  async load(): Promise<void> {
    this.resetToBuiltins();
    for (const kind of ["secrets", "auth"] as const) {
      const raw = await this.barrier.get(this.tableKey(kind));
      const entries: MountEntry[] = raw ? JSON.parse(raw.toString("utf8")) : [];
      for (const entry of entries) {
        const factory = this.plugins.get(entry.type);
        if (!factory) {
          // Kept in the table (and its path taken), so the next change to the table does not drop
          // it and orphan its data; it comes back once a build knows its type again.
          this.logger.error({ mount: entry.path, type: entry.type }, "mount has an unknown type; it stays unavailable");
          this.unavailable.set(entry.path, { entry, kind });
          continue;
        }
        const info = this.infoOf(entry);
        this.mounts.set(entry.path, this.live(entry, kind, await factory.create(this.contextFor(entry, kind, info)), info));
      }
      await this.purgeStaleViews(kind, entries);
    }
  }

  /** Deletes the views a crash left behind (see `MountEntry.stale_views`). */
  private async purgeStaleViews(kind: "secrets" | "auth", entries: MountEntry[]): Promise<void> {
    let changed = false;
    for (const entry of entries) {
      for (const id of entry.stale_views ?? []) {
        try {
          await this.purge(this.viewById(id, kind));
          entry.stale_views = (entry.stale_views ?? []).filter((v) => v !== id);
          changed = true;
        } catch (err) {
          this.logger.warn({ err, mount: entry.path }, "could not delete a mount's abandoned storage; retrying at the next unseal");
        }
      }
      if (entry.stale_views?.length === 0) delete entry.stale_views;
    }
    if (changed) await this.persist(kind);
  }

  /** Closes every engine (at seal); the built-in mounts stay so the seal endpoints still resolve. */
  async unload(): Promise<void> {
    for (const m of this.mounts.values()) {
      if (m.entry.builtin) continue;
      await m.backend.close?.().catch((e) => this.logger.warn({ err: e, mount: m.entry.path }, "closing backend failed"));
    }
    this.resetToBuiltins();
  }

  private viewById(id: string, kind: "secrets" | "auth"): StorageView {
    return this.barrier.view(`${kind === "secrets" ? "logical" : "auth"}/${id}/`);
  }

  private storageFor(entry: MountEntry, kind: "secrets" | "auth"): MountStorage {
    return new MountStorage(this.viewById(entry.storage_id ?? entry.uuid, kind));
  }

  infoOf(entry: MountEntry): MountInfo {
    return {
      path: entry.path,
      type: entry.type,
      accessor: entry.accessor,
      uuid: entry.uuid,
      description: entry.description,
      config: this.effectiveTtls(entry),
      options: entry.options,
    };
  }

  /** Mount TTLs with zeros replaced by the system defaults. */
  effectiveTtls(entry: MountEntry): { defaultLeaseTtl: number; maxLeaseTtl: number } {
    return {
      defaultLeaseTtl: entry.config.default_lease_ttl || this.systemTtl.defaultLeaseTtl,
      maxLeaseTtl: entry.config.max_lease_ttl || this.systemTtl.maxLeaseTtl,
    };
  }

  /**
   * The engine gets the same `MountInfo` object its requests carry, so a tune (TTLs, options) is
   * seen by both.
   */
  private contextFor(entry: MountEntry, kind: "secrets" | "auth", info: MountInfo) {
    return { mount: info, storage: this.storageFor(entry, kind), logger: this.logger.child({ mount: entry.path }) };
  }

  private live(entry: MountEntry, kind: "secrets" | "auth", backend: Backend, info = this.infoOf(entry)): TableMount {
    return { entry, backend, storage: this.storageFor(entry, kind), info, kind };
  }

  /** Runs `fn` after any tune or disable of the same mount has finished. */
  private exclusive<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(path) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.busy.set(path, tail);
    void tail.then(() => {
      if (this.busy.get(path) === tail) this.busy.delete(path);
    });
    return next;
  }

  /** Longest-prefix match of a request path (without `/v1/`). */
  resolve(path: string): LiveMount | undefined {
    let best: LiveMount | undefined;
    for (const [prefix, m] of this.mounts) {
      if ((path.startsWith(prefix) || path + "/" === prefix) && (!best || prefix.length > best.entry.path.length)) best = m;
    }
    return best;
  }

  list(kind: "secrets" | "auth"): MountEntry[] {
    return [...this.mounts.values()].filter((m) => m.kind === kind).map((m) => m.entry).sort((a, b) => a.path.localeCompare(b.path));
  }

  get(path: string): LiveMount | undefined {
    return this.mounts.get(path);
  }

  /** Enables a new mount. `path` is already normalised (auth mounts include the `auth/` prefix). */
  async enable(
    kind: "secrets" | "auth",
    path: string,
    spec: { type: string; description?: string; config?: { default_lease_ttl?: number; max_lease_ttl?: number }; options?: Record<string, string>; local?: boolean; seal_wrap?: boolean },
  ): Promise<MountEntry> {
    const factory = this.plugins.get(spec.type);
    if (!factory || factory.kind !== kind) {
      const known = [...this.plugins.values()].filter((p) => p.kind === kind).map((p) => p.type).sort();
      throw new UserError(`plugin not found in the catalog: ${spec.type} (available ${kind === "secrets" ? "secrets engines" : "auth methods"}: ${known.join(", ")})`);
    }
    if (kind === "secrets" && RESERVED.some((r) => path.startsWith(r))) throw new UserError(`cannot mount under reserved path ${JSON.stringify(path)}`);
    for (const existing of [...this.mounts.keys(), ...this.unavailable.keys()]) {
      if (existing.startsWith(path) || path.startsWith(existing)) {
        throw new UserError(`path is already in use at ${existing}`);
      }
    }
    const config = { default_lease_ttl: spec.config?.default_lease_ttl ?? 0, max_lease_ttl: spec.config?.max_lease_ttl ?? 0 };
    // Vault's rules at enable: a mount's own max may exceed the system's (a CA mount for ten
    // years); only a default above the max that will apply is refused.
    if (config.max_lease_ttl !== 0 && config.default_lease_ttl > config.max_lease_ttl) {
      throw new UserError("given default lease TTL greater than given max lease TTL");
    }
    if (config.max_lease_ttl === 0 && config.default_lease_ttl > this.systemTtl.maxLeaseTtl) {
      throw new UserError(`given default lease TTL greater than system max lease TTL of ${this.systemTtl.maxLeaseTtl}`);
    }
    const entry: MountEntry = {
      path,
      type: spec.type,
      description: spec.description ?? "",
      accessor: `${spec.type}_${randomBase62(8).toLowerCase()}`,
      uuid: randomUUID(),
      config,
      options: spec.options ?? {},
      local: spec.local ?? false,
      seal_wrap: spec.seal_wrap ?? false,
    };
    const info = this.infoOf(entry);
    const backend = await factory.create(this.contextFor(entry, kind, info));
    this.mounts.set(path, this.live(entry, kind, backend, info));
    await this.persist(kind);
    return entry;
  }

  /**
   * Updates a mount's TTLs, description and options, with Vault's rules: the TTLs are checked
   * against each other only when both are set (0 = the system's; a mount's max may exceed the
   * system max), and an options change that needs the data rewritten (KV 1 to 2) does it before
   * answering. Returns warnings for the response.
   */
  async tune(path: string, patch: TunePatch): Promise<string[]> {
    return this.exclusive(path, async () => {
      const m = this.mounts.get(path);
      if (!m) throw new UserError(`tune of path ${JSON.stringify(path)} failed: no mount entry found`);
      const config = {
        default_lease_ttl: patch.default_lease_ttl ?? m.entry.config.default_lease_ttl,
        max_lease_ttl: patch.max_lease_ttl ?? m.entry.config.max_lease_ttl,
      };
      if (config.default_lease_ttl !== 0 && config.max_lease_ttl !== 0 && config.max_lease_ttl < config.default_lease_ttl) {
        throw new UserError(`backend max lease TTL of ${config.max_lease_ttl} would be less than backend default lease TTL of ${config.default_lease_ttl}`);
      }
      const options = patch.options && Object.keys(patch.options).length > 0 ? this.tunedOptions(m.entry.options, patch.options) : undefined;
      const warnings = options?.warning ? [options.warning] : [];

      // Options first: if rewriting the data fails, the tune changes nothing.
      if (options) {
        const migrate = m.entry.builtin ? undefined : this.plugins.get(m.entry.type)?.retune?.(m.entry.options, options.value);
        if (migrate) await this.rewrite(m, options.value, migrate);
        else m.entry.options = options.value;
      }
      m.entry.config = config;
      if (patch.description !== undefined) m.entry.description = patch.description;
      const live = this.mounts.get(path) ?? m;
      Object.assign(live.info, this.infoOf(live.entry));
      if (!live.entry.builtin) await this.persist(live.kind);
      return warnings;
    });
  }

  /**
   * Vault's merge of tuned options: each key given replaces the mount's, an empty value removes it
   * (except `version`), and `version` may go up (1 or 2) but never down.
   */
  private tunedOptions(current: Record<string, string>, given: Record<string, string>): { value: Record<string, string>; warning?: string } {
    let warning: string | undefined;
    if ("version" in given) {
      const from = optionVersion(current.version);
      const to = optionVersion(given.version);
      if (to !== 1 && to !== 2) throw new UserError(`invalid version provided: ${to}`);
      if (from > to) throw new UserError(`cannot downgrade mount from version ${from}`);
      if (from < to) warning = `Upgrading mount from version ${from} to version ${to}. The upgrade is complete.`;
    }
    const value = { ...current };
    for (const [k, v] of Object.entries(given)) {
      if (v === "" && k !== "version") delete value[k];
      else value[k] = v;
    }
    return { value, warning };
  }

  /**
   * Rewrites a mount's data for new options: copies it into a fresh view while the mount answers
   * as Vault does during a KV upgrade, then switches the mount table to the copy in one write.
   * A crash before the switch leaves the mount as it was (the partial copy is deleted at the next
   * load); after it, the old view is deleted.
   */
  private async rewrite(m: TableMount, options: Record<string, string>, migrate: (source: StorageView, target: StorageView) => Promise<void>): Promise<void> {
    const factory = this.plugins.get(m.entry.type);
    if (!factory) throw new UserError(`plugin not found in the catalog: ${m.entry.type}`);
    const entry = m.entry;
    const oldId = entry.storage_id ?? entry.uuid;
    const newId = randomUUID();
    const target = this.viewById(newId, m.kind);
    const oldBackend = m.backend;
    const oldOptions = entry.options;
    const stale = entry.stale_views ?? [];

    entry.stale_views = [...stale, newId];
    try {
      await this.persist(m.kind);
    } catch (err) {
      entry.stale_views = stale.length ? stale : undefined;
      if (!entry.stale_views) delete entry.stale_views;
      throw err;
    }
    // A seal meanwhile empties the table; then the mount is not put back (load rebuilds it).
    const stillLive = () => this.mounts.get(entry.path) === m;
    m.backend = UPGRADING_BACKEND;
    await m.storage.close();
    try {
      await migrate(m.storage.inner, target);
      entry.storage_id = newId;
      entry.options = options;
      entry.stale_views = [...stale, oldId];
      await this.persist(m.kind);
    } catch (err) {
      // Back to the old data, which nothing has changed; the partial copy goes.
      if (oldId === entry.uuid) delete entry.storage_id;
      else entry.storage_id = oldId;
      entry.options = oldOptions;
      if (stillLive()) this.mounts.set(entry.path, { ...m, backend: oldBackend, storage: this.storageFor(entry, m.kind) });
      try {
        await this.purge(target);
        entry.stale_views = stale;
        if (stale.length === 0) delete entry.stale_views;
        await this.persist(m.kind);
      } catch (cleanup) {
        this.logger.warn({ err: cleanup, mount: entry.path }, "could not delete an abandoned copy of a mount's data; retrying at the next unseal");
      }
      throw err;
    }

    const info = m.info;
    Object.assign(info, this.infoOf(entry));
    const backend = await factory.create(this.contextFor(entry, m.kind, info));
    // Should creating the engine throw here, the mount keeps answering as upgrading until the
    // next unseal builds it from the table, which already names the new data.
    if (stillLive()) this.mounts.set(entry.path, this.live(entry, m.kind, backend, info));
    else await backend.close?.().catch(() => undefined);
    await oldBackend.close?.().catch((e) => this.logger.warn({ err: e, mount: entry.path }, "closing backend failed"));
    this.logger.info({ mount: entry.path, options }, "mount options changed; its data was rewritten for them");
    try {
      await this.purge(m.storage.inner);
      entry.stale_views = stale;
      if (stale.length === 0) delete entry.stale_views;
    } catch (err) {
      this.logger.warn({ err, mount: entry.path }, "could not delete a mount's previous data; retrying at the next unseal");
    }
  }

  /** Removes a mount and all its stored data. The caller revokes its leases first. */
  async disable(path: string): Promise<void> {
    return this.exclusive(path, async () => {
      const m = this.mounts.get(path);
      if (!m) throw new NotFound(`no mount at ${path}`);
      if (m.entry.builtin) throw new UserError(`cannot disable the built-in mount ${path}`);
      await m.backend.close?.();
      this.mounts.delete(path);
      await this.persist(m.kind);
      await this.purge(m.storage.inner);
      for (const id of m.entry.stale_views ?? []) await this.purge(this.viewById(id, m.kind));
    });
  }

  private async purge(view: StorageView, prefix = ""): Promise<void> {
    for (const key of await view.list(prefix)) {
      if (key.endsWith("/")) await this.purge(view, prefix + key);
      else await view.delete(prefix + key);
    }
  }

  private async persist(kind: "secrets" | "auth"): Promise<void> {
    const live = [...this.mounts.values()].filter((m) => m.kind === kind && !m.entry.builtin).map((m) => m.entry);
    const unavailable = [...this.unavailable.values()].filter((u) => u.kind === kind).map((u) => u.entry);
    await this.barrier.put(this.tableKey(kind), Buffer.from(JSON.stringify([...live, ...unavailable])));
  }
}
