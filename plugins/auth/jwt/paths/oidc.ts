import type { Logger } from "pino";
import { z } from "zod";
import { UnsupportedOperation, UserError, checkLoginAddress, isLeaseholdError } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { NamedRecords, roleNameOf } from "../../shared/roles.js";
import { audiencesOf, checkTimeClaims, verifyJwtSignature } from "../../shared/jwt.js";
import { oidcFlowConfigured, type Validator } from "../config.js";
import { authFromClaims } from "../identity.js";
import { CodeExchangeError, authorizationUrl, exchangeCode, fetchUserInfo } from "../oidc-client.js";
import { OidcStateStore, randomToken } from "../oidc-state.js";
import type { DiscoveryDocument } from "../remote-keys.js";
import { leewaysOf, type JwtRole } from "./role.js";

/** Vault's prefixes of OIDC errors; Vault's UI looks for them, so they are kept word for word. */
const LOGIN_FAILED = "Vault login failed.";
const TOKEN_VERIFICATION = "Token verification failed.";
/** The `code` of a GET callback after a form_post delivered the real one (Vault's `noCode`). */
const NO_CODE = "no_code";

const authUrlSchema = z.object({ role: z.string().optional(), redirect_uri: z.string().optional(), client_nonce: z.string().optional() });
const callbackSchema = z.object({ state: z.string().optional(), code: z.string().optional(), id_token: z.string().optional(), client_nonce: z.string().optional() });

