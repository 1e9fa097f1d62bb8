/** Matches a relative path against a pattern where a trailing `*` is a prefix glob (Vault's rule for special paths). */
export function globMatch(pattern: string, path: string): boolean {
  return pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}
