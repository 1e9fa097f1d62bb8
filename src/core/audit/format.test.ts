import { describe, expect, it } from "vitest";
import { formatRequestEntry, formatResponseEntry, hashStrings, hmacSha256, type AuditRequestInput, type AuditResponseInput } from "./format.js";

const salt = Buffer.alloc(32, 7);
const h = (v: string) => hmacSha256(salt, v);
const now = new Date("2025-06-05T16:10:22.292Z");

function request(): AuditRequestInput {
  return {
    id: "6b4f2c1e-0d7a-4c55-9e0e-3f1a2b3c4d5e",
    operation: "update",
    path: "database/creds/app",
    mount: { type: "database", accessor: "database_1a2b3c4d", path: "database/", class: "secret" },
    clientToken: "hvs.CAESIsecret-token",
    clientTokenAccessor: "acc-9f8e7d",
    caller: {
      displayName: "kubernetes-payments-api",
      policies: ["default", "payments"],
      metadata: { service_account_name: "api", service_account_namespace: "payments" },
      entityId: "ent-1",
      ttl: 3600,
      issueTime: Date.parse("2025-06-05T15:00:00.123Z"),
    },
    data: { password: "hunter2", ttl: 300, renewable: true, nested: { list: ["a", { deep: "b" }, 3, null] } },
    remoteAddress: "10.0.0.7",
    remotePort: 53124,
  };
}

describe("hmacSha256", () => {
  it("is Vault's identified HMAC: prefix plus hex HMAC-SHA256 keyed by the salt", () => {
    // HMAC-SHA256(key = 32 bytes of 0x07, "hunter2"), computed independently with
    // `openssl dgst -sha256 -mac HMAC -macopt hexkey:0707...07`.
    expect(hmacSha256(salt, "hunter2")).toBe("hmac-sha256:326eb4f6783e519f198c32929bd28e66c5229387bcad7eaa651b20613622ec9f");
    expect(hmacSha256(salt, "hunter2")).not.toBe(hmacSha256(Buffer.alloc(32, 8), "hunter2"));
  });
});

describe("hashStrings", () => {
  it("hashes every string through objects and arrays, keeps numbers, booleans, null and keys", () => {
    const out = hashStrings({ a: "x", b: [1, "y", { c: "z", d: false }], e: null }, h);
    expect(out).toEqual({ a: h("x"), b: [1, h("y"), { c: h("z"), d: false }], e: null });
  });

  it("renders byte arrays as base64 before hashing, so no raw bytes reach the log", () => {
    const secret = Buffer.from("private key bytes");
    expect(hashStrings({ key: secret }, h)).toEqual({ key: h(secret.toString("base64")) });
    expect(hashStrings({ key: secret }, null)).toEqual({ key: secret.toString("base64") });
  });

  it("follows JSON: dates become strings (hashed), undefined is dropped", () => {
    const d = new Date("2025-01-01T00:00:00.000Z");
    expect(hashStrings({ at: d, gone: undefined }, h)).toEqual({ at: h("2025-01-01T00:00:00.000Z") });
  });

  it("refuses cycles instead of recursing forever", () => {
    const o: Record<string, unknown> = { a: "x" };
    o.self = o;
    expect(() => hashStrings(o, h)).toThrow(/cyclic/);
  });
});

describe("formatRequestEntry", () => {
  it("builds Vault's request entry with tokens, accessors and data hashed", () => {
    const entry = formatRequestEntry(request(), { hmac: h, hmacAccessor: true, now });
    expect(entry).toEqual({
      time: "2025-06-05T16:10:22.292Z",
      type: "request",
      auth: {
        client_token: h("hvs.CAESIsecret-token"),
        accessor: h("acc-9f8e7d"),
        display_name: "kubernetes-payments-api",
        policies: ["default", "payments"],
        token_policies: ["default", "payments"],
        metadata: { service_account_name: "api", service_account_namespace: "payments" },
        entity_id: "ent-1",
        token_type: "service",
        token_ttl: 3600,
        token_issue_time: "2025-06-05T15:00:00Z",
      },
      request: {
        id: "6b4f2c1e-0d7a-4c55-9e0e-3f1a2b3c4d5e",
        operation: "update",
        mount_type: "database",
        mount_accessor: "database_1a2b3c4d",
        mount_point: "database/",
        mount_class: "secret",
        client_token: h("hvs.CAESIsecret-token"),
        client_token_accessor: h("acc-9f8e7d"),
        namespace: { id: "root" },
        path: "database/creds/app",
        data: { password: h("hunter2"), ttl: 300, renewable: true, nested: { list: [h("a"), { deep: h("b") }, 3, null] } },
        remote_address: "10.0.0.7",
        remote_port: 53124,
      },
    });
  });

  it("never mutates the caller's input", () => {
    const input = request();
    const before = structuredClone(input);
    formatRequestEntry(input, { hmac: h, hmacAccessor: true, now });
    expect(input).toEqual(before);
  });

  it("log_raw keeps every value in clear", () => {
    const entry = formatRequestEntry(request(), { hmac: null, hmacAccessor: true, now });
    expect(entry.auth.client_token).toBe("hvs.CAESIsecret-token");
    expect(entry.request.client_token_accessor).toBe("acc-9f8e7d");
    expect(entry.request.data).toEqual(request().data);
  });

  it("hmac_accessor=false leaves accessors clear but still hashes tokens", () => {
    const entry = formatRequestEntry(request(), { hmac: h, hmacAccessor: false, now });
    expect(entry.auth.accessor).toBe("acc-9f8e7d");
    expect(entry.request.client_token_accessor).toBe("acc-9f8e7d");
    expect(entry.auth.client_token).toBe(h("hvs.CAESIsecret-token"));
  });

  it("an unauthenticated request carries Vault's empty auth and no token fields", () => {
    const entry = formatRequestEntry(
      { id: "r1", operation: "update", path: "auth/approle/login", data: { role_id: "r", secret_id: "s" }, remoteAddress: "127.0.0.1" },
      { hmac: h, hmacAccessor: true, now },
    );
    expect(entry.auth).toEqual({ token_type: "default" });
    expect(entry.request).toEqual({
      id: "r1",
      operation: "update",
      namespace: { id: "root" },
      path: "auth/approle/login",
      data: { role_id: h("r"), secret_id: h("s") },
      remote_address: "127.0.0.1",
    });
  });

  it("records an error that stopped the request before its handler", () => {
    const entry = formatRequestEntry({ ...request(), error: "permission denied" }, { hmac: h, hmacAccessor: true, now });
    expect(entry.error).toBe("permission denied");
  });
});

