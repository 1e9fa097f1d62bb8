/**
 * JWT auth through the real server against a small OpenID Provider (discovery document and JWKS
 * over HTTP, keys and tokens from jose): discovery, JWKS caching and refresh on an unknown key ID,
 * every refusal (alg none, HMAC keyed with the public key, unknown kid, expiry, nbf, issuer,
 * audience, subject, bound claims), claim mappings, static keys, CIDR binding and revocation.
 */
import { createHmac } from "node:crypto";
import { UnsecuredJWT, base64url, exportSPKI } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { TestOidcProvider } from "./helpers/oidc-provider.js";

let server: RunningServer;
let base: string;
let idp: TestOidcProvider;
const root = { token: "root" };
const now = () => Math.floor(Date.now() / 1000);

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};
const login = (jwt: string, role = "ci", mount = "jwt") => call(base, "POST", `auth/${mount}/login`, { body: { role, jwt } });

/** Claims a "ci" role accepts. */
const good = (extra: Record<string, unknown> = {}) => ({ sub: "repo:acme/api", aud: "leasehold", project: "alpha", groups: ["dev", "ops"], ctx: { env: "prod" }, ...extra });

/** Expects a refusal whose message does not carry the token (nor its signature). */
async function refused(jwt: string, status: number, message: RegExp, role = "ci"): Promise<void> {
  const r = await login(jwt, role);
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.errors[0]).toMatch(message);
  const text = JSON.stringify(r.body);
  for (const part of jwt.split(".").filter((p) => p.length > 8)) expect(text).not.toContain(part);
}

beforeAll(async () => {
  idp = await TestOidcProvider.start();
  await idp.addKey("k1", "RS256");
  await idp.addKey("k2", "ES256", false);
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await write("sys/auth/jwt", { type: "jwt" });
  await call(base, "PUT", "sys/policies/acl/ci", { ...root, body: { policy: 'path "secret/data/ci/*" { capabilities = ["read"] }' } });
});
afterAll(async () => {
  await server?.stop();
  await idp?.close();
});

describe("jwt config and roles", () => {
  it("needs exactly one key source and only asymmetric algorithms", async () => {
    const none = await call(base, "POST", "auth/jwt/config", { ...root, body: { bound_issuer: "x" } });
    expect(none.status).toBe(400);
    expect(none.body.errors[0]).toBe("exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set");
    const two = await call(base, "POST", "auth/jwt/config", { ...root, body: { oidc_discovery_url: idp.url, jwks_url: `${idp.url}/keys` } });
    expect(two.status).toBe(400);
    for (const alg of ["HS256", "none"]) {
      const r = await call(base, "POST", "auth/jwt/config", { ...root, body: { oidc_discovery_url: idp.url, jwt_supported_algs: ["RS256", alg] } });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatch(new RegExp(`unsupported signing algorithm\\(s\\) ${alg}`));
    }
  });

  it("checks the discovery URL when the config is written", async () => {
    const dead = await call(base, "POST", "auth/jwt/config", { ...root, body: { oidc_discovery_url: "http://127.0.0.1:1" } });
    expect(dead.status).toBe(400);
    expect(dead.body.errors[0]).toMatch(/^error checking oidc discovery URL: /);
    // The document must name the URL it was fetched from as its issuer.
    idp.advertisedIssuer = "https://accounts.example.com";
    const lookalike = await call(base, "POST", "auth/jwt/config", { ...root, body: { oidc_discovery_url: idp.url } });
    idp.advertisedIssuer = undefined;
    expect(lookalike.status).toBe(400);
    expect(lookalike.body.errors[0]).toMatch(/names issuer/);
  });

  it("configures discovery and reads it back", async () => {
    const before = idp.discoveryFetches;
    await write("auth/jwt/config", { oidc_discovery_url: idp.url, jwks_refresh_cooldown: "1s", default_role: "ci" });
    expect(idp.discoveryFetches).toBe(before + 1);
    const r = await call(base, "GET", "auth/jwt/config", root);
    expect(r.body.data).toMatchObject({ oidc_discovery_url: idp.url, jwks_url: "", jwt_validation_pubkeys: [], bound_issuer: "", default_role: "ci", jwks_refresh_cooldown: 1 });
    expect(r.body.data.jwt_supported_algs).toEqual(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]);
  });

  it("validates roles as Vault does", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ bound_audiences: "x" }, /a user claim must be defined on the role/],
      [{ user_claim: "sub" }, /must have at least one bound constraint/],
      [{ user_claim: "sub", bound_audiences: "x", role_type: "oidc" }, /'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified/],
      [{ user_claim: "sub", bound_claims: { n: 1 }, bound_claims_type: "glob" }, /must be a string or a list of strings/],
      [{ user_claim: "sub", bound_claims: { n: { nested: true } } }, /must be a string, number, boolean/],
      [{ user_claim: "sub", bound_audiences: "x", claim_mappings: { a: "role" } }, /"role" is reserved/],
      [{ user_claim: "sub", bound_audiences: "x", claim_mappings: { a: "m", b: "m" } }, /multiple keys are mapped to metadata key "m"/],
      [{ user_claim: "sub", bound_audiences: "x", clock_skew_leeway: "-5s" }, /leeway/],
    ];
    for (const [body, msg] of cases) {
      const r = await call(base, "POST", "auth/jwt/role/bad", { ...root, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors[0]).toMatch(msg);
    }
  });

  it("creates the ci role", async () => {
    await write("auth/jwt/role/ci", {
      role_type: "jwt",
      user_claim: "sub",
      bound_audiences: ["leasehold"],
      bound_claims: { project: ["alpha", "beta"], groups: "ops" },
      claim_mappings: { project: "project", "/ctx/env": "env" },
      token_policies: "ci",
      token_ttl: "10m",
    });
    const r = await call(base, "GET", "auth/jwt/role/ci", root);
    expect(r.body.data).toMatchObject({ role_type: "jwt", user_claim: "sub", bound_audiences: ["leasehold"], bound_claims_type: "string", token_policies: ["ci"], token_ttl: 600 });
  });
});

