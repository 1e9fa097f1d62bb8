import { verify, type JsonWebKey, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicConstraints, Extensions, SubjectAlternativeName, id_ce_basicConstraints, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { UserError } from "../../../../src/sdk/index.js";
import { TAG, bitString, children, content, decodeOid, decodeString, oid, raw, readElement, seq, set, smallInteger, tlv } from "./der.js";
import { jwkOfSpki, publicKeyFromSpki, runsInline, specOfKey, spkiPublicKeyBits, type KeySpec, type Signer } from "./keys.js";
import { cryptoWorker, type Proof } from "./worker.js";
import { pemBlocks } from "./pem.js";

const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

/** CSR signature algorithms we verify, and the hash node:crypto needs for each. */
const CSR_SIGNATURES: Record<string, string | null> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.3.101.112": null,
};

/** What a CSR asks for, decoded but not yet judged. */
export interface ParsedCsr {
  der: Buffer;
  /** SubjectPublicKeyInfo DER, byte for byte as in the CSR. */
  spki: Buffer;
  publicKeyBits: Buffer;
  /** The public key (made on first use: OpenSSL's import is the dearest step of reading a CSR). */
  readonly publicKey: KeyObject;
  /** The key as a JWK, for EC P-256/384/521 and Ed25519 keys (read without OpenSSL). */
  jwk?: JsonWebKey;
  keySpec: KeySpec;
  /** The subject Name DER exactly as the CSR carries it. */
  subjectDer: Buffer;
  commonName: string;
  dnsNames: string[];
  emails: string[];
  ipAddresses: string[];
  uris: string[];
  /** SAN kinds we never copy (otherName, directoryName, registeredID, ...). */
  otherSans: string[];
  /** The CSR asked for `CA:TRUE`. Recorded for a warning; the certificate never carries it. */
  requestsCa: boolean;
  criDer: Buffer;
  signatureOid: string;
  signature: Buffer;
}

const verifyAsync = promisify(verify) as (algorithm: string | null | undefined, data: Buffer, key: KeyObject, signature: Buffer) => Promise<boolean>;
const OID_CN = oid("2.5.4.3").subarray(2);
const OID_EXTENSION_REQUEST_CONTENT = oid(OID_EXTENSION_REQUEST).subarray(2);

/** The PKCS#10 structure, walked with our DER reader (asn1-schema's generic parser costs ~10x more). */
function readRequest(der: Buffer): { criDer: Buffer; subjectDer: Buffer; spki: Buffer; commonName: string; extensionRequests: Buffer[]; signatureOid: string; signature: Buffer } {
  const outer = readElement(der);
  const [cri, algorithm, signature, ...extra] = outer.tag === TAG.SEQUENCE ? children(der, outer) : [];
  if (!cri || cri.tag !== TAG.SEQUENCE || !algorithm || algorithm.tag !== TAG.SEQUENCE || !signature || signature.tag !== TAG.BIT_STRING || extra.length) {
    throw new Error("expected SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }");
  }
  const [version, subject, spki, attributes] = children(der, cri);
  if (!version || version.tag !== TAG.INTEGER || !subject || subject.tag !== TAG.SEQUENCE || !spki || spki.tag !== TAG.SEQUENCE || (attributes && attributes.tag !== 0xa0)) {
    throw new Error("malformed certificationRequestInfo");
  }
  let commonName = "";
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv);
      if (!type || type.tag !== TAG.OID || !value) throw new Error("malformed subject");
      if (content(der, type).equals(OID_CN)) commonName = decodeString(der, value);
    }
  }
  const extensionRequests: Buffer[] = [];
  for (const attr of attributes ? children(der, attributes) : []) {
    const [type, values] = children(der, attr);
    if (!type || type.tag !== TAG.OID || !values) throw new Error("malformed attribute");
    if (content(der, type).equals(OID_EXTENSION_REQUEST_CONTENT)) for (const v of children(der, values)) extensionRequests.push(raw(der, v));
  }
  const [algOid] = children(der, algorithm);
  if (!algOid || algOid.tag !== TAG.OID) throw new Error("malformed signatureAlgorithm");
  const bits = content(der, signature);
  if (!bits.length || bits[0] !== 0) throw new Error("malformed signature");
  return {
    criDer: raw(der, cri), // the signed bytes exactly as sent: sliced, never re-encoded
    subjectDer: raw(der, subject),
    spki: raw(der, spki),
    commonName,
    extensionRequests,
    signatureOid: decodeOid(content(der, algOid)),
    signature: Buffer.from(bits.subarray(1)),
  };
}

