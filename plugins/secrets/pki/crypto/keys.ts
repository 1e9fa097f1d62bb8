import { createPrivateKey, hash, createPublicKey, generateKeyPair, generateKeyPairSync, sign, type KeyObject, type JsonWebKey } from "node:crypto";
import { promisify } from "node:util";
import { UserError } from "../../../../src/sdk/index.js";
import { bitString, children, content, explicit, octetString, oid, readElement, seq, smallInteger, tlv, TAG } from "./der.js";
import { toPem } from "./pem.js";
import { signInBatch } from "./sign-batch.js";
import { cryptoWorker, ProofRefused, type Proof } from "./worker.js";

export type KeyType = "rsa" | "ec" | "ed25519";

/** A key type and size, as roles and CA requests name them (`key_type`, `key_bits`). */
export interface KeySpec {
  type: KeyType;
  /** RSA modulus bits or EC curve bits; 0 for Ed25519. */
  bits: number;
}

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_ED25519 = "1.3.101.112";

interface Curve {
  bits: number;
  name: string;
  oid: string;
  /** Coordinate size in bytes. */
  size: number;
  hash: string;
  sigOid: string;
}

const CURVES: Curve[] = [
  { bits: 224, name: "P-224", oid: "1.3.132.0.33", size: 28, hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  { bits: 256, name: "P-256", oid: "1.2.840.10045.3.1.7", size: 32, hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  { bits: 384, name: "P-384", oid: "1.3.132.0.34", size: 48, hash: "sha384", sigOid: "1.2.840.10045.4.3.3" },
  { bits: 521, name: "P-521", oid: "1.3.132.0.35", size: 66, hash: "sha512", sigOid: "1.2.840.10045.4.3.4" },
];
/** node:crypto reports OpenSSL's curve names. */
const OPENSSL_CURVES: Record<string, number> = { secp224r1: 224, prime256v1: 256, secp384r1: 384, secp521r1: 521 };

export const RSA_BITS = [2048, 3072, 4096, 8192];
export const EC_BITS = CURVES.map((c) => c.bits);

function curveOf(bits: number): Curve {
  const c = CURVES.find((x) => x.bits === bits);
  if (!c) throw new UserError(`unsupported EC key size ${bits}: use one of ${EC_BITS.join(", ")}`);
  return c;
}

/**
 * Applies Vault's defaults (`key_bits` 0 → 2048 for RSA, 256 for EC) and checks the size.
 * `any` is only meaningful on roles (for signing CSRs); callers that generate keys refuse it.
 */
export function normaliseKeySpec(type: string, bits: number): { type: KeyType | "any"; bits: number } {
  switch (type) {
    case "rsa": {
      const b = bits || 2048;
      if (!RSA_BITS.includes(b)) throw new UserError(`unsupported RSA key size ${b}: use one of ${RSA_BITS.join(", ")}`);
      return { type, bits: b };
    }
    case "ec": {
      const b = bits || 256;
      curveOf(b);
      return { type, bits: b };
    }
    case "ed25519":
      return { type, bits: 0 };
    case "any":
      return { type, bits: 0 };
    default:
      throw new UserError(`unknown key_type ${JSON.stringify(type)}: use rsa, ec or ed25519${type === "" ? "" : " (or any, on a role used only for signing)"}`);
  }
}

/** A freshly generated key pair, with the encodings a certificate and a response need. */
export interface GeneratedKey {
  spec: KeySpec;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  /** The contents of the SPKI's BIT STRING (what the key identifier hashes). */
  publicKeyBits: Buffer;
  /** RFC 5280 key identifier of the public key (made ahead for pooled P-256 keys). */
  keyId(): Buffer;
  /** Vault's `der` private key format: SEC1 for EC, PKCS#1 for RSA, PKCS#8 for Ed25519. */
  nativeDer(): { label: string; der: Buffer };
  /** `nativeDer` as PEM, without a trailing newline, when it was made ahead (pooled P-256 keys). */
  nativePem?: string;
  pkcs8Der(): Buffer;
  privateKey: KeyObject;
}

const generate = promisify(generateKeyPair);

function b64u(s: string | undefined, size: number, what: string): Buffer {
  if (!s) throw new Error(`JWK export lacks ${what}`);
  const b = Buffer.from(s, "base64url");
  if (b.length === size) return b;
  if (b.length > size) throw new Error(`JWK ${what} is ${b.length} bytes, expected ${size}`);
  return Buffer.concat([Buffer.alloc(size - b.length), b]);
}

/**
 * EC keys are encoded here from their scalar and public point. OpenSSL 3's DER encoders cost
 * 50-150 µs per key on this machine, and the first export of a new KeyObject pays a conversion
 * of about 50 µs whatever the format (the JWK export we avoid for EC altogether: on Node 20 it was
 * seen to hang forever about once in a few thousand fresh keys). keys.test.ts checks that these
 * encodings match node:crypto's byte for byte.
 */
function ecKeyFromParts(d: Buffer, point: Buffer, curve: Curve, privateKey?: KeyObject, ahead: { keyId?: Buffer; sec1Pem?: string } = {}): GeneratedKey {
  const algorithm = ecAlgorithm(curve);
  const pkcs8 = () => seq(smallInteger(0), algorithm, octetString(seq(smallInteger(1), octetString(d), explicit(1, bitString(point)))));
  let keyObject = privateKey;
  return {
    spec: { type: "ec", bits: curve.bits },
    spki: seq(algorithm, bitString(point)),
    publicKeyBits: point,
    keyId: () => ahead.keyId ?? keyIdentifier(point),
    get privateKey() {
      keyObject ??= createPrivateKey({ key: pkcs8(), format: "der", type: "pkcs8" });
      return keyObject;
    },
    nativeDer: () => ({ label: "EC PRIVATE KEY", der: sec1Der(d, point, curve) }),
    nativePem: ahead.sec1Pem,
    pkcs8Der: pkcs8,
  };
}

/** RFC 5915 ECPrivateKey (SEC1), Vault's `der` format for EC keys. */
function sec1Der(d: Buffer, point: Buffer, curve: Curve): Buffer {
  return seq(smallInteger(1), octetString(d), explicit(0, oid(curve.oid)), explicit(1, bitString(point)));
}

/** The SEC1 DER of a P-256 key before its scalar and between its scalar and its point: the worker fills them in. */
const p256Sec1Layout = ((): [Buffer, Buffer] => {
  const d = Buffer.alloc(32, 0x11);
  const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0x22)]);
  const der = sec1Der(d, point, curveOf(256));
  const at = der.indexOf(d);
  if (at < 0 || !der.subarray(der.length - point.length).equals(point)) throw new Error("unexpected SEC1 layout");
  return [der.subarray(0, at), der.subarray(at + d.length, der.length - point.length)];
})();

