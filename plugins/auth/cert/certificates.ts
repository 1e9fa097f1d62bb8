// @peculiar/x509 2.x needs the Reflect metadata polyfill before it is imported.
import "reflect-metadata";
import { X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { UserError, globMatch, matchesAnyGlob } from "../../../src/sdk/index.js";
import { toPkiCertificate, validateClientPath, type PathCert } from "./path-validation.js";

/** A certificate as the parsers see it: node:crypto verifies, PKI.js validates paths, @peculiar/x509 reads names. */
export interface ParsedCert extends PathCert {
  notBefore: number;
  notAfter: number;
}

export function parseDer(der: Buffer): ParsedCert {
  const cert = new X509Certificate(der);
  return { der, cert, pki: toPkiCertificate(der), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** Every certificate of a PEM bundle; throws UserError when there is none or one is unreadable. */
export function parsePemBundle(pem: string, field: string): ParsedCert[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new UserError(`${field}: no PEM certificate found`);
  return blocks.map((b, i) => {
    try {
      return parseDer(Buffer.from(b.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, ""), "base64"));
    } catch {
      throw new UserError(`${field}: certificate ${i + 1} could not be parsed`);
    }
  });
}

const within = (c: ParsedCert, now: number) => now >= c.notBefore && now <= c.notAfter;

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EKU = "2.5.29.37.0";

/** Why a certificate is not trusted, for the server log (the client only sees Vault's generic refusal). */
export type TrustResult = { trusted: true } | { trusted: false; reason: string };

/**
 * Whether `leaf` is trusted through one of `anchors`: either it IS an anchor (a pinned leaf, as
 * Vault allows a non-CA certificate in `certs/:name`; it must still be within its validity and
 * meant for client authentication), or a certification path leads from it through
 * `intermediates` (sent by the client, untrusted on their own) to an anchor, valid under RFC 5280
 * for TLS client authentication (see path-validation.ts for what is checked and by whom).
 */
export async function chainsTo(leaf: ParsedCert, intermediates: ParsedCert[], anchors: ParsedCert[], now = Date.now()): Promise<TrustResult> {
  if (anchors.some((a) => a.der.equals(leaf.der))) {
    if (!within(leaf, now)) return { trusted: false, reason: "the pinned certificate is expired or not yet valid" };
    const eku = leaf.cert.keyUsage;
    if (eku && eku.length && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) return { trusted: false, reason: "the certificate is not valid for client authentication" };
    return { trusted: true };
  }
  const r = await validateClientPath(leaf, intermediates, anchors, new Date(now));
  return r.ok ? { trusted: true } : { trusted: false, reason: r.reason };
}

/** The names and identifiers of a client certificate the constraints and metadata look at. */
export interface CertIdentity {
  commonName: string;
  organizationalUnits: string[];
  dnsNames: string[];
  emails: string[];
  uris: string[];
  /** Decimal, as Vault's `serial_number` metadata. */
  serialDecimal: string;
  subjectKeyId: string;
  authorityKeyId: string;
  /** Every extension of the certificate: OID and the DER inside its OCTET STRING (extnValue). */
  extensions: { oid: string; value: Buffer }[];
}

/** `ab12cd` → `ab:12:cd`, Vault's format for key identifiers. */
const colonHex = (hex: string | undefined) => (hex ? hex.toLowerCase().match(/../g)!.join(":") : "");

export function identityOf(c: ParsedCert): CertIdentity {
  const info = new x509.X509Certificate(new Uint8Array(c.der));
  const san = info.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  const of = (type: string) => names.filter((n) => n.type === type).map((n) => n.value);
  return {
    commonName: info.subjectName.getField("CN")[0] ?? "",
    organizationalUnits: info.subjectName.getField("OU"),
    dnsNames: of("dns"),
    emails: of("email"),
    uris: of("url"),
    serialDecimal: BigInt(`0x${c.cert.serialNumber}`).toString(10),
    subjectKeyId: colonHex(info.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId),
    authorityKeyId: colonHex(info.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId),
    extensions: info.extensions.map((e) => ({ oid: e.type, value: Buffer.from(e.value) })),
  };
}

/** The name constraints of a `certs/:name` entry (globs; an empty list allows anything). */
export interface CertConstraints {
  allowed_names: string[];
  allowed_common_names: string[];
  allowed_dns_sans: string[];
  allowed_email_sans: string[];
  allowed_uri_sans: string[];
  allowed_organizational_units: string[];
  /** Vault's `required_extensions`: `oid:glob` (the extension's ASN.1 string) or `hex:oid:glob` (its hex DER). */
  required_extensions: string[];
}

/** Vault's rule: each non-empty constraint needs at least one of the certificate's names to match. */
export function matchesConstraints(id: CertIdentity, c: CertConstraints): boolean {
  const some = (patterns: string[], values: string[]) => !patterns.length || values.some((v) => matchesAnyGlob(patterns, v));
  return (
    some(c.allowed_names, [id.commonName, ...id.dnsNames, ...id.emails].filter(Boolean)) &&
    some(c.allowed_common_names, id.commonName ? [id.commonName] : []) &&
    some(c.allowed_dns_sans, id.dnsNames) &&
    some(c.allowed_email_sans, id.emails) &&
    some(c.allowed_uri_sans, id.uris) &&
    some(c.allowed_organizational_units, id.organizationalUnits) &&
    matchesRequiredExtensions(id, c.required_extensions ?? [])
  );
}

/** `oid:glob` or `hex:oid:glob`, the OID dotted-decimal. */
export const REQUIRED_EXTENSION = /^(hex:)?[0-2](\.\d+)+:/;

/**
 * Vault's `required_extensions`: every entry must match an extension of the certificate. `oid:glob`
 * compares the glob with the extension's value read as an ASN.1 string (UTF8String, PrintableString,
 * IA5String, ...; a value that is not a string reads as "", as Go's asn1.Unmarshal into a string
 * leaves it, so `oid:*` only requires the extension to be present); `hex:oid:glob` compares it with
 * the lowercase hex of the extension's DER value, for extensions that are not strings.
 */
export function matchesRequiredExtensions(id: CertIdentity, required: readonly string[]): boolean {
  return required.every((entry) => {
    const hex = entry.startsWith("hex:");
    const rest = hex ? entry.slice(4) : entry;
    const colon = rest.indexOf(":");
    if (colon < 0) return false;
    const [oid, pattern] = [rest.slice(0, colon), rest.slice(colon + 1)];
    const ext = id.extensions.find((e) => e.oid === oid);
    if (!ext) return false;
    return hex ? globMatch(pattern.toLowerCase(), ext.value.toString("hex")) : globMatch(pattern, asn1String(ext.value));
  });
}

/** The text of a DER-encoded ASN.1 string type, or "" when `der` is anything else (or malformed). */
export function asn1String(der: Buffer): string {
  if (der.length < 2) return "";
  const tag = der[0];
  let len = der[1];
  let at = 2;
  if (len & 0x80) {
    const octets = len & 0x7f;
    if (octets < 1 || octets > 4 || der.length < 2 + octets) return "";
    len = 0;
    for (let i = 0; i < octets; i++) len = len * 256 + der[2 + i];
    at = 2 + octets;
  }
  if (at + len > der.length) return "";
  const body = der.subarray(at, at + len);
  switch (tag) {
    case 0x0c: // UTF8String
      return body.toString("utf8");
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return body.toString("ascii");
    case 0x14: // T61String, read byte for byte as Go does
      return body.toString("latin1");
    case 0x1e: // BMPString, UTF-16BE
      return body.length % 2 ? "" : Buffer.from(body).swap16().toString("utf16le");
    default:
      return "";
  }
}

/** The first SPIFFE ID (`spiffe://trust-domain/path`) among the URI SANs, if any. */
export function spiffeIdOf(id: CertIdentity): string | undefined {
  return id.uris.find((u) => u.startsWith("spiffe://"));
}
