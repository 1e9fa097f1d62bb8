/**
 * The operator's token, kept in sessionStorage: it lives as long as the tab, is not shared with
 * other tabs, and is never written to localStorage (which would keep it on disk after the browser
 * closes). Logging out or closing the tab forgets it.
 */
const TOKEN_KEY = "leasehold.token";

/** The token of this tab's session, if logged in. */
export function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Remembers the token for this tab. */
export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forgets the token (logout). */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
