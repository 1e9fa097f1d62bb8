/**
 * The database engine as the console uses it, through the public `/v1/` API with the operator's
 * token: connections (`config`) and dynamic roles, read only, and `rotate-root`.
 */
import { call, listKeys, type VaultResponse } from "../api";

/** GET `<mount>/config/<name>` as the server answers it (the password is never in it). */
export interface DbConnection {
  plugin_name: string;
  plugin_version?: string;
  allowed_roles: string[];
  verify_connection: boolean;
  password_policy: string;
  root_credentials_rotate_statements: string[];
  connection_details: { connection_url?: string; username?: string; max_open_connections?: number; password_authentication?: string; [k: string]: unknown };
}

/** GET `<mount>/roles/<name>`. */
export interface DbRole {
  db_name: string;
  default_ttl: number;
  max_ttl: number;
  creation_statements: string[];
  revocation_statements: string[];
  rollback_statements: string[];
  renew_statements: string[];
  credential_type?: string;
}

const seg = encodeURIComponent;

/** LIST `<mount>/config`. */
export const listConnections = (token: string, mount: string) => listKeys(token, `${mount}/config`);

/** GET `<mount>/config/<name>`. */
export async function readConnection(token: string, mount: string, name: string): Promise<DbConnection> {
  return (await call<VaultResponse<DbConnection>>("GET", `${mount}/config/${seg(name)}`, { token })).data;
}

/** LIST `<mount>/roles`. */
export const listRoles = (token: string, mount: string) => listKeys(token, `${mount}/roles`);

/** GET `<mount>/roles/<name>`. */
export async function readRole(token: string, mount: string, name: string): Promise<DbRole> {
  return (await call<VaultResponse<DbRole>>("GET", `${mount}/roles/${seg(name)}`, { token })).data;
}

/** POST `<mount>/rotate-root/<name>`: a new root password that nobody sees. */
export async function rotateRoot(token: string, mount: string, name: string): Promise<void> {
  await call("POST", `${mount}/rotate-root/${seg(name)}`, { token });
}

/** Seconds as "1h 30m" ("0": the engine's default). */
export function durationText(seconds: number): string {
  if (!seconds) return "0 (the mount's default)";
  const parts: string[] = [];
  const units: [number, string][] = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  let rest = seconds;
  for (const [size, unit] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(" ");
}
