import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InternalError, NotFound, UserError } from "../../sdk/errors.js";
import type { StorageView } from "../../sdk/types.js";
import type { SqliteStorage } from "../../storage/sqlite.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { AuditBroker, AuditWriteFailed } from "./broker.js";
import type { AuditRequestInput, AuditResponseInput } from "./format.js";

const TOKEN = "hvs.CAESIJT2KM9n2KJqg_E267EHJSY0c4NWtTRnBsNWhzUDkQZQ";
const ACCESSOR = "bwMAYYBByYBMYs6YbWggfXdA";
const NEW_TOKEN = "hvs.CAESInewlyIssuedTokenValue0123456789";

const request: AuditRequestInput = {
  id: "8c7af6ed-1747-fae0-2316-f1fd3ed456a5",
  operation: "update",
  path: "database/creds/app",
  mount: { type: "database", accessor: "database_5a1e7c2b", path: "database/" },
  clientToken: TOKEN,
  clientTokenAccessor: ACCESSOR,
  caller: { displayName: "approle", policies: ["default", "app"], metadata: { role_name: "app" }, entityId: "e-1", ttl: 2764800 },
  data: { ttl: "1h", statements: ["CREATE ROLE x", { nested: "deep-secret" }], rotate: false, count: 2 },
  remoteAddress: "10.1.2.3",
  remotePort: 41000,
};
const response: AuditResponseInput = {
  ...request,
  response: {
    data: { username: "v-approle-app-Xy12", password: "Pa55-w0rd-generated", meta: { list: ["one", 2] } },
    auth: { clientToken: NEW_TOKEN, accessor: "accNew123", policies: ["default"], ttl: 60 },
    leaseId: "database/creds/app/Q1w2E3r4",
  },
};

