import { matchesAnyGlob } from "../../../src/sdk/index.js";
import type { StorageView } from "../../../src/sdk/index.js";

/** `config/<name>`: a connection. Encrypted at rest by the barrier, like everything in the view. */
export interface ConnectionConfig {
  plugin_name: string;
  plugin_version: string;
  verify_connection: boolean;
  allowed_roles: string[];
  root_rotation_statements: string[];
  password_policy: string;
  username_template: string;
  /** The plugin's fields, root password included (never returned). */
  connection_details: Record<string, unknown>;
  /** rotate-root in flight: the new root password, kept beside the old one until confirmed. */
  pending_root_password?: string;
}

/** `role/<name>`: a dynamic role. */
export interface RoleEntry {
  db_name: string;
  creation_statements: string[];
  revocation_statements: string[];
  rollback_statements: string[];
  renew_statements: string[];
  default_ttl: number;
  max_ttl: number;
}

/** `static-role/<name>`: a database user whose password the broker rotates. */
export interface StaticRoleEntry {
  db_name: string;
  username: string;
  rotation_period: number;
  rotation_statements: string[];
  /** Current password (empty until the first rotation succeeded). */
  password: string;
  /** ISO time of the last successful rotation. */
  last_vault_rotation: string;
  /** A rotation in flight: the new password, written before PostgreSQL is changed. */
  pending_password?: string;
}

/**
 * `config-tombstone/<name>`: the connection of a deleted config, kept so that leases it issued can
 * still be revoked with the newest root password (a lease's own snapshot may predate a rotate-root).
 */
export interface ConfigTombstone {
  plugin_name: string;
  connection_details: Record<string, unknown>;
}

/** Name rules for configs and roles: they end up in storage keys, lease ids and usernames. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The engine's rows. Configs and dynamic roles are read on every `creds` request, so they are
 * cached; every write goes through here, so the cache stays right.
 */
export class DatabaseStore {
  private readonly configs = new Map<string, ConnectionConfig | null>();
  private readonly roles = new Map<string, RoleEntry | null>();

  constructor(private readonly storage: StorageView) {}

  lock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.storage.withLock(key, fn);
  }

  async config(name: string): Promise<ConnectionConfig | undefined> {
    if (!this.configs.has(name)) this.configs.set(name, (await this.storage.getJSON<ConnectionConfig>(`config/${name}`)) ?? null);
    return this.configs.get(name) ?? undefined;
  }

  async putConfig(name: string, config: ConnectionConfig): Promise<void> {
    await this.storage.putJSON(`config/${name}`, config);
    this.configs.set(name, config);
  }

  async deleteConfig(name: string): Promise<void> {
    await this.storage.delete(`config/${name}`);
    this.configs.set(name, null);
  }

  listConfigs(): Promise<string[]> {
    return this.storage.list("config/");
  }

  tombstone(name: string): Promise<ConfigTombstone | undefined> {
    return this.storage.getJSON<ConfigTombstone>(`config-tombstone/${name}`);
  }

  putTombstone(name: string, t: ConfigTombstone): Promise<void> {
    return this.storage.putJSON(`config-tombstone/${name}`, t);
  }

  deleteTombstone(name: string): Promise<void> {
    return this.storage.delete(`config-tombstone/${name}`);
  }

  async role(name: string): Promise<RoleEntry | undefined> {
    if (!this.roles.has(name)) this.roles.set(name, (await this.storage.getJSON<RoleEntry>(`role/${name}`)) ?? null);
    return this.roles.get(name) ?? undefined;
  }

  async putRole(name: string, role: RoleEntry): Promise<void> {
    await this.storage.putJSON(`role/${name}`, role);
    this.roles.set(name, role);
  }

  async deleteRole(name: string): Promise<void> {
    await this.storage.delete(`role/${name}`);
    this.roles.set(name, null);
  }

  listRoles(): Promise<string[]> {
    return this.storage.list("role/");
  }

  staticRole(name: string): Promise<StaticRoleEntry | undefined> {
    return this.storage.getJSON<StaticRoleEntry>(`static-role/${name}`);
  }

  putStaticRole(name: string, role: StaticRoleEntry): Promise<void> {
    return this.storage.putJSON(`static-role/${name}`, role);
  }

  deleteStaticRole(name: string): Promise<void> {
    return this.storage.delete(`static-role/${name}`);
  }

  listStaticRoles(): Promise<string[]> {
    return this.storage.list("static-role/");
  }
}

/** Vault's `allowed_roles`: names or globs (`*` anywhere); `*` alone allows every role. */
export function roleAllowed(allowed: readonly string[], role: string): boolean {
  return matchesAnyGlob(allowed, role);
}
