import { BlockList, isIP } from "node:net";
import { UserError } from "./errors.js";

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 clients on a dual-stack socket match IPv4 CIDRs. */
export function normaliseAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

/** Validates a list of CIDR blocks (a bare address means a single host). Throws UserError naming the bad entry. */
export function parseCidrs(cidrs: string[], field = "bound_cidrs"): BlockList {
  const list = new BlockList();
  for (const raw of cidrs) {
    const [addr, bits] = raw.trim().split("/");
    const family = isIP(addr);
    if (!family) throw new UserError(`${field}: ${JSON.stringify(raw)} is not an IP address or CIDR block`);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new UserError(`${field}: ${JSON.stringify(raw)} has an invalid prefix length`);
    list.addSubnet(addr, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

/** True when `address` lies in one of `cidrs` (an empty list allows every address). */
export function addressAllowed(address: string, cidrs: string[]): boolean {
  if (!cidrs.length) return true;
  const a = normaliseAddress(address);
  const family = isIP(a);
  if (!family) return false;
  return parseCidrs(cidrs).check(a, family === 4 ? "ipv4" : "ipv6");
}
