// @peculiar/x509 2.x needs the Reflect metadata polyfill before it is imported.
import "reflect-metadata";
import { X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { UserError, matchesAnyGlob } from "../../../src/sdk/index.js";

/** A certificate as both parsers see it: node:crypto verifies, @peculiar/x509 reads extensions. */
export interface ParsedCert {
  der: Buffer;
  cert: X509Certificate;
  notBefore: number;
  notAfter: number;
}

export function parseDer(der: Buffer): ParsedCert {
  const cert = new X509Certificate(der);
  return { der, cert, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
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

/** `parent` issued `child`: names chain (and key identifiers, when present) and the signature verifies. */
function issued(child: ParsedCert, parent: ParsedCert): boolean {
  try {
    return child.cert.checkIssued(parent.cert) && child.cert.verify(parent.cert.publicKey);
  } catch {
    return false;
  }
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EKU = "2.5.29.37.0";

/**
 * True when `leaf` is trusted through one of `anchors`: either it IS an anchor (a pinned leaf, as
 * Vault allows a non-CA certificate in `certs/:name`), or a path leads from it through
 * `intermediates` (sent by the client, untrusted on their own) to an anchor that is a CA. Every
 * certificate on the path must be within its validity, every issuer must be a CA, and the leaf,
 * when it states extended key usages, must allow client authentication.
 */
export function chainsTo(leaf: ParsedCert, intermediates: ParsedCert[], anchors: ParsedCert[], now = Date.now()): boolean {
  if (!within(leaf, now)) return false;
  const eku = leaf.cert.keyUsage;
  if (eku && eku.length && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) return false;
  if (anchors.some((a) => a.der.equals(leaf.der))) return true;
  const walk = (cur: ParsedCert, used: Set<ParsedCert>, depth: number): boolean => {
    if (depth > 8) return false;
    if (anchors.some((a) => a.cert.ca && within(a, now) && issued(cur, a))) return true;
    return intermediates.some((i) => !used.has(i) && i.cert.ca && within(i, now) && issued(cur, i) && walk(i, new Set([...used, i]), depth + 1));
  };
  return walk(leaf, new Set(), 0);
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
    some(c.allowed_organizational_units, id.organizationalUnits)
  );
}

/** The first SPIFFE ID (`spiffe://trust-domain/path`) among the URI SANs, if any. */
export function spiffeIdOf(id: CertIdentity): string | undefined {
  return id.uris.find((u) => u.startsWith("spiffe://"));
}
