import { describe, expect, it } from "vitest";
import type { VaultResponse } from "../client/index.js";
import { asEnvelope, formatField, formatJson, formatKeyValueTable, formatList, formatSecretTable, formatValue, humanDuration, resolveFormat, secretEntries } from "./format.js";

const secret = (over: Partial<VaultResponse<unknown>>): VaultResponse<unknown> => ({
  request_id: "r",
  lease_id: "",
  renewable: false,
  lease_duration: 0,
  data: null,
  wrap_info: null,
  warnings: null,
  auth: null,
  ...over,
});

describe("tables", () => {
  it("prints a Key/Value table padded like vault's, with empty strings as n/a", () => {
    expect(formatKeyValueTable([["password", "hunter2"], ["username", "v-app-x1"], ["note", ""]])).toBe(
      ["Key         Value", "---         -----", "password    hunter2", "username    v-app-x1", "note        n/a", ""].join("\n"),
    );
  });

  it("prints a list as a Keys column", () => {
    expect(formatList(["app", "db/"])).toBe("Keys\n----\napp\ndb/\n");
  });

  it("prints database credentials with the lease rows first and data sorted", () => {
    const creds = secret({
      lease_id: "database/creds/app/Hk3",
      renewable: true,
      lease_duration: 3600,
      data: { username: "v-app-abc", password: "p@ss" },
    });
    expect(formatSecretTable(creds)).toBe(
      [
        "Key                Value",
        "---                -----",
        "lease_id           database/creds/app/Hk3",
        "lease_duration     1h",
        "lease_renewable    true",
        "password           p@ss",
        "username           v-app-abc",
        "",
      ].join("\n"),
    );
  });

  it("prints KV data with refresh_interval when there is a duration but no lease", () => {
    expect(formatSecretTable(secret({ lease_duration: 2764800, data: { foo: "bar" } }))).toBe(
      ["Key                 Value", "---                 -----", "refresh_interval    768h", "foo                 bar", ""].join("\n"),
    );
  });

  it("prints a token's auth block as vault login does, ∞ for a token without TTL", () => {
    const login = secret({
      auth: {
        client_token: "lhs.abc",
        accessor: "acc1",
        policies: ["default", "reader"],
        token_policies: ["default", "reader"],
        metadata: { role: "app" },
        lease_duration: 0,
        renewable: false,
        entity_id: "",
        token_type: "service",
        orphan: true,
      },
    });
    expect(secretEntries(login).map(([k]) => k)).toEqual([
      "token",
      "token_accessor",
      "token_duration",
      "token_renewable",
      "token_policies",
      "identity_policies",
      "policies",
      "token_meta_role",
    ]);
    const table = formatSecretTable(login);
    expect(table).toContain("token_duration       ∞\n");
    expect(table).toContain("token_policies       [default reader]\n");
    expect(table).toContain("token_meta_role      app\n");
  });

  it("humanises duration-like data keys (ttl, period, *_ttl) and prints warnings first", () => {
    const lookup = secret({ data: { ttl: 2700, creation_ttl: 3600, period: 0, num_uses: 0 }, warnings: ["ttl capped"] });
    expect(formatSecretTable(lookup)).toBe(
      [
        "WARNING! The following warnings were returned from the server:",
        "",
        "  * ttl capped",
        "",
        "Key             Value",
        "---             -----",
        "creation_ttl    1h",
        "num_uses        0",
        "period          0s",
        "ttl             45m",
        "",
      ].join("\n"),
    );
  });
});

describe("values", () => {
  it("renders like Go's %v", () => {
    expect(formatValue(["a", "b"])).toBe("[a b]");
    expect(formatValue({ b: 2, a: [1, true] })).toBe("map[a:[1 true] b:2]");
    expect(formatValue(null)).toBe("<nil>");
    expect(formatValue(42)).toBe("42");
  });

  it("shortens durations as vault's humanDuration", () => {
    expect(humanDuration(0)).toBe("0s");
    expect(humanDuration(45)).toBe("45s");
    expect(humanDuration(90)).toBe("1m30s");
    expect(humanDuration(3600)).toBe("1h");
    expect(humanDuration(3660)).toBe("1h1m");
    expect(humanDuration(3601)).toBe("1h1s");
    expect(humanDuration(2764800)).toBe("768h");
  });

  it("prints a field raw, with a newline only on a terminal", () => {
    expect(formatField("hunter2", false)).toBe("hunter2");
    expect(formatField("hunter2", true)).toBe("hunter2\n");
    expect(formatField(["a", "b"], false)).toBe("[a b]");
  });

  it("prints JSON indented by two spaces", () => {
    expect(formatJson({ data: { a: 1 } })).toBe('{\n  "data": {\n    "a": 1\n  }\n}\n');
  });

  it("takes the format from the flag, then LEASEHOLD_FORMAT, then VAULT_FORMAT", () => {
    expect(resolveFormat(undefined, {})).toBe("table");
    expect(resolveFormat("JSON", {})).toBe("json");
    expect(resolveFormat(undefined, { VAULT_FORMAT: "yaml" })).toBe("yaml");
    expect(resolveFormat(undefined, { LEASEHOLD_FORMAT: "json", VAULT_FORMAT: "yaml" })).toBe("json");
    expect(resolveFormat("xml", {})).toBeUndefined();
  });
});

describe("answers without the envelope", () => {
  it("shows the top-level fields of sys/health as data", () => {
    const health = { initialized: true, sealed: false, version: "0.1.0" } as unknown as VaultResponse<unknown>;
    expect(formatSecretTable(asEnvelope(health))).toBe(
      ["Key            Value", "---            -----", "initialized    true", "sealed         false", "version        0.1.0", ""].join("\n"),
    );
    const enveloped = secret({ data: { a: 1 } });
    expect(asEnvelope(enveloped)).toBe(enveloped);
  });
});
