/**
 * The secrets pages' addresses under /ui/secrets/, parsed and built in one place:
 *   secrets                              the KV mounts
 *   secrets/<mount>[/list/<dir>]         a folder (mount names with "/" are URL-encoded as one segment)
 *   secrets/<mount>/show/<path>?version=N  a secret (the latest version without ?version)
 *   secrets/<mount>/new/<dir>            the form for a new secret in a folder
 */

/** What a /ui/secrets/ address shows. */
export type KvView =
  | { kind: "mounts" }
  | { kind: "list"; mount: string; dir: string }
  | { kind: "show"; mount: string; path: string; version?: number }
  | { kind: "new"; mount: string; dir: string };

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Parses `rel` (the address after /ui/, without trailing slashes) when it starts with "secrets". */
export function kvViewOf(rel: string, search: string): KvView {
  const segments = rel.split("/").slice(1);
  if (segments.length === 0 || segments[0] === "") return { kind: "mounts" };
  const mount = decode(segments[0]!);
  const action = segments[1];
  const rest = segments.slice(2).map(decode).join("/");
  if (action === "show" && rest) {
    const v = Number(new URLSearchParams(search).get("version"));
    return { kind: "show", mount, path: rest, ...(Number.isInteger(v) && v > 0 ? { version: v } : {}) };
  }
  if (action === "new") return { kind: "new", mount, dir: rest ? `${rest}/` : "" };
  return { kind: "list", mount, dir: action === "list" && rest ? `${rest}/` : "" };
}

function encodeSegments(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "")
    .map(encodeURIComponent)
    .join("/");
}

/** The console address (absolute, under /ui/) of a view. */
export function kvHref(view: KvView): string {
  if (view.kind === "mounts") return "/ui/secrets";
  const mount = encodeURIComponent(view.mount);
  if (view.kind === "list") return view.dir ? `/ui/secrets/${mount}/list/${encodeSegments(view.dir)}/` : `/ui/secrets/${mount}/`;
  if (view.kind === "new") return `/ui/secrets/${mount}/new/${encodeSegments(view.dir)}`;
  return `/ui/secrets/${mount}/show/${encodeSegments(view.path)}${view.version ? `?version=${view.version}` : ""}`;
}
