import { describe, expect, it } from "vitest";
import type { Capability } from "../../sdk/types.js";
import { ACL, sortBySpecificity } from "./acl.js";
import { DEFAULT_POLICY_TEXT, parsePolicy } from "./policy.js";

/** An ACL from `{pattern: capabilities}` maps, one policy per map. */
function aclOf(...policies: Record<string, Capability[]>[]): ACL {
  return new ACL(
    policies.map((rules, i) =>
      parsePolicy(
        `p${i}`,
        Object.entries(rules)
          .map(([pattern, caps]) => `path ${JSON.stringify(pattern)} { capabilities = ${JSON.stringify(caps)} }`)
          .join("\n"),
      ),
    ),
  );
}

describe("ACL: capabilities", () => {
  it("returns the matching rule's capabilities, sorted", () => {
    const acl = aclOf({ "secret/data/app": ["update", "read", "create"] });
    expect(acl.capabilities("secret/data/app")).toEqual(["create", "read", "update"]);
  });

  it("answers deny when nothing matches", () => {
    expect(aclOf({ "secret/a": ["read"] }).capabilities("secret/b")).toEqual(["deny"]);
    expect(new ACL([]).capabilities("anything")).toEqual(["deny"]);
  });

  it("answers every capability, including sudo, for root", () => {
    const root = ACL.root();
    expect(root.isRoot).toBe(true);
    expect(root.capabilities("sys/leases/revoke-force/x")).toEqual(["create", "delete", "list", "patch", "read", "sudo", "update"]);
    expect(new ACL([], { root: true }).capabilities("x")).toEqual(root.capabilities("x"));
    expect(aclOf({ a: ["read"] }).isRoot).toBe(false);
  });

  it("returns a copy callers may change", () => {
    const acl = aclOf({ a: ["read"] });
    acl.capabilities("a").push("sudo");
    expect(acl.capabilities("a")).toEqual(["read"]);
  });
});

describe("ACL: merging policies", () => {
  it("unions capabilities for the same pattern across policies", () => {
    const acl = aclOf({ "secret/*": ["read"] }, { "secret/*": ["list"] }, { other: ["read"] });
    expect(acl.capabilities("secret/x")).toEqual(["list", "read"]);
  });

  it("reduces the pattern to deny when any policy denies it", () => {
    const acl = aclOf({ "secret/*": ["read", "update"] }, { "secret/*": ["deny"] });
    expect(acl.capabilities("secret/x")).toEqual(["deny"]);
    expect(acl.allows("secret/x", "read")).toBe(false);
  });

  it("does not depend on the order of policies", () => {
    const a = { "secret/*": ["read"] as Capability[] };
    const b = { "secret/+/foo": ["update"] as Capability[], "secret/foo*": ["list"] as Capability[] };
    for (const acl of [aclOf(a, b), aclOf(b, a)]) {
      expect(acl.capabilities("secret/bar/foo")).toEqual(["update"]);
      expect(acl.capabilities("secret/foo/x")).toEqual(["list"]);
      expect(acl.capabilities("secret/zzz")).toEqual(["read"]);
    }
  });
});

describe("ACL: allows", () => {
  const acl = aclOf({
    "secret/data/app": ["read", "update"],
    "sys/leases/revoke-prefix/*": ["update", "sudo"],
    "sys/leases/revoke-force/*": ["update"],
    "secret/data/locked": ["deny"],
  });

  it("allows the granted operations only", () => {
    expect(acl.allows("secret/data/app", "read")).toBe(true);
    expect(acl.allows("secret/data/app", "update")).toBe(true);
    expect(acl.allows("secret/data/app", "delete")).toBe(false);
    expect(acl.allows("secret/data/app", "create")).toBe(false);
    expect(acl.allows("secret/data/app", "patch")).toBe(false);
  });

  it("requires sudo in addition when asked", () => {
    expect(acl.allows("sys/leases/revoke-prefix/database/", "update", { sudo: true })).toBe(true);
    expect(acl.allows("sys/leases/revoke-force/database/", "update", { sudo: true })).toBe(false);
    expect(acl.allows("sys/leases/revoke-force/database/", "update")).toBe(true);
  });

  it("checks sudo alone when asked for it as the operation", () => {
    expect(acl.allows("sys/leases/revoke-prefix/x", "sudo")).toBe(true);
    expect(acl.allows("secret/data/app", "sudo")).toBe(false);
  });

  it("denies on deny and on no match", () => {
    expect(acl.allows("secret/data/locked", "read")).toBe(false);
    expect(acl.allows("secret/data/other", "read")).toBe(false);
  });

  it("allows everything for root", () => {
    const root = ACL.root();
    expect(root.allows("anything/at/all", "delete", { sudo: true })).toBe(true);
  });

  it("ignores a leading slash on the request path", () => {
    expect(acl.allows("/secret/data/app", "read")).toBe(true);
  });
});

