import type { Logger } from "pino";
import type { ZodObject } from "zod";

/**
 * The database plugin contract (modelled on Vault's dbplugin v5): the `database` secrets engine
 * owns configs, roles, leases and schedules; a plugin owns one kind of database and does four
 * things to users there. A MySQL plugin is added by implementing this, without touching the engine.
 *
 * One difference from dbplugin v5: the engine makes the username (from the config's template and
 * the plugin's `usernames` rules) before calling `newUser`, because the lease that will revoke the
 * user must be persisted, with the username in it, before the user exists.
 */
export interface DatabasePluginFactory {
  /** The `plugin_name` of `database/config/:name`, e.g. `postgresql-database-plugin`. */
  readonly name: string;
  readonly description: string;
  /**
   * The plugin's own connection fields (`connection_url`, `max_open_connections`, ...). The engine
   * accepts these keys on `database/config/:name` and hands them to `initialize`, which validates them.
   * By convention the root credentials are `username` and `password` (rotate-root changes `password`).
   */
  readonly connectionSchema: ZodObject;
  /** Username rules: the default template (Vault's template syntax) and the longest name in bytes. */
  readonly usernames: { defaultTemplate: string; maxBytes: number };
  /** Connection details made safe to show (`GET database/config/:name`): no passwords, masked URLs. */
  redact(details: Record<string, unknown>): Record<string, unknown>;
  /** A new, uninitialised instance for one connection config. */
  create(ctx: { configName: string; logger: Logger }): DatabasePlugin;
}

/** A user-changing request the engine sends; statements are templates the plugin renders. */
export interface NewUserRequest {
  username: string;
  /** The plaintext password to give the user (the plugin decides what reaches the database). */
  password: string;
  /** When the credential must stop working (`{{expiration}}`). */
  expiration: Date;
  /** Creation statements; run in one transaction. */
  statements: string[];
  /** Run (best effort) when creation fails. */
  rollbackStatements: string[];
}

export interface UpdateUserRequest {
  username: string;
  /** Change the password (static roles, rotate-root); empty `statements` = the plugin's default. */
  password?: { newPassword: string; statements: string[] };
  /** Move the expiry (lease renewal); empty `statements` = the plugin's default. */
  expiration?: { newExpiration: Date; statements: string[] };
}

export interface DeleteUserRequest {
  username: string;
  /** Revocation statements; empty = the plugin's default. Deleting a missing user succeeds. */
  statements: string[];
}

export interface DatabasePlugin {
  /**
   * Validates the connection details (throw `UserError` for bad ones) and prepares the connection
   * pool; with `verifyConnection` it connects now. Returns the details to store (normalised,
   * defaults filled in) and the root username, when there is one.
   */
  initialize(req: { details: Record<string, unknown>; verifyConnection: boolean }): Promise<{ details: Record<string, unknown>; rootUsername?: string }>;
  newUser(req: NewUserRequest): Promise<void>;
  updateUser(req: UpdateUserRequest): Promise<void>;
  deleteUser(req: DeleteUserRequest): Promise<void>;
  /**
   * Optional, for the orphan sweep: users whose name starts with `prefix` and whose expiry passed
   * before `expiredBefore` (a user left behind by a lease row lost in a crash). Users without an
   * expiry are never listed.
   */
  listExpiredUsers?(req: { prefix: string; expiredBefore: Date }): Promise<string[]>;
  /** Closes the pool. The instance is not used again. */
  close(): Promise<void>;
}

/**
 * What a plugin throws when the database fails or refuses. The message must already be free of
 * secrets (passwords, verifiers, credentials in URLs). `outcome` tells the engine whether the
 * change certainly did not happen (it could not connect, or the database refused and rolled back),
 * which lets a failed `creds` request drop its pending lease at once instead of retrying a
 * revocation against a database that is down.
 */
export class DatabasePluginError extends Error {
  constructor(
    message: string,
    readonly outcome: "not-applied" | "unknown",
    /** `unavailable`: could not reach or lost the database; `refused`: it answered with an error. */
    readonly kind: "unavailable" | "refused",
    /** SQLSTATE or equivalent, when the database answered. */
    readonly dbCode?: string,
  ) {
    super(message);
    this.name = "DatabasePluginError";
  }
}
