import { describe, expect, it } from "vitest";
import { globMatch, matchesAnyGlob } from "./glob.js";

describe("globMatch (go-glob semantics)", () => {
  it("matches literals exactly and * as any run of characters", () => {
    expect(globMatch("web", "web")).toBe(true);
    expect(globMatch("web", "web2")).toBe(false);
    expect(globMatch("*", "")).toBe(true);
    expect(globMatch("app-*", "app-")).toBe(true);
    expect(globMatch("app-*", "app-frontend")).toBe(true);
    expect(globMatch("app-*", "xapp-frontend")).toBe(false);
    expect(globMatch("spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/web")).toBe(true);
    expect(globMatch("spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/api")).toBe(false);
    expect(globMatch("*.example.com", "a.b.example.com")).toBe(true);
    expect(globMatch("a*b*c", "abc")).toBe(true);
    expect(globMatch("a*b*c", "acb")).toBe(false);
    // The suffix may not overlap the prefix.
    expect(globMatch("ab*ba", "aba")).toBe(false);
  });

  it("spans dots and slashes (PKI domains and SPIFFE IDs)", () => {
    // ("*.example.com" against "a.b.example.com" and "a*b*c" are in the test above.)
    expect(globMatch("web-*.example.com", "web-1.example.com")).toBe(true);
    expect(globMatch("web-*.example.com", "db-1.example.com")).toBe(false);
    expect(globMatch("spiffe://example.org/ns/*", "spiffe://example.org/ns/a/sa/b")).toBe(true);
    expect(globMatch("spiffe://example.org/ns/*", "spiffe://example.org/other")).toBe(false);
    expect(globMatch("*", "anything")).toBe(true);
    expect(globMatch("exact", "exact")).toBe(true);
    expect(globMatch("exact", "exactly")).toBe(false);
  });

  it("matchesAnyGlob: any pattern of a list (database allowed_roles: names, globs, *)", () => {
    expect(matchesAnyGlob(["app-*", "exact"], "app-web")).toBe(true);
    expect(matchesAnyGlob(["app-*", "exact"], "exact")).toBe(true);
    expect(matchesAnyGlob(["app-*", "exact"], "exactly")).toBe(false);
    expect(matchesAnyGlob(["*"], "anything")).toBe(true);
    expect(matchesAnyGlob(["a.b"], "axb")).toBe(false); // regular-expression characters are literal
    expect(matchesAnyGlob([], "x")).toBe(false);
  });
});
