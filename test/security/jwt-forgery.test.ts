/**
 * Issue 15, "what already held": forged JWTs against the `jwt` auth method. Two mounts: one with
 * static `jwt_validation_pubkeys` (an RSA and an EC key) and a `bound_issuer`, one with a
 * `jwks_url`. Every forgery an attacker can make without the provider's private key is refused:
 * `alg: none` (any casing), HMAC keyed with the public key in every encoding, keys the token brings
 * along (`jwk`, `jku`, `x5u`), stripped or zero signatures, a JWE encrypted to the public key, a
 * `kid` pointing elsewhere; and correctly signed tokens whose claims are wrong (aud, iss, exp, nbf,
 * bound_claims, claim types). Positive controls: the same tokens, correctly made, log in.
 */
import { createHmac, createPublicKey } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CompactEncrypt, SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { TestOidcProvider } from "../auth/helpers/oidc-provider.js";

let server: RunningServer;
let base: string;
let idp: TestOidcProvider;
/** An attacker's server: serves a JWKS holding the attacker's key, and counts hits. */
let evil: Server;
let evilUrl = "";
let evilHits = 0;
let attacker: { privateKey: CryptoKey; publicKey: CryptoKey };
const ISS = "https://issuer.leasehold.test";
const root = { token: "root" };
const now = () => Math.floor(Date.now() / 1000);
const enc = (o: unknown) => base64url.encode(JSON.stringify(o));

/** Claims the "ci" roles accept. */
const good = (extra: Record<string, unknown> = {}): JWTPayload => ({ iss: ISS, sub: "repo:acme/api", aud: "leasehold", project: "alpha", iat: now(), exp: now() + 300, ...extra });

/** Signs with one of the provider's keys, `iss` defaulting to the static mount's issuer. */
const sign = (claims: JWTPayload, kid: "rsa" | "ec", header: Record<string, unknown> = {}) => idp.sign({ ...claims }, kid, header);

const login = (jwt: string, mount: "jwt-static" | "jwt-jwks" = "jwt-static") => call(base, "POST", `auth/${mount}/login`, { body: { role: "ci", jwt } });

/**
 * A refusal that issues no token and never echoes the JWT. Vault's jwt method answers its
 * validation errors with 400 (and 403 for some); either is a refusal, 200 or 5xx are not.
 */
async function refused(jwt: string, what: string, mount: "jwt-static" | "jwt-jwks" = "jwt-static", status: number[] = [400, 403]): Promise<string> {
  const r = await login(jwt, mount);
  expect(status, `${what} → ${r.status} ${JSON.stringify(r.body)}`).toContain(r.status);
  expect(r.body.auth, what).toBeUndefined();
  const text = JSON.stringify(r.body);
  for (const part of jwt.split(".").filter((p) => p.length > 8)) expect(text, what).not.toContain(part);
  return r.body.errors[0] as string;
}

/** An HS* token over `claims`, keyed with `secret`. */
function hmacToken(alg: "HS256" | "HS384" | "HS512", secret: string | Buffer, claims: JWTPayload, header: Record<string, unknown> = {}): string {
  const input = `${enc({ alg, typ: "JWT", ...header })}.${enc(claims)}`;
  return `${input}.${base64url.encode(createHmac(`sha${alg.slice(2)}`, secret).update(input).digest())}`;
}