const ecAlgorithms = new Map<number, Buffer>();
/** The AlgorithmIdentifier of EC keys on `curve`, encoded once per curve. */
function ecAlgorithm(curve: Curve): Buffer {
  let der = ecAlgorithms.get(curve.bits);
  if (!der) ecAlgorithms.set(curve.bits, (der = seq(oid(OID_EC_PUBLIC_KEY), oid(curve.oid))));
  return der;
}

/** From a KeyObject (pool-generated P-384/P-521 keys): one SEC1 export carries d and the point. */
function ecKey(privateKey: KeyObject, curve: Curve): GeneratedKey {
  const sec1 = privateKey.export({ type: "sec1", format: "der" });
  const fields = children(sec1, readElement(sec1));
  const tagged = fields.find((f) => f.tag === 0xa1);
  if (!tagged) throw new Error("SEC1 export lacks the public key");
  const [bits] = children(sec1, tagged);
  return ecKeyFromParts(leftPad(content(sec1, fields[1]), curve.size), content(sec1, bits).subarray(1), curve, privateKey);
}

/**
 * P-256 on the hot path: a key from the crypto worker's pool of fresh keys (see worker.ts). ECDH's
 * key generation yields the scalar and the uncompressed point with no KeyObject conversion (40 µs,
 * against 105 µs for generateKeyPairSync plus an export): the same kind of key, a random scalar
 * and its point on the curve.
 */
