/**
 * Vault's ACL policy language: `path "<pattern>" { capabilities = [...] }` in HCL or JSON, with
 * Vault's parameter constraints (`allowed_parameters`, `denied_parameters`,
 * `required_parameters`) and wrapping TTL bounds (`min_wrapping_ttl`, `max_wrapping_ttl`).
 *
 * Control groups and MFA are refused rather than ignored: a policy author who writes
 * `control_group` expects a restriction, and silently dropping it would grant more than they meant.
 */
import { parseDuration } from "../../sdk/durations.js";
import { UserError } from "../../sdk/errors.js";
import type { Capability } from "../../sdk/types.js";
import { hclBlocks, parseHclJson, parseHclWithPositions, positionOf, describeValue, type HclDocument, type HclObject, type HclValue } from "../../hcl/parser.js";

/**
 * Values a parameter may (allowed) or may not (denied) take, keyed by the lower-cased parameter
 * name; `*` as a key stands for every parameter. An empty list means "any value". Values are
 * kept as written: strings may carry a leading and/or trailing `*` glob.
 */
export type ParameterValues = ReadonlyMap<string, readonly unknown[]>;

/**
 * One `path` stanza: a pattern and what it grants. `capabilities` is sorted; `deny` appears alone
 * and then no constraint is kept. The optional fields are present only when the policy sets them
 * (after merging stanzas of the same pattern, see `mergePathRules`).
 */
export interface PathRule {
  pattern: string;
  capabilities: Capability[];
  allowedParameters?: ParameterValues;
  deniedParameters?: ParameterValues;
  /** Parameter names as written; a request must send each (compared lower-cased, as Vault does). */
  requiredParameters?: readonly string[];
  /** Seconds. Vault refuses requests that are not response-wrapped within these bounds. */
  minWrappingTtl?: number;
  maxWrappingTtl?: number;
}

export interface Policy {
  /** Lower-cased name. */
  name: string;
  /** The text as written (returned by `sys/policies/acl/:name`). */
  raw: string;
  /** One rule per distinct pattern, in the order patterns first appear. */
  rules: PathRule[];
}

/** Every capability a policy may name, in Vault's documentation order. */
export const CAPABILITIES: readonly Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"];

/** Vault's pre-0.5 `policy = "..."` shorthand, expanded the way Vault expands it. */
const LEGACY_POLICIES: Record<string, readonly Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["read", "list", "create", "update", "delete"],
  sudo: ["read", "list", "create", "update", "delete", "sudo"],
  list: ["list"],
};

/** Vault Enterprise features: refused, since ignoring them would grant more than the author meant. */
const UNSUPPORTED_PATH_KEYS = new Set(["control_group", "mfa_methods"]);

/** Keys a `path` stanza may hold. `comment` is accepted (and ignored), as Vault does. */
const PATH_KEYS = [
  "capabilities",
  "policy",
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
  "comment",
];

export const DEFAULT_POLICY_NAME = "default";

/**
 * Vault's built-in `default` policy, restricted to the endpoints leasehold serves: a token may
 * look itself up, renew and revoke itself, ask what it may do, renew and look up its leases,
 * and read mount information that Vault Agent and consul-template fetch before reading secrets.
 */
export const DEFAULT_POLICY_TEXT = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to renew a lease via lease_id in the request body; the old path
# sys/renew is kept for older clients
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/renew" {
  capabilities = ["update"]
}