describe("jwt login", () => {
  it("logs in with a token from the provider: policies, claim mappings, display name, path", async () => {
    const r = await login(await idp.sign(good(), "k1"));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth).toMatchObject({ policies: ["ci", "default"], metadata: { role: "ci", project: "alpha", env: "prod" }, lease_duration: 600, renewable: true, orphan: true });
    const self = await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.body.data).toMatchObject({ display_name: "jwt-repo:acme/api", path: "auth/jwt/login" });
    // default_role applies when the login names none.
    expect((await call(base, "POST", "auth/jwt/login", { body: { jwt: await idp.sign(good(), "k1") } })).status).toBe(200);
  });

  it("keeps the JWKS cached between logins", async () => {
    const fetches = idp.jwksFetches;
    for (let i = 0; i < 5; i++) expect((await login(await idp.sign(good({ project: "beta" }), "k1"))).status).toBe(200);
    expect(idp.jwksFetches).toBe(fetches);
  });

  it("refuses alg none", async () => {
    const unsigned = new UnsecuredJWT({ ...good(), iss: idp.url, exp: now() + 300 }).encode();
    await refused(unsigned, 400, /^error validating token: signing algorithm not allowed$/);
  });

  it("refuses an HMAC token keyed with the provider's public key", async () => {
    const pem = await exportSPKI(idp.key("k1").publicKey);
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    const signingInput = `${enc({ alg: "HS256", kid: "k1", typ: "JWT" })}.${enc({ ...good(), iss: idp.url, exp: now() + 300 })}`;
    const forged = `${signingInput}.${base64url.encode(createHmac("sha256", pem).update(signingInput).digest())}`;
    const fetches = idp.jwksFetches;
    await refused(forged, 400, /^error validating token: signing algorithm not allowed$/);
    expect(idp.jwksFetches).toBe(fetches);
  });

  it("refuses a tampered payload (signature no longer verifies)", async () => {
    const [h, , s] = (await idp.sign(good(), "k1")).split(".");
    const payload = base64url.encode(JSON.stringify({ ...good({ project: "beta" }), iss: idp.url, exp: now() + 300 }));
    await refused(`${h}.${payload}.${s}`, 400, /^error validating token: invalid signature$/);
  });

  it("refuses an unknown kid after one rate-limited JWKS refresh", async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const fetches = idp.jwksFetches;
    await refused(await idp.sign(good(), "k2"), 400, /^error validating token: no known key matches the token's key ID$/);
    expect(idp.jwksFetches).toBe(fetches + 1);
    // Within the cooldown, more unknown key IDs cause no fetch at all.
    await refused(await idp.sign(good(), "k2", { kid: "made-up" }), 400, /no known key/);
    await refused(await idp.sign(good(), "k2"), 400, /no known key/);
    expect(idp.jwksFetches).toBe(fetches + 1);
  });

  it("picks up a rotated key once the cooldown has passed", async () => {
    idp.publish("k2");
    await new Promise((r) => setTimeout(r, 1100));
    const fetches = idp.jwksFetches;
    expect((await login(await idp.sign(good(), "k2"))).status).toBe(200);
    expect(idp.jwksFetches).toBe(fetches + 1);
    expect((await login(await idp.sign(good(), "k1"))).status).toBe(200);
    expect(idp.jwksFetches).toBe(fetches + 1);
  });

  it("refuses expired, not-yet-valid and future-issued tokens, and honours the leeways", async () => {
    await refused(await idp.sign(good({ exp: now() - 3600, iat: now() - 7200 }), "k1"), 400, /^error validating token: invalid expiration time \(exp\) claim: token is expired$/);
    await refused(await idp.sign(good({ nbf: now() + 3600 }), "k1"), 400, /^error validating token: invalid not before \(nbf\) claim: token not yet valid$/);
    await refused(await idp.sign(good({ iat: now() + 3600 }), "k1"), 400, /issued in the future/);
    await refused(await idp.sign(good({ exp: undefined }), "k1"), 400, /no expiration/);
    // Expired 30 s ago: inside the default leeway (150 s + 60 s clock skew)...
    const recent = await idp.sign(good({ exp: now() - 30, iat: now() - 300 }), "k1");
    expect((await login(recent)).status).toBe(200);
    // ...and refused by a role with the leeways turned off.
    await write("auth/jwt/role/strict", { user_claim: "sub", bound_audiences: "leasehold", expiration_leeway: -1, clock_skew_leeway: -1 });
    await refused(recent, 400, /token is expired/, "strict");
  });

  it("refuses a wrong issuer", async () => {
    await refused(await idp.sign(good({ iss: "https://evil.example" }), "k1"), 400, /^error validating token: invalid issuer \(iss\) claim$/);
  });

  it("refuses a wrong or missing audience, and an audience a role does not bind", async () => {
    await refused(await idp.sign(good({ aud: "someone-else" }), "k1"), 400, /invalid audience \(aud\) claim/);
    await refused(await idp.sign(good({ aud: undefined }), "k1"), 400, /invalid audience \(aud\) claim/);
    expect((await login(await idp.sign(good({ aud: ["other", "leasehold"] }), "k1"))).status).toBe(200);
    await write("auth/jwt/role/no-aud", { user_claim: "sub", bound_subject: "repo:acme/api" });
    await refused(await idp.sign(good(), "k1"), 400, /audience claim found in JWT but no audiences bound to the role/, "no-aud");
    expect((await login(await idp.sign(good({ aud: undefined }), "k1"), "no-aud")).status).toBe(200);
  });

  it("refuses a subject other than bound_subject", async () => {
    await refused(await idp.sign(good({ aud: undefined, sub: "repo:acme/web" }), "k1"), 400, /^error validating token: invalid subject \(sub\) claim$/, "no-aud");
  });

  it("refuses tokens whose claims miss the bound claims", async () => {
    await refused(await idp.sign(good({ project: "gamma" }), "k1"), 400, /^error validating claims: claim "project" does not match any associated bound claim values$/);
    await refused(await idp.sign(good({ groups: undefined }), "k1"), 400, /^error validating claims: claim "groups" is missing$/);
    await refused(await idp.sign(good({ groups: ["dev"] }), "k1"), 400, /claim "groups" does not match/);
    expect((await login(await idp.sign(good({ groups: "ops" }), "k1"))).status).toBe(200);
  });

  it("matches glob bound claims and JSON-pointer claims", async () => {
    await write("auth/jwt/role/release", { user_claim: "sub", bound_audiences: "leasehold", bound_claims_type: "glob", bound_claims: { "/git/ref": "refs/heads/release-*" } });
    expect((await login(await idp.sign(good({ git: { ref: "refs/heads/release-1.4" } }), "k1"), "release")).status).toBe(200);
    await refused(await idp.sign(good({ git: { ref: "refs/heads/main" } }), "k1"), 400, /claim "\/git\/ref" does not match/, "release");
  });

  it("refuses a token without the user claim", async () => {
    await write("auth/jwt/role/by-email", { user_claim: "email", bound_audiences: "leasehold" });
    await refused(await idp.sign(good(), "k1"), 400, /claim "email" not found in token/, "by-email");
    const r = await login(await idp.sign(good({ email: "dev@acme.test" }), "k1"), "by-email");
    expect(r.status).toBe(200);
  });

  it("answers malformed input with 400", async () => {
    await refused("not-a-jwt", 400, /not a well-formed JWT/);
    await refused("eyJhbGciOiJSUzI1NiJ9.!!!.abc", 400, /not a well-formed JWT/);
    expect((await call(base, "POST", "auth/jwt/login", { body: { role: "ci" } })).body.errors).toEqual(["missing token"]);
    const unknown = await login(await idp.sign(good(), "k1"), "nope");
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0]).toBe('role "nope" could not be found');
  });

  it("token_bound_cidrs: 10.0.0.0/8 refuses the login, 127.0.0.1/32 allows it", async () => {
    await write("auth/jwt/role/far", { user_claim: "sub", bound_audiences: "leasehold", token_bound_cidrs: "10.0.0.0/8" });
    expect((await login(await idp.sign(good(), "k1"), "far")).status).toBe(403);
    await write("auth/jwt/role/near", { user_claim: "sub", bound_audiences: "leasehold", token_bound_cidrs: "127.0.0.1/32" });
    const r = await login(await idp.sign(good(), "k1"), "near");
    expect(r.status).toBe(200);
    expect((await server.core.tokens.lookup(r.body.auth.client_token))?.boundCidrs).toEqual(["127.0.0.1/32"]);
  });

  it("renews while the role holds and refuses once it is gone", async () => {
    const token = (await login(await idp.sign(good(), "k1"), "near")).body.auth.client_token;
    expect((await call(base, "POST", "auth/token/renew-self", { token, body: {} })).status).toBe(200);
    expect((await call(base, "DELETE", "auth/jwt/role/near", root)).status).toBe(204);
    const r = await call(base, "POST", "auth/token/renew-self", { token, body: {} });
    expect(r.status).toBe(403);
  });

  it("revoking the prefix auth/jwt/login revokes the tokens it issued", async () => {
    const a = (await login(await idp.sign(good(), "k1"))).body.auth.client_token;
    const b = (await login(await idp.sign(good(), "k2"))).body.auth.client_token;
    expect((await call(base, "PUT", "sys/leases/revoke-prefix/auth/jwt/login", root)).status).toBe(204);
    for (const t of [a, b]) expect((await call(base, "GET", "auth/token/lookup-self", { token: t })).status).toBe(403);
  });
});

