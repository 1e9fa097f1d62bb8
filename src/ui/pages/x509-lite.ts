/**
 * Just enough DER reading for the console's PKI page: a certificate's subject, SANs and validity,
 * and a CRL's revoked serials and update times. The console imports nothing from the server and
 * ships no X.509 library (a full one would triple the bundle), so this reads the few fields it
 * shows and nothing else; it never verifies a signature (the server does that).
 */

/** One DER element: its tag, its content bytes, and the whole element (tag and length included). */
export interface Der {
  tag: number;
  content: Uint8Array;
  raw: Uint8Array;
}

/** Reads the element that starts at `pos`. */
export function readOne(buf: Uint8Array, pos: number): { el: Der; next: number } {
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let at = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + i]!;
    at += n;
  }
  if (at + len > buf.length) throw new Error("truncated DER");
  return { el: { tag, content: buf.subarray(at, at + len), raw: buf.subarray(pos, at + len) }, next: at + len };
}

/** The elements inside a constructed element's content. */
export function childrenOf(content: Uint8Array): Der[] {
  const out: Der[] = [];
  for (let pos = 0; pos < content.length; ) {
    const { el, next } = readOne(content, pos);
    out.push(el);
    pos = next;
  }
  return out;
}

/** The DER bytes of the first PEM block in `pem`. */
export function pemToDer(pem: string): Uint8Array {
  const b64 = pem.replace(/-----BEGIN [^-]+-----/, "").replace(/-----END [\s\S]*$/, "").replace(/\s+/g, "");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0"));
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A serial number as Vault writes it: lowercase hex pairs joined by colons, no sign byte. */
export function serialText(integer: Uint8Array): string {
  const bytes = integer.length > 1 && integer[0] === 0 ? integer.subarray(1) : integer;
  return hex(bytes).join(":");
}

/** `xx:xx`, `xx-xx` or `XXXX` in one comparable form. */
export function normalizeSerial(serial: string): string {
  const digits = serial.toLowerCase().replace(/[^0-9a-f]/g, "").replace(/^(00)+(?=..)/, "");
  return digits.match(/../g)?.join(":") ?? digits;
}

function timeOf(el: Der): Date {
  const s = text(el.content);
  // UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ.
  const full = el.tag === 0x17 ? `${Number(s.slice(0, 2)) < 50 ? "20" : "19"}${s}` : s;
  return new Date(Date.UTC(Number(full.slice(0, 4)), Number(full.slice(4, 6)) - 1, Number(full.slice(6, 8)), Number(full.slice(8, 10)), Number(full.slice(10, 12)), Number(full.slice(12, 14))));
}

const NAME_ATTRIBUTES: Record<string, string> = { "550403": "CN", "55040a": "O", "55040b": "OU", "550406": "C", "550407": "L", "550408": "ST" };

/** A distinguished name as `CN=..., O=...` (the attributes the console knows), and its common name. */
function nameOf(el: Der): { text: string; commonName: string } {
  const parts: string[] = [];
  let commonName = "";
  for (const rdn of childrenOf(el.content)) {
    for (const atv of childrenOf(rdn.content)) {
      const [oid, value] = childrenOf(atv.content);
      const label = oid && NAME_ATTRIBUTES[hex(oid.content).join("")];
      if (!label || !value) continue;
      const v = text(value.content);
      parts.push(`${label}=${v}`);
      if (label === "CN" && !commonName) commonName = v;
    }
  }
  return { text: parts.join(", "), commonName };
}

function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

/** What the console shows of a certificate. */
export interface CertSummary {
  subject: string;
  commonName: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names, emails, IP addresses and URIs, in the certificate's order. */
  sans: string[];
  isCa: boolean;
}

/** Reads a PEM certificate; throws on anything that is not one. */
export function readCertificate(pem: string): CertSummary {
  const cert = readOne(pemToDer(pem), 0).el;
  const tbs = childrenOf(childrenOf(cert.content)[0]!.content);
  const f = tbs[0]!.tag === 0xa0 ? tbs.slice(1) : tbs;
  const [serial, , issuer, validity, subject] = f;
  const [notBefore, notAfter] = childrenOf(validity!.content);
  const sans: string[] = [];
  let isCa = false;
  const extensions = f.find((e) => e.tag === 0xa3);
  for (const ext of extensions ? childrenOf(childrenOf(extensions.content)[0]!.content) : []) {
    const parts = childrenOf(ext.content);
    const id = hex(parts[0]!.content).join("");
    const value = parts[parts.length - 1]!.content;
    if (id === "551d11") {
      for (const name of childrenOf(readOne(value, 0).el.content)) {
        if (name.tag === 0x82 || name.tag === 0x81 || name.tag === 0x86) sans.push(text(name.content));
        else if (name.tag === 0x87) sans.push(ipText(name.content));
      }
    } else if (id === "551d13") {
      const bc = childrenOf(readOne(value, 0).el.content);
      isCa = bc[0]?.tag === 0x01 && bc[0].content[0] !== 0;
    }
  }
  const s = nameOf(subject!);
  return { subject: s.text, commonName: s.commonName, issuer: nameOf(issuer!).text, serial: serialText(serial!.content), notBefore: timeOf(notBefore!), notAfter: timeOf(notAfter!), sans, isCa };
}

/** What the console shows of a CRL. */
export interface CrlSummary {
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serials (normalized, see normalizeSerial) and when. */
  revoked: Map<string, Date>;
}

/** Reads a PEM CRL (no signature check: the server signed it, the console only reports it). */
export function readCrl(pem: string): CrlSummary {
  const list = readOne(pemToDer(pem), 0).el;
  const tbs = childrenOf(childrenOf(list.content)[0]!.content);
  const f = tbs[0]!.tag === 0x02 ? tbs.slice(1) : tbs;
  const thisUpdate = timeOf(f[2]!);
  let i = 3;
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i]!.tag === 0x17 || f[i]!.tag === 0x18)) nextUpdate = timeOf(f[i++]!);
  const revoked = new Map<string, Date>();
  if (f[i]?.tag === 0x30) {
    for (const entry of childrenOf(f[i]!.content)) {
      const [serial, when] = childrenOf(entry.content);
      revoked.set(normalizeSerial(serialText(serial!.content)), timeOf(when!));
    }
  }
  return { thisUpdate, nextUpdate, revoked };
}

/** What an OCSP CertID needs of an issuer: its subject (DER) and its public key bits. */
export function issuerIdentity(pem: string): { subjectDer: Uint8Array; keyBits: Uint8Array } {
  const cert = readOne(pemToDer(pem), 0).el;
  const tbs = childrenOf(childrenOf(cert.content)[0]!.content);
  const f = tbs[0]!.tag === 0xa0 ? tbs.slice(1) : tbs;
  const spki = childrenOf(f[5]!.content);
  // The BIT STRING's value without its unused-bits byte (RFC 6960 4.1.1, as OpenSSL hashes it).
  return { subjectDer: f[4]!.raw, keyBits: spki[1]!.content.subarray(1) };
}
