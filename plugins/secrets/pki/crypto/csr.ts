import { verify, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { BasicConstraints, Extensions, SubjectAlternativeName, id_ce_basicConstraints, id_ce_subjectAltName, type Name } from "@peculiar/asn1-x509";
import { UserError } from "../../../../src/sdk/index.js";
import { children, raw, readElement, seq, set, smallInteger, bitString, tlv, oid } from "./der.js";
import { publicKeyFromSpki, runsInline, specOfKey, spkiPublicKeyBits, type KeySpec, type Signer } from "./keys.js";
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
  publicKey: KeyObject;
  keySpec: KeySpec;
  subject: Name;
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

/** Decodes a PEM (or base64 DER) CSR. 400 on anything unreadable. */
export function parseCsr(text: string): ParsedCsr {
  const blocks = pemBlocks(text).filter((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
  let der: Buffer;
  if (blocks.length === 1) der = blocks[0].der;
  else if (blocks.length > 1) throw new UserError("csr: expected exactly one CERTIFICATE REQUEST block");
  else if (/^[A-Za-z0-9+/=\s]+$/.test(text) && text.trim() !== "") der = Buffer.from(text.replace(/\s+/g, ""), "base64");
  else throw new UserError("csr: no PEM CERTIFICATE REQUEST block found");
  let csr: CertificationRequest;
  let criDer: Buffer;
  let spki: Buffer;
  let subjectDer: Buffer;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
    // The signed bytes are the CertificationRequestInfo exactly as sent: sliced, never re-encoded.
    const outer = readElement(der);
    const [cri] = children(der, outer);
    criDer = raw(der, cri);
    const [, subjectEl, spkiEl] = children(der, cri);
    spki = raw(der, spkiEl);
    subjectDer = raw(der, subjectEl);
  } catch (e) {
    throw new UserError(`csr: not a valid PKCS#10 certificate request (${(e as Error).message})`);
  }
  const publicKey = publicKeyFromSpki(spki);
  const info = csr.certificationRequestInfo;
  const parsed: ParsedCsr = {
    der,
    spki,
    publicKeyBits: spkiPublicKeyBits(spki),
    publicKey,
    keySpec: specOfKey(publicKey),
    subject: info.subject,
    subjectDer,
    commonName: "",
    dnsNames: [],
    emails: [],
    ipAddresses: [],
    uris: [],
    otherSans: [],
    requestsCa: false,
    criDer,
    signatureOid: csr.signatureAlgorithm.algorithm,
    signature: Buffer.from(csr.signature),
  };
  for (const rdn of info.subject) for (const atv of rdn) if (atv.type === "2.5.4.3") parsed.commonName = atv.value.toString();
  for (const attr of info.attributes ?? []) {
    if (attr.type !== OID_EXTENSION_REQUEST) continue;
    for (const value of attr.values) {
      let exts: Extensions;
      try {
        exts = AsnConvert.parse(value, Extensions);
      } catch {
        throw new UserError("csr: unreadable extension request");
      }
      for (const ext of exts) {
        if (ext.extnID === id_ce_subjectAltName) {
          const names = AsnConvert.parse(ext.extnValue, SubjectAlternativeName);
          for (const n of names) {
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
  }
  return parsed;
}

/** Checks the CSR's self-signature with its own public key (proof of possession). */
export async function verifyCsr(csr: ParsedCsr): Promise<void> {
  if (!(csr.signatureOid in CSR_SIGNATURES)) throw new UserError(`csr: unsupported signature algorithm ${csr.signatureOid}`);
  let ok = false;
  try {
    const hash = CSR_SIGNATURES[csr.signatureOid];
    // Cheap keys inline, expensive ones on the pool (see runsInline: OpenSSL 3 lock contention).
    ok = runsInline(csr.keySpec) ? verify(hash, csr.criDer, csr.publicKey, csr.signature) : await verifyAsync(hash, csr.criDer, csr.publicKey, csr.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new UserError("csr: request signature invalid: the CSR was not signed by the key it carries");
}

/** Builds and signs a PKCS#10 request (intermediate/generate). `extensions` are complete Extension DERs. */
export async function buildCsr(opts: { subject: Buffer; spki: Buffer; extensions: Buffer[]; signer: Signer }): Promise<Buffer> {
  const attributes = opts.extensions.length ? seq(oid(OID_EXTENSION_REQUEST), set(seq(...opts.extensions))) : Buffer.alloc(0);
  const cri = seq(smallInteger(0), opts.subject, opts.spki, tlv(0xa0, attributes));
  const signature = await opts.signer.sign(cri);
  return seq(cri, opts.signer.algorithmDer, bitString(signature));
}
