/**
 * An ACL: a set of policies compiled for fast per-request checks, with Vault's matching rules.
 *
 * - Rules for the same pattern from several policies merge: capabilities union, and `deny`
 *   anywhere makes the pattern exactly `deny`.
 * - A request path is decided by ONE pattern: an exact pattern if there is one, otherwise the
 *   most specific matching wildcard pattern by Vault's priority order (see `comparePriority`).
 *   Less specific patterns do not add to it, and `deny` there denies everything.
 * - No matching pattern means denied.
 * - For LIST (and for `capabilities`, which Vault evaluates as a LIST), a path ending in `/` is
 *   also checked without the slash first, so `path "secret/metadata/app"` covers
 *   `LIST secret/metadata/app/` (Vault's behaviour, VAULT-3825).
 */
import type { Capability, Operation } from "../../sdk/types.js";
import { normalizeCapabilities, type PathRule, type Policy } from "./policy.js";

export interface AclOptions {
  /** A root token: every capability on every path, including sudo. */
  root?: boolean;
}

/** Every capability a root token holds on any path, sorted. */
const ROOT_CAPABILITIES: Capability[] = ["create", "delete", "list", "patch", "read", "sudo", "update"];

interface WildcardRule {
  pattern: string;
  capabilities: Capability[];
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
  private readonly exact = new Map<string, Capability[]>();
  /** Highest priority first: the first one whose regex matches decides. */
  private readonly wildcards: WildcardRule[];

  constructor(policies: readonly Policy[], options: AclOptions = {}) {
    this.isRoot = options.root === true;
    const merged = new Map<string, Set<Capability>>();
    for (const policy of policies) {
      for (const rule of policy.rules) {
        const set = merged.get(rule.pattern) ?? new Set<Capability>();
        for (const c of rule.capabilities) set.add(c);
        merged.set(rule.pattern, set);
      }
    }
    const wildcards: WildcardRule[] = [];
    for (const [pattern, set] of merged) {
      const capabilities = normalizeCapabilities(set);
      if (isWildcardPattern(pattern)) wildcards.push(compileWildcard(pattern, capabilities));
      else this.exact.set(pattern, capabilities);
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
   */
  allows(path: string, op: Operation | "sudo", opts: { sudo?: boolean } = {}): boolean {
    if (this.isRoot) return true;
    const rule = this.decide(path, op === "list");
    if (!rule) return false;
    const caps = rule.capabilities;
    if (caps.includes("deny") || !caps.includes(op)) return false;
    return !opts.sudo || caps.includes("sudo");
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
    for (const [pattern, caps] of this.exact) if (pattern.startsWith(path) && grants(caps)) return true;
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
   * The rule that decides `path` (the pattern as written in the policy and its merged
   * capabilities), or undefined when nothing matches. For audit logs and debugging.
   * Root tokens have no rule.
   */
  ruleFor(path: string, op?: Operation): PathRule | undefined {
    if (this.isRoot) return undefined;
    const rule = this.decide(path, op === undefined || op === "list");
    return rule && { pattern: rule.pattern, capabilities: [...rule.capabilities] };
  }

  private decide(rawPath: string, isList: boolean): { pattern: string; capabilities: Capability[] } | undefined {
    const path = rawPath.replace(/^\/+/, "");
    const trimmed = path.endsWith("/") ? path.slice(0, -1) : undefined;
    const exact = this.exact.get(path);
    if (exact) return { pattern: path, capabilities: exact };
    if (isList && trimmed !== undefined) {
      const parent = this.exact.get(trimmed);
      if (parent) return { pattern: trimmed, capabilities: parent };
    }
    if (isList && trimmed !== undefined) {
      const rule = this.matchWildcard(trimmed);
      if (rule) return rule;
    }
    return this.matchWildcard(path);
  }

  private matchWildcard(path: string): WildcardRule | undefined {
    for (const rule of this.wildcards) if (rule.regex.test(path)) return rule;
    return undefined;
  }
}

function isWildcardPattern(pattern: string): boolean {
  return pattern.endsWith("*") || pattern.split("/").includes("+");
}

function compileWildcard(pattern: string, capabilities: Capability[]): WildcardRule {
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
    .map((p) => compileWildcard(p, []))
    .sort((a, b) => comparePriority(b, a))
    .map((r) => r.pattern);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
