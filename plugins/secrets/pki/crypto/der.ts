/**
 * A minimal DER writer and reader for the issuance hot path. The parts of a certificate that stay
 * the same for a role are encoded once with the @peculiar/asn1-x509 classes; the few parts that
 * change per certificate (serial, validity, subject, SAN, key identifier) are small enough that a
 * direct tag-length-value writer is about ten times cheaper than building and serialising schema
 * objects. der.test.ts checks every writer here byte for byte against the asn1-x509 encoding.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Bytes of a DER length: short form below 128, else 0x8n and n big-endian bytes. */
function lengthSize(len: number): number {
  return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5;
}

/**
 * A tag-length-value whose value is `parts` one after the other, written into one new buffer
 * (no intermediate concatenation: a TBS certificate is a dozen of these nested).
 */
function tlvOf(tag: number, parts: readonly Buffer[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const lenSize = lengthSize(len);
  const out = Buffer.allocUnsafe(1 + lenSize + len); // every byte is written below
  out[0] = tag;
  if (lenSize === 1) out[1] = len;
  else {
    out[1] = 0x80 | (lenSize - 1);
    for (let i = lenSize, v = len; i >= 2; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  }
  let offset = 1 + lenSize;
  for (const p of parts) offset += p.copy(out, offset);
  return out;
}

const ZERO = Buffer.from([0]);

/** One tag-length-value. */
export function tlv(tag: number, content: Buffer): Buffer {
  return tlvOf(tag, [content]);
}

export function seq(...parts: Buffer[]): Buffer {
  return tlvOf(TAG.SEQUENCE, parts);
}

export function set(...parts: Buffer[]): Buffer {
  return tlvOf(TAG.SET, parts);
}

/** Context-specific constructed tag `[n]` (EXPLICIT wrapping). */
export function explicit(n: number, content: Buffer): Buffer {
  return tlv(0xa0 | n, content);
}

export function octetString(content: Buffer): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

/** BIT STRING with no unused bits (keys, signatures). */
export function bitString(content: Buffer): Buffer {
  return tlvOf(TAG.BIT_STRING, [ZERO, content]);
}

/** A non-negative INTEGER from its big-endian magnitude (minimal two's complement encoding). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = magnitude.subarray(start);
  return body[0] & 0x80 ? tlvOf(TAG.INTEGER, [ZERO, body]) : tlv(TAG.INTEGER, body);
}

export function smallInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`integer out of range: ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]));
}

const oidCache = new Map<string, Buffer>();

/** An OBJECT IDENTIFIER; encodings are cached (the same few OIDs appear in every certificate). Do not mutate the result. */
export function oid(dotted: string): Buffer {
  let der = oidCache.get(dotted);
  if (!der) {
    der = encodeOid(dotted);
    if (oidCache.size < 1024) oidCache.set(dotted, der);
  }
  return der;
}

function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isInteger(a) || a < 0)) throw new Error(`invalid OID ${dotted}`);
  const out: number[] = [];
  const pushArc = (v: number) => {
    const chunk: number[] = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  };
  pushArc(arcs[0] * 40 + arcs[1]);
  for (const a of arcs.slice(2)) pushArc(a);
  return tlv(TAG.OID, Buffer.from(out));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A directory string the way Go (and so Vault) writes it: PrintableString when possible, else UTF8String. */
export function directoryString(value: string): Buffer {
  return PRINTABLE.test(value) ? tlv(TAG.PRINTABLE_STRING, Buffer.from(value, "latin1")) : tlv(TAG.UTF8_STRING, Buffer.from(value, "utf8"));
}

export function ia5String(value: string): Buffer {
  // eslint-disable-next-line no-control-regex -- IA5 is 7-bit ASCII
  if (!/^[\x00-\x7f]*$/.test(value)) throw new Error(`not an IA5 (ASCII) string: ${JSON.stringify(value)}`);
  return tlv(TAG.IA5_STRING, Buffer.from(value, "latin1"));
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, `Z`. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${two(y % 100)}${rest}`, "latin1"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "latin1"));
}

/** The dotted form of an OBJECT IDENTIFIER's content bytes. */
export function decodeOid(c: Buffer): string {
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    v = v * 128 + (c[i] & 0x7f);
    if (!(c[i] & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  if (!arcs.length || c[c.length - 1] & 0x80) throw new Error("malformed OID");
  const first = arcs[0] < 80 ? Math.floor(arcs[0] / 40) : 2;
  return [first, arcs[0] - first * 40, ...arcs.slice(1)].join(".");
}

/** The text of a DirectoryString-like element (UTF8, Printable, IA5, Visible, Teletex, BMP, Universal). */
export function decodeString(buf: Buffer, el: DerElement): string {
  const c = content(buf, el);
  switch (el.tag) {
    case TAG_BMP_STRING:
      return Buffer.from(c).swap16().toString("utf16le");
    case TAG_UNIVERSAL_STRING: {
      let out = "";
      for (let i = 0; i + 4 <= c.length; i += 4) out += String.fromCodePoint(c.readUInt32BE(i));
      return out;
    }
    case TAG_TELETEX_STRING:
      return c.toString("latin1");
    default:
      return c.toString("utf8");
  }
}

const TAG_BMP_STRING = 0x1e;
const TAG_UNIVERSAL_STRING = 0x1c;
const TAG_TELETEX_STRING = 0x14;

/** One element read from a DER buffer: where its header and content sit. */
export interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads the element starting at `offset`. Throws on truncated or indefinite-length input. */
export function readElement(buf: Buffer, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new Error("truncated DER");
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error("multi-byte DER tags are not supported");
  let len = buf[offset + 1];
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("unsupported DER length");
    len = 0;
    for (let i = 0; i < n; i++) {
      if (pos >= buf.length) throw new Error("truncated DER");
      len = len * 256 + buf[pos++];
    }
  }
  if (pos + len > buf.length) throw new Error("truncated DER");
  return { tag, start: offset, contentStart: pos, end: pos + len };
}

/** The children of a constructed element. */
export function children(buf: Buffer, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const el = readElement(buf, pos);
    if (el.end > parent.end) throw new Error("DER element overruns its parent");
    out.push(el);
    pos = el.end;
  }
  return out;
}

export function raw(buf: Buffer, el: DerElement): Buffer {
  return buf.subarray(el.start, el.end);
}

export function content(buf: Buffer, el: DerElement): Buffer {
  return buf.subarray(el.contentStart, el.end);
}

/** A copy of `buf` as a standalone ArrayBuffer (WebCrypto-style APIs want one). */
export function arrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
