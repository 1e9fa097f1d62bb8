/** The policies pages' addresses: /ui/policies (the list) and /ui/policies/<name>[?new=1]. */

/** What a /ui/policies address shows: the list, or one policy (`creating` for a new one). */
export type PoliciesView = { kind: "list" } | { kind: "policy"; name: string; creating: boolean };

/** Parses `rel` (after /ui/, no trailing slash) when it starts with "policies". */
export function policiesViewOf(rel: string, search: string): PoliciesView {
  const name = rel.split("/").slice(1).join("/");
  if (!name) return { kind: "list" };
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // Keep the name as typed: the server will say it does not exist.
  }
  return { kind: "policy", name: decoded, creating: new URLSearchParams(search).get("new") === "1" };
}