describe("ACL: pattern matching", () => {
  it("matches exact patterns exactly", () => {
    const acl = aclOf({ "secret/app": ["read"] });
    expect(acl.allows("secret/app", "read")).toBe(true);
    expect(acl.allows("secret/app/x", "read")).toBe(false);
    expect(acl.allows("secret/ap", "read")).toBe(false);
    expect(acl.allows("secret/app/", "read")).toBe(false);
  });

  it("treats a trailing * as a prefix glob", () => {
    const acl = aclOf({ "secret/*": ["read"], "kv*": ["list"] });
    expect(acl.allows("secret/", "read")).toBe(true);
    expect(acl.allows("secret/a", "read")).toBe(true);
    expect(acl.allows("secret/a/b/c", "read")).toBe(true);
    expect(acl.allows("secret", "read")).toBe(false);
    expect(acl.allows("secrets/x", "read")).toBe(false);
    expect(acl.allows("kv", "list")).toBe(true);
    expect(acl.allows("kvs/x/y", "list")).toBe(true);
  });

  it("lets `secret*` match `secrets/x`", () => {
    expect(aclOf({ "secret*": ["read"] }).allows("secrets/x", "read")).toBe(true);
  });

  it("matches + against exactly one non-empty segment", () => {
    const acl = aclOf({ "secret/+/config": ["read"] });
    expect(acl.allows("secret/app/config", "read")).toBe(true);
    expect(acl.allows("secret/a/b/config", "read")).toBe(false);
    expect(acl.allows("secret//config", "read")).toBe(false);
    expect(acl.allows("secret/config", "read")).toBe(false);
    expect(acl.allows("secret/app/config/x", "read")).toBe(false);
  });

  it("matches + at the start, at the end and several times", () => {
    const acl = aclOf({ "+/creds/app": ["read"], "pki/issue/+": ["update"], "kv/+/+/meta": ["list"], "+": ["create"] });
    expect(acl.allows("database/creds/app", "read")).toBe(true);
    expect(acl.allows("pki/issue/web", "update")).toBe(true);
    expect(acl.allows("pki/issue/web/x", "update")).toBe(false);
    expect(acl.allows("kv/a/b/meta", "list")).toBe(true);
    expect(acl.allows("kv/a/meta", "list")).toBe(false);
    expect(acl.allows("anything", "create")).toBe(true);
    expect(acl.allows("any/thing", "create")).toBe(false);
  });

  it("combines + with a trailing *", () => {
    const acl = aclOf({ "secret/+/data/*": ["read"], "db/+/cr*": ["update"] });
    expect(acl.allows("secret/team/data/", "read")).toBe(true);
    expect(acl.allows("secret/team/data/a/b", "read")).toBe(true);
    expect(acl.allows("secret/team/other/a", "read")).toBe(false);
    expect(acl.allows("db/x/creds/app", "update")).toBe(true);
    expect(acl.allows("db/x/y/creds", "update")).toBe(false);
  });

  it("treats regex characters in patterns literally", () => {
    const acl = aclOf({ "a.b/(x)|y": ["read"], "c.d/*": ["read"] });
    expect(acl.allows("a.b/(x)|y", "read")).toBe(true);
    expect(acl.allows("axb/(x)|y", "read")).toBe(false);
    expect(acl.allows("cxd/e", "read")).toBe(false);
  });
});