describe("jwt with static keys and a JWKS URL", () => {
  it("verifies with jwt_validation_pubkeys and bound_issuer", async () => {
    await write("sys/auth/jwt-static", { type: "jwt" });
    await write("auth/jwt-static/config", { jwt_validation_pubkeys: [await exportSPKI(idp.key("k1").publicKey)], bound_issuer: idp.url, jwt_supported_algs: "RS256" });
    await write("auth/jwt-static/role/ci", { user_claim: "sub", bound_audiences: "leasehold" });
    expect((await login(await idp.sign(good(), "k1"), "ci", "jwt-static")).status).toBe(200);
    // ES256 is outside this mount's allow-list; the key is not one of its keys either.
    const es = await login(await idp.sign(good(), "k2"), "ci", "jwt-static");
    expect(es.status).toBe(400);
    expect(es.body.errors[0]).toBe("error validating token: signing algorithm not allowed");
    const wrongIss = await login(await idp.sign(good({ iss: "https://other.example" }), "k1"), "ci", "jwt-static");
    expect(wrongIss.body.errors[0]).toBe("error validating token: invalid issuer (iss) claim");
  });

  it("verifies with jwks_url", async () => {
    await write("sys/auth/jwt-jwks", { type: "jwt" });
    await write("auth/jwt-jwks/config", { jwks_url: `${idp.url}/keys`, bound_issuer: idp.url });
    await write("auth/jwt-jwks/role/ci", { user_claim: "sub", bound_audiences: "leasehold" });
    expect((await login(await idp.sign(good(), "k2"), "ci", "jwt-jwks")).status).toBe(200);
    const bad = await call(base, "POST", "auth/jwt-jwks/config", { ...root, body: { jwks_url: `${idp.url}/nothing-here` } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/^error checking jwks URL: /);
  });
});
