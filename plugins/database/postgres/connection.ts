import { z } from "zod";
import { UserError, formatDuration, zBool, zDuration, zInt } from "../../../src/sdk/index.js";

/** The connection fields of `database/config/:name` this plugin reads (Vault's PostgreSQL plugin fields). */
export const connectionSchema = z.object({
  connection_url: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  max_open_connections: zInt.optional(),
  max_idle_connections: zInt.optional(),
  max_connection_lifetime: zDuration.optional(),
  disable_escaping: zBool.optional(),
  password_authentication: z.string().optional(),
});

/** Connection details as stored (defaults filled in). */
export interface PostgresSettings {
  connection_url: string;
  username: string;
  password: string;
  max_open_connections: number;
  max_idle_connections: number;
  max_connection_lifetime: number;
  disable_escaping: boolean;
  password_authentication: "scram-sha-256";
}

const TEMPLATE = /\{\{\s*(username|name|password)\s*\}\}/g;

/** Validates and normalises connection details (raw request values or stored ones). */
export function parseSettings(details: Record<string, unknown>): PostgresSettings {
  const parsed = connectionSchema.safeParse(details);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`${issue.path.map(String).join(".") || "connection details"}: ${issue.message}`);
  }
  const d = parsed.data;
  if (!d.connection_url) throw new UserError("connection_url is required");
  const settings: PostgresSettings = {
    connection_url: d.connection_url,
    username: d.username ?? "",
    password: d.password ?? "",
    max_open_connections: d.max_open_connections ?? 4,
    max_idle_connections: d.max_idle_connections ?? 0,
    max_connection_lifetime: d.max_connection_lifetime ?? 0,
    disable_escaping: d.disable_escaping ?? false,
    password_authentication: "scram-sha-256",
  };
  if (settings.max_open_connections < 1 || settings.max_open_connections > 1000) throw new UserError("max_open_connections must be between 1 and 1000");
  // Vault's plugin can send plaintext passwords ("password"); leasehold always sends SCRAM verifiers.
  if (d.password_authentication !== undefined && d.password_authentication !== "scram-sha-256") {
    throw new UserError('password_authentication: only "scram-sha-256" is supported: leasehold never sends a plaintext password to PostgreSQL');
  }
  connectionString(settings); // validates the URL
  return settings;
}

/**
 * The URL handed to `pg`: `{{username}}`/`{{name}}` and `{{password}}` replaced by the root
 * credentials (URL-encoded unless `disable_escaping`); credentials given only as fields are put
 * into the URL when it has none. Never shown or logged.
 */
export function connectionString(s: PostgresSettings): string {
  const enc = (v: string) => (s.disable_escaping ? v : encodeURIComponent(v));
  const rendered = s.connection_url.replace(TEMPLATE, (_, key: string) => enc(key === "password" ? s.password : s.username));
  let url: URL;
  try {
    url = new URL(rendered);
  } catch {
    // The URL may hold a password: never echo it.
    throw new UserError("connection_url is not a valid URL (expected postgresql://{{username}}:{{password}}@host:5432/database)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new UserError(`connection_url must start with postgresql:// or postgres://, not ${url.protocol}//`);
  if (!url.username && s.username) url.username = encodeURIComponent(s.username);
  if (!url.password && s.password) url.password = encodeURIComponent(s.password);
  return url.toString();
}

/**
 * The role the pool logs in as, as node-postgres reads the URL: a `user` query parameter (the last
 * one) wins over the URL's user, and the `username` field fills an empty one. The root user written
 * only inside `connection_url` is the root user all the same (static roles must not take it over).
 */
export function loginUser(s: PostgresSettings): string | undefined {
  const url = new URL(connectionString(s));
  const fromQuery = url.searchParams.getAll("user").at(-1);
  if (fromQuery) return fromQuery;
  try {
    return decodeURIComponent(url.username) || undefined;
  } catch {
    return url.username || undefined;
  }
}

/** The same URL pointed at another database of the cluster (revocation cleans up in each one). */
export function connectionStringFor(s: PostgresSettings, database: string): string {
  const url = new URL(connectionString(s));
  url.pathname = `/${encodeURIComponent(database)}`;
  url.searchParams.delete("dbname");
  return url.toString();
}

/** A password written into the URL itself (not through `{{password}}`). */
function literalUrlPassword(connectionUrl: string): string | undefined {
  const m = /^[a-z]+:\/\/[^/@]*?:([^@/]*)@/i.exec(connectionUrl);
  if (!m || m[1] === "" || /\{\{\s*password\s*\}\}/.test(m[1])) return undefined;
  return m[1];
}

/** Connection details safe to show: no `password`, a password written into the URL masked. */
export function redactDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if (k === "password") continue;
    out[k] = v;
  }
  if (typeof out.connection_url === "string") {
    const pw = literalUrlPassword(out.connection_url);
    if (pw) out.connection_url = out.connection_url.replace(`:${pw}@`, ":*****@");
  }
  if (typeof out.max_connection_lifetime === "number") out.max_connection_lifetime = formatDuration(out.max_connection_lifetime);
  return out;
}

/** Every form in which this config's secrets could show up in an error message. */
export function secretsOf(s: PostgresSettings): string[] {
  const out = new Set<string>();
  const add = (v: string | undefined) => {
    if (v && v.length >= 3) out.add(v);
  };
  add(s.password);
  add(encodeURIComponent(s.password));
  const literal = literalUrlPassword(s.connection_url);
  add(literal);
  if (literal) {
    try {
      add(decodeURIComponent(literal));
    } catch {
      // not percent-encoded
    }
  }
  try {
    add(connectionString(s));
  } catch {
    // an invalid URL was refused before any connection was made
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** Replaces every secret in a message. */
export function scrub(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const s of secrets) out = out.split(s).join("[redacted]");
  // Verifiers and URLs with credentials never belong in a message, whatever their origin.
  return out.replace(/SCRAM-SHA-256\$[^\s'"]+/g, "[redacted]").replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, "$1[redacted]@");
}
