import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import { InternalError, NotFound, UserError } from "../../../src/sdk/index.js";
import { isRootUser, type ConnectionRegistry } from "./connections.js";
import { databaseFailure } from "./errors.js";
import { generatePassword } from "./password.js";
import type { DatabaseStore, StaticRoleEntry } from "./store.js";

/** Longest wait before retrying a failed scheduled rotation. */
const MAX_RETRY_MS = 5 * 60_000;

/**
 * Static role rotation: a node-cron tick every second rotates the roles whose period is up, from an
 * in-memory table of due times (loaded at mount, kept current by every write).
 *
 * A rotation writes the new password to storage (as `pending_password`) before changing it in the
 * database, so a crash or an ambiguous failure in between loses nothing: the next attempt sets the
 * same password again, and only then does it become the current one.
 */
export class StaticRotation {
  private readonly due = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly busy = new Set<string>();
  private task?: ScheduledTask;

  constructor(private readonly deps: { store: DatabaseStore; connections: ConnectionRegistry; logger: Logger }) {}

  async start(): Promise<void> {
    for (const name of await this.deps.store.listStaticRoles()) {
      const entry = await this.deps.store.staticRole(name);
      if (entry) this.plan(name, entry);
    }
    this.task = cron.schedule("* * * * * *", () => this.tick(), { noOverlap: true });
  }

  async stop(): Promise<void> {
    await this.task?.stop();
    this.task = undefined;
  }

  /** When a role is rotated next: now for an unfinished rotation, else one period after the last. */
  plan(name: string, entry: StaticRoleEntry): void {
    const unfinished = entry.pending_password !== undefined || !entry.password;
    this.due.set(name, unfinished ? Date.now() : Date.parse(entry.last_vault_rotation) + entry.rotation_period * 1000);
  }

  forget(name: string): void {
    this.due.delete(name);
    this.failures.delete(name);
  }

  /** Seconds until the next scheduled rotation. */
  ttlOf(name: string, entry: StaticRoleEntry): number {
    const next = this.due.get(name) ?? Date.parse(entry.last_vault_rotation) + entry.rotation_period * 1000;
    return Math.max(0, Math.round((next - Date.now()) / 1000));
  }

  private tick(): void {
    const now = Date.now();
    for (const [name, at] of this.due) {
      if (at > now || this.busy.has(name)) continue;
      this.busy.add(name);
      void this.rotate(name)
        .then(() => this.failures.delete(name))
        .catch((err: unknown) => {
          if (err instanceof NotFound) return;
          const n = (this.failures.get(name) ?? 0) + 1;
          this.failures.set(name, n);
          const retryIn = Math.min(MAX_RETRY_MS, 5_000 * 2 ** (n - 1));
          if (this.due.has(name)) this.due.set(name, Date.now() + retryIn);
          this.deps.logger.warn({ static_role: name, attempts: n, retry_in_s: retryIn / 1000, err: err instanceof Error ? err.message : String(err) }, "static role rotation failed; will retry");
        })
        .finally(() => this.busy.delete(name));
    }
  }

  /** Rotates a static role now (rotate-role, schedule). */
  rotate(name: string): Promise<StaticRoleEntry> {
    return this.deps.store.lock(`static-role/${name}`, () => this.rotateLocked(name));
  }

  /** Rotation with the role's lock already held (creation holds it across save and first rotation). */
  async rotateLocked(name: string): Promise<StaticRoleEntry> {
    const { store, connections } = this.deps;
    const entry = await store.staticRole(name);
    if (!entry) {
      this.forget(name);
      throw new NotFound(`no static role named "${name}"`);
    }
    const newPassword = entry.pending_password ?? generatePassword();
    if (entry.pending_password === undefined) await store.putStaticRole(name, { ...entry, pending_password: newPassword });
    let live;
    try {
      live = await connections.get(entry.db_name);
    } catch (err) {
      throw databaseFailure(entry.db_name, "connecting", err, this.deps.logger);
    }
    if (!live) throw new InternalError(`static role "${name}" uses database config "${entry.db_name}", which does not exist`);
    // The config may have been rewritten since the role was made: its root user is never handed to a static role.
    if (isRootUser(live, entry.username)) throw new UserError(`static role "${name}": "${entry.username}" is now the root user of config "${entry.db_name}", which static roles must not rotate`);
    try {
      await live.plugin.updateUser({ username: entry.username, password: { newPassword, statements: entry.rotation_statements } });
    } catch (err) {
      throw databaseFailure(entry.db_name, `rotating the password of static role "${name}"`, err, this.deps.logger);
    }
    const { pending_password: _done, ...rest } = entry;
    const updated: StaticRoleEntry = { ...rest, password: newPassword, last_vault_rotation: new Date().toISOString() };
    await store.putStaticRole(name, updated);
    this.plan(name, updated);
    return updated;
  }
}
