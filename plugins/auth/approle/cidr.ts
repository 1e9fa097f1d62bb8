import { blockWithin, parseCidrs } from "../../../src/sdk/index.js";

/**
 * True when every block of `inner` lies inside one block of `outer` (an empty `outer` allows
 * anything). Throws UserError, naming `field`, when an `inner` entry is malformed. Both lists go
 * through the SDK's one strict parser, so the subset check and the login-time match agree on
 * what each entry means (an IPv4-mapped IPv6 block is its IPv4 block in both).
 */
export function cidrsWithin(inner: string[], outer: string[], field: string): boolean {
  const inners = parseCidrs(inner, field);
  if (!outer.length) return true;
  // The role's blocks were validated when the role was written; should one not parse (stored
  // before parsing was strict), it holds nothing, so nothing can be proved to lie inside it.
  const outers = outer.flatMap((o) => {
    try {
      return parseCidrs([o]);
    } catch {
      return [];
    }
  });
  return inners.every((b) => outers.some((a) => blockWithin(b, a)));
}
