import { randomBytes } from "node:crypto";

/** Vault's lifetime of an OIDC login in progress (`oidcStateTimeout`): 10 minutes. */
export const OIDC_STATE_TTL_MS = 10 * 60_000;
/** More logins in progress than this evict the oldest: `oidc/auth_url` is unauthenticated, memory is not. */
const MAX_PENDING = 10_000;

/** One OIDC login between `oidc/auth_url` and `oidc/callback`. */
export interface OidcLoginState {
  role: string;
  /** Sent in the authorization request; the ID token must carry it back. */
  nonce: string;
  redirectUri: string;
  /** PKCE (RFC 7636): the secret whose S256 hash went out as `code_challenge`. */
  codeVerifier: string;
  /** Optional: the CLI's own nonce, which the callback must present again. */
  clientNonce: string;
  /** response_mode=form_post: the code the provider posted, kept until the GET with `code=no_code`. */
  code?: string;
  expiresAt: number;
}

/** 160 random bits or more, as RFC 6749 section 10.10 asks for state values. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/**
 * The logins in progress on this node, in memory as Vault keeps them: a state is single-use (taken
 * by the callback whether it then succeeds or not) and expires after 10 minutes. With HA the
 * standbys forward every request, so the active node holds them all.
 */
export class OidcStateStore {
  private readonly states = new Map<string, OidcLoginState>();

  constructor(
    private readonly ttlMs = OIDC_STATE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a new login and returns its state ID (the `state` parameter). */
  create(login: Omit<OidcLoginState, "expiresAt">): string {
    this.sweep();
    while (this.states.size >= MAX_PENDING) this.states.delete(this.states.keys().next().value as string);
    const id = randomToken();
    this.states.set(id, { ...login, expiresAt: this.now() + this.ttlMs });
    return id;
  }

  /** Removes and returns the login of a state ID; undefined when unknown, already used or expired. */
  take(id: string): OidcLoginState | undefined {
    const state = this.states.get(id);
    this.states.delete(id);
    if (!state || state.expiresAt <= this.now()) return undefined;
    return state;
  }

  /** Records the code a form_post delivered; the state stays (single use is the GET's). */
  amend(id: string, code: string): OidcLoginState | undefined {
    const state = this.states.get(id);
    if (!state || state.expiresAt <= this.now()) return undefined;
    state.code = code;
    return state;
  }

  get size(): number {
    return this.states.size;
  }

  /** Drops expired logins (insertion order is expiry order: the TTL is fixed). */
  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.states) {
      if (s.expiresAt > now) break;
      this.states.delete(id);
    }
  }
}
