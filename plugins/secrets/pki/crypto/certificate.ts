import { isIPv4 } from "node:net";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  NameConstraints,
  id_ad_caIssuers,
  id_ad_ocsp,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_pe_authorityInfoAccess,
} from "@peculiar/asn1-x509";
import { bitString, children, content, directoryString, explicit, ia5String, octetString, oid, raw, readElement, seq, set, smallInteger, tlv, time, TAG, unsignedInteger } from "./der.js";
import { keyIdentifier, type Signer } from "./keys.js";
import type { Proof } from "./worker.js";

// ---------------------------------------------------------------------------------------------
// Names

/** Subject attributes Vault lets roles and CA requests set. Multi-valued ones are lists. */
export interface SubjectFields {
  commonName?: string;
  country?: string[];
  province?: string[];
  locality?: string[];
  streetAddress?: string[];
  postalCode?: string[];
  organization?: string[];
  ou?: string[];
  serialNumber?: string;
}

const ATTR = {
  country: "2.5.4.6",
  province: "2.5.4.8",
  locality: "2.5.4.7",
  streetAddress: "2.5.4.9",
  postalCode: "2.5.4.17",
  organization: "2.5.4.10",
  ou: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
} as const;

/** One RDN holding every value of one attribute type; DER sorts the members of a SET OF. */
export function rdn(type: string, values: string[]): Buffer {
  const members = values.map((v) => seq(oid(type), directoryString(v))).sort(Buffer.compare);
  return set(...members);
}

/** The RDNs of every attribute but the common name, in Go's order (which Vault's certificates have). */
export function fixedRdns(f: SubjectFields): Buffer[] {
  const out: Buffer[] = [];
  for (const key of ["country", "province", "locality", "streetAddress", "postalCode", "organization", "ou"] as const) {
    const values = f[key] ?? [];
    if (values.length) out.push(rdn(ATTR[key], values));
  }
  return out;
}

/** A Name: the fixed RDNs, then CN, then serialNumber (Go's `pkix.Name.ToRDNSequence` order). */
export function encodeName(f: SubjectFields, fixed = fixedRdns(f)): Buffer {
  const parts = [...fixed];
  if (f.commonName) parts.push(rdn(ATTR.commonName, [f.commonName]));
  if (f.serialNumber) parts.push(rdn(ATTR.serialNumber, [f.serialNumber]));
  return tlv(TAG.SEQUENCE, Buffer.concat(parts));
}

/** Subject alternative names by kind. IP addresses are their 4- or 16-byte forms. */
export interface AltNames {
  dns: string[];
  email: string[];
  ip: Buffer[];
  uri: string[];
}

export function emptyAltNames(): AltNames {
  return { dns: [], email: [], ip: [], uri: [] };
}

export function altNamesCount(a: AltNames): number {
  return a.dns.length + a.email.length + a.ip.length + a.uri.length;
}

/** GeneralNames in Go's order (DNS, email, IP, URI), each with its implicit context tag. */
export function encodeGeneralNames(a: AltNames): Buffer {
  const parts: Buffer[] = [];
  for (const d of a.dns) parts.push(retag(ia5String(d), 0x82));
  for (const e of a.email) parts.push(retag(ia5String(e), 0x81));
  for (const ip of a.ip) parts.push(tlv(0x87, ip));
  for (const u of a.uri) parts.push(retag(ia5String(u), 0x86));
  return tlv(TAG.SEQUENCE, Buffer.concat(parts));
}

function retag(der: Buffer, tag: number): Buffer {
  der[0] = tag;
  return der;
}

/** `10.0.0.1` / `::1` → 4 or 16 bytes. The caller has validated the address. */
export function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split(".").map(Number));
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const parse = (s: string | undefined) => (s ? s.split(":") : []);
  let h = parse(head);
  let t = parse(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const v4 = (groups: string[]) => {
    const last = groups[groups.length - 1];
    if (last && last.includes(".")) {
      const b = last.split(".").map(Number);
      groups.splice(groups.length - 1, 1, ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16));
    }
    return groups;
  };
  if (tail === undefined) h = v4(h);
  else t = v4(t);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Extensions. The constant ones are encoded once per role/issuer with the asn1-x509 classes.

