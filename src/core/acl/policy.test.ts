import { describe, expect, it } from "vitest";
import { UserError } from "../../sdk/errors.js";
import { CAPABILITIES, DEFAULT_POLICY_TEXT, normalizePathPattern, normalizePolicyName, parsePolicy } from "./policy.js";

/** The UserError message parsePolicy produces (fails the test when it parses). */
function policyError(text: string, name = "dev"): string {
  try {
    parsePolicy(name, text);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected parsePolicy to fail");
}

describe("parsePolicy: HCL", () => {
  it("reads path stanzas into rules with sorted capabilities, keeping the text and order", () => {
    const text = `
      # apps read their secrets
      path "secret/data/app/*" {
        capabilities = ["read", "list"]
      }
      path "database/creds/app" {
        capabilities = ["update", "read", "create"]
      }
    `;
    expect(parsePolicy("app", text)).toEqual({
      name: "app",
      raw: text,
      rules: [
        { pattern: "secret/data/app/*", capabilities: ["list", "read"] },
        { pattern: "database/creds/app", capabilities: ["create", "read", "update"] },
      ],
    });
  });

  it("lower-cases the policy name", () => {
    expect(parsePolicy("Ops-Team.v2", `path "a" { capabilities = ["read"] }`).name).toBe("ops-team.v2");
  });

  it("accepts every capability", () => {
    const text = `path "a" { capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"] }`;
    expect(parsePolicy("p", text).rules[0].capabilities).toEqual(["create", "delete", "list", "patch", "read", "sudo", "update"]);
  });

  it("reduces a capability list containing deny to exactly deny", () => {
    expect(parsePolicy("p", `path "a" { capabilities = ["read", "deny", "sudo"] }`).rules).toEqual([{ pattern: "a", capabilities: ["deny"] }]);
  });

  it("unions two stanzas for the same pattern", () => {
    const text = `path "a/*" { capabilities = ["read"] }\npath "a/*" { capabilities = ["list", "read"] }`;
    expect(parsePolicy("p", text).rules).toEqual([{ pattern: "a/*", capabilities: ["list", "read"] }]);
  });

  it("strips a leading slash from patterns, as Vault does", () => {
    expect(parsePolicy("p", `path "/secret/*" { capabilities = ["read"] }`).rules[0].pattern).toBe("secret/*");
  });

  it("accepts Vault's top-level name key and per-path comment", () => {
    const text = `name = "ignored"\npath "a" {\n comment = "why"\n capabilities = ["read"]\n}`;
    expect(parsePolicy("p", text)).toMatchObject({ name: "p", rules: [{ pattern: "a", capabilities: ["read"] }] });
  });

  it("accepts a policy with no paths (it grants nothing)", () => {
    expect(parsePolicy("empty", "# nothing yet\n").rules).toEqual([]);
  });
});

describe("parsePolicy: legacy policy = ...", () => {
  it.each([
    ["read", ["list", "read"]],
    ["write", ["create", "delete", "list", "read", "update"]],
    ["sudo", ["create", "delete", "list", "read", "sudo", "update"]],
    ["deny", ["deny"]],
    ["list", ["list"]],
  ])("maps policy = %j as Vault does", (legacy, expected) => {
    expect(parsePolicy("p", `path "a" { policy = "${legacy}" }`).rules[0].capabilities).toEqual(expected);
  });

  it("unions the legacy policy with capabilities", () => {
    expect(parsePolicy("p", `path "a" {\n policy = "read"\n capabilities = ["update"]\n}`).rules[0].capabilities).toEqual(["list", "read", "update"]);
  });

  it("lets deny in either form win", () => {
    expect(parsePolicy("p", `path "a" {\n policy = "deny"\n capabilities = ["read"]\n}`).rules[0].capabilities).toEqual(["deny"]);
    expect(parsePolicy("p", `path "a" {\n policy = "write"\n capabilities = ["deny"]\n}`).rules[0].capabilities).toEqual(["deny"]);
  });
});

describe("parsePolicy: JSON", () => {
  const hcl = `path "secret/*" { capabilities = ["read"] }\npath "sys/leases/*" { policy = "write" }`;

  it("reads Vault's JSON form and matches the HCL result", () => {
    const json = `{"path": {"secret/*": {"capabilities": ["read"]}, "sys/leases/*": {"policy": "write"}}}`;
    const fromJson = parsePolicy("p", json);
    expect(fromJson.rules).toEqual(parsePolicy("p", hcl).rules);
    expect(fromJson.raw).toBe(json);
  });

  it("reads the array-of-bodies shape", () => {
    const json = `  {"path": [{"secret/*": [{"capabilities": ["read"]}]}, {"sys/leases/*": [{"policy": "write"}]}]}`;
    expect(parsePolicy("p", json).rules).toEqual(parsePolicy("p", hcl).rules);
  });

  it("reports invalid JSON with the policy name", () => {
    expect(policyError(`{"path": `)).toMatch(/^policy "dev": invalid JSON: /);
  });

  it("reports errors without a line number", () => {
    expect(policyError(`{"path": {"a": {"capabilities": ["reed"]}}}`)).toBe(
      'policy "dev": path "a": unknown capability "reed"; valid capabilities are create, read, update, patch, delete, list, sudo, deny',
    );
  });
});

describe("parsePolicy: errors", () => {
  it("names the policy, line, pattern and valid capabilities for an unknown capability", () => {
    const text = `path "ok" { capabilities = ["read"] }\n\npath "secret/*" {\n  capabilities = ["read", "reed"]\n}`;
    expect(policyError(text)).toBe(
      'policy "dev", line 4: path "secret/*": unknown capability "reed"; valid capabilities are create, read, update, patch, delete, list, sudo, deny',
    );
  });

  it("refuses capabilities that are not a list of strings", () => {
    expect(policyError(`path "a" { capabilities = "read" }`)).toBe(
      'policy "dev", line 1: path "a": capabilities must be a list such as ["read", "list"], got string "read"',
    );
    expect(policyError(`path "a" { capabilities = [1] }`)).toBe(
      `policy "dev", line 1: path "a": unknown capability 1; valid capabilities are ${CAPABILITIES.join(", ")}`,
    );
  });

  it("refuses an unknown legacy policy", () => {
    expect(policyError(`path "a" { policy = "admin" }`)).toBe(
      'policy "dev", line 1: path "a": unknown policy "admin"; valid values are "deny", "read", "write", "sudo", "list"',
    );
    expect(policyError(`path "a" { policy = "toString" }`)).toMatch(/unknown policy "toString"/);
  });

  it("refuses unknown top-level keys", () => {
    expect(policyError(`path "a" { capabilities = ["read"] }\npaths "b" { capabilities = ["read"] }`)).toBe(
      'policy "dev", line 2: unknown top-level key "paths": a policy holds only path "<pattern>" { ... } blocks',
    );
  });

  it("refuses a path that is not a block", () => {
    expect(policyError(`path = "secret/*"`)).toBe(
      'policy "dev", line 1: path: expected a block such as path "<label>" { ... }, got string "secret/*"',
    );
  });

  it("refuses unknown keys inside a path", () => {
    expect(policyError(`path "a" {\n  capabilities = ["read"]\n  capabilites = ["list"]\n}`)).toBe(
      'policy "dev", line 3: path "a": unknown key "capabilites"; valid keys are capabilities, policy, allowed_parameters, denied_parameters, required_parameters, min_wrapping_ttl, max_wrapping_ttl, comment',
    );
  });

  it("refuses a path with no capabilities and no policy", () => {
    expect(policyError(`path "a" {}`)).toBe('policy "dev", line 1: path "a": no capabilities; set capabilities = ["read", ...] or policy = "read"');
    expect(policyError(`path "a" {\n capabilities = []\n}`)).toMatch(/path "a": no capabilities/);
  });

  it.each(["control_group", "mfa_methods"])("refuses %s (Vault Enterprise) rather than silently ignoring the restriction", (key) => {
    const value = key === "control_group" ? "{ factor \"x\" {} }" : `["m"]`;
    const text = `path "secret/*" {\n  capabilities = ["update"]\n  ${key} = ${value}\n}`;
    expect(policyError(text)).toBe(`policy "dev", line 3: path "secret/*": ${key} is not supported by leasehold yet`);
  });

  it("refuses * anywhere but the end", () => {
    expect(policyError(`path "secret/*/config" { capabilities = ["read"] }`)).toBe(
      'policy "dev", line 1: path "secret/*/config": "*" is only allowed as the last character (a prefix glob such as "secret/*")',
    );
    expect(policyError(`path "**" { capabilities = ["read"] }`)).toMatch(/"\*" is only allowed as the last character/);
  });

  it("refuses + that is not a whole segment, including +*", () => {
    for (const p of ["secret/+*", "secret/a+b", "secret/app+", "+secret"]) {
      expect(policyError(`path "${p}" { capabilities = ["read"] }`)).toBe(
        `policy "dev", line 1: path "${p}": "+" must be a whole path segment, as in "secret/+/config" ("+*" and "a+b" are not allowed)`,
      );
    }
  });

  it("refuses empty and templated patterns", () => {
    expect(policyError(`path "" { capabilities = ["read"] }`)).toBe('policy "dev", line 1: path "": the pattern is empty');
    expect(policyError(`path "/" { capabilities = ["read"] }`)).toBe('policy "dev", line 1: path "/": the pattern is empty');
    expect(policyError(`path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read"] }`)).toBe(
      'policy "dev", line 1: path "secret/data/{{identity.entity.id}}/*": templated policy paths are not supported by leasehold yet',
    );
  });

  it("reports HCL syntax errors with the policy name, line and column", () => {
    expect(policyError(`path "a" {\n  capabilities = ["read"\n}`)).toBe('policy "dev":3:1: expected "," or "]" in list, got "}"');
  });

  it("refuses empty text", () => {
    expect(policyError("  \n ")).toBe('policy "dev": the policy text is empty');
  });

  it("refuses invalid names", () => {
    const ok = `path "a" { capabilities = ["read"] }`;
    expect(() => parsePolicy("has space", ok)).toThrow(new UserError('invalid policy name "has space": use 1 to 128 letters, digits, "_", "-" or "."'));
    expect(() => parsePolicy("", ok)).toThrow(UserError);
    expect(() => parsePolicy("a/b", ok)).toThrow(UserError);
    expect(() => parsePolicy("x".repeat(129), ok)).toThrow(UserError);
    expect(parsePolicy("x".repeat(128), ok).name).toBe("x".repeat(128));
  });
});

describe("normalizePolicyName and normalizePathPattern", () => {
  it("normalise what they accept", () => {
    expect(normalizePolicyName(" Admin_1 ")).toBe("admin_1");
    expect(normalizePathPattern("//secret/+/x*")).toBe("secret/+/x*");
    expect(normalizePathPattern("+")).toBe("+");
    expect(normalizePathPattern("*")).toBe("*");
  });
});

describe("DEFAULT_POLICY_TEXT", () => {
  it("parses to Vault's default policy restricted to what leasehold serves", () => {
    const policy = parsePolicy("default", DEFAULT_POLICY_TEXT);
    expect(new Map(policy.rules.map((r) => [r.pattern, r.capabilities]))).toEqual(
      new Map([
        ["auth/token/lookup-self", ["read"]],
        ["auth/token/renew-self", ["update"]],
        ["auth/token/revoke-self", ["update"]],
        ["sys/capabilities-self", ["update"]],
        ["sys/leases/renew", ["update"]],
        ["sys/renew", ["update"]],
        ["sys/leases/lookup", ["update"]],
        ["sys/internal/ui/mounts", ["read"]],
        ["sys/internal/ui/mounts/*", ["read"]],
      ]),
    );
  });
});

describe("parsePolicy: parameter constraints and wrapping TTLs", () => {
  it("reads allowed, denied and required parameters, lower-casing the keys and keeping values as written", () => {
    const text = `
      path "pki/issue/web" {
        capabilities = ["update"]
        allowed_parameters = {
          "Common_Name" = ["*.payments.internal", "api-*"]
          "ttl"         = []
          "int"         = [1, true]
          "map"         = [{ good = "one" }]
        }
        denied_parameters = {
          "alt_names" = []
        }
        required_parameters = ["common_name", "ttl"]
        comment = "web certificates only"
      }`;
    expect(parsePolicy("p", text).rules).toEqual([
      {
        pattern: "pki/issue/web",
        capabilities: ["update"],
        allowedParameters: new Map<string, unknown[]>([
          ["common_name", ["*.payments.internal", "api-*"]],
          ["ttl", []],
          ["int", [1, true]],
          ["map", [{ good: "one" }]],
        ]),
        deniedParameters: new Map([["alt_names", []]]),
        requiredParameters: ["common_name", "ttl"],
      },
    ]);
  });

  it("reads the block form and Vault's JSON form alike", () => {
    const hcl = `path "a" {\n capabilities = ["update"]\n allowed_parameters {\n  "x" = ["1"]\n }\n denied_parameters {\n  "*" = []\n }\n}`;
    const json = JSON.stringify({ path: { a: { capabilities: ["update"], allowed_parameters: { x: ["1"] }, denied_parameters: [{ "*": [] }] } } });
    const expected = [{ pattern: "a", capabilities: ["update"], allowedParameters: new Map([["x", ["1"]]]), deniedParameters: new Map([["*", []]]) }];
    expect(parsePolicy("p", hcl).rules).toEqual(expected);
    expect(parsePolicy("p", json).rules).toEqual(expected);
  });

  it("reads min_wrapping_ttl and max_wrapping_ttl as seconds (numbers or Go durations)", () => {
    const rule = parsePolicy("p", `path "a" {\n capabilities = ["update"]\n min_wrapping_ttl = "1s"\n max_wrapping_ttl = 90\n}`).rules[0];
    expect(rule.minWrappingTtl).toBe(1);
    expect(rule.maxWrappingTtl).toBe(90);
    expect(parsePolicy("p", `path "a" {\n capabilities = ["update"]\n max_wrapping_ttl = "1h30m"\n}`).rules[0].maxWrappingTtl).toBe(5400);
  });

  it("omits empty constraints, and keeps none on a deny rule", () => {
    expect(parsePolicy("p", `path "a" {\n capabilities = ["update"]\n allowed_parameters = {}\n denied_parameters = {}\n required_parameters = []\n}`).rules).toEqual([
      { pattern: "a", capabilities: ["update"] },
    ]);
    const deny = parsePolicy("p", `path "a" {\n capabilities = ["deny"]\n allowed_parameters = { x = [] }\n required_parameters = ["x"]\n}`).rules[0];
    expect(deny).toStrictEqual({ pattern: "a", capabilities: ["deny"] });
  });

  it("merges repeated stanzas of one pattern as Vault merges policies", () => {
    const text = `
      path "value/merge" {
        capabilities = ["update"]
        allowed_parameters = { "test" = [1, 2], "any" = [] }
        denied_parameters = { "test" = ["x"] }
        required_parameters = ["a"]
        max_wrapping_ttl = 300
        min_wrapping_ttl = 100
      }
      path "value/merge" {
        capabilities = ["create"]
        allowed_parameters = { "test" = [3, 4], "any" = ["only-this"], "new" = ["n"] }
        denied_parameters = { "test" = [] }
        required_parameters = ["b", "a"]
        max_wrapping_ttl = 200
        min_wrapping_ttl = 50
      }`;
    expect(parsePolicy("p", text).rules).toEqual([
      {
        pattern: "value/merge",
        capabilities: ["create", "update"],
        // Values unite (the later stanza's first, as in Vault); an empty list (any value) wins.
        allowedParameters: new Map<string, unknown[]>([
          ["test", [3, 4, 1, 2]],
          ["any", []],
          ["new", ["n"]],
        ]),
        deniedParameters: new Map([["test", []]]),
        requiredParameters: ["a", "b"],
        // The lesser of each bound: Vault prefers the shortest wrapping lifetime.
        minWrappingTtl: 50,
        maxWrappingTtl: 200,
      },
    ]);
  });

  it("refuses malformed constraints with a message naming the key", () => {
    expect(policyError(`path "a" {\n capabilities = ["update"]\n allowed_parameters = ["x"]\n}`)).toBe(
      'policy "dev", line 3: path "a": allowed_parameters: expected a map from parameter name to a list of values, such as { "common_name" = ["*.example.com"], "ttl" = [] }, got a list',
    );
    expect(policyError(`path "a" {\n capabilities = ["update"]\n denied_parameters = { x = "y" }\n}`)).toBe(
      'policy "dev", line 3: path "a": denied_parameters: "x" must be a list of values such as ["a", "b*"] (an empty list allows any value), got string "y"',
    );
    expect(policyError(`path "a" {\n capabilities = ["update"]\n required_parameters = "x"\n}`)).toMatch(/line 3: path "a": required_parameters must be a list of parameter names/);
    expect(policyError(`path "a" {\n capabilities = ["update"]\n required_parameters = [["x"]]\n}`)).toMatch(/required_parameters: \["x"\] is not a parameter name/);
    expect(policyError(`path "a" {\n capabilities = ["update"]\n min_wrapping_ttl = "soon"\n}`)).toMatch(/line 3: path "a": min_wrapping_ttl: invalid duration "soon"/);
    expect(policyError(`path "a" {\n capabilities = ["update"]\n min_wrapping_ttl = "2m"\n max_wrapping_ttl = "1m"\n}`)).toMatch(
      /line 4: path "a": max_wrapping_ttl cannot be less than min_wrapping_ttl/,
    );
  });

  it("loads a Vault documentation-style policy using every constraint", () => {
    const text = `
# Issue certificates for the payments domain only
path "pki/issue/payments" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "common_name" = ["*.payments.internal"]
    "alt_names"   = ["*.payments.internal"]
    "ttl"         = []
  }
  denied_parameters = {
    "ip_sans" = []
  }
  required_parameters = ["common_name"]
}

# Create tokens with the app policy only
path "auth/token/create" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "policies" = ["app"]
    "*"        = []
  }
}

# Only wrapped SecretIDs (Vault refuses unwrapped requests here)
path "auth/approle/role/my-role/secret-id" {
  capabilities = ["create", "update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "90s"
}`;
    const policy = parsePolicy("ops", text);
    expect(policy.raw).toBe(text);
    expect(policy.rules.map((r) => r.pattern)).toEqual(["pki/issue/payments", "auth/token/create", "auth/approle/role/my-role/secret-id"]);
    expect(policy.rules[2]).toEqual({ pattern: "auth/approle/role/my-role/secret-id", capabilities: ["create", "update"], minWrappingTtl: 1, maxWrappingTtl: 90 });
  });
});
