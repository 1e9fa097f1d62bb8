import type { Logger } from "pino";
import { z } from "zod";
import { UserError, parseDuration, zCommaList } from "../../../src/sdk/index.js";
import type { StorageView } from "../../../src/sdk/index.js";
import { ASYMMETRIC_ALGS, KeySet, checkAlgs, staticKeySource, type KeySource } from "../shared/jwt.js";
import { checkCaBundle } from "../shared/pem.js";
import { RemoteKeySource, configFetchError, discover, fetchJwks, type DiscoveryDocument } from "./remote-keys.js";

/** The mount's validation settings (Vault's field names). */
export interface JwtConfig {
  oidc_discovery_url: string;
  oidc_discovery_ca_pem: string;
  jwks_url: string;
  jwks_ca_pem: string;
  jwt_validation_pubkeys: string[];
  bound_issuer: string;
  jwt_supported_algs: string[];
  default_role: string;
  /** OIDC single sign-on (`oidc/auth_url`, `oidc/callback`): the client registered at the provider. */
  oidc_client_id: string;
  /** Never returned on read (Vault omits it); stored through the mount's encrypted storage. */
  oidc_client_secret: string;
  /** "query" (default) or "form_post": how the provider returns the code to the redirect URI. */
  oidc_response_mode: "" | "query" | "form_post";
  /** The authorization request's response types: "code" (default). */
  oidc_response_types: string[];
  /** leasehold extension: least seconds between two JWKS fetches caused by unknown key IDs. */
  jwks_refresh_cooldown: number;
}

export const DEFAULT_JWKS_REFRESH_COOLDOWN = 5;
/** Remote keys older than this are refetched before use (a failed fetch keeps the old keys). */
const JWKS_MAX_AGE_MS = 3600_000;

export const configSchema = z.object({
  oidc_discovery_url: z.string().optional(),
  oidc_discovery_ca_pem: z.string().optional(),
  jwks_url: z.string().optional(),
  jwks_ca_pem: z.string().optional(),
  jwt_validation_pubkeys: zCommaList.optional(),
  bound_issuer: z.string().optional(),
  jwt_supported_algs: zCommaList.optional(),
  default_role: z.string().optional(),
  oidc_client_id: z.string().optional(),
  oidc_client_secret: z.string().optional(),
  oidc_response_mode: z.string().optional(),
  oidc_response_types: zCommaList.optional(),
  jwks_refresh_cooldown: z.union([z.number(), z.string()]).optional(),
});

/** What verification of a login needs, built once per config. */
export interface Validator {
  config: JwtConfig;
  keys: KeySource;
  /** The issuer a token must name: `bound_issuer`, else the discovered issuer, else none. */
  issuer(): Promise<string | undefined>;
  /** The provider's discovery document (OIDC single sign-on needs its endpoints); undefined without discovery. */
  discovery(): Promise<DiscoveryDocument | undefined>;
}

function checkCaPem(pem: string, field: string): void {
  if (pem) checkCaBundle(pem, field);
}