export function extension(extnId: string, critical: boolean, valueDer: Buffer): Buffer {
  return seq(oid(extnId), ...(critical ? [tlv(TAG.BOOLEAN, Buffer.from([0xff]))] : []), octetString(valueDer));
}

function classExtension(extnId: string, critical: boolean, value: object): Buffer {
  return Buffer.from(AsnConvert.serialize(new Extension({ extnID: extnId, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })));
}

/** Vault's key usage names (Go's `x509.KeyUsage*` without the prefix), case-insensitive. */
export const KEY_USAGES: Record<string, KeyUsageFlags> = {
  digitalsignature: KeyUsageFlags.digitalSignature,
  contentcommitment: KeyUsageFlags.nonRepudiation,
  keyencipherment: KeyUsageFlags.keyEncipherment,
  dataencipherment: KeyUsageFlags.dataEncipherment,
  keyagreement: KeyUsageFlags.keyAgreement,
  certsign: KeyUsageFlags.keyCertSign,
  crlsign: KeyUsageFlags.cRLSign,
  encipheronly: KeyUsageFlags.encipherOnly,
  decipheronly: KeyUsageFlags.decipherOnly,
};

/** Vault's extended key usage names (Go's `x509.ExtKeyUsage*`), case-insensitive. */
export const EXT_KEY_USAGES: Record<string, string> = {
  any: "2.5.29.37.0",
  serverauth: "1.3.6.1.5.5.7.3.1",
  clientauth: "1.3.6.1.5.5.7.3.2",
  codesigning: "1.3.6.1.5.5.7.3.3",
  emailprotection: "1.3.6.1.5.5.7.3.4",
  ipsecendsystem: "1.3.6.1.5.5.7.3.5",
  ipsectunnel: "1.3.6.1.5.5.7.3.6",
  ipsecuser: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocspsigning: "1.3.6.1.5.5.7.3.9",
  microsoftservergatedcrypto: "1.3.6.1.4.1.311.10.3.3",
  netscapeservergatedcrypto: "2.16.840.1.113730.4.1",
  microsoftcommercialcodesigning: "1.3.6.1.4.1.311.2.1.22",
  microsoftkernelcodesigning: "1.3.6.1.4.1.311.61.1.1",
};

export function keyUsageExtension(flags: number): Buffer | undefined {
  return flags ? classExtension(id_ce_keyUsage, true, new KeyUsage(flags)) : undefined;
}

export function extKeyUsageExtension(oids: string[]): Buffer | undefined {
  return oids.length ? classExtension(id_ce_extKeyUsage, false, new ExtendedKeyUsage(oids)) : undefined;
}

export function basicConstraintsExtension(ca: boolean, pathLen?: number): Buffer {
  return classExtension(id_ce_basicConstraints, true, new BasicConstraints(ca && pathLen !== undefined && pathLen >= 0 ? { cA: true, pathLenConstraint: pathLen } : { cA: ca }));
}

export function authorityKeyIdExtension(keyId: Buffer): Buffer {
  return classExtension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }));
}

export function subjectKeyIdExtension(keyId: Buffer): Buffer {
  return extension("2.5.29.14", false, octetString(keyId));
}

/** What `config/urls` writes into certificates. */
export interface AiaUrls {
  issuingCertificates: string[];
  crlDistributionPoints: string[];
  ocspServers: string[];
}