beforeAll(async () => {
  idp = await TestOidcProvider.start();
  await idp.addKey("rsa", "RS256");
  await idp.addKey("ec", "ES256");
  attacker = await generateKeyPair("RS256", { extractable: true });
  const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: "rsa", alg: "RS256", use: "sig" };
  evil = createServer((_req, res) => {
    evilHits++;
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [attackerJwk] }));
  });
  await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
  evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/keys`;

  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  const write = async (path: string, body: unknown) => {
    const r = await call(base, "POST", path, { ...root, body });
    expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  };
  const role = { user_claim: "sub", bound_audiences: ["leasehold"], bound_claims: { project: ["alpha", "beta"] }, token_policies: "ci", expiration_leeway: 5, not_before_leeway: 5, clock_skew_leeway: 5 };
  await write("sys/auth/jwt-static", { type: "jwt" });
  await write("auth/jwt-static/config", { jwt_validation_pubkeys: [await exportSPKI(idp.key("rsa").publicKey), await exportSPKI(idp.key("ec").publicKey)], bound_issuer: ISS });
  await write("auth/jwt-static/role/ci", role);
  await write("sys/auth/jwt-jwks", { type: "jwt" });
  await write("auth/jwt-jwks/config", { jwks_url: `${idp.url}/keys`, bound_issuer: ISS, jwks_refresh_cooldown: "1h" });
  await write("auth/jwt-jwks/role/ci", role);
});
afterAll(async () => {
  await server?.stop();
  await idp?.close();
  await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
});

describe("JWT forgeries", () => {
  it("positive control: tokens signed by the provider's RSA and EC keys log in on both mounts", async () => {
    for (const mount of ["jwt-static", "jwt-jwks"] as const) {
      for (const kid of ["rsa", "ec"] as const) {
        const r = await login(await sign(good(), kid), mount);
        expect(r.status, `${mount} ${kid}: ${JSON.stringify(r.body)}`).toBe(200);
        expect(r.body.auth.policies).toContain("ci");
        expect((await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token })).status).toBe(200);
      }
    }
  });

  it("refuses alg none in any casing, with or without a signature", async () => {
    for (const alg of ["none", "None", "NONE", "nOnE", ""]) {
      for (const sig of ["", "AAAA", base64url.encode("x".repeat(32))]) {
        for (const mount of ["jwt-static", "jwt-jwks"] as const) {
          const msg = await refused(`${enc({ alg, typ: "JWT" })}.${enc(good())}.${sig}`, `alg ${JSON.stringify(alg)} sig ${JSON.stringify(sig)} on ${mount}`, mount);
          expect(msg).toBe("error validating token: signing algorithm not allowed");
        }
      }
    }
    // A header without alg at all.
    await refused(`${enc({ typ: "JWT" })}.${enc(good())}.`, "no alg", "jwt-static");
  });

  it("refuses HMAC tokens keyed with the public key, in every encoding an attacker could guess", async () => {
    const jwksBefore = idp.jwksFetches;
    for (const kid of ["rsa", "ec"] as const) {
      const pub = idp.key(kid).publicKey;
      const pem = await exportSPKI(pub);
      const node = createPublicKey(pem);
      const secrets: (string | Buffer)[] = [
        pem,
        pem.trimEnd(),
        ...(kid === "rsa" ? [node.export({ type: "pkcs1", format: "pem" }).toString()] : []),
        node.export({ type: "spki", format: "der" }),
        JSON.stringify(await exportJWK(pub)),
      ];
      for (const secret of secrets) {
        for (const alg of ["HS256", "HS384", "HS512"] as const) {
          for (const mount of ["jwt-static", "jwt-jwks"] as const) {
            const msg = await refused(hmacToken(alg, secret, good(), { kid }), `${alg} keyed with ${kid} public key on ${mount}`, mount);
            expect(msg).toBe("error validating token: signing algorithm not allowed");
          }
        }
      }
    }
    // Refused before any key was looked at: no JWKS fetch was triggered.
    expect(idp.jwksFetches).toBe(jwksBefore);
  });

  it("ignores keys the token brings along: embedded jwk, jku and x5u pointing at an attacker", async () => {
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)) };
    const forge = (header: Record<string, unknown>) => new SignJWT(good()).setProtectedHeader({ alg: "RS256", typ: "JWT", ...header }).sign(attacker.privateKey);
    for (const mount of ["jwt-static", "jwt-jwks"] as const) {
      for (const header of [{ jwk: attackerJwk }, { kid: "rsa", jwk: attackerJwk }, { kid: "rsa", jku: evilUrl }, { jku: evilUrl }, { kid: "rsa", x5u: evilUrl }, { kid: "attacker", jku: evilUrl }]) {
        await refused(await forge(header), `${JSON.stringify(Object.keys(header))} on ${mount}`, mount);
      }
      // A different key that claims the provider's kid.
      expect(await refused(await forge({ kid: "rsa" }), `attacker key with kid rsa on ${mount}`, mount)).toBe("error validating token: invalid signature");
    }
    expect(evilHits).toBe(0);
  });

  it("refuses stripped, zero and transplanted signatures, a kid pointing elsewhere, and a JWE made with the public key", async () => {
    const valid = await sign(good(), "ec");
    const [h, p, s] = valid.split(".");
    for (const mount of ["jwt-static", "jwt-jwks"] as const) {
      await refused(`${h}.${p}.`, `stripped signature on ${mount}`, mount);
      await refused(`${h}.${p}`, `two parts on ${mount}`, mount, [400]);
      // ECDSA with r = s = 0 ("psychic signatures", CVE-2022-21449).
      await refused(`${h}.${p}.${base64url.encode(Buffer.alloc(64))}`, `zero ES256 signature on ${mount}`, mount);
      // The provider's signature over other claims.
      await refused(`${h}.${enc({ ...good(), project: "beta", sub: "admin" })}.${s}`, `transplanted signature on ${mount}`, mount);
      // The RSA header on the EC token: the signature cannot verify under the other key.
      const rsaHeader = (await sign(good(), "rsa")).split(".")[0];
      await refused(`${rsaHeader}.${p}.${s}`, `header swap on ${mount}`, mount);
    }
    // Against a JWKS, a kid is looked up exactly: path-like, wildcard or injected kids match no key
    // and fetch nothing (static PEM keys carry no kid, so there a genuine signature is what counts).
    const fetches = idp.jwksFetches;
    for (const kid of ["../../../keys", "rsa' OR '1'='1", "ec\u0000", "*", "EC", ""]) {
      const m = await refused(await idp.sign(good(), "ec", { kid }), `kid ${JSON.stringify(kid)}`, "jwt-jwks");
      expect(m, `kid ${JSON.stringify(kid)}`).toMatch(/no known key matches|not a well-formed/);
    }
    expect(idp.jwksFetches).toBe(fetches);
    // A JWE is encrypted *to* the public key: anyone can make one. It is never a login token.
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(good())))
      .setProtectedHeader({ alg: "RSA-OAEP-256", enc: "A256GCM", kid: "rsa" })
      .encrypt(createPublicKey(await exportSPKI(idp.key("rsa").publicKey)));
    await refused(jwe, "JWE", "jwt-static", [400]);
    // The controls: the untouched token still logs in on both mounts.
    expect((await login(valid)).status).toBe(200);
    expect((await login(valid, "jwt-jwks")).status).toBe(200);
  });

  it("refuses correctly signed tokens with a wrong audience, issuer, lifetime or bound claim", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["wrong aud", { aud: "someone-else" }, /invalid audience/],
      ["aud list without ours", { aud: ["a", "b"] }, /invalid audience/],
      ["aud as object", { aud: { leasehold: true } }, /invalid audience/],
      ["no aud", { aud: undefined }, /invalid audience/],
      ["wrong iss", { iss: "https://evil.example" }, /invalid issuer/],
      ["iss with a trailing slash", { iss: `${ISS}/` }, /invalid issuer/],
      ["no iss", { iss: undefined }, /invalid issuer/],
      ["expired", { exp: now() - 600, iat: now() - 1200 }, /expired/],
      ["no exp", { exp: undefined }, /no expiration/],
      ["exp as a far-future string", { exp: "99999999999" }, /"exp" claim must be a number/],
      ["nbf in the future", { nbf: now() + 600 }, /not yet valid/],
      ["iat in the future", { iat: now() + 600 }, /issued in the future/],
      ["bound claim mismatch", { project: "gamma" }, /claim "project" does not match/],
      ["bound claim missing", { project: undefined }, /claim "project" is missing/],
      ["bound claim as an object", { project: { alpha: true } }, /claim "project" does not match/],
      ["bound claim glob-like", { project: "alpha*" }, /claim "project" does not match/],
      ["bound claim case", { project: "ALPHA" }, /claim "project" does not match/],
    ];
    for (const [what, extra, msg] of cases) {
      for (const mount of ["jwt-static", "jwt-jwks"] as const) {
        const m = await refused(await sign(good(extra), "rsa"), `${what} on ${mount}`, mount);
        expect(m, `${what} on ${mount}`).toMatch(msg);
      }
    }
    // Positive controls next to them: an audience list holding ours, the other bound value.
    expect((await login(await sign(good({ aud: ["other", "leasehold"] }), "rsa"))).status).toBe(200);
    expect((await login(await sign(good({ project: "beta" }), "rsa"), "jwt-jwks")).status).toBe(200);
    expect((await login(await sign(good({ project: ["gamma", "alpha"] }), "ec"))).status).toBe(200);
  });
});
