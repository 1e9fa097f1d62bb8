import pg from "pg";
import { DatabasePluginError } from "../../../src/sdk/index.js";
import { scrub } from "./connection.js";

/**
 * SQLSTATEs worth retrying: `XX000` is what concurrent `GRANT ... ON ALL TABLES` raise
 * ("tuple concurrently updated"), `40001` serialization failure, `40P01` deadlock; `2BP01` is a
 * role that gained an object between revocation's check and its DROP ROLE (the retry cleans it up).
 */
export const RETRYABLE_SQLSTATES = new Set(["XX000", "40001", "40P01", "2BP01"]);

/** SQLSTATEs that mean "the database is not available" rather than "it refused this statement". */
function isUnavailableState(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300" || code === "28P01" || code === "28000" || code === "3D000";
}

export function isServerError(err: unknown): err is pg.DatabaseError {
  return err instanceof pg.DatabaseError || (typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string" && /^[0-9A-Z]{5}$/.test((err as { code: string }).code) && "severity" in err);
}

/**
 * Turns whatever `pg` threw into a `DatabasePluginError` whose message carries no secret.
 * `phase`: "connect" = no statement was sent yet (nothing can have happened).
 */
export function toPluginError(err: unknown, phase: "connect" | "query", secrets: readonly string[]): DatabasePluginError {
  if (err instanceof DatabasePluginError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const message = scrub(raw, secrets);
  if (isServerError(err)) {
    const code = err.code ?? "";
    if (isUnavailableState(code)) return new DatabasePluginError(`${message} (SQLSTATE ${code})`, phase === "connect" ? "not-applied" : "unknown", "unavailable", code);
    // The server answered with an error: the (implicit) transaction was rolled back.
    return new DatabasePluginError(`${message} (SQLSTATE ${code})`, "not-applied", "refused", code);
  }
  const sysCode = (err as { code?: unknown } | null)?.code;
  const text = message || "connection failed";
  const full = typeof sysCode === "string" && !text.includes(sysCode) ? `${text} (${sysCode})` : text;
  return new DatabasePluginError(full, phase === "connect" ? "not-applied" : "unknown", "unavailable");
}
