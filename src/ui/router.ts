/**
 * Client-side routes under /ui/ (the server answers index.html for any of them, so a reload or a
 * shared link lands on the same page). History API only: no hash routes.
 */
import { useEffect, useState } from "preact/hooks";

export const BASE = "/ui/";

/** The console's pages. */
export type Route = { page: "login"; next?: string } | { page: "overview" } | { page: "not-found"; path: string };

/** Which page a location names. */
export function routeOf(pathname: string, search = ""): Route {
  const rel = pathname.startsWith(BASE) ? pathname.slice(BASE.length).replace(/\/+$/, "") : pathname.replace(/^\/+/, "");
  if (rel === "" || rel === "overview") return { page: "overview" };
  if (rel === "login") {
    const next = new URLSearchParams(search).get("next") ?? undefined;
    return { page: "login", next: next && next.startsWith(BASE) ? next : undefined };
  }
  return { page: "not-found", path: pathname };
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
