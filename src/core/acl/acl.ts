/**
 * An ACL: a set of policies compiled for fast per-request checks, with Vault's matching rules.
 *
 * - Rules for the same pattern from several policies merge: capabilities union, parameter
 *   constraints accumulate (`mergePathRules`), and `deny` anywhere makes the pattern exactly `deny`.
 * - A request path is decided by ONE pattern: an exact pattern if there is one, otherwise the
 *   most specific matching wildcard pattern by Vault's priority order (see `comparePriority`).
 *   Less specific patterns do not add to it, and `deny` there denies everything.
 * - No matching pattern means denied.
 * - Parameter constraints (`allowed_parameters`, `denied_parameters`, `required_parameters`) come
 *   from that same deciding rule and are checked against the request data for read, create,
 *   update and patch, as Vault's `AllowOperation` does (see `parametersAllowed`).
 * - A rule with a wrapping TTL bound admits only response-wrapped requests in Vault; leasehold
 *   cannot wrap (it refuses `X-Vault-Wrap-TTL`), so such a rule admits nothing.
 * - For LIST (and for `capabilities`, which Vault evaluates as a LIST), a path ending in `/` is
 *   also checked without the slash first, so `path "secret/metadata/app"` covers
 *   `LIST secret/metadata/app/` (Vault's behaviour, VAULT-3825).
 */
import type { Capability, Operation } from "../../sdk/types.js";
import { mergePathRules, type ParameterValues, type PathRule, type Policy } from "./policy.js";

export interface AclOptions {
  /** A root token: every capability on every path, including sudo. */
  root?: boolean;
}

/** Every capability a root token holds on any path, sorted. */
const ROOT_CAPABILITIES: Capability[] = ["create", "delete", "list", "patch", "read", "sudo", "update"];

interface WildcardRule {
  pattern: string;
  capabilities: Capability[];
  rule: PathRule;
  regex: RegExp;
  /** Index of the first `+` or `*`. */
  firstWildcard: number;
  isPrefix: boolean;
  segmentWildcards: number;
  /** The pattern without its trailing `*`, which Vault compares for rules 4 and 5. */
  stem: string;
}

export class ACL {
  readonly isRoot: boolean;
  private readonly exact = new Map<string, PathRule>();
  /** Highest priority first: the first one whose regex matches decides. */
  private readonly wildcards: WildcardRule[];

  constructor(policies: readonly Policy[], options: AclOptions = {}) {
    this.isRoot = options.root === true;
    const merged = new Map<string, PathRule>();
    for (const policy of policies) {
      for (const rule of policy.rules) {
        const existing = merged.get(rule.pattern);
        merged.set(rule.pattern, existing ? mergePathRules(existing, rule) : rule);
      }
    }
    const wildcards: WildcardRule[] = [];
    for (const [pattern, rule] of merged) {
      if (isWildcardPattern(pattern)) wildcards.push(compileWildcard(rule));
      else this.exact.set(pattern, rule);
    }
    this.wildcards = wildcards.sort((a, b) => comparePriority(b, a));
  }

  /** An ACL for a root token. */
  static root(): ACL {
    return new ACL([], { root: true });
  }

  /**
   * What a token may do on `path`, as `sys/capabilities-self` reports it: the deciding rule's
   * capabilities sorted, `["deny"]` when it denies or nothing matches, and every capability
   * (including sudo) for root. (Vault's endpoint answers `["root"]` for root: use `isRoot`.)
   */
  capabilities(path: string): Capability[] {
    if (this.isRoot) return [...ROOT_CAPABILITIES];
    const rule = this.decide(path, true);
    if (!rule || rule.capabilities.includes("deny")) return ["deny"];
    return [...rule.capabilities];
  }