export function aiaExtension(urls: AiaUrls): Buffer | undefined {
  const items = [
    ...urls.ocspServers.map((u) => new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
    ...urls.issuingCertificates.map((u) => new AccessDescription({ accessMethod: id_ad_caIssuers, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
  ];
  return items.length ? classExtension(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax(items)) : undefined;
}

export function crlDistributionPointsExtension(urls: string[]): Buffer | undefined {
  if (!urls.length) return undefined;
  const points = new CRLDistributionPoints([
    new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: urls.map((u) => new GeneralName({ uniformResourceIdentifier: u })) }) }),
  ]);
  return classExtension(id_ce_cRLDistributionPoints, false, points);
}

export function nameConstraintsExtension(permittedDnsDomains: string[]): Buffer | undefined {
  if (!permittedDnsDomains.length) return undefined;
  const subtrees = new GeneralSubtrees(permittedDnsDomains.map((d) => new GeneralSubtree({ base: new GeneralName({ dNSName: d }) })));
  return classExtension(id_ce_nameConstraints, true, new NameConstraints({ permittedSubtrees: subtrees }));
}

export function subjectAltNameExtension(names: AltNames, critical: boolean): Buffer | undefined {
  return altNamesCount(names) ? extension("2.5.29.17", critical, encodeGeneralNames(names)) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Assembly and signing

/** `[0] EXPLICIT INTEGER 2`: X.509 v3. */
const VERSION_3 = explicit(0, smallInteger(2));

export interface TbsParts {
  serial: Buffer;
  signer: Signer;
  issuerName: Buffer;
  notBefore: Date;
  notAfter: Date;
  subject: Buffer;
  spki: Buffer;
  /** Complete Extension DERs, in order; empty parts are skipped. */
  extensions: (Buffer | undefined)[];
}

export function assembleTbs(p: TbsParts): Buffer {
  const exts = p.extensions.filter((e): e is Buffer => e !== undefined);
  return seq(
    VERSION_3,
    unsignedInteger(p.serial),
    p.signer.algorithmDer,
    p.issuerName,
    seq(time(p.notBefore), time(p.notAfter)),
    p.subject,
    p.spki,
    ...(exts.length ? [explicit(3, seq(...exts))] : []),
  );
}

/** Signs a TBS certificate (see `Signer.sign`; with `proof`, only if the proof verifies) and wraps it into a Certificate. */
export async function signTbs(tbs: Buffer, signer: Signer, proof?: Proof): Promise<Buffer> {
  const signature = await signer.sign(tbs, proof);
  return seq(tbs, signer.algorithmDer, bitString(signature));
}

/** The raw pieces of a certificate that issuance and OCSP need, sliced without a full parse. */
export interface CertificateParts {
  tbs: Buffer;
  serial: Buffer;
  issuerName: Buffer;
  subjectName: Buffer;
  spki: Buffer;
  publicKeyBits: Buffer;
  notBefore: Date;
  notAfter: Date;
}

function readTime(buf: Buffer, el: { tag: number; contentStart: number; end: number }): Date {
  const s = buf.subarray(el.contentStart, el.end).toString("latin1");
  const m = el.tag === TAG.UTC_TIME ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s) : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (!m) throw new Error(`unsupported certificate time ${s}`);
  let year = Number(m[1]);
  if (el.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export function certificateParts(der: Buffer): CertificateParts {
  const outer = readElement(der);
  const [tbsEl] = children(der, outer);
  const fields = children(der, tbsEl);
  const i = fields[0].tag === 0xa0 ? 1 : 0;
  const [serialEl, , issuerEl, validityEl, subjectEl, spkiEl] = fields.slice(i);
  const [nb, na] = children(der, validityEl);
  const spki = raw(der, spkiEl);
  const [, bits] = children(der, spkiEl);
  return {
    tbs: raw(der, tbsEl),
    serial: content(der, serialEl),
    issuerName: raw(der, issuerEl),
    subjectName: raw(der, subjectEl),
    spki,
    publicKeyBits: content(der, bits).subarray(1),
    notBefore: readTime(der, nb),
    notAfter: readTime(der, na),
  };
}

export { keyIdentifier };
