import { UserError } from "./errors.js";

/**
 * The one parser of bound CIDRs (`token_bound_cidrs`, `bound_cidrs`, `secret_id_bound_cidrs`,
 * `cidr_list`, ...) and of client addresses. It is as strict as Go's `net.ParseCIDR` /
 * `netip.ParsePrefix` and `net.ParseIP`, because a list that half-parses fails open: `10.0.0.1/`
 * read as `/0` binds a token to every address.
 *   - IPv4: four decimal octets, no leading zeros (Go refuses them since 1.17: `010` may be octal).
 *   - IPv6: hex groups of 1 to 4 digits, at most one `::`, an optional dotted IPv4 tail; no zone.
 *   - Prefix length: decimal digits only (no sign, space, `0x`, exponent, leading zero), within
 *     0..32 or 0..128. A bare address is a single host (/32 or /128), as Vault accepts it.
 *   - An IPv4-mapped IPv6 block (`::ffff:10.0.0.0/104`) is the IPv4 block it maps (`10.0.0.0/8`),
 *     and a client connecting as `::ffff:10.1.2.3` is the IPv4 client `10.1.2.3`. Other IPv6
 *     blocks never match IPv4 clients (as in Go, where an IPv6 network never contains an IPv4 address).
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface CidrBlock extends IpAddress {
  /** Leading bits that must match: 0..32 or 0..128. */
  prefix: number;
}

const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!IPV4_OCTET.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(s: string): Uint8Array | undefined {
  // A zone (`fe80::1%eth0`) names an interface, not an address: refused, as Go's ParseCIDR does.
  if (s.includes("%")) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string, last: boolean): number[] | undefined => {
    if (part === "") return [];
    const fields = part.split(":");
    const out: number[] = [];
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      if (last && i === fields.length - 1 && f.includes(".")) {
        // The dotted IPv4 tail takes the last two groups.
        const v4 = parseIPv4(f);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!HEX_GROUP.test(f)) return undefined;
        out.push(parseInt(f, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1], true) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 1) {
    if (head.length !== 8) return undefined;
    groups = head;
  } else {
    // `::` stands for at least one group of zeros.
    const zeros = 8 - head.length - tail.length;
    if (zeros < 1) return undefined;
    groups = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** `::ffff:a.b.c.d` as a 16-byte address: the IPv4 address it maps, else undefined. */
function mappedIPv4(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return undefined;
  return bytes.slice(12);
}

/** Parses an address exactly as written (no zone, no port, strict octets); undefined when it is not one. */
export function parseIp(s: string): IpAddress | undefined {
  const v4 = parseIPv4(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = s.includes(":") ? parseIPv6(s) : undefined;
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

/** Parses one block (`10.0.0.0/8`, `2001:db8::/32`, or a bare address); undefined when malformed. */
export function parseCidr(raw: string): CidrBlock | undefined {
  const slash = raw.indexOf("/");
  const addrText = slash < 0 ? raw : raw.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const bits = raw.slice(slash + 1);
    if (!PREFIX_LENGTH.test(bits)) return undefined;
    prefix = Number(bits);
    if (prefix > max) return undefined;
  }
  const v4 = ip.family === 6 ? mappedIPv4(ip.bytes) : undefined;
  if (v4 && prefix >= 96) return { family: 4, bytes: v4, prefix: prefix - 96 };
  return { ...ip, prefix };
}

/**
 * Validates a list of CIDR blocks (a bare address means a single host) and returns them parsed.
 * Throws UserError naming the bad entry. Entries are taken as given: the field parser already
 * trimmed the spaces around each comma-separated entry, as Vault's does.
 */
export function parseCidrs(cidrs: readonly string[], field = "bound_cidrs"): CidrBlock[] {
  return cidrs.map((raw) => {
    const block = parseCidr(raw);
    if (block) return block;
    const slash = raw.indexOf("/");
    const ip = slash < 0 ? undefined : parseIp(raw.slice(0, slash));
    if (ip) throw new UserError(`${field}: ${JSON.stringify(raw)} has an invalid prefix length (expected decimal digits from 0 to ${ip.family === 4 ? 32 : 128}, without leading zeros)`);
    throw new UserError(`${field}: ${JSON.stringify(raw)} is not an IP address or CIDR block (expected e.g. 10.0.0.0/8, 192.168.1.10 or 2001:db8::/32)`);
  });
}

/** Whether the first `prefix` bits of two same-family addresses agree. */
function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole] & mask) === (b[whole] & mask);
}

/** True when `block` holds `address` (same family, same leading bits). */
export function blockContains(block: CidrBlock, address: IpAddress): boolean {
  return block.family === address.family && samePrefix(block.bytes, address.bytes, block.prefix);
}

/** True when every address of `inner` lies in `outer`. */
export function blockWithin(inner: CidrBlock, outer: CidrBlock): boolean {
  return outer.prefix <= inner.prefix && blockContains(outer, inner);
}

/**
 * A client address as the socket reports it, as an address: an IPv4-mapped IPv6 address is its
 * IPv4 address, and a zone (`fe80::1%eth0`) is dropped. Undefined when it is not an address.
 */
export function parseClientAddress(address: string): IpAddress | undefined {
  const zone = address.indexOf("%");
  const ip = parseIp(zone < 0 ? address : address.slice(0, zone));
  if (!ip) return undefined;
  const v4 = ip.family === 6 ? mappedIPv4(ip.bytes) : undefined;
  return v4 ? { family: 4, bytes: v4 } : ip;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 clients on a dual-stack socket match IPv4 CIDRs. */
export function normaliseAddress(address: string): string {
  const ip = parseClientAddress(address);
  if (!ip || ip.family !== 4) return address;
  return ip.bytes.join(".");
}

/**
 * True when `address` lies in one of `cidrs` (an empty list allows every address). An entry that
 * does not parse (stored before parsing was strict) matches nothing: the binding fails closed.
 */
export function addressAllowed(address: string, cidrs: readonly string[]): boolean {
  if (!cidrs.length) return true;
  const ip = parseClientAddress(address);
  if (!ip) return false;
  return cidrs.some((raw) => {
    const block = parseCidr(raw);
    return block !== undefined && blockContains(block, ip);
  });
}
