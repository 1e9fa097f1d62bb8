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

describe("ACL: parameter constraints (Vault's AllowOperation)", () => {
  /** An ACL from HCL policy texts, one policy per text. */
  const aclFrom = (...texts: string[]) => new ACL(texts.map((t, i) => parsePolicy(`q${i}`, t)));
  const update = (acl: ACL, path: string, data: Record<string, unknown>) => acl.allows(path, "update", { data });

  it("with allowed_parameters, allows listed keys with matching values and refuses anything else", () => {
    const acl = aclFrom(`path "pki/issue/web" {
      capabilities = ["update"]
      allowed_parameters = { "common_name" = ["*.payments.internal"], "ttl" = [] }
    }`);
    expect(update(acl, "pki/issue/web", { common_name: "a.payments.internal" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "a.payments.internal", ttl: "72h" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "evil.com" })).toBe(false);
    expect(update(acl, "pki/issue/web", { common_name: "a.payments.internal", alt_names: "evil.com" })).toBe(false);
    // Keys compare lower-cased, values do not.
    expect(update(acl, "pki/issue/web", { Common_Name: "a.payments.internal" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "A.PAYMENTS.INTERNAL" })).toBe(false);
    // No data at all: nothing to check (Vault allows it).
    expect(update(acl, "pki/issue/web", {})).toBe(true);
  });

  it("denied_parameters wins over allowed_parameters, and an empty denied list denies every value", () => {
    const acl = aclFrom(`path "a" {
      capabilities = ["update"]
      allowed_parameters = { "name" = ["*"], "*" = [] }
      denied_parameters = { "name" = ["root*", "*admin"], "force" = [] }
    }
    path "b" {
      capabilities = ["update"]
      allowed_parameters = { "x" = [] }
      denied_parameters = { "x" = [] }
    }`);
    expect(update(acl, "a", { name: "web" })).toBe(false); // "*" alone is no glob: it matches only "*"
    expect(update(acl, "a", { name: "*" })).toBe(true);
    expect(update(acl, "a", { other: "anything" })).toBe(true);
    expect(update(acl, "a", { name: "rootish" })).toBe(false);
    expect(update(acl, "a", { name: "sysadmin" })).toBe(false);
    expect(update(acl, "a", { other: 1, force: false })).toBe(false);
    expect(update(acl, "b", { x: "1" })).toBe(false);
    expect(update(acl, "b", {})).toBe(true);
  });

  it("treats * as a key: in allowed, any other key passes; in denied, any data is refused", () => {
    const acl = aclFrom(`path "allow-star" {
      capabilities = ["update"]
      allowed_parameters = { "*" = [], "env" = ["prod"] }
    }
    path "only-star" {
      capabilities = ["update"]
      allowed_parameters = { "*" = ["ignored"] }
    }
    path "deny-star" {
      capabilities = ["update"]
      allowed_parameters = { "x" = [] }
      denied_parameters = { "*" = ["ignored"] }
    }`);
    expect(update(acl, "allow-star", { anything: "goes", env: "prod" })).toBe(true);
    expect(update(acl, "allow-star", { env: "dev" })).toBe(false); // a listed key is still checked
    // The values of the * key itself are not consulted, as in Vault.
    expect(update(acl, "only-star", { a: "b" })).toBe(true);
    expect(update(acl, "deny-star", { x: "1" })).toBe(false);
    expect(update(acl, "deny-star", {})).toBe(true);
  });

  it("matches globs as Vault's GlobbedStringsMatch does: leading, trailing or both", () => {
    const acl = aclFrom(`path "g" {
      capabilities = ["update"]
      allowed_parameters = { "v" = ["*.example.com", "web-*", "*mid*", "exact"] }
    }`);
    for (const ok of ["a.example.com", ".example.com", "web-", "web-1", "xmidx", "mid", "exact"]) expect(update(acl, "g", { v: ok }), ok).toBe(true);
    for (const bad of ["example.com", "a.example.com.evil", "xweb-1", "mi", "exactly", "Exact", ""]) {
      // "" is the one exception below: Vault treats a string as a comma list, and "" as an empty one.
      if (bad === "") continue;
      expect(update(acl, "g", { v: bad }), bad).toBe(false);
    }
  });

  it("checks arrays and comma-separated strings element by element", () => {
    const acl = aclFrom(`path "auth/token/create" {
      capabilities = ["update"]
      allowed_parameters = { "policies" = ["app", "web-*"], "ttl" = [] }
      denied_parameters = { "policies" = ["web-admin"] }
    }`);
    expect(update(acl, "auth/token/create", { policies: ["app"] })).toBe(true);
    expect(update(acl, "auth/token/create", { policies: ["app", "web-1"] })).toBe(true);
    expect(update(acl, "auth/token/create", { policies: ["app", "admin"] })).toBe(false);
    expect(update(acl, "auth/token/create", { policies: "app, web-2" })).toBe(true);
    expect(update(acl, "auth/token/create", { policies: "app,admin" })).toBe(false);
    // Denied: any element denied refuses the whole request.
    expect(update(acl, "auth/token/create", { policies: ["app", "web-admin"] })).toBe(false);
    expect(update(acl, "auth/token/create", { policies: "app,web-admin" })).toBe(false);
    // Vault's quirks, kept: an empty array or string is an empty list, which passes.
    expect(update(acl, "auth/token/create", { policies: [] })).toBe(true);
    expect(update(acl, "auth/token/create", { policies: "" })).toBe(true);
  });

  it("compares numbers and booleans as strings, and lists and maps by equality", () => {
    const acl = aclFrom(`path "t" {
      capabilities = ["update"]
      allowed_parameters = { "int" = [1, "2"], "bool" = [false], "map" = [{ good = "one" }], "list" = [["a", "b"]] }
    }`);
    expect(update(acl, "t", { int: 1 })).toBe(true);
    expect(update(acl, "t", { int: "1" })).toBe(true);
    expect(update(acl, "t", { int: 2 })).toBe(true);
    expect(update(acl, "t", { int: 3 })).toBe(false);
    expect(update(acl, "t", { bool: false })).toBe(true);
    expect(update(acl, "t", { bool: "false" })).toBe(true);
    expect(update(acl, "t", { bool: true })).toBe(false);
    expect(update(acl, "t", { map: { good: "one" } })).toBe(true);
    expect(update(acl, "t", { map: { bad: "one" } })).toBe(false);
    expect(update(acl, "t", { map: { good: "one", extra: 1 } })).toBe(false);
    expect(update(acl, "t", { list: ["a", "b"] })).toBe(true);
    expect(update(acl, "t", { list: ["b", "a"] })).toBe(false);
    expect(update(acl, "t", { int: null })).toBe(false);
  });

  it("checks top-level keys only: a KV v2 write is constrained through its data key", () => {
    const acl = aclFrom(`path "secret/data/app/*" {
      capabilities = ["create", "update"]
      allowed_parameters = { "data" = [], "options" = [] }
    }
    path "secret/data/frozen" {
      capabilities = ["create", "update"]
      denied_parameters = { "data" = [] }
    }`);
    expect(acl.allows("secret/data/app/x", "create", { data: { data: { anything: "inside" }, options: { cas: 0 } } })).toBe(true);
    expect(acl.allows("secret/data/app/x", "create", { data: { data: {}, version: 2 } })).toBe(false);
    expect(acl.allows("secret/data/frozen", "update", { data: { data: { a: "b" } } })).toBe(false);
  });

  it("requires required_parameters (as lower-case keys), even in an empty request", () => {
    const acl = aclFrom(`path "r" {
      capabilities = ["create", "update", "read", "delete", "list"]
      required_parameters = ["Common_Name"]
    }`);
    expect(update(acl, "r", { common_name: "x" })).toBe(true);
    expect(update(acl, "r", { common_name: null })).toBe(true); // sent, even if null
    expect(update(acl, "r", {})).toBe(false);
    expect(update(acl, "r", { other: "x" })).toBe(false);
    expect(update(acl, "r", { Common_Name: "x" })).toBe(false); // Vault looks the key up lower-cased
    expect(acl.allows("r", "update")).toBe(false); // no data is no parameter
    expect(acl.allows("r", "create", { data: { common_name: "x" } })).toBe(true);
    // Read is checked too (its data is the query string); delete and list are not, as in Vault.
    expect(acl.allows("r", "read", { data: {} })).toBe(false);
    expect(acl.allows("r", "read", { data: { common_name: "x" } })).toBe(true);
    expect(acl.allows("r", "delete", { data: {} })).toBe(true);
    expect(acl.allows("r", "list", { data: {} })).toBe(true);
  });

  it("checks patch, and leaves capabilities() and sudo checks unaffected", () => {
    const acl = aclFrom(`path "p" {
      capabilities = ["patch", "update", "sudo"]
      allowed_parameters = { "a" = ["1"] }
    }`);
    expect(acl.allows("p", "patch", { data: { a: "1" } })).toBe(true);
    expect(acl.allows("p", "patch", { data: { a: "2" } })).toBe(false);
    expect(acl.allows("p", "update", { sudo: true, data: { a: "1" } })).toBe(true);
    expect(acl.allows("p", "update", { sudo: true, data: { b: "1" } })).toBe(false);
    expect(acl.capabilities("p")).toEqual(["patch", "sudo", "update"]);
  });

  it("merges constraints across policies on the same pattern: values unite, an empty list wins", () => {
    const acl = aclFrom(
      `path "pki/issue/web" { capabilities = ["update"]\n allowed_parameters = { "common_name" = ["*.payments.internal"] } }`,
      `path "pki/issue/web" { capabilities = ["update"]\n allowed_parameters = { "common_name" = ["*.billing.internal"], "ttl" = [] } }`,
      `path "other" { capabilities = ["update"]\n allowed_parameters = { "x" = ["1"] } }`,
      `path "other" { capabilities = ["update"]\n allowed_parameters = { "x" = [] } }`,
    );
    expect(update(acl, "pki/issue/web", { common_name: "a.payments.internal" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "a.billing.internal", ttl: "1h" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "evil.com" })).toBe(false);
    expect(update(acl, "other", { x: "anything" })).toBe(true);
  });

  it("keeps constraints when another policy grants the same pattern without any (Vault's merge)", () => {
    const constrained = `path "kv/data/x" { capabilities = ["update"]\n allowed_parameters = { "data" = [] } }`;
    const open = `path "kv/data/x" { capabilities = ["update", "create"] }`;
    for (const acl of [aclFrom(constrained, open), aclFrom(open, constrained)]) {
      expect(update(acl, "kv/data/x", { data: {} })).toBe(true);
      expect(update(acl, "kv/data/x", { data: {}, options: {} })).toBe(false);
      expect(acl.allows("kv/data/x", "create", { data: { data: {} } })).toBe(true);
    }
  });

  it("merges required and denied parameters across policies, and a deny drops every constraint", () => {
    const acl = aclFrom(
      `path "m" { capabilities = ["update"]\n required_parameters = ["a"]\n denied_parameters = { "z" = ["1"] } }`,
      `path "m" { capabilities = ["update"]\n required_parameters = ["b"]\n denied_parameters = { "y" = [] } }`,
    );
    expect(update(acl, "m", { a: 1, b: 2 })).toBe(true);
    expect(update(acl, "m", { a: 1 })).toBe(false);
    expect(update(acl, "m", { a: 1, b: 2, z: "1" })).toBe(false);
    expect(update(acl, "m", { a: 1, b: 2, z: "2" })).toBe(true);
    expect(update(acl, "m", { a: 1, b: 2, y: "" })).toBe(false);
    const denied = aclFrom(`path "m" { capabilities = ["update"]\n required_parameters = ["a"] }`, `path "m" { capabilities = ["deny"] }`);
    expect(denied.ruleFor("m")).toStrictEqual({ pattern: "m", capabilities: ["deny"] });
    expect(update(denied, "m", { a: 1 })).toBe(false);
  });

  it("takes constraints from the deciding rule only: a more specific literal path replaces a + path's", () => {
    const acl = aclFrom(`
      path "pki/issue/+" {
        capabilities = ["update"]
        allowed_parameters = { "common_name" = ["*.internal"] }
      }
      path "pki/issue/web" {
        capabilities = ["update"]
        allowed_parameters = { "common_name" = ["*.payments.internal"], "ttl" = [] }
      }
      path "pki/*" {
        capabilities = ["update"]
      }`);
    expect(update(acl, "pki/issue/web", { common_name: "a.payments.internal", ttl: "1h" })).toBe(true);
    expect(update(acl, "pki/issue/web", { common_name: "a.billing.internal" })).toBe(false);
    expect(update(acl, "pki/issue/api", { common_name: "a.billing.internal" })).toBe(true);
    expect(update(acl, "pki/issue/api", { common_name: "a.billing.internal", ttl: "1h" })).toBe(false);
    // pki/* decides elsewhere, unconstrained: the + rule's constraints do not leak to it.
    expect(update(acl, "pki/sign/api", { common_name: "evil.com" })).toBe(true);
  });

  it("refuses every request under a wrapping TTL bound: Vault admits only wrapped requests there, and leasehold cannot wrap", () => {
    const acl = aclFrom(`
      path "auth/approle/role/r/secret-id" {
        capabilities = ["update", "read", "list"]
        min_wrapping_ttl = "1s"
        max_wrapping_ttl = "90s"
      }
      path "auth/approle/role/r/role-id" {
        capabilities = ["read"]
      }`);
    expect(acl.allows("auth/approle/role/r/secret-id", "update", { data: {} })).toBe(false);
    expect(acl.allows("auth/approle/role/r/secret-id", "list")).toBe(false);
    expect(acl.allows("auth/approle/role/r/role-id", "read", { data: {} })).toBe(true);
    // capabilities-self still reports what the policy grants, as Vault's does.
    expect(acl.capabilities("auth/approle/role/r/secret-id")).toEqual(["list", "read", "update"]);
    expect(acl.ruleFor("auth/approle/role/r/secret-id")).toMatchObject({ minWrappingTtl: 1, maxWrappingTtl: 90 });
  });

  it("ruleFor shows the constraints and returns a copy callers may change", () => {
    const acl = aclFrom(`path "x" { capabilities = ["update"]\n allowed_parameters = { "a" = ["1"] }\n required_parameters = ["a"] }`);
    const rule = acl.ruleFor("x")!;
    expect(rule).toEqual({ pattern: "x", capabilities: ["update"], allowedParameters: new Map([["a", ["1"]]]), requiredParameters: ["a"] });
    (rule.allowedParameters!.get("a") as unknown[]).push("2");
    (rule.allowedParameters as Map<string, unknown[]>).set("b", []);
    expect(update(acl, "x", { a: "2" })).toBe(false);
    expect(update(acl, "x", { a: "1", b: "1" })).toBe(false);
  });
});