  /**
   * Whether `op` is allowed on `path`; with `opts.sudo` the deciding rule must also grant
   * `sudo` (root-protected paths). Passing `"sudo"` as the operation asks for sudo alone.
   * `opts.data` is the request data (the body, or the query parameters of a read): for read,
   * create, update and patch it must satisfy the deciding rule's parameter constraints. Without
   * it the request counts as sending no parameters (which fails `required_parameters`).
   */
  allows(path: string, op: Operation | "sudo", opts: { sudo?: boolean; data?: Readonly<Record<string, unknown>> } = {}): boolean {
    if (this.isRoot) return true;
    const rule = this.decide(path, op === "list");
    if (!rule) return false;
    const caps = rule.capabilities;
    if (caps.includes("deny") || !caps.includes(op)) return false;
    if (opts.sudo && !caps.includes("sudo")) return false;
    // Vault admits only a response-wrapped request under a wrapping TTL bound; nothing is wrapped here.
    if (rule.minWrappingTtl !== undefined || rule.maxWrappingTtl !== undefined) return false;
    if (op === "read" || op === "create" || op === "update" || op === "patch") return parametersAllowed(rule, opts.data ?? {});
    return true;
  }

  /**
   * Whether the deciding rule for `path` grants any of `ops`, looking at capabilities only (not
   * sudo, parameters or wrapping). The HTTP layer asks this before it reads a body: a write the
   * token could never make is refused unread, and nothing `allows` would admit is refused.
   */
  grantsAny(path: string, ops: readonly Operation[]): boolean {
    if (this.isRoot) return true;
    const rule = this.decide(path, false);
    if (!rule || rule.capabilities.includes("deny")) return false;
    return ops.some((op) => rule.capabilities.includes(op));
  }

  /**
   * Whether the token may do anything at all at or under `path` (a mount path such as
   * `secret/`): Vault's check before `sys/internal/ui/mounts` tells a token about a mount. True
   * when the rule deciding `path` grants something, or when any rule for a path under it does
   * (an exact or `*` rule starting with `path`, or a `+` rule whose leading segments match it).
   */
  hasAccessUnder(rawPath: string): boolean {
    if (this.isRoot) return true;
    const path = rawPath.replace(/^\/+/, "");
    const grants = (caps: readonly Capability[]) => caps.length > 0 && !caps.includes("deny");
    const decided = this.decide(path, false);
    if (decided && grants(decided.capabilities)) return true;
    for (const [pattern, rule] of this.exact) if (pattern.startsWith(path) && grants(rule.capabilities)) return true;
    const mountSegments = path.replace(/\/+$/, "").split("/");
    for (const rule of this.wildcards) {
      if (!grants(rule.capabilities)) continue;
      if (rule.segmentWildcards === 0) {
        if (rule.stem.startsWith(path)) return true;
        continue;
      }
      const ruleSegments = rule.stem.split("/");
      const leading = mountSegments.every((seg, i) => {
        const r = ruleSegments[i];
        if (r === undefined) return rule.isPrefix;
        if (r === "+") return seg !== "";
        // The last segment of a `*` rule is a prefix of the path's segment.
        return rule.isPrefix && i === ruleSegments.length - 1 ? seg.startsWith(r) : r === seg;
      });
      if (leading) return true;
    }
    return false;
  }

  /**
   * The rule that decides `path` (the pattern as written in the policy, its merged capabilities
   * and parameter constraints), or undefined when nothing matches. For audit logs and debugging.
   * Root tokens have no rule.
   */
  ruleFor(path: string, op?: Operation): PathRule | undefined {
    if (this.isRoot) return undefined;
    const rule = this.decide(path, op === undefined || op === "list");
    return rule && copyRule(rule);
  }

  private decide(rawPath: string, isList: boolean): PathRule | undefined {
    const path = rawPath.replace(/^\/+/, "");
    const trimmed = path.endsWith("/") ? path.slice(0, -1) : undefined;
    const exact = this.exact.get(path);
    if (exact) return exact;
    if (isList && trimmed !== undefined) {
      const parent = this.exact.get(trimmed);
      if (parent) return parent;
    }
    if (isList && trimmed !== undefined) {
      const rule = this.matchWildcard(trimmed);
      if (rule) return rule.rule;
    }
    return this.matchWildcard(path)?.rule;
  }