interface OidcDeps {
  roles: NamedRecords<JwtRole>;
  validator: () => Promise<Validator | undefined>;
  states: OidcStateStore;
  logger: Logger;
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/**
 * Vault's `validRedirect`: a loopback redirect URI matches an allowed one on any port (RFC 8252
 * section 7.3: the CLI listens wherever it can); any other must be listed exactly.
 */
export function redirectAllowed(uri: string, allowed: readonly string[]): boolean {
  let input: URL;
  try {
    input = new URL(uri);
  } catch {
    return false;
  }
  if (!LOOPBACK_HOSTS.has(input.hostname)) return allowed.includes(uri);
  input.port = "";
  return allowed.some((a) => {
    if (!URL.canParse(a)) return false;
    const candidate = new URL(a);
    candidate.port = "";
    return candidate.toString() === input.toString();
  });
}

/**
 * `oidc/auth_url`. As in Vault, a role that exists but cannot start this login (redirect URI not
 * allowed, provider unreachable) gets an empty `auth_url` and the reason goes to the server log
 * only: the endpoint is unauthenticated and must not tell strangers how roles are configured.
 */
async function authUrl(req: HandlerRequest<z.infer<typeof authUrlSchema>>, d: OidcDeps): Promise<HandlerResponse> {
  const empty: HandlerResponse = { data: { auth_url: "" } };
  const v = await d.validator();
  if (!v) throw new UserError("could not load configuration");
  if (!oidcFlowConfigured(v.config)) throw new UserError("OIDC login is not configured for this mount");
  const roleName = req.data.role || v.config.default_role;
  if (!roleName) throw new UserError("missing role");
  const redirectUri = req.data.redirect_uri ?? "";
  if (!redirectUri) throw new UserError("missing redirect_uri");
  const role = await d.roles.get(roleNameOf(roleName));
  if (!role) throw new UserError(`role ${JSON.stringify(roleName)} could not be found`);
  if (role.role_type !== "oidc" || !redirectAllowed(redirectUri, role.allowed_redirect_uris ?? [])) {
    d.logger.warn({ role: role.name, redirect_uri: redirectUri, role_type: role.role_type }, "oidc: unauthorized redirect_uri (not in the role's allowed_redirect_uris, or not an oidc role)");
    return empty;
  }
  // form_post sends the browser's POST to the API rather than to the console (Vault's rewrite).
  const finalRedirect = v.config.oidc_response_mode === "form_post" ? redirectUri.replace("ui/vault", "v1") : redirectUri;
  const doc = await v.discovery();
  if (!doc?.authorization_endpoint || !doc.token_endpoint) {
    d.logger.warn({ role: role.name }, "oidc: error getting provider for login operation: the discovery document could not be fetched or lacks its endpoints");
    return empty;
  }
  const nonce = randomToken();
  const codeVerifier = randomToken(48);
  const state = d.states.create({ role: role.name, nonce, redirectUri: finalRedirect, codeVerifier, clientNonce: req.data.client_nonce ?? "" });
  const url = authorizationUrl(doc, v.config, { redirectUri: finalRedirect, state, nonce, codeVerifier, scopes: role.oidc_scopes ?? [], maxAge: role.max_age ?? 0 });
  return { data: { auth_url: url } };
}

/** Verifies the ID token as Vault's OIDC flow does; every refusal is "Token verification failed. ...". */
async function verifyIdToken(idToken: string, v: Validator, doc: DiscoveryDocument, role: JwtRole, nonce: string): Promise<Record<string, unknown>> {
  const refuse = (reason: string) => new UserError(`${TOKEN_VERIFICATION} ${reason}`);
  let claims: Record<string, unknown>;
  try {
    ({ claims } = await verifyJwtSignature(idToken, v.config.jwt_supported_algs, v.keys));
    checkTimeClaims(claims, leewaysOf(role), { requireExp: true });
  } catch (err) {
    if (isLeaseholdError(err) && err.status === 400) throw refuse(err.message);
    throw err;
  }
  if (claims.iss !== (v.config.bound_issuer || doc.issuer)) throw refuse("error validating token: invalid issuer (iss) claim");
  const aud = audiencesOf(claims);
  // The ID token must be meant for this client (OpenID Connect Core 3.1.3.7); bound_audiences narrow further.
  if (!aud.includes(v.config.oidc_client_id)) throw refuse("error validating token: invalid audience (aud) claim: the ID token was not issued to this client");
  if ((role.bound_audiences ?? []).length && !aud.some((a) => role.bound_audiences.includes(a))) {
    throw refuse("error validating token: invalid audience (aud) claim: audience claim does not match any expected audience");
  }
  if (claims.nonce !== nonce) throw refuse("Invalid ID token nonce.");
  if (role.bound_subject && claims.sub !== role.bound_subject) throw refuse("error validating token: invalid subject (sub) claim");
  if (role.max_age > 0) {
    const authTime = claims.auth_time;
    if (typeof authTime !== "number") throw refuse("error validating token: missing auth_time claim, which the role's max_age requires");
    const skew = leewaysOf(role).iat;
    if (Date.now() / 1000 > authTime + role.max_age + skew) throw refuse("error validating token: auth_time is older than the role's max_age: log in at the provider again");
  }
  return claims;
}

/**
 * `oidc/callback`: the state is taken first (single use, whatever happens next), then the code is
 * exchanged with the PKCE verifier, the ID token verified, the UserInfo claims merged (a failure
 * there only logs, as in Vault) and the role's bindings applied exactly as for a JWT login.
 */
async function callback(req: HandlerRequest<z.infer<typeof callbackSchema>>, d: OidcDeps): Promise<HandlerResponse> {
  const v = await d.validator();
  if (!v) throw new UserError(`${LOGIN_FAILED} Could not load configuration`);
  const state = req.data.state ? d.states.take(req.data.state) : undefined;
  if (!state) throw new UserError(`${LOGIN_FAILED} Expired or missing OAuth state.`);
  if (state.clientNonce && req.data.client_nonce !== state.clientNonce) throw new UserError("invalid client_nonce");
  const role = await d.roles.get(state.role);
  if (!role || role.role_type !== "oidc") throw new UserError(`${LOGIN_FAILED} Role could not be found`);
  checkLoginAddress(role, req.connection.remoteAddress);
  const doc = await v.discovery();
  if (!doc?.token_endpoint) throw new UserError(`${LOGIN_FAILED} Could not reach the OIDC provider: its discovery document is unavailable; try again`);
  const code = req.data.code === NO_CODE ? (state.code ?? "") : (req.data.code ?? "");
  if (!code) throw new UserError(`${LOGIN_FAILED} No code or id_token received.`);

  let tokens;
  try {
    tokens = await exchangeCode(doc, v.config, code, state.redirectUri, state.codeVerifier);
  } catch (err) {
    if (err instanceof CodeExchangeError) throw new UserError(`${LOGIN_FAILED} Error exchanging oidc code: ${JSON.stringify(err.message)}.`);
    throw err;
  }
  if (!tokens.id_token) throw new UserError(`${TOKEN_VERIFICATION} No id_token found in response.`);
  const claims = await verifyIdToken(tokens.id_token, v, doc, role, state.nonce);
  delete claims.nonce;

  if (tokens.access_token) {
    try {
      const info = await fetchUserInfo(doc, v.config, tokens.access_token);
      // OpenID Connect Core 5.3.2: UserInfo about another subject must not be used.
      if (info && info.sub === claims.sub) Object.assign(claims, info, { sub: claims.sub, iss: claims.iss, aud: claims.aud });
      else if (info) d.logger.warn({ role: role.name }, "oidc: the userinfo answer names another subject than the ID token; ignoring it");
    } catch (err) {
      d.logger.warn({ role: role.name, err: (err as Error).message }, "oidc: error reading the userinfo endpoint");
    }
  }
  if (role.verbose_oidc_logging) d.logger.debug({ role: role.name, claims }, "oidc: provider response");
  return { auth: authFromClaims(role, claims) };
}

/** The mount named by a `.../v1/auth/<mount>/oidc/callback` redirect URI (Vault's `parseMount`). */
function mountOfRedirect(uri: string): string {
  const parts = uri.split("/");
  for (let i = 0; i + 2 < parts.length; i++) if (parts[i] === "v1" && parts[i + 1] === "auth") return parts[i + 2]!;
  return "";
}

const htmlEscape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(status: number, title: string, body: string): HandlerResponse {
  const html = `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><title>${htmlEscape(title)}</title></head><body>${body}</body></html>`;
  return { raw: { status, contentType: "text/html; charset=utf-8", body: html } };
}

/**
 * POST `oidc/callback` (response_mode=form_post): as Vault, the code the provider's form posts is
 * kept with the state, and the page hands `{path, code: "no_code", state}` to the console through
 * localStorage (`oidcState`); the console then finishes with the GET, which uses the kept code.
 */
async function formPostCallback(req: HandlerRequest<z.infer<typeof callbackSchema>>, d: OidcDeps): Promise<HandlerResponse> {
  const v = await d.validator();
  if (!v) throw new UserError(`${LOGIN_FAILED} Could not load configuration.`);
  if (v.config.oidc_response_mode !== "form_post") throw new UnsupportedOperation();
  const stateId = req.data.state ?? "";
  const state = stateId ? d.states.amend(stateId, req.data.code ?? "") : undefined;
  if (!state) return page(400, "Login failed", `<p>${htmlEscape(`${LOGIN_FAILED} Expired or missing OAuth state.`)}</p>`);
  const mount = mountOfRedirect(state.redirectUri);
  if (!mount) return page(400, "Login failed", `<p>${htmlEscape(`${LOGIN_FAILED} Invalid redirect path.`)}</p>`);
  // JSON inside <script>: `<` escaped so that no value can close the element.
  const handoff = JSON.stringify({ path: mount, code: NO_CODE, state: stateId }).replace(/</g, "\\u003c");
  return page(200, "Complete sign-in process", `<p>Completing the sign-in process...</p><script>window.localStorage.setItem("oidcState", ${JSON.stringify(handoff)});</script>`);
}

/** The OIDC single sign-on paths (both unauthenticated, as in Vault). */
export function oidcPaths(d: OidcDeps): PathDefinition[] {
  return [
    {
      pattern: "oidc/auth_url",
      operations: {
        update: { schema: authUrlSchema, handler: (r) => authUrl(r as HandlerRequest<z.infer<typeof authUrlSchema>>, d), summary: "Request an authorization URL to start an OIDC login flow." },
      },
    },
    {
      pattern: "oidc/callback",
      operations: {
        read: { schema: callbackSchema, handler: (r) => callback(r as HandlerRequest<z.infer<typeof callbackSchema>>, d), summary: "Callback endpoint to complete an OIDC login." },
        // Vault answers 405 here unless the mount uses response_mode=form_post.
        update: {
          schema: callbackSchema,
          handler: (r) => formPostCallback(r as HandlerRequest<z.infer<typeof callbackSchema>>, d),
          summary: "Callback endpoint for response_mode=form_post.",
        },
      },
    },
  ];
}
