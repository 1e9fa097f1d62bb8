/**
 * Vault's glob (go-glob), as its auth methods (bound claims, service accounts, certificate names),
 * PKI roles (allowed domains and URI SANs) and database configs (allowed_roles) use it: `*` matches any run of characters, including none and including `/`;
 * every other character is literal. `*` alone matches everything.
 */
export function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes("*")) return pattern === value;
  const parts = pattern.split("*");
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (!value.startsWith(first)) return false;
  let pos = first.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const at = value.indexOf(parts[i], pos);
    if (at < 0) return false;
    pos = at + parts[i].length;
  }
  return value.length - pos >= last.length && value.endsWith(last);
}

/** True when `value` matches one of `patterns`. */
export function matchesAnyGlob(patterns: readonly string[], value: string): boolean {
  return patterns.some((p) => globMatch(p, value));
}
