import type { Logger } from "pino";
import { UserError } from "../../../src/sdk/index.js";
import type { DatabasePluginFactory } from "../../../src/sdk/index.js";
import type { ConnectionRegistry, ConnectionSnapshot } from "./connections.js";
import type { StaticRotation } from "./rotation.js";
import { NAME_RE, type DatabaseStore } from "./store.js";
import { UsernameTemplate } from "./username-template.js";

/** What every path of one mounted database engine shares. */
export interface DatabaseEngine {
  store: DatabaseStore;
  connections: ConnectionRegistry;
  plugins: ReadonlyMap<string, DatabasePluginFactory>;
  rotation: StaticRotation;
  logger: Logger;
  /**
   * Leases whose user certainly was not created (the database refused or could not be reached):
   * their revocation, which the core runs right after the failed request, has nothing to do.
   */
  neverCreated: Set<string>;
  /** Parsed username templates by source text. */
  templates: Map<string, UsernameTemplate>;
}

/** The lease's internal data for dynamic credentials: everything revocation needs, even with the role and config deleted. */
export interface CredsInternal {
  username: string;
  db_name: string;
  role: string;
  revocation_statements: string[];
  renew_statements: string[];
  connection: ConnectionSnapshot;
}

/**
 * `VALID UNTIL` is set a little past the lease's expiry: a database clock slightly ahead of the
 * broker's must not end a credential early. Revocation at the lease's expiry is what ends it.
 */
export const VALID_UNTIL_SLACK_MS = 5_000;

export function validUntil(leaseExpiry: Date): Date {
  return new Date(leaseExpiry.getTime() + VALID_UNTIL_SLACK_MS);
}

/** Validates a config or role name from the path. */
export function checkName(name: string, what: string): string {
  if (!NAME_RE.test(name)) throw new UserError(`invalid ${what} name ${JSON.stringify(name)}: use 1 to 128 letters, digits, '_' or '-'`);
  return name;
}

export function templateOf(engine: DatabaseEngine, source: string): UsernameTemplate {
  let t = engine.templates.get(source);
  if (!t) {
    t = new UsernameTemplate(source);
    if (engine.templates.size > 100) engine.templates.clear();
    engine.templates.set(source, t);
  }
  return t;
}
