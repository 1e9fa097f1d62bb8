/**
 * Matches a relative path against a special-path pattern (a backend's unauthenticated or root
 * paths), with Vault's rules: a trailing `*` makes the pattern a prefix, and a `+` segment
 * matches exactly one non-empty path segment (`issuer/+/pem` matches `issuer/default/pem`).
 */
export function globMatch(pattern: string, path: string): boolean {
  if (!pattern.includes("+")) return pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
  const prefix = pattern.endsWith("*");
  const wanted = (prefix ? pattern.slice(0, -1) : pattern).split("/");
  const segments = path.split("/");
  if (prefix ? segments.length < wanted.length : segments.length !== wanted.length) return false;
  return wanted.every((w, i) => {
    const s = segments[i];
    if (w === "+") return s !== "";
    // Under a trailing `*`, the last pattern segment is a prefix of the path's segment.
    return prefix && i === wanted.length - 1 ? s.startsWith(w) : s === w;
  });
}
