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
}

export interface LiveMount {
  entry: MountEntry;
  backend: Backend;
  storage: StorageView;
  info: MountInfo;
  kind: "secrets" | "auth";
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
  private mounts = new Map<string, LiveMount>();

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
          this.logger.error({ mount: entry.path, type: entry.type }, "mount has an unknown type; it stays unavailable");
          continue;
        }
        this.mounts.set(entry.path, this.live(entry, kind, await factory.create(this.contextFor(entry, kind))));
      }
    }
  }

  /** Closes every engine (at seal); the built-in mounts stay so the seal endpoints still resolve. */
  async unload(): Promise<void> {
    for (const m of this.mounts.values()) {
      if (m.entry.builtin) continue;
      await m.backend.close?.().catch((e) => this.logger.warn({ err: e, mount: m.entry.path }, "closing backend failed"));
    }
    this.resetToBuiltins();
  }

  private storageFor(entry: MountEntry, kind: "secrets" | "auth"): StorageView {
    return this.barrier.view(`${kind === "secrets" ? "logical" : "auth"}/${entry.uuid}/`);
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

  private contextFor(entry: MountEntry, kind: "secrets" | "auth") {
    return { mount: this.infoOf(entry), storage: this.storageFor(entry, kind), logger: this.logger.child({ mount: entry.path }) };
  }

  private live(entry: MountEntry, kind: "secrets" | "auth", backend: Backend): LiveMount {
    return { entry, backend, storage: this.storageFor(entry, kind), info: this.infoOf(entry), kind };
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
    for (const existing of this.mounts.keys()) {
      if (existing.startsWith(path) || path.startsWith(existing)) {
        throw new UserError(`path is already in use at ${existing}`);
      }
    }
    const config = { default_lease_ttl: spec.config?.default_lease_ttl ?? 0, max_lease_ttl: spec.config?.max_lease_ttl ?? 0 };
    this.checkTtls(config);
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
    const backend = await factory.create(this.contextFor(entry, kind));
    this.mounts.set(path, this.live(entry, kind, backend));
    await this.persist(kind);
    return entry;
  }

  private checkTtls(config: { default_lease_ttl: number; max_lease_ttl: number }): void {
    const max = config.max_lease_ttl || this.systemTtl.maxLeaseTtl;
    if (config.max_lease_ttl > this.systemTtl.maxLeaseTtl) throw new UserError(`max_lease_ttl cannot be greater than the system max lease TTL (${this.systemTtl.maxLeaseTtl}s)`);
    if (config.default_lease_ttl > max) throw new UserError("default_lease_ttl cannot be greater than max_lease_ttl");
  }

  /** Updates a mount's TTLs (and description). */
  async tune(path: string, patch: { default_lease_ttl?: number; max_lease_ttl?: number; description?: string }): Promise<MountEntry> {
    const m = this.mounts.get(path);
    if (!m) throw new UserError(`no mount at ${path}`);
    const config = {
      default_lease_ttl: patch.default_lease_ttl ?? m.entry.config.default_lease_ttl,
      max_lease_ttl: patch.max_lease_ttl ?? m.entry.config.max_lease_ttl,
    };
    this.checkTtls(config);
    m.entry.config = config;
    if (patch.description !== undefined) m.entry.description = patch.description;
    Object.assign(m.info, this.infoOf(m.entry));
    if (!m.entry.builtin) await this.persist(m.kind);
    return m.entry;
  }

  /** Removes a mount and all its stored data. The caller revokes its leases first. */
  async disable(path: string): Promise<void> {
    const m = this.mounts.get(path);
    if (!m) throw new NotFound(`no mount at ${path}`);
    if (m.entry.builtin) throw new UserError(`cannot disable the built-in mount ${path}`);
    await m.backend.close?.();
    this.mounts.delete(path);
    await this.persist(m.kind);
    await this.purge(m.storage);
  }

  private async purge(view: StorageView, prefix = ""): Promise<void> {
    for (const key of await view.list(prefix)) {
      if (key.endsWith("/")) await this.purge(view, prefix + key);
      else await view.delete(prefix + key);
    }
  }

  private async persist(kind: "secrets" | "auth"): Promise<void> {
    const entries = [...this.mounts.values()].filter((m) => m.kind === kind && !m.entry.builtin).map((m) => m.entry);
    await this.barrier.put(this.tableKey(kind), Buffer.from(JSON.stringify(entries)));
  }
}
