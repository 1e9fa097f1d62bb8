import { describe, expect, it } from "vitest";
import { OidcStateStore, OIDC_STATE_TTL_MS } from "./oidc-state.js";
import { redirectAllowed } from "./paths/oidc.js";

const login = { role: "dev", nonce: "n", redirectUri: "http://localhost:8250/oidc/callback", codeVerifier: "v", clientNonce: "" };

describe("OidcStateStore", () => {
  it("hands a state out once", () => {
    const store = new OidcStateStore();
    const id = store.create(login);
    expect(store.take(id)).toMatchObject(login);
    expect(store.take(id)).toBeUndefined();
    expect(store.take("unknown")).toBeUndefined();
  });

  it("expires a state after 10 minutes, as Vault does", () => {
    let now = 1_000_000;
    const store = new OidcStateStore(OIDC_STATE_TTL_MS, () => now);
    const id = store.create(login);
    const kept = store.create(login);
    now += OIDC_STATE_TTL_MS - 1;
    expect(store.take(kept)).toBeDefined();
    now += 1;
    expect(store.take(id)).toBeUndefined();
    // Expired states are swept when new logins start.
    store.create(login);
    expect(store.size).toBe(1);
    expect(OIDC_STATE_TTL_MS).toBe(600_000);
  });

  it("makes unguessable, distinct state IDs", () => {
    const store = new OidcStateStore();
    const ids = new Set(Array.from({ length: 1000 }, () => store.create(login)));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe("redirectAllowed (Vault's validRedirect)", () => {
  const allowed = ["http://localhost:8250/oidc/callback", "https://broker.example/ui/vault/auth/oidc/oidc/callback", "http://127.0.0.1:8250/cb"];
  it("matches loopback URIs on any port, others exactly", () => {
    expect(redirectAllowed("http://localhost:8250/oidc/callback", allowed)).toBe(true);
    expect(redirectAllowed("http://localhost:41234/oidc/callback", allowed)).toBe(true);
    expect(redirectAllowed("http://127.0.0.1:9/cb", allowed)).toBe(true);
    expect(redirectAllowed("https://broker.example/ui/vault/auth/oidc/oidc/callback", allowed)).toBe(true);
    expect(redirectAllowed("https://broker.example:444/ui/vault/auth/oidc/oidc/callback", allowed)).toBe(false);
    expect(redirectAllowed("http://localhost:8250/oidc/callback/x", allowed)).toBe(false);
    expect(redirectAllowed("https://localhost:8250/oidc/callback", allowed)).toBe(false);
    expect(redirectAllowed("http://127.0.0.1:8250/oidc/callback", allowed)).toBe(false);
    expect(redirectAllowed("not a url", allowed)).toBe(false);
  });
});
