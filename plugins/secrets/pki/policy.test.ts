import { describe, expect, it } from "vitest";
import { defaultRole, type Role } from "./model.js";
import { approveNames, isHostname, refuseName, refuseUri, spiffeProblem } from "./policy.js";

const role = (patch: Partial<Role>): Role => ({ ...defaultRole(), ...patch });

describe("name rules", () => {
  it("validates hostnames after IDNA conversion", () => {
    expect(isHostname("a-b.example.com")).toBe(true);
    expect(isHostname("bücher.example.com")).toBe(true);
    expect(isHostname("-a.example.com")).toBe(false);
    expect(isHostname("a_b.example.com")).toBe(false);
    expect(isHostname("a..b")).toBe(false);
  });

  it("applies subdomain, bare, glob, localhost and any-name rules case-insensitively", () => {
    const sub = role({ allowed_domains: ["Example.com"], allow_subdomains: true });
    expect(refuseName(sub, "A.EXAMPLE.COM")).toBeUndefined();
    expect(refuseName(sub, "*.example.com")).toBeUndefined();
    expect(refuseName(sub, "example.com")).toMatch(/not allowed/);
    expect(refuseName(sub, "a.example.com.evil.net")).toMatch(/not allowed/);
    expect(refuseName(sub, "user@a.example.com")).toBeUndefined();
    expect(refuseName(sub, "user@*.example.com")).toMatch(/wildcard/);
    expect(refuseName(sub, "a@b@example.com")).toMatch(/not a valid email/);
    expect(refuseName(role({ allowed_domains: ["example.com"], allow_bare_domains: true }), "user@example.com")).toBeUndefined();
    expect(refuseName(role({ allowed_domains: ["example.com"] }), "a.example.com")).toMatch(/not allowed/);
    expect(refuseName(role({ allowed_domains: ["example.com"], allow_subdomains: true, allow_localhost: false }), "localhost")).toMatch(/not allowed/);
    expect(refuseName(role({ allow_subdomains: true }), "svc.localhost")).toBeUndefined();
    expect(refuseName(role({ allow_any_name: true }), "*.*.example.com")).toMatch(/malformed wildcard/);
    expect(refuseName(role({ allow_any_name: true, allow_wildcard_certificates: false }), "*.example.com")).toMatch(/allow_wildcard_certificates=false/);
  });

  it("checks SPIFFE ID syntax", () => {
    expect(spiffeProblem("spiffe://example.org/ns/prod/sa/web")).toBeUndefined();
    expect(spiffeProblem("spiffe://example.org")).toBeUndefined();
    expect(spiffeProblem("spiffe://example.org/")).toMatch(/trailing slash/);
    expect(spiffeProblem("spiffe://Example.org/a")).toMatch(/trust domain/);
    expect(spiffeProblem("spiffe://example.org:8080/a")).toMatch(/trust domain/);
    expect(spiffeProblem("spiffe://user@example.org/a")).toMatch(/trust domain/);
    expect(spiffeProblem("spiffe://example.org/a//b")).toMatch(/empty/);
    expect(spiffeProblem("spiffe://example.org/a/./b")).toMatch(/'\.'/);
    expect(spiffeProblem("spiffe://example.org/a#frag")).toMatch(/not a SPIFFE ID/);
    expect(spiffeProblem("spiffe://example.org/a%20b")).toMatch(/characters/);
    const r = role({ allowed_uri_sans: ["spiffe://example.org/*"] });
    expect(refuseUri(r, "spiffe://example.org/a")).toBeUndefined();
    expect(refuseUri(r, "spiffe://example.org/a b")).toMatch(/URI|ASCII/);
    expect(refuseUri(r, "https://example.org/a")).toMatch(/allowed_uri_sans/);
  });

  it("approves or refuses the request as a whole, naming every refused value", () => {
    const r = role({ allowed_domains: ["example.com"], allow_subdomains: true, allowed_uri_sans: ["spiffe://example.org/*"] });
    const ok = approveNames(r, { commonName: "a.example.com", altNames: ["b.example.com", "ops@c.example.com"], ipSans: ["10.0.0.1"], uriSans: ["spiffe://example.org/x"], excludeCnFromSans: false });
    expect(ok.sans.dns).toEqual(["a.example.com", "b.example.com"]);
    expect(ok.sans.email).toEqual(["ops@c.example.com"]);
    expect(ok.sans.ip.map((b) => [...b].join("."))).toEqual(["10.0.0.1"]);
    expect(ok.sans.uri).toEqual(["spiffe://example.org/x"]);
    let err: Error & { details?: string[] } = new Error();
    try {
      approveNames(r, { commonName: "evil.com", altNames: ["x.evil.net"], ipSans: [], uriSans: [], excludeCnFromSans: false });
    } catch (e) {
      err = e as Error & { details?: string[] };
    }
    expect(err.message).toMatch(/evil.com/);
    expect(err.details?.join(" ")).toMatch(/x.evil.net/);
    expect(approveNames(r, { commonName: "bücher.example.com", altNames: [], ipSans: [], uriSans: [], excludeCnFromSans: false }).sans.dns).toEqual(["xn--bcher-kva.example.com"]);
  });
});