async function p256KeyFromWorker(curve: Curve): Promise<GeneratedKey> {
  const { d, point, keyId, sec1Pem } = await cryptoWorker.p256Key(p256Sec1Layout);
  return ecKeyFromParts(d, point, curve, undefined, { keyId, sec1Pem });
}

function leftPad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

/** Ed25519 keys from the JWK export (4 µs; the PKCS#8/SPKI encoders cost 60-115 µs). */
function ed25519Key(privateKey: KeyObject): GeneratedKey {
  const jwk = privateKey.export({ format: "jwk" }) as JsonWebKey;
  const x = b64u(jwk.x, 32, "x");
  const d = b64u(jwk.d, 32, "d");
  const algorithm = seq(oid(OID_ED25519));
  const pkcs8 = () => seq(smallInteger(0), algorithm, octetString(octetString(d)));
  return {
    spec: { type: "ed25519", bits: 0 },
    spki: seq(algorithm, bitString(x)),
    publicKeyBits: x,
    keyId: () => keyIdentifier(x),
    privateKey,
    nativeDer: () => ({ label: "PRIVATE KEY", der: pkcs8() }),
    pkcs8Der: pkcs8,
  };
}

function rsaKey(privateKey: KeyObject, publicKey: KeyObject, bits: number): GeneratedKey {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const publicKeyBits = spkiPublicKeyBits(spki);
  return {
    spec: { type: "rsa", bits },
    spki,
    publicKeyBits,
    keyId: () => keyIdentifier(publicKeyBits),
    privateKey,
    nativeDer: () => ({ label: "RSA PRIVATE KEY", der: privateKey.export({ type: "pkcs1", format: "der" }) }),
    pkcs8Der: () => privateKey.export({ type: "pkcs8", format: "der" }),
  };
}

/**
 * Whether an operation with this key runs inline on the event loop or on libuv's thread pool.
 * P-256 and Ed25519 key generation and signing take 40-70 µs: inline. P-384 (about 1 ms), P-521
 * (2-3 ms) and RSA (0.4 ms to sign, 50-500 ms to generate) go to the pool. Measured here: with
 * OpenSSL 3.0 (Node 20) cheap operations on the pool cost more than they save, because pool
 * threads and the event loop (AES-GCM for storage, HMAC for tokens) contend on OpenSSL's global
 * locks; P-256 issuance through the core ran at 1,150/s with pool keygen and signing and 2,350/s
 * inline (the same work, 840 µs versus 425 µs of event-loop time per certificate). P-256 key
 * generation has since moved to one dedicated worker thread (worker.ts), which holds its own hot
 * caches rather than interleaving with HTTP work, and P-256 signatures are made in batches on the
 * event loop (sign-batch.ts).
 */
export function runsInline(spec: KeySpec): boolean {
  return spec.type === "ed25519" || (spec.type === "ec" && spec.bits === 256);
}

/** Generates a key pair: inline for cheap key types, on libuv's thread pool for the others. */
export async function generateKey(spec: KeySpec): Promise<GeneratedKey> {
  switch (spec.type) {
    case "ec": {
      const curve = curveOf(spec.bits);
      if (curve.bits === 256) return p256KeyFromWorker(curve);
      const { privateKey } = await generate("ec", { namedCurve: curve.name });
      return ecKey(privateKey, curve);
    }
    case "ed25519": {
      const { privateKey } = generateKeyPairSync("ed25519");
      return ed25519Key(privateKey);
    }
    case "rsa": {
      const { privateKey, publicKey } = await generate("rsa", { modulusLength: spec.bits, publicExponent: 0x10001 });
      return rsaKey(privateKey, publicKey, spec.bits);
    }
  }
}