describe("ACL: the most specific pattern wins (Vault's priority rules)", () => {
  it("exact beats any glob or wildcard", () => {
    const acl = aclOf({ "secret/foo": ["update"], "secret/*": ["read"], "secret/foo*": ["list"], "secret/+": ["delete"] });
    expect(acl.capabilities("secret/foo")).toEqual(["update"]);
  });

  it("rule 1: the pattern whose first wildcard comes later wins (secret/foo/* over secret/foo*)", () => {
    const acl = aclOf({ "secret/foo*": ["read"], "secret/foo/*": ["update"] });
    expect(acl.capabilities("secret/foo/bar")).toEqual(["update"]);
    expect(acl.capabilities("secret/foobar")).toEqual(["read"]);
  });

  it("rule 1: a longer glob prefix beats a shorter one (longest prefix)", () => {
    const acl = aclOf({ "secret/*": ["read"], "secret/app/*": ["update"] });
    expect(acl.capabilities("secret/app/x")).toEqual(["update"]);
  });

  it("rule 1: foo/bar/+/baz beats foo/+/+/baz (first + comes later)", () => {
    const acl = aclOf({ "foo/+/+/baz": ["read"], "foo/bar/+/baz": ["update"] });
    expect(acl.capabilities("foo/bar/x/baz")).toEqual(["update"]);
    expect(acl.capabilities("foo/other/x/baz")).toEqual(["read"]);
  });

  it("rule 2: secret/+/foo beats secret/* (same first wildcard, one ends in *)", () => {
    const acl = aclOf({ "secret/*": ["read"], "secret/+/foo": ["update"] });
    expect(acl.capabilities("secret/bar/foo")).toEqual(["update"]);
    expect(acl.capabilities("secret/bar/baz")).toEqual(["read"]);
  });

  it("rule 3: secret/* beats secret/+/* (fewer + segments)", () => {
    const acl = aclOf({ "secret/+/*": ["update"], "secret/*": ["read"] });
    expect(acl.capabilities("secret/a/b")).toEqual(["read"]);
  });

  it("rule 4: the longer pattern wins (foo/+/bar/ba* over foo/+/bar/b*)", () => {
    const acl = aclOf({ "foo/+/bar/b*": ["read"], "foo/+/bar/ba*": ["update"] });
    expect(acl.capabilities("foo/x/bar/baz")).toEqual(["update"]);
    expect(acl.capabilities("foo/x/bar/bz")).toEqual(["read"]);
  });

  it("rule 5: the lexicographically greater pattern wins as the last resort", () => {
    // Same first wildcard (0), neither a glob, two + each, same length: "+/a/+" > "+/+/b".
    const acl = aclOf({ "+/+/b": ["read"], "+/a/+": ["update"] });
    expect(acl.capabilities("x/a/b")).toEqual(["update"]);
  });

  it("uses only the winning rule: less specific matches do not add capabilities", () => {
    const acl = aclOf({ "secret/*": ["read", "list"], "secret/app/*": ["update"] });
    expect(acl.allows("secret/app/x", "read")).toBe(false);
    expect(acl.allows("secret/app/x", "update")).toBe(true);
  });

  it("deny on the specific path beats a broad allow", () => {
    const acl = aclOf({ "secret/*": ["create", "read", "update", "delete", "list"] }, { "secret/super-secret": ["deny"], "secret/admin/*": ["deny"] });
    expect(acl.capabilities("secret/super-secret")).toEqual(["deny"]);
    expect(acl.allows("secret/super-secret", "read")).toBe(false);
    expect(acl.allows("secret/admin/keys", "read")).toBe(false);
    expect(acl.allows("secret/other", "read")).toBe(true);
  });

  it("a broad deny does not override a more specific allow", () => {
    const acl = aclOf({ "secret/*": ["deny"], "secret/public/*": ["read"] });
    expect(acl.allows("secret/public/a", "read")).toBe(true);
    expect(acl.allows("secret/private/a", "read")).toBe(false);
  });

  it("ranks patterns in Vault's order", () => {
    expect(sortBySpecificity(["+/foo", "secret/*", "secret/+/*", "secret/foo*", "secret/+/foo", "secret/foo/*", "secret/foo/bar"])).toEqual([
      "secret/foo/bar",
      "secret/foo/*",
      "secret/foo*",
      "secret/+/foo",
      "secret/*",
      "secret/+/*",
      "+/foo",
    ]);
  });

  it("reports which rule decided", () => {
    const acl = aclOf({ "secret/*": ["read"], "secret/+/foo": ["update"] });
    expect(acl.ruleFor("secret/bar/foo")).toEqual({ pattern: "secret/+/foo", capabilities: ["update"] });
    expect(acl.ruleFor("nothing")).toBeUndefined();
    expect(ACL.root().ruleFor("secret/x")).toBeUndefined();
  });
});

