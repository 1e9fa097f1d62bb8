import { describe, expect, it } from "vitest";
import { globMatch } from "./glob.js";

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
});
