import { describe, expect, it } from "vitest";
import type { Backend, PathDefinition } from "../sdk/types.js";
import { matchRoute } from "./dispatch.js";

const handler = { handler: async () => ({}) };
const def = (pattern: string): PathDefinition => ({ pattern, operations: { read: handler } });
const backendOf = (patterns: string[]): Backend => ({ paths: patterns.map(def) }) as unknown as Backend;

/** What a plain scan of every pattern in order finds: the reference the index must agree with. */
function scan(backend: Backend, path: string): string | undefined {
  return backend.paths.find((d) => new RegExp(`^(?:${d.pattern})$`).test(path))?.pattern;
}

describe("route matching", () => {
  const backend = backendOf([
    "roles/?",
    "roles/(?<name>[^/]+)",
    "(?<any>ca(/pem)?)",
    "issue/(?<role>[^/]+)",
    "sign/(?<role>[^/]+)|verbatim/(?<verb>[^/]+)",
    "config/urls",
    "issuer/(?<issuer>[^/]+)/issue/(?<role>[^/]+)",
    "cert/(?<serial>[0-9a-f:]+)",
    "(?<rest>.+)",
  ]);

  it("finds the same first match as a scan of every pattern in order", () => {
    const paths = ["roles", "roles/", "roles/web", "ca", "ca/pem", "issue/web", "issue/web/x", "sign/web", "verbatim/x", "config/urls", "config/crl", "issuer/default/issue/web", "cert/0a:0b", "cert/zz", "unknown", "", "roles/a/b"];
    for (const p of paths) expect(matchRoute(backend, p)?.def.pattern, p).toBe(scan(backend, p));
  });

  it("keeps a catch-all pattern's place: a plain pattern after it is never reached", () => {
    const b = backendOf(["(?<all>.*)", "issue/(?<role>[^/]+)"]);
    expect(matchRoute(b, "issue/web")?.def.pattern).toBe("(?<all>.*)");
  });

  it("returns the named groups as parameters", () => {
    expect(matchRoute(backend, "issuer/default/issue/web")?.params).toEqual({ issuer: "default", role: "web" });
  });

  it("sees paths added to a backend after its first request", () => {
    const b = backendOf(["roles/(?<name>[^/]+)"]);
    expect(matchRoute(b, "tidy")).toBeUndefined();
    b.paths.push(def("tidy"));
    expect(matchRoute(b, "tidy")?.def.pattern).toBe("tidy");
  });
});
