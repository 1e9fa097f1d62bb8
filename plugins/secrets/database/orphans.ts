import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import type { ConnectionRegistry, LiveConnection } from "./connections.js";
import type { DatabaseStore } from "./store.js";
import { UsernameTemplate } from "./username-template.js";

/** How long past its VALID UNTIL a user must be before the sweep drops it. */
export const ORPHAN_GRACE_MS = 24 * 3600_000;

/**
 * The part every username of a template starts with: the common prefix of renders with different
 * display and role names (`v-` for the default). Empty when the template starts with a variable.
 */
export function usernamePrefix(template: UsernameTemplate): string {
  const samples = [
    ["a", "a"],
    ["b", "b"],
    ["c", "d"],
  ].map(([DisplayName, RoleName]) => template.render({ DisplayName, RoleName }));
  let prefix = samples[0];
  for (const s of samples.slice(1)) while (!s.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}

/**
 * The orphan sweep. The lease store commits with `synchronous=NORMAL` by default, so a power loss
 * can drop the last lease rows while their users exist in the database. Such a user stops working
 * at its VALID UNTIL (the lease's expiry), and this hourly sweep then drops the users of each config
 * that carry the config's username prefix and whose VALID UNTIL passed more than a day ago: any
 * lease they had has expired, and its own revocation (retried) would find them gone and succeed.
 * Static role users and the root user are never touched.
 */
export class OrphanSweep {
  private task?: ScheduledTask;

  constructor(private readonly deps: { store: DatabaseStore; connections: ConnectionRegistry; logger: Logger; defaultTemplate(live: LiveConnection): string }) {}

  start(): void {
    this.task = cron.schedule("41 * * * *", () => void this.sweep().catch((err) => this.deps.logger.error({ err: err instanceof Error ? err.message : String(err) }, "orphan sweep failed")), { noOverlap: true });
  }

  async stop(): Promise<void> {
    await this.task?.stop();
    this.task = undefined;
  }

  /** Drops the orphans of every config; returns the usernames dropped. */
  async sweep(now = Date.now()): Promise<string[]> {
    const { store, connections, logger } = this.deps;
    const dropped: string[] = [];
    const keep = new Set<string>();
    for (const name of await store.listStaticRoles()) {
      const s = await store.staticRole(name);
      if (s) keep.add(`${s.db_name}\0${s.username}`);
    }
    for (const config of await store.listConfigs()) {
      try {
        const live = await connections.get(config);
        if (!live?.plugin.listExpiredUsers) continue;
        const prefix = usernamePrefix(new UsernameTemplate(live.config.username_template || this.deps.defaultTemplate(live)));
        if (prefix.length < 2) continue;
        const expired = await live.plugin.listExpiredUsers({ prefix, expiredBefore: new Date(now - ORPHAN_GRACE_MS) });
        const here: string[] = [];
        for (const username of expired) {
          if (username === live.rootUsername || keep.has(`${config}\0${username}`)) continue;
          await live.plugin.deleteUser({ username, statements: [] });
          here.push(username);
        }
        if (here.length) logger.warn({ config, dropped: here }, "dropped database users that expired long ago (users whose lease row was lost)");
        dropped.push(...here);
      } catch (err) {
        logger.warn({ config, err: err instanceof Error ? err.message : String(err) }, "orphan sweep of a database config failed; it is tried again in an hour");
      }
    }
    return dropped;
  }
}
