import { createPublicKey } from "node:crypto";
import { base64url, compactVerify, errors as joseErrors, importJWK, type CryptoKey, type JWK } from "jose";
import { UserError } from "../../../src/sdk/index.js";

/**
 * Signing algorithms a login JWT may use: asymmetric only (Vault's list). `none` and the HMAC
 * family are never accepted, so a token "signed" with a public key as an HMAC secret, or not
 * signed at all, is refused before any key is looked at.
 */
export const ASYMMETRIC_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

/** Throws UserError naming any algorithm outside the asymmetric list. */
export function checkAlgs(algs: string[], field = "jwt_supported_algs"): string[] {
  const bad = algs.filter((a) => !(ASYMMETRIC_ALGS as readonly string[]).includes(a));
  if (bad.length) throw new UserError(`${field}: unsupported signing algorithm(s) ${bad.join(", ")}; supported: ${ASYMMETRIC_ALGS.join(", ")}`);
  return algs;
}

export interface JwtHeader {
  alg?: string;
  kid?: string;
  b64?: unknown;
}

/** A JWT split into its decoded header and claims, not yet verified. */
export interface DecodedJwt {
  header: JwtHeader;
  claims: Record<string, unknown>;
}

/**
 * Why a login JWT was refused. `malformed`: not a compact JWS; `signature`: algorithm, key or
 * signature; `claims`: time, issuer, audience, subject. Vault's two JWT-reading methods answer
 * these differently (the jwt method 400 `error validating token: <reason>`, the kubernetes method
 * 403, `permission denied` for the first two kinds), so each login maps the kind itself. Left
 * unmapped it is a 400 with the jwt method's wording.
 */
export type JwtRefusalKind = "malformed" | "signature" | "claims";

export class JwtRefusal extends UserError {
  override readonly code = "jwt_refused";
  constructor(readonly kind: JwtRefusalKind, readonly reason: string) {
    super(`error validating token: ${reason}`);
  }
}

const MALFORMED_REASON = "the token is not a well-formed JWT";
const malformed = () => new JwtRefusal("malformed", MALFORMED_REASON);

function decodePart(part: string): Record<string, unknown> {
  const value: unknown = JSON.parse(new TextDecoder().decode(base64url.decode(part)));
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
  return value as Record<string, unknown>;
}

/** Decodes a compact JWS without verifying it. Malformed input is a 400 that never echoes the token. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw malformed();
  try {
    return { header: decodePart(parts[0]) as JwtHeader, claims: decodePart(parts[1]) };
  } catch {
    throw malformed();
  }
}

/** Which JWKs can verify a given `alg` (key type, curve, declared alg and use). */
function usable(jwk: JWK, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== "sig") return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (alg.startsWith("RS") || alg.startsWith("PS")) return jwk.kty === "RSA";
  if (alg === "ES256") return jwk.kty === "EC" && jwk.crv === "P-256";
  if (alg === "ES384") return jwk.kty === "EC" && jwk.crv === "P-384";
  if (alg === "ES512") return jwk.kty === "EC" && jwk.crv === "P-521";
  if (alg === "EdDSA") return jwk.kty === "OKP" && jwk.crv === "Ed25519";
  return false;
}

/** One verification key, imported lazily once per algorithm. */
export class VerificationKey {
  private imported = new Map<string, Promise<CryptoKey>>();
  constructor(readonly jwk: JWK) {}

  forAlg(alg: string): Promise<CryptoKey> {
    let k = this.imported.get(alg);
    if (!k) {
      k = importJWK(this.jwk, alg) as Promise<CryptoKey>;
      this.imported.set(alg, k);
      k.catch(() => this.imported.delete(alg));
    }
    return k;
  }
}

/** A set of public keys: static PEMs, or one snapshot of a JWKS. */
export class KeySet {
  readonly keys: VerificationKey[];
  constructor(jwks: JWK[]) {
    this.keys = jwks.filter((k) => typeof k.kty === "string").map((k) => new VerificationKey(k));
  }