/** Copies the SANs and the CA flag a CSR's extension request asks for; throws on malformed DER. */
function readExtensions(value: Buffer, parsed: ParsedCsr): void {
  for (const ext of AsnConvert.parse(value, Extensions)) {
    if (ext.extnID === id_ce_subjectAltName) {
      for (const n of AsnConvert.parse(ext.extnValue, SubjectAlternativeName)) {
        if (n.dNSName !== undefined) parsed.dnsNames.push(n.dNSName);
        else if (n.rfc822Name !== undefined) parsed.emails.push(n.rfc822Name);
        else if (n.iPAddress !== undefined) parsed.ipAddresses.push(n.iPAddress);
        else if (n.uniformResourceIdentifier !== undefined) parsed.uris.push(n.uniformResourceIdentifier);
        else parsed.otherSans.push(Object.keys(n).find((k) => (n as unknown as Record<string, unknown>)[k] !== undefined) ?? "unknown");
      }
    } else if (ext.extnID === id_ce_basicConstraints) {
      parsed.requestsCa = AsnConvert.parse(ext.extnValue, BasicConstraints).cA;
    }
  }
}

/** Decodes a PEM (or base64 DER) CSR. 400 on anything unreadable. */
export function parseCsr(text: string): ParsedCsr {
  const blocks = pemBlocks(text).filter((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
  let der: Buffer;
  if (blocks.length === 1) der = blocks[0].der;
  else if (blocks.length > 1) throw new UserError("csr: expected exactly one CERTIFICATE REQUEST block");
  else if (/^[A-Za-z0-9+/=\s]+$/.test(text) && text.trim() !== "") der = Buffer.from(text.replace(/\s+/g, ""), "base64");
  else throw new UserError("csr: no PEM CERTIFICATE REQUEST block found");
  let request: ReturnType<typeof readRequest>;
  let known: ReturnType<typeof jwkOfSpki>;
  try {
    request = readRequest(der);
    known = jwkOfSpki(request.spki);
  } catch (e) {
    throw new UserError(`csr: not a valid PKCS#10 certificate request (${(e as Error).message})`);
  }
  const { spki } = request;
  let publicKey: KeyObject | undefined;
  const keyOf = () => (publicKey ??= publicKeyFromSpki(spki));
  let keySpec: KeySpec;
  try {
    keySpec = known?.spec ?? specOfKey(keyOf());
  } catch (e) {
    throw new UserError(`csr: ${(e as Error).message}`);
  }
  const parsed: ParsedCsr = {
    der,
    spki,
    publicKeyBits: spkiPublicKeyBits(spki),
    get publicKey() {
      return keyOf();
    },
    jwk: known?.jwk,
    keySpec,
    subjectDer: request.subjectDer,
    commonName: request.commonName,
    dnsNames: [],
    emails: [],
    ipAddresses: [],
    uris: [],
    otherSans: [],
    requestsCa: false,
    criDer: request.criDer,
    signatureOid: request.signatureOid,
    signature: request.signature,
  };
  for (const value of request.extensionRequests) {
    try {
      readExtensions(value, parsed);
    } catch {
      throw new UserError("csr: unreadable extension request");
    }
  }
  return parsed;
}

/**
 * Checks the CSR's self-signature with its own public key (proof of possession). EC and Ed25519
 * keys are verified on the crypto worker (no KeyObject is made here), others on the thread pool.
 */
export async function verifyCsr(csr: ParsedCsr): Promise<void> {
  const proof = csrProof(csr);
  let ok = false;
  try {
    const hash = CSR_SIGNATURES[csr.signatureOid];
    if (proof) ok = await cryptoWorker.verify(proof);
    else ok = runsInline(csr.keySpec) ? verify(hash, csr.criDer, csr.publicKey, csr.signature) : await verifyAsync(hash, csr.criDer, csr.publicKey, csr.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new UserError(CSR_SIGNATURE_INVALID);
}

export const CSR_SIGNATURE_INVALID = "csr: request signature invalid: the CSR was not signed by the key it carries";

/**
 * The CSR's self-signature as a proof the crypto worker checks (EC and Ed25519 keys, whose JWK we
 * build), or undefined for other keys (verifyCsr then checks them here). 400 for a signature
 * algorithm we do not verify.
 */
export function csrProof(csr: ParsedCsr): Proof | undefined {
  if (!(csr.signatureOid in CSR_SIGNATURES)) throw new UserError(`csr: unsupported signature algorithm ${csr.signatureOid}`);
  return csr.jwk ? { hash: CSR_SIGNATURES[csr.signatureOid], data: csr.criDer, jwk: csr.jwk, signature: csr.signature } : undefined;
}

/** Builds and signs a PKCS#10 request (intermediate/generate). `extensions` are complete Extension DERs. */
export async function buildCsr(opts: { subject: Buffer; spki: Buffer; extensions: Buffer[]; signer: Signer }): Promise<Buffer> {
  const attributes = opts.extensions.length ? seq(oid(OID_EXTENSION_REQUEST), set(seq(...opts.extensions))) : Buffer.alloc(0);
  const cri = seq(smallInteger(0), opts.subject, opts.spki, tlv(0xa0, attributes));
  const signature = await opts.signer.sign(cri);
  return seq(cri, opts.signer.algorithmDer, bitString(signature));
}
