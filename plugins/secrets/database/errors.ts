import type { Logger } from "pino";
import { DatabasePluginError, InternalError, UserError, isLeaseholdError } from "../../../src/sdk/index.js";

/**
 * What a caller sees when a database fails: a 5xx-class error naming the config and what was being
 * done. Plugins scrub their messages (no passwords, no credentials in URLs); an unexpected error
 * from plugin code is not echoed at all.
 */
export function databaseFailure(config: string, action: string, err: unknown, logger?: Logger): Error {
  if (err instanceof DatabasePluginError) return new InternalError(`database "${config}": ${action} failed: ${err.message}`);
  if (isLeaseholdError(err)) return err;
  logger?.error({ config, action, err_type: err instanceof Error ? err.name : typeof err }, "database plugin failed unexpectedly");
  return new InternalError(`database "${config}": ${action} failed unexpectedly`);
}

/** Config writes that cannot reach the database are the caller's problem to fix (Vault answers 400). */
export function verificationFailure(config: string, err: unknown): Error {
  if (err instanceof DatabasePluginError) return new UserError(`error verifying the connection of "${config}": ${err.message}`);
  return databaseFailure(config, "verifying the connection", err);
}
