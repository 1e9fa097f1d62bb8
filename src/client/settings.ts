import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { checkAddress, checkAddresses, parseAddressList } from "./addresses.js";
import type { ClientOptions } from "./client.js";
import { ClientConfigError } from "./errors.js";
import { readTokenFile, tokenFilePath } from "./token-file.js";

/** Leasehold's own dev server listens on plain http (Vault's CLI defaults to https). */
export const DEFAULT_ADDRESS = "http://127.0.0.1:8200";

/** Settings given on the command line; they beat every environment variable. */
export interface ClientSettingsFlags {
  /** One address, or several separated by commas (as `LEASEHOLD_ADDR`). */
  address?: string;
  /** More addresses after `address` (the agent's `vault { addresses = [...] }`). */
  addresses?: readonly string[];
  token?: string;
  namespace?: string;
  /** Path to (or PEM text of) the CA certificate. */
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  skipVerify?: boolean;
}

export type TokenSource = "flag" | "LEASEHOLD_TOKEN" | "VAULT_TOKEN" | "token-file";

export interface ClientSettings {
  /** The first of `addresses`. */
  address: string;
  /** Every server address, tried in this order on connection failures (at least one). */
  addresses: string[];
  addressSource: "flag" | "LEASEHOLD_ADDR" | "VAULT_ADDR" | "default";
  token: string | undefined;
  tokenSource: TokenSource | undefined;
  /** Where `leasehold login` stores the token. */
  tokenFile: string;
  namespace: string | undefined;
  /** Paths (or PEM text); `clientOptionsFromSettings` loads them. */
  caCert: string | undefined;
  clientCert: string | undefined;
  clientKey: string | undefined;
  skipVerify: boolean;
  /** Retries of a request that got no answer or a 5xx (`LEASEHOLD_MAX_RETRIES`/`VAULT_MAX_RETRIES`, default 2). */
  maxRetries: number;
}

/** Vault's client retries twice unless `VAULT_MAX_RETRIES` says otherwise. */
export const DEFAULT_MAX_RETRIES = 2;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Resolves where and as whom to connect. Precedence: flags, then `LEASEHOLD_*`, then `VAULT_*`
 * (so scripts and CI set up for Vault keep working), then the token file in `homeDir`.
 */
export function resolveClientSettings(env: Env, flags: ClientSettingsFlags = {}, homeDir: string = homedir()): ClientSettings {
  const address = pickAddresses(flags, env);
  let token = pick(flags.token, env, "LEASEHOLD_TOKEN", "VAULT_TOKEN") as { value: string; source: TokenSource } | undefined;
  if (!token) {
    const stored = readTokenFile(homeDir);
    if (stored !== undefined) token = { value: stored, source: "token-file" };
  }
  const skip = flags.skipVerify ?? parseEnvBool(env, "LEASEHOLD_SKIP_VERIFY") ?? parseEnvBool(env, "VAULT_SKIP_VERIFY") ?? false;
  return {
    address: address?.value[0] ?? DEFAULT_ADDRESS,
    addresses: address?.value ?? [DEFAULT_ADDRESS],
    addressSource: (address?.source as ClientSettings["addressSource"]) ?? "default",
    token: token?.value,
    tokenSource: token?.source,
    tokenFile: tokenFilePath(homeDir),
    namespace: pick(flags.namespace, env, "LEASEHOLD_NAMESPACE", "VAULT_NAMESPACE")?.value,
    caCert: pick(flags.caCert, env, "LEASEHOLD_CACERT", "VAULT_CACERT")?.value,
    clientCert: pick(flags.clientCert, env, "LEASEHOLD_CLIENT_CERT", "VAULT_CLIENT_CERT")?.value,
    clientKey: pick(flags.clientKey, env, "LEASEHOLD_CLIENT_KEY", "VAULT_CLIENT_KEY")?.value,
    skipVerify: skip,
    maxRetries: parseRetries(pick(undefined, env, "LEASEHOLD_MAX_RETRIES", "VAULT_MAX_RETRIES")),
  };
}

/**
 * The flags' addresses (`address`, which may be a comma-separated list, then `addresses`) when
 * any is given, else the first of `LEASEHOLD_ADDR`/`VAULT_ADDR` that is set, split at commas.
 */
function pickAddresses(flags: ClientSettingsFlags, env: Env): { value: string[]; source: string } | undefined {
  const extra = flags.addresses ?? [];
  if ((flags.address !== undefined && flags.address !== "") || extra.length > 0) {
    const first = flags.address ? parseAddressList(flags.address, "address") : [];
    const more = extra.map((a, i) => checkAddress(a, `addresses[${i}]`));
    return { value: checkAddresses([...first, ...more], "the server addresses"), source: "flag" };
  }
  const raw = pick(undefined, env, "LEASEHOLD_ADDR", "VAULT_ADDR");
  return raw && { value: parseAddressList(raw.value, raw.source), source: raw.source };
}

function parseRetries(raw: { value: string; source: string } | undefined): number {
  if (raw === undefined) return DEFAULT_MAX_RETRIES;
  const n = Number(raw.value);
  if (!Number.isInteger(n) || n < 0) throw new ClientConfigError(`${raw.source}=${JSON.stringify(raw.value)} is not a number of retries (use 0 or more)`);
  return n;
}

/** Client options for the settings, with certificate files read. */
export function clientOptionsFromSettings(settings: ClientSettings, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    address: settings.addresses[0],
    addresses: settings.addresses.slice(1),
    token: settings.token,
    namespace: settings.namespace,
    caCert: settings.caCert === undefined ? undefined : readPem(settings.caCert, "CA certificate"),
    clientCert: settings.clientCert === undefined ? undefined : readPem(settings.clientCert, "client certificate"),
    clientKey: settings.clientKey === undefined ? undefined : readPem(settings.clientKey, "client key"),
    skipVerify: settings.skipVerify,
    retries: settings.maxRetries,
    ...extra,
  };
}

/** PEM text passes through; anything else is taken as the path of a PEM file. */
export function readPem(valueOrPath: string, what = "certificate"): string {
  if (valueOrPath.includes("-----BEGIN ")) return valueOrPath;
  try {
    return readFileSync(valueOrPath, "utf8");
  } catch (cause) {
    throw new ClientConfigError(`cannot read the ${what} file ${valueOrPath}: ${(cause as Error).message}`, { cause });
  }
}

/** Go's `strconv.ParseBool`, which is what `VAULT_SKIP_VERIFY` accepts. */
export function parseBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

function parseEnvBool(env: Env, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = parseBool(raw);
  if (value === undefined) throw new ClientConfigError(`${name}=${JSON.stringify(raw)} is not a boolean (use true or false)`);
  return value;
}

function pick(flag: string | undefined, env: Env, ...names: string[]): { value: string; source: string } | undefined {
  if (flag !== undefined && flag !== "") return { value: flag, source: "flag" };
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return { value, source: name };
  }
  return undefined;
}