  /** Public keys or certificates in PEM; throws UserError naming the bad entry. */
  static fromPems(pems: string[], field: string): KeySet {
    return new KeySet(
      pems.map((pem, i) => {
        try {
          const key = createPublicKey(pem);
          return key.export({ format: "jwk" }) as JWK;
        } catch {
          throw new UserError(`${field}: entry ${i + 1} is not a PEM public key or certificate`);
        }
      }),
    );
  }

  /** Keys that may have signed a token with this header: matching `kid` when the token names one. */
  candidates(header: JwtHeader): VerificationKey[] {
    const alg = header.alg ?? "";
    return this.keys.filter((k) => usable(k.jwk, alg) && (header.kid === undefined || k.jwk.kid === undefined || k.jwk.kid === header.kid));
  }
}

/** Where verification keys come from: fixed, or fetched (and refreshed) from a JWKS. */
export interface KeySource {
  candidates(header: JwtHeader): Promise<VerificationKey[]>;
}

export function staticKeySource(set: KeySet): KeySource {
  return { candidates: async (header) => set.candidates(header) };
}

/**
 * Verifies the signature of a compact JWS against the allowed algorithms and the source's keys,
 * and returns its claims. Every refusal is a fixed message: the token is never echoed.
 */
export async function verifyJwtSignature(token: string, algs: readonly string[], source: KeySource): Promise<DecodedJwt> {
  const decoded = decodeJwt(token);
  const alg = decoded.header.alg;
  if (typeof alg !== "string" || !algs.includes(alg)) throw new JwtRefusal("signature", "signing algorithm not allowed");
  // An unencoded payload (RFC 7797) is never a JWT; its claims would not be the signed bytes we decode.
  if ((decoded.header.kid !== undefined && typeof decoded.header.kid !== "string") || decoded.header.b64 !== undefined) throw malformed();
  const keys = await source.candidates(decoded.header);
  if (!keys.length) throw new JwtRefusal("signature", "no known key matches the token's key ID");
  for (const key of keys) {
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = await key.forAlg(alg);
    } catch {
      continue;
    }
    try {
      await compactVerify(token, cryptoKey, { algorithms: [...algs] });
      return decoded;
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new JwtRefusal("signature", "signing algorithm not allowed");
      throw malformed();
    }
  }
  throw new JwtRefusal("signature", "invalid signature");
}

/** Leeways in seconds for the time claims. */
export interface TimeLeeways {
  exp: number;
  nbf: number;
  iat: number;
}

/**
 * Checks `exp`, `nbf` and `iat` (seconds since the epoch) with leeways. The reasons are the
 * wording of the JWT validator Vault's jwt and kubernetes methods share (hashicorp/cap).
 */
export function checkTimeClaims(claims: Record<string, unknown>, leeway: TimeLeeways, opts: { requireExp: boolean; now?: number }): void {
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  for (const c of ["exp", "nbf", "iat"] as const) {
    if (claims[c] !== undefined && (typeof claims[c] !== "number" || !Number.isFinite(claims[c]))) throw new JwtRefusal("claims", `the "${c}" claim must be a number`);
  }
  const exp = claims.exp as number | undefined;
  if (exp === undefined) {
    if (opts.requireExp) throw new JwtRefusal("claims", "the token has no expiration (exp) claim");
  } else if (now > exp + leeway.exp) {
    throw new JwtRefusal("claims", "invalid expiration time (exp) claim: token is expired");
  }
  const nbf = claims.nbf as number | undefined;
  if (nbf !== undefined && now < nbf - leeway.nbf) throw new JwtRefusal("claims", "invalid not before (nbf) claim: token not yet valid");
  const iat = claims.iat as number | undefined;
  if (iat !== undefined && now < iat - leeway.iat) throw new JwtRefusal("claims", "invalid issued at (iat) claim: token issued in the future");
}

/** The `aud` claim as a list (it may be a string or an array). */
export function audiencesOf(claims: Record<string, unknown>): string[] {
  const aud = claims.aud;
  if (typeof aud === "string") return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === "string");
  return [];
}