  private matchWildcard(path: string): WildcardRule | undefined {
    for (const rule of this.wildcards) if (rule.regex.test(path)) return rule;
    return undefined;
  }
}

function isWildcardPattern(pattern: string): boolean {
  return pattern.endsWith("*") || pattern.split("/").includes("+");
}

function compileWildcard(rule: PathRule): WildcardRule {
  const { pattern, capabilities } = rule;
  const isPrefix = pattern.endsWith("*");
  const stem = isPrefix ? pattern.slice(0, -1) : pattern;
  const segments = stem.split("/");
  const source = segments.map((seg) => (seg === "+" ? "[^/]+" : escapeRegExp(seg))).join("/") + (isPrefix ? "[\\s\\S]*" : "");
  let firstWildcard = isPrefix ? stem.length : Infinity;
  for (let i = 0, offset = 0; i < segments.length; offset += segments[i].length + 1, i++) {
    if (segments[i] === "+") {
      firstWildcard = Math.min(firstWildcard, offset);
      break;
    }
  }
  return {
    pattern,
    capabilities,
    rule,
    regex: new RegExp(`^${source}$`),
    firstWildcard,
    isPrefix,
    segmentWildcards: segments.filter((s) => s === "+").length,
    stem,
  };
}

/**
 * Vault's priority order for two matching wildcard patterns; negative when `a` has LOWER
 * priority. `a` is lower when (1) its first `+` or `*` comes earlier, (2) it ends in `*` and `b`
 * does not, (3) it has more `+` segments, (4) it is shorter, (5) it sorts first. An exact
 * pattern has no wildcard (position infinity), so it outranks every wildcard pattern.
 */
function comparePriority(a: WildcardRule, b: WildcardRule): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard < b.firstWildcard ? -1 : 1;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix ? -1 : 1;
  if (a.segmentWildcards !== b.segmentWildcards) return a.segmentWildcards > b.segmentWildcards ? -1 : 1;
  if (a.stem.length !== b.stem.length) return a.stem.length < b.stem.length ? -1 : 1;
  if (a.stem !== b.stem) return a.stem < b.stem ? -1 : 1;
  return 0;
}

/**
 * Ranks (already validated) patterns from most to least specific by Vault's priority rules,
 * e.g. for `leasehold policy explain`-style tooling and to document the order in tests.
 */