describe("formatResponseEntry", () => {
  const issued: AuditResponseInput = {
    ...request(),
    path: "auth/approle/login",
    response: {
      data: { username: "v-app-x1", password: "A1b2C3", ttl: 3600 },
      auth: {
        clientToken: "hvs.new-token",
        accessor: "acc-new",
        displayName: "approle",
        policies: ["default", "app"],
        metadata: { role_name: "app" },
        entityId: "ent-2",
        ttl: 1800,
        issueTime: new Date("2025-06-05T16:10:22.900Z"),
      },
      leaseId: "database/creds/app/abcDEF123",
      warnings: ["TTL of \"2h\" exceeded the effective max_ttl of \"1h\"; TTL value is capped accordingly"],
      wrapInfo: { token: "hvs.wrap", accessor: "acc-wrap", ttl: 60, creationTime: new Date("2025-06-05T16:10:22Z"), creationPath: "auth/approle/login", wrappedAccessor: "acc-new" },
    },
  };

  it("adds Vault's response object: hashed data and issued token, lease id in clear", () => {
    const entry = formatResponseEntry(issued, { hmac: h, hmacAccessor: true, now });
    expect(entry.type).toBe("response");
    expect(entry.request.id).toBe(request().id);
    expect(entry.auth.client_token).toBe(h("hvs.CAESIsecret-token"));
    expect(entry.response).toEqual({
      mount_type: "database",
      mount_accessor: "database_1a2b3c4d",
      mount_point: "database/",
      mount_class: "secret",
      auth: {
        client_token: h("hvs.new-token"),
        accessor: h("acc-new"),
        display_name: "approle",
        policies: ["default", "app"],
        token_policies: ["default", "app"],
        metadata: { role_name: "app" },
        entity_id: "ent-2",
        token_type: "service",
        token_ttl: 1800,
        token_issue_time: "2025-06-05T16:10:22Z",
      },
      data: { username: h("v-app-x1"), password: h("A1b2C3"), ttl: 3600 },
      secret: { lease_id: "database/creds/app/abcDEF123" },
      warnings: ["TTL of \"2h\" exceeded the effective max_ttl of \"1h\"; TTL value is capped accordingly"],
      wrap_info: {
        token: h("hvs.wrap"),
        accessor: h("acc-wrap"),
        ttl: 60,
        creation_time: "2025-06-05T16:10:22.000Z",
        creation_path: "auth/approle/login",
        wrapped_accessor: h("acc-new"),
      },
    });
    expect(entry.error).toBeUndefined();
  });

  it("never leaves a token or secret in clear in the serialised line", () => {
    const line = JSON.stringify(formatResponseEntry(issued, { hmac: h, hmacAccessor: true, now }));
    for (const secret of ["hvs.CAESIsecret-token", "hvs.new-token", "hvs.wrap", "hunter2", "A1b2C3", "acc-9f8e7d", "acc-new", "acc-wrap"]) {
      expect(line).not.toContain(secret);
    }
  });

  it("records the error of a failed request, with an empty response", () => {
    const entry = formatResponseEntry({ ...request(), error: "1 error occurred:\n\t* role \"nope\" not found" }, { hmac: h, hmacAccessor: true, now });
    expect(entry.error).toBe("1 error occurred:\n\t* role \"nope\" not found");
    expect(entry.response).toEqual({ mount_type: "database", mount_accessor: "database_1a2b3c4d", mount_point: "database/", mount_class: "secret" });
  });

  it("elide_list_responses replaces keys and key_info of list answers by their counts", () => {
    const input: AuditResponseInput = {
      ...request(),
      operation: "list",
      response: { data: { keys: ["a", "b", "c"], key_info: { a: {}, b: {} } } },
    };
    expect(formatResponseEntry(input, { hmac: h, hmacAccessor: true, now, elideListResponses: true }).response.data).toEqual({ keys: 3, key_info: 2 });
    expect(formatResponseEntry(input, { hmac: h, hmacAccessor: true, now }).response.data).toEqual({ keys: [h("a"), h("b"), h("c")], key_info: { a: {}, b: {} } });
    expect(formatResponseEntry({ ...input, operation: "read" }, { hmac: h, hmacAccessor: true, now, elideListResponses: true }).response.data?.keys).toHaveLength(3);
  });
});
