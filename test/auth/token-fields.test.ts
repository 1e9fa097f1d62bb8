import { z } from "zod";
import { describe, expect, it } from "vitest";
import { authResultFromTokenFields, checkLoginAddress, mergeTokenFields, policiesUnchanged, tokenFieldsShape } from "../../src/sdk/index.js";

const parse = (input: Record<string, unknown>) => z.object(tokenFieldsShape).parse(input);

describe("common token fields (src/sdk/token-fields)", () => {
  it("parses Vault's inputs, with legacy names used only when the token_* name is absent", () => {
    const f = mergeTokenFields(undefined, parse({ policies: "B, a,a", ttl: "90s", max_ttl: 3600, period: "1m", bound_cidrs: "127.0.0.1/32", token_num_uses: "2", token_no_default_policy: "true" }));
    expect(f).toEqual({
      token_ttl: 90,
      token_max_ttl: 3600,
      token_policies: ["a", "b"],
      token_bound_cidrs: ["127.0.0.1/32"],
      token_explicit_max_ttl: 0,
      token_no_default_policy: true,
      token_num_uses: 2,
      token_period: 60,
      token_type: "service",
    });
    expect(mergeTokenFields(undefined, parse({ policies: "old", token_policies: "new" })).token_policies).toEqual(["new"]);
  });

  it("keeps stored fields a write does not mention", () => {
    const first = mergeTokenFields(undefined, parse({ token_policies: "app", token_ttl: "1h" }));
    const second = mergeTokenFields(first, parse({ token_num_uses: 5 }));
    expect(second).toMatchObject({ token_policies: ["app"], token_ttl: 3600, token_num_uses: 5 });
  });

  it("refuses what Vault refuses", () => {
    expect(() => mergeTokenFields(undefined, parse({ token_num_uses: -1 }))).toThrow("token_num_uses cannot be negative");
    expect(() => mergeTokenFields(undefined, parse({ token_ttl: 7200, token_max_ttl: 3600 }))).toThrow('"token_ttl" should not be greater than "token_max_ttl"');
    expect(() => mergeTokenFields(undefined, parse({ token_policies: "Root" }))).toThrow(/cannot create root tokens/);
    expect(() => mergeTokenFields(undefined, parse({ token_type: "batch" }))).toThrow(/service tokens only/);
    expect(() => mergeTokenFields(undefined, parse({ token_bound_cidrs: "10.0.0.0/40" }))).toThrow(/token_bound_cidrs/);
  });

  it("turns stored fields into the AuthResult the core mints from", () => {
    const f = mergeTokenFields(undefined, parse({ token_policies: "app", token_ttl: 600, token_max_ttl: 1200, token_explicit_max_ttl: 1800, token_period: 0, token_num_uses: 3, token_bound_cidrs: "10.1.0.0/16" }));
    expect(authResultFromTokenFields(f, { metadata: { role: "x" }, displayName: "x", aliasName: "id-1" })).toEqual({
      policies: ["app"],
      metadata: { role: "x" },
      displayName: "x",
      aliasName: "id-1",
      ttl: 600,
      maxTtl: 1200,
      explicitMaxTtl: 1800,
      period: undefined,
      numUses: 3,
      renewable: true,
      noDefaultPolicy: false,
      boundCidrs: ["10.1.0.0/16"],
    });
    expect(() => checkLoginAddress(f, "10.2.0.1")).toThrow("permission denied");
    expect(() => checkLoginAddress(f, "::ffff:10.1.2.3")).not.toThrow();
  });

  it("compares a token's policies with what the role grants now", () => {
    const f = mergeTokenFields(undefined, parse({ token_policies: "app" }));
    expect(policiesUnchanged(f, ["app", "default"])).toBe(true);
    expect(policiesUnchanged(f, ["app"])).toBe(false);
    expect(policiesUnchanged({ ...f, token_no_default_policy: true }, ["app"])).toBe(true);
    expect(policiesUnchanged(f, ["app", "default", "extra"])).toBe(false);
  });
});
