import { randomBytes, randomInt } from "node:crypto";

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "0123456789";
const ALPHABET = `${UPPER}${LOWER}${DIGITS}-`;
const LENGTH = 24;

/**
 * The default password policy (Vault's, a little longer): 24 characters from letters, digits and
 * `-`, with at least one upper-case letter, lower-case letter, digit and `-`. Characters are drawn
 * uniformly (bytes past the largest multiple of 63 are skipped); a class that did not come up
 * replaces a character at a random position, so one draw always suffices.
 */
export function generatePassword(): string {
  const chars: string[] = [];
  while (chars.length < LENGTH) {
    for (const b of randomBytes(LENGTH + 8)) {
      if (b >= 252) continue; // 252 = 4 * 63
      chars.push(ALPHABET[b % 63]);
      if (chars.length === LENGTH) break;
    }
  }
  const taken = new Set<number>();
  for (const cls of [UPPER, LOWER, DIGITS, "-"]) {
    if (chars.some((c) => cls.includes(c))) continue;
    let at: number;
    do at = randomInt(LENGTH);
    while (taken.has(at) || [UPPER, LOWER, DIGITS, "-"].some((other) => other !== cls && other.includes(chars[at]) && chars.filter((c) => other.includes(c)).length === 1));
    taken.add(at);
    chars[at] = cls[randomInt(cls.length)];
  }
  return chars.join("");
}
