import { createHash, X509Certificate as NodeCertificate } from "node:crypto";
import { BasicConstraintsExtension, SubjectKeyIdentifierExtension, X509Certificate } from "@peculiar/x509";
import { UserError } from "../../../src/sdk/index.js";
import { certificateParts, type CertificateParts } from "./crypto/certificate.js";
import { arrayBuffer } from "./crypto/der.js";
import { keyIdentifier, type Signer } from "./crypto/keys.js";
import { toPem } from "./crypto/pem.js";
import { formatSerial } from "./crypto/serial.js";
import type { IssuerEntry } from "./model.js";

/** A CA certificate parsed once, with the signing key when this mount holds it. */
export interface LoadedIssuer {
  entry: IssuerEntry;
  id: string;
  der: Buffer;
  /** PEM without the trailing newline (how Vault puts certificates in JSON). */
  pem: string;
  parts: CertificateParts;
  serial: string;
  /** Key identifier children name in their AKI: the issuer's own SKI when it has one. */
  keyId: Buffer;
  pathLen?: number;
  selfSigned: boolean;
  node: NodeCertificate;
  signer?: Signer;
  /** This issuer, then its parents as far as this mount knows them. */
  chain: LoadedIssuer[];
  /** SHA-1 of the subject DER and of the public key bits, per CertID hash algorithm (OCSP). */
  certIdHashes: Map<string, { name: Buffer; key: Buffer }>;
}

export interface ParsedCa {
  der: Buffer;
  parts: CertificateParts;
  keyId: Buffer;
  pathLen?: number;
  isCa: boolean;
  node: NodeCertificate;
}

/** Parses a certificate that should be a CA. 400 when it is not one (Vault refuses non-CA issuers). */
export function parseCaCertificate(der: Buffer, what = "certificate"): ParsedCa {
  let parsed: X509Certificate;
  let node: NodeCertificate;
  try {
    parsed = new X509Certificate(arrayBuffer(der));
    node = new NodeCertificate(der);
  } catch (e) {
    throw new UserError(`${what}: unreadable certificate (${(e as Error).message})`);
  }
  const bc = parsed.getExtension(BasicConstraintsExtension);
  const ski = parsed.getExtension(SubjectKeyIdentifierExtension);
  const parts = certificateParts(der);
  return {
    der,
    parts,
    keyId: ski ? Buffer.from(ski.keyId, "hex") : keyIdentifier(parts.publicKeyBits),
    pathLen: bc?.ca && bc.pathLength !== undefined ? bc.pathLength : undefined,
    isCa: bc?.ca === true,
    node,
  };
}

export function loadIssuer(entry: IssuerEntry, der: Buffer, signer: Signer | undefined): LoadedIssuer {
  const ca = parseCaCertificate(der, `issuer ${entry.issuer_id}`);
  const certIdHashes = new Map<string, { name: Buffer; key: Buffer }>();
  for (const alg of ["sha1", "sha256", "sha384", "sha512"]) {
    certIdHashes.set(alg, { name: createHash(alg).update(ca.parts.subjectName).digest(), key: createHash(alg).update(ca.parts.publicKeyBits).digest() });
  }
  return {
    entry,
    id: entry.issuer_id,
    der,
    pem: toPem("CERTIFICATE", der).trimEnd(),
    parts: ca.parts,
    serial: formatSerial(ca.parts.serial),
    keyId: ca.keyId,
    pathLen: ca.pathLen,
    selfSigned: ca.parts.issuerName.equals(ca.parts.subjectName) && ca.node.verify(ca.node.publicKey),
    node: ca.node,
    signer,
    chain: [],
    certIdHashes,
  };
}

/** True when `parent` issued `child`: names match and the signature verifies with the parent's key. */
export function issuedBy(child: NodeCertificate, parent: NodeCertificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** Fills every issuer's `chain`: itself, then each parent found among `all`, up to a root. */
export function linkChains(all: LoadedIssuer[]): void {
  for (const issuer of all) {
    const chain = [issuer];
    let cur = issuer;
    while (!cur.selfSigned && chain.length < 16) {
      const parent = all.find((p) => !chain.includes(p) && issuedBy(cur.node, p.node));
      if (!parent) break;
      chain.push(parent);
      cur = parent;
    }
    issuer.chain = chain;
  }
}
