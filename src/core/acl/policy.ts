/**
 * Vault's ACL policy language: `path "<pattern>" { capabilities = [...] }` in HCL or JSON.
 *
 * Parameter constraints, wrapping TTL bounds, control groups and MFA are refused rather than
 * ignored: a policy author who writes `denied_parameters` expects a restriction, and silently
 * dropping it would grant more than they meant.
 */
import { UserError } from "../../sdk/errors.js";
import type { Capability } from "../../sdk/types.js";
import { hclBlocks, parseHclJson, parseHclWithPositions, positionOf, describeValue, type HclDocument, type HclObject } from "../hcl.js";

/** One `path` stanza: a pattern and what it grants. `capabilities` is sorted; `deny` appears alone. */
export interface PathRule {
  pattern: string;
  capabilities: Capability[];
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

const UNSUPPORTED_PATH_KEYS = new Set([
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
  "control_group",
  "mfa_methods",
]);

/** Keys a `path` stanza may hold. `comment` is accepted (and ignored), as Vault does. */
const PATH_KEYS = ["capabilities", "policy", "comment"];

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

  const merged = new Map<string, Set<Capability>>();
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
        } else if (k === "comment") {
          if (typeof v !== "string") fail(body, k, `${where}: comment must be a string`);
        } else {
          fail(body, k, `${where}: unknown key ${JSON.stringify(k)}; valid keys are ${PATH_KEYS.join(", ")}`);
        }
      }
      if (caps.size === 0) fail(body, undefined, `${where}: no capabilities; set capabilities = ["read", ...] or policy = "read"`);
      const existing = merged.get(pattern);
      merged.set(pattern, existing ? new Set([...existing, ...caps]) : caps);
    }
  }

  const rules = [...merged].map(([pattern, caps]) => ({ pattern, capabilities: normalizeCapabilities(caps) }));
  return { name: policyName, raw: text, rules };
}

/** Sorted, de-duplicated capabilities; a set containing `deny` is exactly `["deny"]`. */
export function normalizeCapabilities(caps: Iterable<Capability>): Capability[] {
  const set = new Set(caps);
  if (set.has("deny")) return ["deny"];
  return [...set].sort();
}
