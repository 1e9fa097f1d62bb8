import type { Logger } from "pino";
import type { JWK } from "jose";
import { InternalError, UserError } from "../../../src/sdk/index.js";
import { OutboundError, requestJson } from "../shared/http.js";
import { KeySet, type JwtHeader, type KeySource, type VerificationKey } from "../shared/jwt.js";

/** A JWKS document's keys; throws when the document is not a JWKS. */
export function parseJwks(body: unknown): JWK[] {
  const keys = (body as { keys?: unknown } | undefined)?.keys;
  if (!Array.isArray(keys)) throw new Error("the answer is not a JSON Web Key Set (no \"keys\" array)");
  return keys.filter((k): k is JWK => typeof k === "object" && k !== null && typeof (k as JWK).kty === "string");
}

export async function fetchJwks(url: string, ca: string | undefined): Promise<JWK[]> {
  const r = await requestJson(url, { ca, maxBytes: 512 * 1024 });
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}`);
  return parseJwks(r.body);
}

/** The parts of an OpenID Provider's discovery document we use. */
export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  /** OIDC single sign-on: where the browser is sent, where the code is exchanged, extra claims. */
  authorization_endpoint?: string;
  token_endpoint?: string;
  userinfo_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
}

/**
 * Reads `<url>/.well-known/openid-configuration`. The document's `issuer` must be the URL itself
 * (OpenID Connect Discovery 1.0, section 4.3; a trailing slash is tolerated), or a look-alike
 * provider could vouch for another issuer.
 */
export async function discover(url: string, ca: string | undefined): Promise<DiscoveryDocument> {
  const wellKnown = `${url.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const r = await requestJson(wellKnown, { ca, maxBytes: 256 * 1024 });
  if (r.status !== 200) throw new Error(`GET ${wellKnown} answered ${r.status}`);
  const doc = r.body as Partial<DiscoveryDocument> | undefined;
  if (typeof doc?.issuer !== "string" || typeof doc.jwks_uri !== "string") throw new Error("the discovery document lacks issuer or jwks_uri");
  if (doc.issuer.replace(/\/+$/, "") !== url.replace(/\/+$/, "")) throw new Error(`the discovery document names issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(url)}`);
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined);
  return {
    issuer: doc.issuer,
    jwks_uri: doc.jwks_uri,
    authorization_endpoint: str(doc.authorization_endpoint),
    token_endpoint: str(doc.token_endpoint),
    userinfo_endpoint: str(doc.userinfo_endpoint),
    token_endpoint_auth_methods_supported: list(doc.token_endpoint_auth_methods_supported),
    code_challenge_methods_supported: list(doc.code_challenge_methods_supported),
  };
}

export interface RemoteKeyOptions {
  /** Fetches the current keys (JWKS URL, or discovery then JWKS). */
  load: () => Promise<JWK[]>;
  /** Least time between two fetches triggered by unknown key IDs (the rate limit). */
  cooldownMs: number;
  /** Keys older than this are refetched before use (a fetch failure keeps the old ones). */
  maxAgeMs: number;
  logger: Logger;
}

/**
 * A JWKS kept in memory. A token whose `kid` is unknown makes one refetch (key rotation at the
 * provider), at most once per cooldown whatever the traffic, so tokens with made-up key IDs cannot
 * turn the broker into a flood of requests against the provider. Concurrent misses share one fetch.
 */
export class RemoteKeySource implements KeySource {
  private set?: KeySet;
  private fetchedAt = 0;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private inflight?: Promise<void>;
  /** Fetches made so far (for logs and tests). */
  fetches = 0;

  constructor(private readonly opts: RemoteKeyOptions) {}

  /** Fetches now (config writes validate the source this way). */
  refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastAttempt = Date.now();
      this.fetches++;
      try {
        this.set = new KeySet(await this.opts.load());
        this.fetchedAt = Date.now();
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  private async refreshForLogin(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, "jwt: could not fetch the JWKS; keeping the keys already known");
    }
  }

  async candidates(header: JwtHeader): Promise<VerificationKey[]> {
    // A fetch already under way is always joined: concurrent misses share it.
    const mayFetch = () => this.inflight !== undefined || Date.now() - this.lastAttempt >= this.opts.cooldownMs;
    if ((!this.set || Date.now() - this.fetchedAt > this.opts.maxAgeMs) && mayFetch()) await this.refreshForLogin();
    if (!this.set) throw new InternalError("could not fetch the keys to verify the token: the JWKS or discovery URL is unreachable; check the provider and the mount's config");
    let found = this.set.candidates(header);
    if (!found.length && mayFetch()) {
      await this.refreshForLogin();
      found = this.set.candidates(header);
    }
    return found;
  }
}

/** Maps a fetch failure at config time to the 400 Vault answers ("error checking ... URL"). */
export function configFetchError(what: string, err: unknown): UserError {
  const msg = err instanceof OutboundError || err instanceof Error ? err.message : String(err);
  return new UserError(`error checking ${what}: ${msg}`);
}
