import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { UserError } from "../../../src/sdk/index.js";
import type { DatabasePlugin, DatabasePluginFactory } from "../../../src/sdk/index.js";
import type { ConnectionConfig, DatabaseStore } from "./store.js";

/** A config with its initialised plugin instance (and its connection pool). */
export interface LiveConnection {
  name: string;
  config: ConnectionConfig;
  factory: DatabasePluginFactory;
  plugin: DatabasePlugin;
  rootUsername?: string;
}

/**
 * Whether `username` is the config's root user: the user the plugin logs in as (for PostgreSQL,
 * read from `connection_url` itself, where a `user` parameter or the URL's user wins over the
 * `username` field) or the one the `username` field names. Compared exactly: leasehold always
 * quotes the name it puts into SQL, and PostgreSQL compares quoted role names and the login name
 * byte for byte (only unquoted identifiers fold to lower case). Names longer than the plugin's
 * limit, which PostgreSQL would cut down to another name, are refused before this (static role writes).
 */
export function isRootUser(live: Pick<LiveConnection, "config" | "rootUsername">, username: string): boolean {
  const field = live.config.connection_details.username;
  return username === live.rootUsername || (typeof field === "string" && field !== "" && username === field);
}

/** What a lease keeps to revoke its user when the config is gone. Encrypted with the lease. */
export interface ConnectionSnapshot {
  plugin_name: string;
  connection_details: Record<string, unknown>;
}

/** How long a connection built from a lease snapshot stays open after its last use. */
const ORPHAN_IDLE_MS = 30_000;

/**
 * How long a replaced instance stays open: requests that picked it up just before a config write,
 * reset or rotate-root finish on it instead of failing on a closed pool.
 */
const RETIRE_GRACE_MS = 5_000;

/**
 * One plugin instance per config, created on first use and replaced when the config changes,
 * is reset, rotates its root password or is deleted (the old pool is closed). Leases whose config
 * is gone get short-lived instances from the config's tombstone or their own snapshot.
 */
export class ConnectionRegistry {
  private readonly live = new Map<string, Promise<LiveConnection | undefined>>();
  private readonly orphans = new Map<string, { plugin: Promise<DatabasePlugin>; users: number; timer?: NodeJS.Timeout }>();
  private readonly retiring = new Map<DatabasePlugin, NodeJS.Timeout>();

  constructor(private readonly deps: { store: DatabaseStore; plugins: ReadonlyMap<string, DatabasePluginFactory>; logger: Logger }) {}

  factory(pluginName: string): DatabasePluginFactory {
    const f = this.deps.plugins.get(pluginName);
    if (!f) throw new UserError(`unknown plugin_name ${JSON.stringify(pluginName)}; available: ${[...this.deps.plugins.keys()].join(", ")}`);
    return f;
  }

  /** A new initialised instance (not registered). */
  async instance(name: string, factory: DatabasePluginFactory, details: Record<string, unknown>, verifyConnection: boolean): Promise<{ plugin: DatabasePlugin; details: Record<string, unknown>; rootUsername?: string }> {
    const plugin = factory.create({ configName: name, logger: this.deps.logger });
    try {
      const init = await plugin.initialize({ details, verifyConnection });
      return { plugin, details: init.details, rootUsername: init.rootUsername };
    } catch (err) {
      await plugin.close().catch(() => undefined);
      throw err;
    }
  }

  /** The live connection of a config, or undefined when there is no such config. */
  get(name: string): Promise<LiveConnection | undefined> {
    let p = this.live.get(name);
    if (!p) {
      p = this.open(name);
      this.live.set(name, p);
      const mine = p;
      // A failed start is not cached: the next request tries again.
      p.then(
        (c) => {
          if (!c && this.live.get(name) === mine) this.live.delete(name);
        },
        () => {
          if (this.live.get(name) === mine) this.live.delete(name);
        },
      );
    }
    return p;
  }

  private async open(name: string): Promise<LiveConnection | undefined> {
    const config = await this.deps.store.config(name);
    if (!config) return undefined;
    const factory = this.factory(config.plugin_name);
    if (config.pending_root_password !== undefined) return this.recoverRootRotation(name, config, factory);
    const inst = await this.instance(name, factory, config.connection_details, false);
    return { name, config, factory, plugin: inst.plugin, rootUsername: inst.rootUsername };
  }