/** The BIT STRING contents of a SubjectPublicKeyInfo. */
export function spkiPublicKeyBits(spki: Buffer): Buffer {
  const outer = readElement(spki);
  const [, bits] = children(spki, outer);
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new UserError("malformed SubjectPublicKeyInfo");
  return content(spki, bits).subarray(1);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKeyBits: Buffer): Buffer {
  return hash("sha1", publicKeyBits, "buffer"); // one-shot: no Hash object per certificate
}

/** Type and size of a public or private key object; throws 400 for anything we do not issue with. */
export function specOfKey(key: KeyObject): KeySpec {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { type: "rsa", bits: details.modulusLength ?? 0 };
    case "ec": {
      const bits = OPENSSL_CURVES[details.namedCurve ?? ""];
      if (!bits) throw new UserError(`unsupported EC curve ${details.namedCurve}`);
      return { type: "ec", bits };
    }
    case "ed25519":
      return { type: "ed25519", bits: 0 };
    default:
      throw new UserError(`unsupported key algorithm ${key.asymmetricKeyType}: use RSA, EC (P-224, P-256, P-384, P-521) or Ed25519`);
  }
}

/**
 * A public KeyObject from SPKI DER. EC and Ed25519 keys go in through JWK, which OpenSSL 3 imports
 * in about 110 µs here against 180-200 µs through its DER decoder (the sign path's main cost).
 */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  try {
    const known = jwkOfSpki(spki);
    return known ? createPublicKey({ key: known.jwk, format: "jwk" }) : createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (e) {
    throw new UserError(`unreadable public key: ${(e as Error).message}`);
  }
}

/**
 * The JWK and key spec of an EC (P-256, P-384, P-521, uncompressed point) or Ed25519 SPKI, read
 * from its DER without OpenSSL; undefined for other keys (RSA, P-224), which need a KeyObject.
 * Throws on a malformed SPKI.
 */
export function jwkOfSpki(spki: Buffer): { jwk: JsonWebKey; spec: KeySpec } | undefined {
  const [algorithm, bits] = children(spki, readElement(spki));
  if (!algorithm || !bits || bits.tag !== TAG.BIT_STRING) throw new Error("malformed SubjectPublicKeyInfo");
  const params = children(spki, algorithm);
  if (!params.length) throw new Error("malformed SubjectPublicKeyInfo");
  const algOid = content(spki, params[0]);
  const point = content(spki, bits).subarray(1);
  if (algOid.equals(OID_ED25519_CONTENT) && params.length === 1 && point.length === 32) return { jwk: { kty: "OKP", crv: "Ed25519", x: point.toString("base64url") }, spec: { type: "ed25519", bits: 0 } };
  if (!algOid.equals(OID_EC_CONTENT) || params.length !== 2 || params[1].tag !== TAG.OID) return undefined;
  const curveOid = content(spki, params[1]);
  const curve = CURVES.find((c) => oid(c.oid).subarray(2).equals(curveOid));
  // JWK knows P-256, P-384 and P-521 only; P-224 keys take the DER route.
  if (!curve || curve.bits === 224 || point.length !== 1 + 2 * curve.size || point[0] !== 4) return undefined;
  return {
    jwk: { kty: "EC", crv: curve.name, x: point.subarray(1, 1 + curve.size).toString("base64url"), y: point.subarray(1 + curve.size).toString("base64url") },
    spec: { type: "ec", bits: curve.bits },
  };
}

const OID_EC_CONTENT = oid("1.2.840.10045.2.1").subarray(2);
const OID_ED25519_CONTENT = oid("1.3.101.112").subarray(2);

/** Parses a private key in any PEM form Vault accepts (PKCS#8, SEC1, PKCS#1). */
export function privateKeyFromPem(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch (e) {
    throw new UserError(`unreadable private key: ${(e as Error).message}`);
  }
}

/** The SPKI DER of a private key's public half (for matching keys to certificates). */
export function spkiOfPrivateKey(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: "spki", format: "der" });
}

