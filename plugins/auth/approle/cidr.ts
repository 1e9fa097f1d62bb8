import { BlockList, isIP } from "node:net";
import { parseCidrs } from "../../../src/sdk/index.js";

function split(cidr: string): { addr: string; prefix: number; family: 4 | 6 } {
  const [addr, bits] = cidr.trim().split("/");
  const family = isIP(addr) as 4 | 6;
  return { addr, prefix: bits === undefined ? (family === 4 ? 32 : 128) : Number(bits), family };
}

/**
 * True when every block of `inner` lies inside one block of `outer` (an empty `outer` allows
 * anything). A block B is inside A when A's prefix is no longer than B's and A holds B's address:
 * every address of B shares B's first bits, hence A's.
 */
export function cidrsWithin(inner: string[], outer: string[], field: string): boolean {
  parseCidrs(inner, field);
  if (!outer.length) return true;
  const outers = outer.map((o) => {
    const s = split(o);
    const list = new BlockList();
    list.addSubnet(s.addr, s.prefix, s.family === 4 ? "ipv4" : "ipv6");
    return { ...s, list };
  });
  return inner.every((i) => {
    const b = split(i);
    return outers.some((o) => o.family === b.family && o.prefix <= b.prefix && o.list.check(b.addr, b.family === 4 ? "ipv4" : "ipv6"));
  });
}
