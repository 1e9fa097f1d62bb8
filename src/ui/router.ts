/**
 * Client-side routes under /ui/ (the server answers index.html for any of them, so a reload or a
 * shared link lands on the same page). History API only: no hash routes.
 */
import { useEffect, useState } from "preact/hooks";
import { kvViewOf, type KvView } from "./pages/kv-route";
import { policiesViewOf, type PoliciesView } from "./pages/policies-route";

export const BASE = "/ui/";

/** The console's pages. */
export type Route =
  | { page: "login"; next?: string }
  | { page: "overview" }
  | { page: "incident" }
  | { page: "leases"; prefix: string }
  | { page: "lease"; id: string }
  | { page: "token"; accessor: string }
  | { page: "oidc-callback"; mount: string }
  | { page: "secrets"; view: KvView }
  | { page: "policies"; view: PoliciesView }
  | { page: "pki"; mount?: string }
  | { page: "database"; mount?: string }
  | { page: "not-found"; path: string };

/** Vault's UI path for the OIDC redirect, kept so a role written for Vault's UI works here unchanged. */
const OIDC_CALLBACK = /^vault\/auth\/(.+)\/oidc\/callback$/;

/** Which page a location names. */
export function routeOf(pathname: string, search = ""): Route {
  const rel = pathname.startsWith(BASE) ? pathname.slice(BASE.length).replace(/\/+$/, "") : pathname.replace(/^\/+/, "");
  if (rel === "" || rel === "overview") return { page: "overview" };
  if (rel === "login") {
    const next = new URLSearchParams(search).get("next") ?? undefined;
    return { page: "login", next: next && next.startsWith(BASE) ? next : undefined };
  }
  if (rel === "secrets" || rel.startsWith("secrets/")) return { page: "secrets", view: kvViewOf(rel, search) };
  if (rel === "policies" || rel.startsWith("policies/")) return { page: "policies", view: policiesViewOf(rel, search) };
  if (rel === "incident") return { page: "incident" };
  const engine = /^(pki|database)(?:\/(.+))?$/.exec(rel);
  if (engine) return { page: engine[1] as "pki" | "database", ...(engine[2] ? { mount: engine[2].split("/").map(safeDecode).join("/") } : {}) };
  if (rel === "leases") return { page: "leases", prefix: new URLSearchParams(search).get("prefix") ?? "" };
  if (rel.startsWith("tokens/")) return { page: "token", accessor: safeDecode(rel.slice("tokens/".length)) };
  if (rel.startsWith("leases/")) return { page: "lease", id: rel.slice("leases/".length).split("/").map(safeDecode).join("/") };
  const callback = OIDC_CALLBACK.exec(rel);
  if (callback) return { page: "oidc-callback", mount: callback[1]!.split("/").map(safeDecode).join("/") };
  return { page: "not-found", path: pathname };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Goes to a console path (relative to /ui/) without reloading. */
export function navigate(to: string, replace = false): void {
  const url = to.startsWith("/") ? to : BASE + to;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** The current route, updated on navigation and the back button. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(location.pathname, location.search));
  useEffect(() => {
    const update = () => setRoute(routeOf(location.pathname, location.search));
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return route;
}