function checkUrl(url: string, field: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`${field}: ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new UserError(`${field}: only http and https URLs are supported`);
}

/** Validates a config write (a write replaces the whole config, as in Vault). */
export function configFromInput(d: z.infer<typeof configSchema>): JwtConfig {
  const cfg: JwtConfig = {
    oidc_discovery_url: d.oidc_discovery_url?.trim() ?? "",
    oidc_discovery_ca_pem: d.oidc_discovery_ca_pem ?? "",
    jwks_url: d.jwks_url?.trim() ?? "",
    jwks_ca_pem: d.jwks_ca_pem ?? "",
    jwt_validation_pubkeys: d.jwt_validation_pubkeys ?? [],
    bound_issuer: d.bound_issuer ?? "",
    jwt_supported_algs: d.jwt_supported_algs?.length ? d.jwt_supported_algs : [...ASYMMETRIC_ALGS],
    default_role: d.default_role ?? "",
    oidc_client_id: d.oidc_client_id ?? "",
    oidc_client_secret: d.oidc_client_secret ?? "",
    oidc_response_mode: (d.oidc_response_mode ?? "") as JwtConfig["oidc_response_mode"],
    oidc_response_types: d.oidc_response_types ?? [],
    jwks_refresh_cooldown: d.jwks_refresh_cooldown === undefined ? DEFAULT_JWKS_REFRESH_COOLDOWN : parseDuration(d.jwks_refresh_cooldown, "jwks_refresh_cooldown"),
  };
  const sources = [cfg.oidc_discovery_url, cfg.jwks_url, cfg.jwt_validation_pubkeys.length ? "x" : ""].filter(Boolean).length;
  // Vault's checks and messages, in Vault's order.
  if (sources !== 1) throw new UserError("exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set");
  if (Boolean(cfg.oidc_client_id) !== Boolean(cfg.oidc_client_secret)) throw new UserError("both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC");
  if (cfg.oidc_client_id && !cfg.oidc_discovery_url) throw new UserError("'oidc_discovery_url' must be set for OIDC");
  checkResponseSettings(cfg);
  if (cfg.oidc_discovery_url) checkUrl(cfg.oidc_discovery_url, "oidc_discovery_url");
  if (cfg.jwks_url) checkUrl(cfg.jwks_url, "jwks_url");
  if (cfg.oidc_discovery_ca_pem && !cfg.oidc_discovery_url) throw new UserError("oidc_discovery_ca_pem requires oidc_discovery_url");
  if (cfg.jwks_ca_pem && !cfg.jwks_url) throw new UserError("jwks_ca_pem requires jwks_url");
  checkCaPem(cfg.oidc_discovery_ca_pem, "oidc_discovery_ca_pem");
  checkCaPem(cfg.jwks_ca_pem, "jwks_ca_pem");
  checkAlgs(cfg.jwt_supported_algs);
  if (cfg.jwks_refresh_cooldown < 1) throw new UserError("jwks_refresh_cooldown must be at least 1s (it rate-limits fetches caused by unknown key IDs)");
  if (cfg.jwt_validation_pubkeys.length) KeySet.fromPems(cfg.jwt_validation_pubkeys, "jwt_validation_pubkeys");
  return cfg;
}

/** Vault accepts the response types "code" and "id_token"; leasehold runs the code flow (with PKCE) only. */
function checkResponseSettings(cfg: JwtConfig): void {
  const bad = cfg.oidc_response_types.filter((t) => t !== "code" && t !== "id_token");
  if (bad.length) throw new UserError(`invalid response_types [${cfg.oidc_response_types.join(" ")}]. 'code' and 'id_token' are allowed`);
  if (cfg.oidc_response_mode !== "" && cfg.oidc_response_mode !== "query" && cfg.oidc_response_mode !== "form_post") {
    throw new UserError(`invalid response_mode: ${JSON.stringify(cfg.oidc_response_mode)}`);
  }
  if (cfg.oidc_response_types.includes("id_token")) {
    if (cfg.oidc_response_mode !== "form_post") throw new UserError("query response_mode may not be used with an id_token response_type");
    throw new UserError("the id_token response_type (implicit flow) is not supported: use 'code' (the authorization code flow with PKCE)");
  }
}

/** Whether the mount runs OIDC single sign-on (Vault's `OIDCFlow`): discovery plus a client. */
export function oidcFlowConfigured(cfg: JwtConfig): boolean {
  return Boolean(cfg.oidc_discovery_url && cfg.oidc_client_id && cfg.oidc_client_secret);
}

export function buildValidator(cfg: JwtConfig, logger: Logger): Validator {
  if (cfg.jwt_validation_pubkeys.length) {
    const keys = staticKeySource(KeySet.fromPems(cfg.jwt_validation_pubkeys, "jwt_validation_pubkeys"));
    return { config: cfg, keys, issuer: async () => cfg.bound_issuer || undefined, discovery: async () => undefined };
  }
  let discovered: DiscoveryDocument | undefined;
  const load = cfg.oidc_discovery_url
    ? async () => {
        const doc = await discover(cfg.oidc_discovery_url, cfg.oidc_discovery_ca_pem || undefined);
        discovered = doc;
        return fetchJwks(doc.jwks_uri, cfg.oidc_discovery_ca_pem || undefined);
      }
    : () => fetchJwks(cfg.jwks_url, cfg.jwks_ca_pem || undefined);
  const keys = new RemoteKeySource({ load, cooldownMs: cfg.jwks_refresh_cooldown * 1000, maxAgeMs: JWKS_MAX_AGE_MS, logger });
  return {
    config: cfg,
    keys,
    issuer: async () => {
      if (cfg.bound_issuer) return cfg.bound_issuer;
      if (!cfg.oidc_discovery_url) return undefined;
      // The discovered issuer is known once the keys were loaded (a login loads them first).
      if (discovered === undefined) await keys.candidates({});
      return discovered?.issuer;
    },
    discovery: async () => {
      if (!cfg.oidc_discovery_url) return undefined;
      // Loaded with the keys (and refreshed with them, at most once per cooldown).
      if (discovered === undefined) await keys.candidates({}).catch(() => undefined);
      return discovered;
    },
  };
}

/** Builds the validator and proves the remote source answers now, as Vault does on a config write. */
export async function checkedValidator(cfg: JwtConfig, logger: Logger): Promise<Validator> {
  const v = buildValidator(cfg, logger);
  if (v.keys instanceof RemoteKeySource) {
    try {
      await v.keys.refresh();
    } catch (err) {
      throw configFetchError(cfg.oidc_discovery_url ? "oidc discovery URL" : "jwks URL", err);
    }
  }
  if (oidcFlowConfigured(cfg)) {
    const doc = await v.discovery();
    if (!doc?.authorization_endpoint || !doc.token_endpoint) {
      throw new UserError("error checking oidc discovery URL: the discovery document lacks authorization_endpoint or token_endpoint, which OIDC login needs");
    }
  }
  return v;
}

/** The config as read answers it: everything but the client secret (Vault never returns it). */
export function configView(cfg: JwtConfig): Record<string, unknown> {
  const { oidc_client_secret: _secret, ...rest } = cfg;
  return { ...rest, oidc_response_mode: cfg.oidc_response_mode ?? "", oidc_response_types: cfg.oidc_response_types ?? [], oidc_client_id: cfg.oidc_client_id ?? "" };
}

export async function loadConfig(storage: StorageView): Promise<JwtConfig | undefined> {
  return storage.getJSON<JwtConfig>("config");
}