# Allow looking up lease properties (requires knowing the lease ID)
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Allow reading mount information, as Vault Agent and consul-template do before reading a secret
path "sys/internal/ui/mounts" {
  capabilities = ["read"]
}
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
`;

/**
 * Lower-cases a policy name and checks it: `[a-z0-9_.-]`, 1 to 128 characters.
 * (Reserved names such as `root` are for the policy store to refuse.)
 */
export function normalizePolicyName(name: string): string {
  const n = name.trim().toLowerCase();
  if (!/^[a-z0-9_.-]{1,128}$/.test(n)) {
    throw new UserError(`invalid policy name ${JSON.stringify(name)}: use 1 to 128 letters, digits, "_", "-" or "."`);
  }
  return n;
}

/**
 * Checks a path pattern and returns it without a leading `/` (Vault strips it too).
 * `*` may only be the last character (a prefix glob); `+` must be a whole segment.
 */
export function normalizePathPattern(pattern: string): string {
  const p = pattern.replace(/^\/+/, "");
  const quoted = JSON.stringify(pattern);
  if (p === "") throw new UserError(`path ${quoted}: the pattern is empty`);
  if (p.includes("{{")) {
    // Templated paths ({{identity.entity.id}}) would otherwise match only the literal braces.
    throw new UserError(`path ${quoted}: templated policy paths are not supported by leasehold yet`);
  }
  const star = p.indexOf("*");
  if (star !== -1 && star !== p.length - 1) {
    throw new UserError(`path ${quoted}: "*" is only allowed as the last character (a prefix glob such as "secret/*")`);
  }
  if (p.split("/").some((seg) => seg.includes("+") && seg !== "+")) {
    throw new UserError(`path ${quoted}: "+" must be a whole path segment, as in "secret/+/config" ("+*" and "a+b" are not allowed)`);
  }
  return p;
}

/**
 * Parses a policy written in HCL or JSON (text whose first non-space character is `{`).
 * Errors are `UserError`s naming the policy, the line (for HCL) and the path pattern.
 */
export function parsePolicy(name: string, text: string): Policy {
  try {
    return parsePolicyText(name, text);
  } catch (err) {
    // Absurdly nested text overflows the recursive HCL/JSON readers: bad input, not our failure.
    if (err instanceof RangeError) throw new UserError(`policy ${JSON.stringify(name)}: the policy is nested too deeply`);
    throw err;
  }
}

function parsePolicyText(name: string, text: string): Policy {
  const policyName = normalizePolicyName(name);
  const source = `policy ${JSON.stringify(policyName)}`;
  if (text.trim() === "") throw new UserError(`${source}: the policy text is empty`);

  let doc: Pick<HclDocument, "positions"> | undefined;
  let root: HclObject;
  if (text.trimStart().startsWith("{")) {
    root = parseHclJson(text, source);
  } else {
    const parsed = parseHclWithPositions(text, source);
    root = parsed.value;
    doc = parsed;
  }

  const fail: (node: object, key: string | undefined, message: string) => never = (node, key, message) => {
    const pos = positionOf(doc, node, key);
    throw new UserError(`${source}${pos ? `, line ${pos.line}` : ""}: ${message}`);
  };

  const merged = new Map<string, PathRule>();
  for (const [key, value] of Object.entries(root)) {
    if (key === "name") continue; // Vault's legacy top-level name; the stored name wins.
    if (key !== "path") fail(root, key, `unknown top-level key ${JSON.stringify(key)}: a policy holds only path "<pattern>" { ... } blocks`);
    let blocks;
    try {
      blocks = hclBlocks(value, 1, "path");
    } catch (err) {
      return fail(root, key, (err as Error).message);
    }
    for (const { labels, body } of blocks) {
      const rawPattern = labels[0];
      const where = `path ${JSON.stringify(rawPattern)}`;
      let pattern: string;
      try {
        pattern = normalizePathPattern(rawPattern);
      } catch (err) {
        return fail(body, undefined, (err as Error).message);
      }
      const caps = new Set<Capability>();
      const rule: Omit<PathRule, "capabilities"> = { pattern };
      for (const [k, v] of Object.entries(body)) {
        if (UNSUPPORTED_PATH_KEYS.has(k)) fail(body, k, `${where}: ${k} is not supported by leasehold yet`);
        if (k === "capabilities") {
          if (!Array.isArray(v)) fail(body, k, `${where}: capabilities must be a list such as ["read", "list"], got ${describeValue(v)}`);
          for (const c of v as unknown[]) {
            if (typeof c !== "string" || !(CAPABILITIES as readonly string[]).includes(c)) {
              fail(body, k, `${where}: unknown capability ${JSON.stringify(c)}; valid capabilities are ${CAPABILITIES.join(", ")}`);
            }
            caps.add(c as Capability);
          }
        } else if (k === "policy") {
          const legacy = typeof v === "string" && Object.hasOwn(LEGACY_POLICIES, v) ? LEGACY_POLICIES[v] : undefined;
          if (!legacy) {
            fail(body, k, `${where}: unknown policy ${JSON.stringify(v)}; valid values are ${Object.keys(LEGACY_POLICIES).map((p) => `"${p}"`).join(", ")}`);
          }
          for (const c of legacy!) caps.add(c);
        } else if (k === "allowed_parameters" || k === "denied_parameters") {
          const values = parseParameterValues(v, (message) => fail(body, k, `${where}: ${k}: ${message}`));
          if (values.size > 0) rule[k === "allowed_parameters" ? "allowedParameters" : "deniedParameters"] = values;
        } else if (k === "required_parameters") {
          if (!Array.isArray(v)) fail(body, k, `${where}: required_parameters must be a list of parameter names such as ["common_name"], got ${describeValue(v)}`);
          const names = (v as unknown[]).map((n) => {
            if (typeof n === "number") return String(n);
            if (typeof n !== "string") return fail(body, k, `${where}: required_parameters: ${JSON.stringify(n)} is not a parameter name`);
            return n;
          });
          if (names.length > 0) rule.requiredParameters = [...new Set(names)];
        } else if (k === "min_wrapping_ttl" || k === "max_wrapping_ttl") {
          let seconds = 0;
          try {
            seconds = parseDuration(v, k);
          } catch (err) {
            fail(body, k, `${where}: ${(err as Error).message}`);
          }
          if (seconds > 0) rule[k === "min_wrapping_ttl" ? "minWrappingTtl" : "maxWrappingTtl"] = seconds;
        } else if (k === "comment") {
          if (typeof v !== "string") fail(body, k, `${where}: comment must be a string`);
        } else {
          fail(body, k, `${where}: unknown key ${JSON.stringify(k)}; valid keys are ${PATH_KEYS.join(", ")}`);
        }
      }
      if (caps.size === 0) fail(body, undefined, `${where}: no capabilities; set capabilities = ["read", ...] or policy = "read"`);
      if (rule.minWrappingTtl !== undefined && rule.maxWrappingTtl !== undefined && rule.maxWrappingTtl < rule.minWrappingTtl) {
        fail(body, "max_wrapping_ttl", `${where}: max_wrapping_ttl cannot be less than min_wrapping_ttl`);
      }
      const stanza = normalizeRule({ ...rule, capabilities: normalizeCapabilities(caps) });
      const existing = merged.get(pattern);
      // Vault merges repeated stanzas of one pattern in a policy exactly as it merges policies.
      merged.set(pattern, existing ? mergePathRules(existing, stanza) : stanza);
    }
  }

  return { name: policyName, raw: text, rules: [...merged.values()] };
}

/**
 * Reads `allowed_parameters`/`denied_parameters`: a map (HCL `= { ... }` or block form, or JSON)
 * from parameter name to a list of values. Keys are lower-cased, as Vault does; a key written twice
 * (in two cases, or two blocks) merges as two policies would.
 */
function parseParameterValues(value: HclValue, fail: (message: string) => never): Map<string, unknown[]> {
  let bodies: HclObject[];
  try {
    bodies = hclBlocks(value, 0, "parameters").map((b) => b.body);
  } catch {
    return fail(`expected a map from parameter name to a list of values, such as { "common_name" = ["*.example.com"], "ttl" = [] }, got ${describeValue(value)}`);
  }
  const out = new Map<string, unknown[]>();
  for (const body of bodies) {
    for (const [key, list] of Object.entries(body)) {
      // Vault's HCL decoder reads a map value as a one-element list; a bare string or number is an error there too.
      if (!Array.isArray(list) && !isObject(list)) {
        fail(`${JSON.stringify(key)} must be a list of values such as ["a", "b*"] (an empty list allows any value), got ${describeValue(list)}`);
      }
      mergeParameterKey(out, key.toLowerCase(), Array.isArray(list) ? list : [list]);
    }
  }
  return out;
}

function isObject(v: unknown): v is HclObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Vault's merge of one parameter's values: an empty list (any value) wins, otherwise the union. */
function mergeParameterKey(into: Map<string, unknown[]>, key: string, values: readonly unknown[]): void {
  const existing = into.get(key);
  if (values.length === 0 || (existing !== undefined && existing.length === 0)) into.set(key, []);
  else into.set(key, [...values, ...(existing ?? [])]);
}

function mergeParameterValues(a: ParameterValues | undefined, b: ParameterValues | undefined): ParameterValues | undefined {
  if (!b || b.size === 0) return a;
  const out = new Map<string, unknown[]>();
  for (const [k, v] of a ?? []) out.set(k, [...v]);
  for (const [k, v] of b) mergeParameterKey(out, k, v);
  return out;
}

/** The lesser of two positive bounds (Vault prefers the shortest wrapping lifetime); 0 is "unset". */
function lesserPositive(a: number | undefined, b: number | undefined): number | undefined {
  if (!b) return a;
  if (!a) return b;
  return Math.min(a, b);
}

/** Drops constraints from a `deny` rule (nothing is allowed there, so nothing is constrained). */
function normalizeRule(rule: PathRule): PathRule {
  if (!rule.capabilities.includes("deny")) return rule;
  return { pattern: rule.pattern, capabilities: ["deny"] };
}

/**
 * Merges two rules for the same pattern, from two policies or two stanzas of one policy, the way
 * Vault's `NewACL` does: `deny` on either side makes the result exactly `deny`; otherwise
 * capabilities add up, and so do the constraints: allowed and denied values are united per
 * parameter (an empty list, meaning any value, wins), required parameters are united, and the
 * lesser of each wrapping TTL bound is kept. A side without constraints does not lift the other
 * side's: constraints only ever accumulate, as in Vault.
 */
export function mergePathRules(a: PathRule, b: PathRule): PathRule {
  if (a.capabilities.includes("deny") || b.capabilities.includes("deny")) return { pattern: a.pattern, capabilities: ["deny"] };
  const merged: PathRule = { pattern: a.pattern, capabilities: normalizeCapabilities([...a.capabilities, ...b.capabilities]) };
  const allowed = mergeParameterValues(a.allowedParameters, b.allowedParameters);
  const denied = mergeParameterValues(a.deniedParameters, b.deniedParameters);
  const required = [...new Set([...(a.requiredParameters ?? []), ...(b.requiredParameters ?? [])])];
  const minWrappingTtl = lesserPositive(a.minWrappingTtl, b.minWrappingTtl);
  const maxWrappingTtl = lesserPositive(a.maxWrappingTtl, b.maxWrappingTtl);
  if (allowed) merged.allowedParameters = allowed;
  if (denied) merged.deniedParameters = denied;
  if (required.length > 0) merged.requiredParameters = required;
  if (minWrappingTtl) merged.minWrappingTtl = minWrappingTtl;
  if (maxWrappingTtl) merged.maxWrappingTtl = maxWrappingTtl;
  return merged;
}

/** Sorted, de-duplicated capabilities; a set containing `deny` is exactly `["deny"]`. */
export function normalizeCapabilities(caps: Iterable<Capability>): Capability[] {
  const set = new Set(caps);
  if (set.has("deny")) return ["deny"];
  return [...set].sort();
}
