import { describe, expect, it } from "vitest";
import type { Backend, PathDefinition } from "../sdk/types.js";
import { z } from "zod";
import { matchRoute, validateData } from "./dispatch.js";

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

describe("request data validation", () => {
  const schema = z.object({
    ttl: z.string().optional(),
    config: z.object({ max: z.number().optional() }).optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  });

  it("reads a JSON null as not given, in known fields and in nested objects the schema describes", () => {
    expect(validateData(schema, { ttl: null, config: { max: null } })).toEqual({ data: { config: {} }, warnings: [] });
    // A null for a field the endpoint does not know is not given either: no warning about it.
    expect(validateData(schema, { ttl: "1h", nope: null }).warnings).toEqual([]);
  });

  it("keeps nulls inside free-form values and in schemas that keep unknown keys", () => {
    expect(validateData(schema, { data: { a: null } }).data).toEqual({ data: { a: null } });
    expect(validateData(z.object({}).passthrough(), { a: null }).data).toEqual({ a: null });
  });

  it("still refuses a wrong type, and warns about unknown fields that are not path parameters", () => {
    expect(() => validateData(schema, { ttl: 5 })).toThrow(/ttl/);
    expect(validateData(schema, { prefix: "x", other: 1 }, ["prefix"]).warnings).toEqual(["Endpoint ignored these unrecognized parameters: [other]"]);
  });
});