export function sortBySpecificity(patterns: readonly string[]): string[] {
  return patterns
    .map((p) => compileWildcard({ pattern: p, capabilities: [] }))
    .sort((a, b) => comparePriority(b, a))
    .map((r) => r.pattern);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A deep copy of a rule, so callers cannot change the ACL's own. */
function copyRule(rule: PathRule): PathRule {
  const copy: PathRule = { pattern: rule.pattern, capabilities: [...rule.capabilities] };
  const copyValues = (m: ParameterValues) => new Map([...m].map(([k, v]) => [k, structuredClone([...v])]));
  if (rule.allowedParameters) copy.allowedParameters = copyValues(rule.allowedParameters);
  if (rule.deniedParameters) copy.deniedParameters = copyValues(rule.deniedParameters);
  if (rule.requiredParameters) copy.requiredParameters = [...rule.requiredParameters];
  if (rule.minWrappingTtl !== undefined) copy.minWrappingTtl = rule.minWrappingTtl;
  if (rule.maxWrappingTtl !== undefined) copy.maxWrappingTtl = rule.maxWrappingTtl;
  return copy;
}

/**
 * Vault's parameter check (`AllowOperation`), on the top-level keys of the request data:
 * 1. every `required_parameters` name must be sent (as a lower-case key);
 * 2. a request with no data is then allowed;
 * 3. `denied_parameters` with a `*` key refuses any data; a denied key refuses the request when
 *    its value is in the denied list (an empty list denies every value);
 * 4. without `allowed_parameters` the request is allowed; with only `*` in it, too;
 * 5. otherwise each key must be listed (or `*` be listed too), and a listed key's value must be
 *    in its list (an empty list allows every value).
 * Denied therefore wins over allowed. Keys are compared lower-cased; the `*` key's own values are
 * not consulted, as in Vault.
 */
function parametersAllowed(rule: PathRule, data: Readonly<Record<string, unknown>>): boolean {
  for (const name of rule.requiredParameters ?? []) if (!Object.hasOwn(data, name.toLowerCase())) return false;
  const entries = Object.entries(data);
  if (entries.length === 0) return true;
  const denied = rule.deniedParameters;
  if (denied && denied.size > 0) {
    if (denied.has("*")) return false;
    for (const [key, value] of entries) {
      const list = denied.get(key.toLowerCase());
      if (list && valueInDeniedList(value, list)) return false;
    }
  }
  const allowed = rule.allowedParameters;
  if (!allowed || allowed.size === 0) return true;
  const allowedAll = allowed.has("*");
  if (allowed.size === 1 && allowedAll) return true;
  for (const [key, value] of entries) {
    const list = allowed.get(key.toLowerCase());
    if (!list && !allowedAll) return false;
    if (list && !valueInAllowedList(value, list)) return false;
  }
  return true;
}

/**
 * An allowed value: the whole value matches an entry, or (Vault's element-wise rule) every
 * element of an array, or of a comma-separated string, matches one.
 */
function valueInAllowedList(value: unknown, list: readonly unknown[]): boolean {
  if (list.length === 0 || valueInList(value, list)) return true;
  const elements = elementsOf(value);
  return elements !== undefined && elements.every((el) => valueInList(el, list));
}

/** A denied value: the whole value matches an entry, or any element of an array or comma-separated string does. */
function valueInDeniedList(value: unknown, list: readonly unknown[]): boolean {
  if (list.length === 0 || valueInList(value, list)) return true;
  const elements = elementsOf(value);
  return elements !== undefined && elements.some((el) => valueInList(el, list));
}

/**
 * The elements Vault checks one by one: an array's, or a string's split on commas and trimmed
 * (Vault assumes any string may be a comma-separated list field, such as `policies = "a,b"`,
 * since "a,b" slipping past the list would be worse than splitting a plain string).
 */
function elementsOf(value: unknown): readonly unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (typeof value === "string") return value === "" ? [] : value.split(",").map((s) => s.trim());
  return undefined;
}

function valueInList(value: unknown, list: readonly unknown[]): boolean {
  return list.some((entry) => parameterValueMatches(entry, value));
}

/**
 * One policy entry against one request value. Strings, numbers and booleans are compared as
 * strings, the entry with Vault's globs (`strutil.GlobbedStringsMatch`); lists and maps must be
 * equal; null matches only null.
 */
function parameterValueMatches(entry: unknown, value: unknown): boolean {
  if (entry === null || entry === undefined || value === null || value === undefined) return (entry ?? null) === (value ?? null);
  if (isScalar(entry) && isScalar(value)) return globbedStringsMatch(String(entry), String(value));
  return deepEqual(entry, value);
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

/**
 * Vault's `strutil.GlobbedStringsMatch`: a leading and/or trailing `*` in the pattern is a glob
 * (`*.example.com`, `web-*`, `*prod*`); anything else, including a lone `*`, matches only itself.
 */
export function globbedStringsMatch(pattern: string, value: string): boolean {
  if (pattern.length < 2) return pattern === value;
  const leading = pattern.startsWith("*");
  const trailing = pattern.endsWith("*");
  if (leading && trailing) return value.includes(pattern.slice(1, -1));
  if (leading) return value.endsWith(pattern.slice(1));
  if (trailing) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((el, i) => deepEqual(el, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}