  /**
   * A rotate-root was interrupted between changing the password in the database and confirming it:
   * whichever of the two passwords logs in is the root password now.
   */
  private async recoverRootRotation(name: string, config: ConnectionConfig, factory: DatabasePluginFactory): Promise<LiveConnection> {
    const { pending_root_password: pending, ...settled } = config;
    const candidates: ConnectionConfig[] = [
      { ...settled, connection_details: { ...settled.connection_details, password: pending } },
      settled,
    ];
    for (const candidate of candidates) {
      try {
        const inst = await this.instance(name, factory, candidate.connection_details, true);
        await this.deps.store.putConfig(name, candidate);
        this.deps.logger.warn({ config: name, kept: candidate === settled ? "old" : "new" }, "finished an interrupted root credential rotation");
        return { name, config: candidate, factory, plugin: inst.plugin, rootUsername: inst.rootUsername };
      } catch {
        // try the other password
      }
    }
    // Neither logs in now (the database may be down): keep both and decide on a later start.
    const inst = await this.instance(name, factory, config.connection_details, false);
    return { name, config, factory, plugin: inst.plugin, rootUsername: inst.rootUsername };
  }

  /** Installs a new instance for a config; the old one is closed after a grace period. */
  async replace(live: LiveConnection): Promise<void> {
    const old = this.live.get(live.name);
    this.live.set(live.name, Promise.resolve(live));
    await this.retire(old);
  }

  /** Forgets a config's instance (delete, reset); it is closed after a grace period. */
  async drop(name: string): Promise<void> {
    const old = this.live.get(name);
    this.live.delete(name);
    await this.retire(old);
  }

  private async retire(p: Promise<LiveConnection | undefined> | undefined): Promise<void> {
    const c = await p?.catch(() => undefined);
    if (!c || this.retiring.has(c.plugin)) return;
    const timer = setTimeout(() => {
      this.retiring.delete(c.plugin);
      void c.plugin.close().catch(() => undefined);
    }, RETIRE_GRACE_MS);
    timer.unref?.();
    this.retiring.set(c.plugin, timer);
  }

  private async closeQuietly(p: Promise<LiveConnection | undefined> | undefined): Promise<void> {
    const c = await p?.catch(() => undefined);
    await c?.plugin.close().catch(() => undefined);
  }

  /**
   * The instance to renew or revoke a lease with: the live config when it still exists (its root
   * password may have been rotated since), else the deleted config's tombstone, else the lease's
   * own snapshot. `release` must be called when done.
   */
  async forLease(dbName: string, snapshot: ConnectionSnapshot): Promise<{ plugin: DatabasePlugin; release(): void }> {
    const live = await this.get(dbName);
    if (live && live.config.plugin_name === snapshot.plugin_name) return { plugin: live.plugin, release: () => undefined };
    const tomb = live ? undefined : await this.deps.store.tombstone(dbName);
    const source = tomb && tomb.plugin_name === snapshot.plugin_name ? tomb : snapshot;
    const key = createHash("sha256").update(JSON.stringify([dbName, source.plugin_name, source.connection_details])).digest("hex");
    let entry = this.orphans.get(key);
    if (!entry) {
      const factory = this.factory(source.plugin_name);
      const plugin = this.instance(dbName, factory, source.connection_details, false).then((i) => i.plugin);
      entry = { plugin, users: 0 };
      this.orphans.set(key, entry);
      plugin.catch(() => this.orphans.delete(key));
    }
    const e = entry;
    e.users++;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    const release = () => {
      if (--e.users > 0) return;
      e.timer = setTimeout(() => {
        if (this.orphans.get(key) !== e || e.users > 0) return;
        this.orphans.delete(key);
        void e.plugin.then((p) => p.close()).catch(() => undefined);
      }, ORPHAN_IDLE_MS);
      e.timer.unref?.();
    };
    try {
      return { plugin: await e.plugin, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  async closeAll(): Promise<void> {
    const lives = [...this.live.values()];
    this.live.clear();
    const orphans = [...this.orphans.values()];
    this.orphans.clear();
    for (const o of orphans) if (o.timer) clearTimeout(o.timer);
    const retiring = [...this.retiring.entries()];
    this.retiring.clear();
    for (const [, timer] of retiring) clearTimeout(timer);
    await Promise.all([
      ...retiring.map(([plugin]) => plugin.close().catch(() => undefined)),
      ...lives.map((p) => this.closeQuietly(p)),
      ...orphans.map((o) => o.plugin.then((p) => p.close()).catch(() => undefined)),
    ]);
  }
}