let dir: string;
let view: StorageView;
let physical: SqliteStorage;
const brokers: AuditBroker[] = [];
function broker(v: StorageView = view, allowPrefix = false): AuditBroker {
  const b = new AuditBroker(v, { allowPrefix });
  brokers.push(b);
  return b;
}
function readLines(file: string): Record<string, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed JSON, asserted field by field
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-audit-broker-"));
  ({ view, physical } = await makeBarrierView("core/audit/"));
});
afterEach(async () => {
  for (const b of brokers.splice(0)) b.close();
  await physical.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("AuditBroker: enabling and listing", () => {
  it("lists enabled devices the way Vault's GET sys/audit does", async () => {
    const b = broker();
    const file = path.join(dir, "audit.log");
    await b.enable("file", { type: "file", description: "Store logs in a file", options: { file_path: file } });
    await b.enable("/raw/", { type: "file", options: { file_path: "discard", log_raw: true }, local: true });
    expect(b.list()).toEqual({
      "file/": { type: "file", description: "Store logs in a file", options: { file_path: file }, local: false, path: "file/" },
      "raw/": { type: "file", description: "", options: { file_path: "discard", log_raw: "true" }, local: true, path: "raw/" },
    });
    expect(b.enabled).toBe(true);
  });

  it("refuses an unknown type, naming the supported ones", async () => {
    const err = await broker()
      .enable("sock", { type: "socket", options: { address: "127.0.0.1:9090" } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('unknown audit device type "socket"; supported types: file');
  });

  it("refuses a missing file_path", async () => {
    await expect(broker().enable("file", { type: "file", options: {} })).rejects.toThrow(/"file_path" is required/);
  });

  it("refuses a path already in use, including nested paths", async () => {
    const b = broker();
    await b.enable("file", { type: "file", options: { file_path: "discard" } });
    await expect(b.enable("file/", { type: "file", options: { file_path: "discard" } })).rejects.toThrow(/path already in use at file\//);
    await expect(b.enable("file/nested", { type: "file", options: { file_path: "discard" } })).rejects.toBeInstanceOf(UserError);
    await expect(b.enable("bad/../path", { type: "file", options: { file_path: "discard" } })).rejects.toThrow(/invalid audit device path/);
  });

  it("an unopenable file is a UserError with the OS message, and nothing is persisted", async () => {
    const b = broker();
    const err = await b.enable("file", { type: "file", options: { file_path: path.join(dir, "no-such-dir", "audit.log") } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/ENOENT: no such file or directory/);
    expect(b.list()).toEqual({});
    expect(await view.list("")).toEqual([]);
  });
});

describe("AuditBroker: entries", () => {
  it("writes a request and a response entry sharing request.id, with every string in data hashed", async () => {
    const b = broker();
    const file = path.join(dir, "audit.log");
    await b.enable("file", { type: "file", options: { file_path: file } });
    await b.logRequest(request);
    await b.logResponse(response);

    const [req, resp] = readLines(file);
    const h = (v: string) => b.hash("file", v);
    expect(req.type).toBe("request");
    expect(resp.type).toBe("response");
    expect(req.request.id).toBe("8c7af6ed-1747-fae0-2316-f1fd3ed456a5");
    expect(resp.request.id).toBe(req.request.id);
    expect(new Date(req.time).toISOString()).toBe(req.time);

    expect(req.auth).toEqual({
      client_token: h(TOKEN),
      accessor: h(ACCESSOR),
      display_name: "approle",
      policies: ["default", "app"],
      token_policies: ["default", "app"],
      metadata: { role_name: "app" },
      entity_id: "e-1",
      token_type: "service",
      token_ttl: 2764800,
    });
    expect(req.request).toEqual({
      id: "8c7af6ed-1747-fae0-2316-f1fd3ed456a5",
      operation: "update",
      mount_type: "database",
      mount_accessor: "database_5a1e7c2b",
      mount_point: "database/",
      client_token: h(TOKEN),
      client_token_accessor: h(ACCESSOR),
      namespace: { id: "root" },
      path: "database/creds/app",
      data: { ttl: h("1h"), statements: [h("CREATE ROLE x"), { nested: h("deep-secret") }], rotate: false, count: 2 },
      remote_address: "10.1.2.3",
      remote_port: 41000,
    });
    expect(resp.request).toEqual(req.request);
    expect(resp.response).toEqual({
      mount_type: "database",
      mount_accessor: "database_5a1e7c2b",
      mount_point: "database/",
      auth: { client_token: h(NEW_TOKEN), accessor: h("accNew123"), policies: ["default"], token_policies: ["default"], token_type: "service", token_ttl: 60 },
      data: { username: h("v-approle-app-Xy12"), password: h("Pa55-w0rd-generated"), meta: { list: [h("one"), 2] } },
      secret: { lease_id: "database/creds/app/Q1w2E3r4" },
    });
    expect(h("Pa55-w0rd-generated")).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

    const text = fs.readFileSync(file, "utf8");
    for (const clear of [TOKEN, ACCESSOR, NEW_TOKEN, "accNew123", "Pa55-w0rd-generated", "deep-secret", "v-approle-app-Xy12"]) expect(text).not.toContain(clear);
  });

  it("does not mutate the caller's objects", async () => {
    const b = broker();
    await b.enable("file", { type: "file", options: { file_path: path.join(dir, "audit.log") } });
    const input = structuredClone(response);
    await b.logResponse(input);
    expect(input).toEqual(response);
  });

  it("log_raw keeps values in clear; hmac_accessor=false keeps only accessors clear", async () => {
    const b = broker();
    const raw = path.join(dir, "raw.log");
    const acc = path.join(dir, "acc.log");
    await b.enable("raw", { type: "file", options: { file_path: raw, log_raw: "true" } });
    await b.enable("acc", { type: "file", options: { file_path: acc, hmac_accessor: "false" } });
    await b.logResponse(response);

    const [r] = readLines(raw);
    expect(r.auth.client_token).toBe(TOKEN);
    expect(r.request.data).toEqual(request.data);
    expect(r.response.data).toEqual(response.response!.data);
    expect(r.response.auth.client_token).toBe(NEW_TOKEN);

    const [a] = readLines(acc);
    expect(a.auth.accessor).toBe(ACCESSOR);
    expect(a.request.client_token_accessor).toBe(ACCESSOR);
    expect(a.response.auth.accessor).toBe("accNew123");
    expect(a.auth.client_token).toBe(b.hash("acc", TOKEN));
    expect(a.response.data.password).toBe(b.hash("acc", "Pa55-w0rd-generated"));
  });

  it("each device has its own salt", async () => {
    const b = broker();
    await b.enable("one", { type: "file", options: { file_path: "discard" } });
    await b.enable("two", { type: "file", options: { file_path: "discard" } });
    expect(b.hash("one", "x")).not.toBe(b.hash("two", "x"));
    expect(b.hash("one/", "x")).toBe(b.hash("one", "x"));
  });

  it("hash of an unknown device is NotFound", async () => {
    expect(() => broker().hash("nope", "x")).toThrow(NotFound);
  });

  it("does nothing when no device is enabled", async () => {
    const b = broker();
    await expect(b.logRequest(request)).resolves.toBeUndefined();
    await expect(b.logResponse(response)).resolves.toBeUndefined();
    expect(b.enabled).toBe(false);
  });
});

describe("AuditBroker: fail-closed", () => {
  it("throws a 500 when every device fails to write", async () => {
    const b = broker();
    await b.enable("full", { type: "file", options: { file_path: "/dev/full" } });
    const err = await b.logRequest(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditWriteFailed);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as AuditWriteFailed).status).toBe(500);
    expect((err as AuditWriteFailed).message).toBe("audit: no audit device could write the entry");
    expect((err as AuditWriteFailed).failures.map((f) => [f.path, (f.error as NodeJS.ErrnoException).code])).toEqual([["full/", "ENOSPC"]]);
    await expect(b.logResponse(response)).rejects.toBeInstanceOf(AuditWriteFailed);
  });

  it("succeeds when one of two devices fails, and the healthy one has the entry", async () => {
    const b = broker();
    const file = path.join(dir, "audit.log");
    await b.enable("full", { type: "file", options: { file_path: "/dev/full" } });
    await b.enable("file", { type: "file", options: { file_path: file } });
    await b.logRequest(request);
    await b.logResponse(response);
    expect(readLines(file).map((l) => [l.type, l.request.id])).toEqual([
      ["request", request.id],
      ["response", request.id],
    ]);
  });
});

describe("AuditBroker: persistence", () => {
  it("a device stored with a prefix is not restored once allow_audit_log_prefixing is off", async () => {
    const file = path.join(dir, "audit.log");
    const first = broker(view, true);
    await first.enable("file", { type: "file", options: { file_path: file, prefix: "AUDIT " } });
    await first.logRequest(request);
    first.close();
    await expect(broker(view, false).load()).rejects.toThrow(/audit log prefixing is not allowed/);
    const again = broker(view, true);
    await again.load();
    expect(Object.keys(again.list())).toEqual(["file/"]);
  });

  it("a new broker over the same storage restores devices and reuses each salt", async () => {
    const file = path.join(dir, "audit.log");
    const first = broker();
    await first.enable("file", { type: "file", description: "primary", options: { file_path: file, hmac_accessor: "false" } });
    const before = first.hash("file", "Pa55-w0rd-generated");
    await first.logRequest(request);
    first.close();

    const second = broker();
    expect(second.list()).toEqual({});
    await second.load();
    expect(second.list()).toEqual({ "file/": { type: "file", description: "primary", options: { file_path: file, hmac_accessor: "false" }, local: false, path: "file/" } });
    expect(second.hash("file", "Pa55-w0rd-generated")).toBe(before);
    await second.logResponse(response);
    const [req, resp] = readLines(file);
    expect(resp.request.client_token).toBe(req.request.client_token);
    expect(resp.response.data.password).toBe(before);
  });

  it("stores the salt encrypted by the barrier", async () => {
    const b = broker();
    await b.enable("file", { type: "file", options: { file_path: "discard" } });
    const salt = await view.get("salt/file");
    expect(salt).toHaveLength(32);
    const stored = await physical.get("core/audit/salt/file");
    expect(stored).toBeDefined();
    expect(stored!.includes(salt!)).toBe(false);
  });

  it("disable removes the device and its salt; re-enabling starts a new salt", async () => {
    const b = broker();
    await b.enable("file", { type: "file", options: { file_path: "discard" } });
    const before = b.hash("file", "x");
    expect(await b.disable("file/")).toBe(true);
    expect(await b.disable("file/")).toBe(false);
    expect(b.list()).toEqual({});
    expect(await view.get("salt/file")).toBeUndefined();
    expect(() => b.hash("file", "x")).toThrow(NotFound);

    const again = broker();
    await again.load();
    expect(again.list()).toEqual({});

    await b.enable("file", { type: "file", options: { file_path: "discard" } });
    expect(b.hash("file", "x")).not.toBe(before);
  });

  it("load fails, opening nothing, when a persisted device can no longer be opened", async () => {
    const sub = path.join(dir, "logs");
    fs.mkdirSync(sub);
    const first = broker();
    await first.enable("good", { type: "file", options: { file_path: path.join(dir, "good.log") } });
    await first.enable("gone", { type: "file", options: { file_path: path.join(sub, "audit.log") } });
    first.close();
    fs.rmSync(sub, { recursive: true });

    const second = broker();
    const err = await second.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as Error).message).toMatch(/^audit device gone\/ could not be restored: .*ENOENT/);
    expect(second.list()).toEqual({});
  });

  it("reopen() moves every device to a fresh file after rotation", async () => {
    const b = broker();
    const file = path.join(dir, "audit.log");
    await b.enable("file", { type: "file", options: { file_path: file } });
    await b.logRequest(request);
    fs.renameSync(file, `${file}.1`);
    expect(b.reopen()).toEqual([]);
    await b.logResponse(response);
    expect(readLines(`${file}.1`).map((l) => l.type)).toEqual(["request"]);
    expect(readLines(file).map((l) => l.type)).toEqual(["response"]);
  });
});