describe("ACL: LIST on a path with a trailing slash (Vault's fallback)", () => {
  it("lets an exact pattern without the slash allow LIST", () => {
    const acl = aclOf({ "secret/metadata/app": ["list"] });
    expect(acl.allows("secret/metadata/app/", "list")).toBe(true);
    expect(acl.allows("secret/metadata/app/", "read")).toBe(false);
    expect(acl.capabilities("secret/metadata/app/")).toEqual(["list"]);
  });

  it("lets a + pattern without the slash allow LIST (VAULT-3825)", () => {
    const acl = aclOf({ "+/sys/policies/acl": ["list"] });
    expect(acl.allows("ns1/sys/policies/acl/", "list")).toBe(true);
  });

  it("prefers the exact pattern with the slash when both exist", () => {
    const acl = aclOf({ "secret/metadata/app": ["deny"], "secret/metadata/app/": ["list"] });
    expect(acl.allows("secret/metadata/app/", "list")).toBe(true);
    expect(acl.ruleFor("secret/metadata/app/", "list")?.pattern).toBe("secret/metadata/app/");
  });
});

describe("ACL with the default policy", () => {
  const acl = new ACL([parsePolicy("default", DEFAULT_POLICY_TEXT)]);

  it("lets a token manage itself and its leases", () => {
    expect(acl.allows("auth/token/lookup-self", "read")).toBe(true);
    expect(acl.allows("auth/token/renew-self", "update")).toBe(true);
    expect(acl.allows("auth/token/revoke-self", "update")).toBe(true);
    expect(acl.allows("sys/capabilities-self", "update")).toBe(true);
    expect(acl.allows("sys/leases/renew", "update")).toBe(true);
    expect(acl.allows("sys/renew", "update")).toBe(true);
    expect(acl.allows("sys/leases/lookup", "update")).toBe(true);
    expect(acl.allows("sys/internal/ui/mounts", "read")).toBe(true);
    expect(acl.allows("sys/internal/ui/mounts/secret/data/app", "read")).toBe(true);
  });

  it("grants nothing else", () => {
    expect(acl.allows("auth/token/create", "update")).toBe(false);
    expect(acl.allows("auth/token/lookup-self", "update")).toBe(false);
    expect(acl.allows("sys/leases/revoke", "update")).toBe(false);
    expect(acl.allows("sys/leases/lookup/database/", "list")).toBe(false);
    expect(acl.capabilities("secret/data/app")).toEqual(["deny"]);
  });
});

describe("ACL: access under a mount (sys/internal/ui/mounts)", () => {
  it("is granted by a rule on the mount, under it, or a + rule whose leading segments match", () => {
    expect(aclOf({ "secret/*": ["read"] }).hasAccessUnder("secret/")).toBe(true);
    expect(aclOf({ "secret/data/app/*": ["read"] }).hasAccessUnder("secret/")).toBe(true);
    expect(aclOf({ "secret/data/app": ["read"] }).hasAccessUnder("secret/")).toBe(true);
    expect(aclOf({ "+/creds/app": ["read"] }).hasAccessUnder("database/")).toBe(true);
    expect(aclOf({ "data*": ["read"] }).hasAccessUnder("database/")).toBe(true);
    expect(aclOf({ "team/+/x": ["read"] }).hasAccessUnder("team/kv/")).toBe(true);
  });

  it("is refused for other mounts, for deny-only rules, and for an empty ACL", () => {
    expect(aclOf({ "secret/data/app/*": ["read"] }).hasAccessUnder("database/")).toBe(false);
    expect(aclOf({ "secretive/*": ["read"] }).hasAccessUnder("secret/")).toBe(false);
    expect(aclOf({ "secret/data/*": ["deny"] }).hasAccessUnder("secret/")).toBe(false);
    expect(aclOf({ "team/+/x": ["read"] }).hasAccessUnder("other/kv/")).toBe(false);
    expect(new ACL([]).hasAccessUnder("secret/")).toBe(false);
    expect(ACL.root().hasAccessUnder("anything/")).toBe(true);
  });
});
