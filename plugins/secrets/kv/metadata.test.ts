import { describe, expect, it } from "vitest";
import { callBackend, silentLogger, testMount } from "../../../test/helpers/backend.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { NotFound, UserError } from "../../../src/sdk/index.js";
import type { Operation } from "../../../src/sdk/index.js";
import { kvPlugin } from "./index.js";

async function mountKv() {
  const { view } = await makeBarrierView("logical/kv-metadata/");
  const mount = testMount("kv", "secret/", { version: "2" });
  const backend = await kvPlugin.create({ mount, storage: view, logger: silentLogger });
  const call = (op: Operation | "write", path: string, data?: Record<string, unknown>) => callBackend(backend, { op, path, data, storage: view, mount });
  return { call };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

describe("kv v2 metadata/", () => {
  it("reads a key's settings and the state of every version", async () => {
    const { call } = await mountKv();
    const v1 = await call("write", "data/app", { data: { a: "1" } });
    const v2 = await call("write", "data/app", { data: { a: "2" } });
    expect((await call("read", "metadata/app")).data).toEqual({
      cas_required: false,
      created_time: v1.data!.created_time,
      current_version: 2,
      custom_metadata: null,
      delete_version_after: "0s",
      max_versions: 0,
      oldest_version: 0,
      updated_time: v2.data!.created_time,
      versions: {
        "1": { created_time: v1.data!.created_time, deletion_time: "", destroyed: false },
        "2": { created_time: v2.data!.created_time, deletion_time: "", destroyed: false },
      },
    });
    await expect(call("read", "metadata/other")).rejects.toBeInstanceOf(NotFound);
  });

  it("creates a key without a version and updates only the fields sent", async () => {
    const { call } = await mountKv();
    expect(await call("write", "metadata/app", { max_versions: 5, cas_required: "true", delete_version_after: "3h25m19s", custom_metadata: { owner: "jdoe", tier: 1 } })).toEqual({});
    const created = (await call("read", "metadata/app")).data!;
    expect(created).toEqual({
      cas_required: true,
      created_time: expect.stringMatching(RFC3339),
      current_version: 0,
      custom_metadata: { owner: "jdoe", tier: "1" },
      delete_version_after: "3h25m19s",
      max_versions: 5,
      oldest_version: 0,
      updated_time: created.created_time,
      versions: {},
    });
    await expect(call("read", "data/app")).rejects.toBeInstanceOf(NotFound);

    await call("write", "metadata/app", { cas_required: false });
    expect((await call("read", "metadata/app")).data).toMatchObject({ cas_required: false, max_versions: 5, delete_version_after: "3h25m19s", custom_metadata: { owner: "jdoe", tier: "1" } });

    // custom_metadata sent with POST replaces the whole map.
    await call("write", "metadata/app", { custom_metadata: "team=payments" });
    expect((await call("read", "metadata/app")).data!.custom_metadata).toEqual({ team: "payments" });

    // Custom metadata travels with every version read and write.
    const w = await call("write", "data/app", { data: { a: "1" }, options: { cas: 0 } });
    expect(w.data!.custom_metadata).toEqual({ team: "payments" });
    expect((await call("read", "data/app")).data!.metadata).toMatchObject({ custom_metadata: { team: "payments" } });
  });

  it("a write that sets nothing creates nothing", async () => {
    const { call } = await mountKv();
    expect(await call("write", "metadata/empty", {})).toEqual({});
    await expect(call("read", "metadata/empty")).rejects.toBeInstanceOf(NotFound);
  });

  it("warns when a key turns cas_required off while the mount requires it", async () => {
    const { call } = await mountKv();
    await call("write", "config", { cas_required: true });
    const res = await call("write", "metadata/k", { cas_required: false });
    expect(res.warnings).toEqual(['"cas_required" set to false, but is mandated by backend config. This value will be ignored.']);
    await expect(call("write", "data/k", { data: { a: 1 } })).rejects.toThrow("check-and-set parameter required for this call");
  });

  it("validates fields and custom_metadata like Vault", async () => {
    const { call } = await mountKv();
    await expect(call("write", "metadata/k", { max_versions: "many" })).rejects.toThrow(/max_versions: expected an integer/);
    await expect(call("write", "metadata/k", { max_versions: -1 })).rejects.toThrow("max_versions must not be negative");
    await expect(call("write", "metadata/k", { delete_version_after: "soon" })).rejects.toBeInstanceOf(UserError);
    await expect(call("write", "metadata/k", { cas_required: "maybe" })).rejects.toThrow(/cas_required: expected a boolean/);
    await expect(call("write", "metadata/k", { custom_metadata: { "": "x" } })).rejects.toThrow(
      'custom_metadata validation failed: length of key "" is 0 but must be 0 < len(key) <= 128',
    );
    await expect(call("write", "metadata/k", { custom_metadata: { k: "x".repeat(513) } })).rejects.toThrow(/length of value for key "k" is 513/);
    await expect(call("write", "metadata/k", { custom_metadata: { k: "line\nbreak" } })).rejects.toThrow(/value for key "k" contains unprintable characters/);
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    await expect(call("write", "metadata/k", { custom_metadata: tooMany })).rejects.toThrow("custom_metadata validation failed: payload must contain at most 64 keys, provided 65");
    const err = (await call("write", "metadata/k", { custom_metadata: { "": "", ok: "fine" } }).catch((e: unknown) => e)) as UserError;
    expect([err.message, ...err.details]).toHaveLength(2);
    await expect(call("read", "metadata/k")).rejects.toBeInstanceOf(NotFound);
  });

  it("patch merges settings and custom_metadata into an existing key", async () => {
    const { call } = await mountKv();
    await expect(call("patch", "metadata/k", { max_versions: 3 })).rejects.toBeInstanceOf(NotFound);
    await call("write", "metadata/k", { max_versions: 5, custom_metadata: { owner: "jdoe", env: "prod" } });
    expect(await call("patch", "metadata/k", { max_versions: 3, custom_metadata: { env: null, team: "core" } })).toEqual({});
    expect((await call("read", "metadata/k")).data).toMatchObject({ max_versions: 3, cas_required: false, custom_metadata: { owner: "jdoe", team: "core" } });
    await call("patch", "metadata/k", { delete_version_after: "1m" });
    expect((await call("read", "metadata/k")).data).toMatchObject({ delete_version_after: "1m0s", custom_metadata: { owner: "jdoe", team: "core" } });
    await call("patch", "metadata/k", { custom_metadata: null });
    expect((await call("read", "metadata/k")).data!.custom_metadata).toBeNull();
  });

  it("delete removes the key and its versions; a new write starts again at version 1", async () => {
    const { call } = await mountKv();
    await call("write", "data/k", { data: { v: "1" } });
    await call("write", "data/k", { data: { v: "2" } });
    expect(await call("delete", "metadata/k")).toEqual({});
    await expect(call("read", "metadata/k")).rejects.toBeInstanceOf(NotFound);
    await expect(call("read", "data/k", { version: 1 })).rejects.toBeInstanceOf(NotFound);
    expect(await call("delete", "metadata/k")).toEqual({});
    expect((await call("write", "data/k", { data: { v: "again" } })).data).toMatchObject({ version: 1 });
  });

  describe("LIST", () => {
    it("lists keys and folders level by level", async () => {
      const { call } = await mountKv();
      for (const path of ["foo", "foo/bar", "foo/baz/qux", "app/db/password", "zeta"]) await call("write", `data/${path}`, { data: { path } });
      expect((await call("list", "metadata/")).data).toEqual({ keys: ["app/", "foo", "foo/", "zeta"] });
      expect((await call("list", "metadata")).data).toEqual({ keys: ["app/", "foo", "foo/", "zeta"] });
      expect((await call("list", "metadata/foo/")).data).toEqual({ keys: ["bar", "baz/"] });
      // Without the trailing slash (Vault's HTTP layer adds it; we accept both).
      expect((await call("list", "metadata/foo")).data).toEqual({ keys: ["bar", "baz/"] });
      expect((await call("list", "metadata/app/db/")).data).toEqual({ keys: ["password"] });
    });

    it("a missing or emptied folder is a 404", async () => {
      const { call } = await mountKv();
      await expect(call("list", "metadata/")).rejects.toBeInstanceOf(NotFound);
      await call("write", "data/dir/only", { data: { a: 1 } });
      await expect(call("list", "metadata/nope/")).rejects.toBeInstanceOf(NotFound);
      await expect(call("list", "metadata/dir/only/")).rejects.toBeInstanceOf(NotFound);
      await call("delete", "metadata/dir/only");
      await expect(call("list", "metadata/dir/")).rejects.toBeInstanceOf(NotFound);
    });

    it("soft-deleted and destroyed keys are still listed, as in Vault", async () => {
      const { call } = await mountKv();
      await call("write", "data/a", { data: { v: 1 } });
      await call("write", "data/b", { data: { v: 1 } });
      await call("delete", "data/a");
      await call("write", "destroy/b", { versions: [1] });
      expect((await call("list", "metadata/")).data).toEqual({ keys: ["a", "b"] });
    });
  });
});

describe("kv v2 config", () => {
  it("reads defaults and updates only the fields sent", async () => {
    const { call } = await mountKv();
    expect((await call("read", "config")).data).toEqual({ cas_required: false, delete_version_after: "0s", max_versions: 0 });
    expect(await call("write", "config", { max_versions: 5, delete_version_after: "3h25m19s" })).toEqual({});
    expect((await call("read", "config")).data).toEqual({ cas_required: false, delete_version_after: "3h25m19s", max_versions: 5 });
    await call("write", "config", { cas_required: true });
    expect((await call("read", "config")).data).toEqual({ cas_required: true, delete_version_after: "3h25m19s", max_versions: 5 });
    // Zero clears delete_version_after, a negative value disables it on every key.
    await call("write", "config", { delete_version_after: 0 });
    expect((await call("read", "config")).data!.delete_version_after).toBe("0s");
    await call("write", "config", { delete_version_after: "-5m" });
    expect((await call("read", "config")).data!.delete_version_after).toBe("-1s");
  });

  it("rejects bad values", async () => {
    const { call } = await mountKv();
    await expect(call("write", "config", { max_versions: -2 })).rejects.toThrow("max_versions must not be negative");
    await expect(call("write", "config", { max_versions: 1.5 })).rejects.toBeInstanceOf(UserError);
    await expect(call("write", "config", { delete_version_after: "forever" })).rejects.toThrow(/delete_version_after: invalid duration/);
    expect((await call("read", "config")).data).toEqual({ cas_required: false, delete_version_after: "0s", max_versions: 0 });
  });
});
