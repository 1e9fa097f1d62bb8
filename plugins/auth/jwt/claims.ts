import { UserError, globMatch } from "../../../src/sdk/index.js";

/** A bound claim's expected value(s): a scalar or a list of scalars. */
export type BoundValue = string | number | boolean | (string | number | boolean)[];

/**
 * Reads a claim: a name starting with `/` is a JSON pointer (RFC 6901: `/a/b`, `~1` = `/`,
 * `~0` = `~`) into nested claims; any other name is a top-level claim, taken literally.
 */
export function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith("/")) return claims[name];
  let cur: unknown = claims;
  for (const raw of name.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(key)) return undefined;
      cur = cur[Number(key)];
    } else if (typeof cur === "object" && cur !== null) {
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return cur;
}

const scalar = (v: unknown): v is string | number | boolean => typeof v === "string" || typeof v === "number" || typeof v === "boolean";

/** Validates bound_claims at role write: values are scalars or lists of scalars; globs need strings. */
export function checkBoundClaims(bound: Record<string, unknown>, type: "string" | "glob"): Record<string, BoundValue> {
  for (const [k, v] of Object.entries(bound)) {
    const values = Array.isArray(v) ? v : [v];
    if (!values.length || !values.every(scalar)) throw new UserError(`bound_claims: the value of ${JSON.stringify(k)} must be a string, number, boolean or a list of them`);
    if (type === "glob" && !values.every((x) => typeof x === "string")) throw new UserError(`bound_claims: with bound_claims_type "glob" the value of ${JSON.stringify(k)} must be a string or a list of strings`);
  }
  return bound as Record<string, BoundValue>;
}

/**
 * Vault's rule (and its 400 answer): every bound claim must be present, and one of the token's values for it (a list
 * claim counts each element) must equal (or, for "glob", match) one of the expected values.
 */
export function enforceBoundClaims(claims: Record<string, unknown>, bound: Record<string, BoundValue>, type: "string" | "glob"): void {
  for (const [name, expected] of Object.entries(bound)) {
    const actual = claimAt(claims, name);
    if (actual === undefined) throw new UserError(`error validating claims: claim ${JSON.stringify(name)} is missing`);
    const have = (Array.isArray(actual) ? actual : [actual]).filter(scalar).map(String);
    const want = (Array.isArray(expected) ? expected : [expected]).map(String);
    const ok = have.some((h) => want.some((w) => (type === "glob" ? globMatch(w, h) : w === h)));
    if (!ok) throw new UserError(`error validating claims: claim ${JSON.stringify(name)} does not match any associated bound claim values`);
  }
}

/** Validates claim_mappings at role write (Vault refuses `role` as a target and duplicate targets). */
export function checkClaimMappings(mappings: Record<string, string>): Record<string, string> {
  const targets = new Set<string>();
  for (const target of Object.values(mappings)) {
    if (target === "role") throw new UserError('claim_mappings: metadata key "role" is reserved and may not be a mapping destination');
    if (targets.has(target)) throw new UserError(`claim_mappings: multiple keys are mapped to metadata key ${JSON.stringify(target)}`);
    targets.add(target);
  }
  return mappings;
}

/** Copies mapped claims into token metadata; absent and non-scalar claims are skipped. */
export function mapClaims(claims: Record<string, unknown>, mappings: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [source, target] of Object.entries(mappings)) {
    const v = claimAt(claims, source);
    if (scalar(v)) out[target] = String(v);
  }
  return out;
}
