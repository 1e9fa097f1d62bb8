import { createHash } from "node:crypto";
import { requestJson } from "../shared/http.js";
import type { JwtConfig } from "./config.js";
import type { DiscoveryDocument } from "./remote-keys.js";

/** PKCE S256 (RFC 7636 section 4.2): BASE64URL(SHA-256(verifier)). */
export function codeChallengeS256(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** What the authorization request carries (OpenID Connect Core 3.1.2.1, RFC 7636). */
export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  scopes: string[];
  /** Seconds; 0 = not sent. */
  maxAge: number;
}

/** The URL the browser is sent to. `openid` comes first and once, as Vault asks for it. */
export function authorizationUrl(doc: DiscoveryDocument, cfg: JwtConfig, r: AuthorizationRequest): string {
  const url = new URL(doc.authorization_endpoint!);
  const scopes = ["openid", ...r.scopes.filter((s) => s !== "openid")];
  url.searchParams.set("client_id", cfg.oidc_client_id);
  url.searchParams.set("redirect_uri", r.redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", scopes.join(" "));
  url.searchParams.set("state", r.state);
  url.searchParams.set("nonce", r.nonce);
  url.searchParams.set("code_challenge", codeChallengeS256(r.codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  if (r.maxAge > 0) url.searchParams.set("max_age", String(r.maxAge));
  if (cfg.oidc_response_mode === "form_post") url.searchParams.set("response_mode", "form_post");
  return url.toString();
}

/** The token endpoint's answer (RFC 6749 section 5.1) as far as a login needs it. */
export interface TokenAnswer {
  id_token?: string;
  access_token?: string;
}

/** Raised when the provider refused the code or could not be reached; `message` is safe to show. */
export class CodeExchangeError extends Error {}

/**
 * Exchanges the code at the token endpoint with the PKCE verifier. The client authenticates as the
 * provider advertises: `client_secret_basic` first when listed (or when nothing is listed: it is the
 * default of OpenID Connect Discovery), else `client_secret_post`; when the provider refuses the
 * client (`invalid_client`) the other listed method is tried once, as Vault's OAuth 2.0 library
 * auto-detects it. A refused client authentication does not consume the code.
 */
export async function exchangeCode(doc: DiscoveryDocument, cfg: JwtConfig, code: string, redirectUri: string, codeVerifier: string): Promise<TokenAnswer> {
  const listed = doc.token_endpoint_auth_methods_supported ?? [];
  const styles = (["client_secret_basic", "client_secret_post"] as const).filter((m) => !listed.length || listed.includes(m));
  if (!styles.length) styles.push("client_secret_basic");
  let answer: { status: number; body: unknown } | undefined;
  for (const style of styles) {
    answer = await tokenRequest(doc, cfg, style, new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: codeVerifier }));
    if ((answer.body as { error?: unknown } | undefined)?.error !== "invalid_client") break;
  }
  const body = (answer!.body ?? {}) as Record<string, unknown>;
  if (answer!.status !== 200) {
    const reason = typeof body.error === "string" ? `${body.error}${typeof body.error_description === "string" ? ` (${body.error_description})` : ""}` : "no error given";
    throw new CodeExchangeError(`the token endpoint answered ${answer!.status}: ${reason}`);
  }
  return {
    id_token: typeof body.id_token === "string" ? body.id_token : undefined,
    access_token: typeof body.access_token === "string" ? body.access_token : undefined,
  };
}

async function tokenRequest(doc: DiscoveryDocument, cfg: JwtConfig, style: "client_secret_basic" | "client_secret_post", form: URLSearchParams): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (style === "client_secret_basic") {
    // RFC 6749 section 2.3.1: each part form-encoded before the Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
    headers.Authorization = `Basic ${Buffer.from(`${enc(cfg.oidc_client_id)}:${enc(cfg.oidc_client_secret)}`).toString("base64")}`;
  } else {
    form.set("client_id", cfg.oidc_client_id);
    form.set("client_secret", cfg.oidc_client_secret);
  }
  try {
    return await requestJson(doc.token_endpoint!, { method: "POST", body: form, headers, ca: cfg.oidc_discovery_ca_pem || undefined, maxBytes: 256 * 1024 });
  } catch (err) {
    throw new CodeExchangeError(`the token endpoint could not be reached: ${(err as Error).message}`);
  }
}

/**
 * Claims from the UserInfo endpoint (many providers put email and groups there only), or undefined
 * when there is no endpoint or it fails: as in Vault, a failure does not fail the login.
 */
export async function fetchUserInfo(doc: DiscoveryDocument, cfg: JwtConfig, accessToken: string): Promise<Record<string, unknown> | undefined> {
  if (!doc.userinfo_endpoint) return undefined;
  const r = await requestJson(doc.userinfo_endpoint, { headers: { Authorization: `Bearer ${accessToken}` }, ca: cfg.oidc_discovery_ca_pem || undefined, maxBytes: 256 * 1024 });
  if (r.status !== 200 || typeof r.body !== "object" || r.body === null) throw new Error(`the userinfo endpoint answered ${r.status}${r.body === undefined ? " (not JSON)" : ""}`);
  return r.body as Record<string, unknown>;
}