/** A signing key with its certificate signature algorithm, parsed once and reused for every signature. */
export interface Signer {
  spec: KeySpec;
  /** AlgorithmIdentifier DER for `signature` fields. */
  algorithmDer: Buffer;
  algorithmOid: string;
  /** Hash for node:crypto's `sign` (`null` for Ed25519). */
  hash: string | null;
  key: KeyObject;
  /** WebCrypto names of the same algorithm, for @peculiar/x509 (CRLs). */
  webCrypto: { importParams: Record<string, unknown>; signParams: Record<string, unknown> };
  /**
   * Signs on the event loop in a batch (P-256, see sign-batch.ts), inline (Ed25519, see
   * `runsInline`) or on libuv's thread pool (slower keys). With `proof`, only once the proof
   * verifies (else `ProofRefused`); for P-256 both happen on the crypto worker in one trip.
   */
  sign(data: Buffer, proof?: Proof): Promise<Buffer>;
}

const signAsync = promisify(sign) as (algorithm: string | null | undefined, data: Buffer, key: KeyObject) => Promise<Buffer>;

/** `signature_bits` applies to RSA issuers only, as in Vault (ECDSA follows the curve, Ed25519 has no choice). */
export function signerFor(key: KeyObject, signatureBits = 0): Signer {
  const spec = specOfKey(key);
  let algorithmOid: string;
  let algorithmDer: Buffer;
  let hash: string | null;
  let webCrypto: Signer["webCrypto"];
  if (spec.type === "ec") {
    const curve = curveOf(spec.bits);
    if (curve.bits === 224) throw new UserError("P-224 keys cannot sign certificates here (WebCrypto, which signs CRLs, has no P-224); use P-256, P-384 or P-521 for CAs");
    algorithmOid = curve.sigOid;
    algorithmDer = seq(oid(algorithmOid));
    hash = curve.hash;
    const h = `SHA-${hash.slice(3)}`;
    webCrypto = { importParams: { name: "ECDSA", namedCurve: curve.name }, signParams: { name: "ECDSA", hash: h } };
  } else if (spec.type === "ed25519") {
    algorithmOid = OID_ED25519;
    algorithmDer = seq(oid(algorithmOid));
    hash = null;
    webCrypto = { importParams: { name: "Ed25519" }, signParams: { name: "Ed25519" } };
  } else {
    const bits = signatureBits || 256;
    const oids: Record<number, string> = { 256: "1.2.840.113549.1.1.11", 384: "1.2.840.113549.1.1.12", 512: "1.2.840.113549.1.1.13" };
    if (!oids[bits]) throw new UserError(`signature_bits must be 256, 384 or 512, got ${bits}`);
    algorithmOid = oids[bits];
    algorithmDer = seq(oid(algorithmOid), tlv(TAG.NULL, Buffer.alloc(0)));
    hash = `sha${bits}`;
    webCrypto = { importParams: { name: "RSASSA-PKCS1-v1_5", hash: `SHA-${bits}` }, signParams: { name: "RSASSA-PKCS1-v1_5" } };
  }
  const signData =
    spec.type === "ec" && spec.bits === 256
      ? (data: Buffer, proof?: Proof) => (proof ? cryptoWorker.verifyThenSign(hash!, data, key, proof) : signInBatch(hash, data, key))
      : async (data: Buffer, proof?: Proof) => {
          if (proof && !(await cryptoWorker.verify(proof))) throw new ProofRefused();
          return runsInline(spec) ? sign(hash, data, key) : signAsync(hash, data, key);
        };
  return { spec, algorithmDer, algorithmOid, hash, key, webCrypto, sign: signData };
}

/** The private key in the response format Vault uses (`private_key_format`, `format`). */
export function privateKeyOutput(key: GeneratedKey, keyFormat: "der" | "pkcs8" | "", outFormat: "pem" | "der" | "pem_bundle"): string {
  if (keyFormat !== "pkcs8" && outFormat !== "der" && key.nativePem !== undefined) return key.nativePem;
  const { label, der } = keyFormat === "pkcs8" ? { label: "PRIVATE KEY", der: key.pkcs8Der() } : key.nativeDer();
  return outFormat === "der" ? der.toString("base64") : toPem(label, der).trimEnd();
}

