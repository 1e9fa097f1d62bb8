import { describe, expect, it } from "vitest";
import { callBackend, silentLogger, testMount } from "../../../test/helpers/backend.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { NotFound, UserError } from "../../../src/sdk/index.js";
import type { Operation } from "../../../src/sdk/index.js";
import { kvPlugin, kvVersion } from "./index.js";

async function mountKv(options: Record<string, string>) {
  const { view } = await makeBarrierView("logical/kv-v1/");
  const mount = testMount("kv", "kv/", options);
  const backend = await kvPlugin.create({ mount, storage: view, logger: silentLogger });
  const call = (op: Operation | "write", path: string, data?: Record<string, unknown>) => callBackend(backend, { op, path, data, storage: view, mount });
  return { call };
}

describe("kv version selection", () => {
  it("follows options.version, defaulting to 1 like Vault", () => {
    expect(kvVersion({ options: {} })).toBe(1);
    expect(kvVersion({ options: { version: "1" } })).toBe(1);
    expect(kvVersion({ options: { version: "2" } })).toBe(2);
    expect(() => kvVersion({ options: { version: "3" } })).toThrow(UserError);
  });

  it("refuses to mount an unknown version", async () => {
    await expect(mountKv({ version: "3" })).rejects.toThrow('kv: unsupported version "3": use "1" or "2"');
  });

  it("a version 2 mount does not answer version 1 paths", async () => {
    const { call } = await mountKv({ version: "2" });
    await expect(call("write", "plain", { a: "1" })).rejects.toThrow("unsupported path: kv/plain");
  });
});

describe("kv v1", () => {
  it("stores, replaces, reads and deletes a secret", async () => {
    const { call } = await mountKv({});
    expect(await call("write", "app/db", { user: "app", password: "s3cret", port: 5432 })).toEqual({});
    expect((await call("read", "app/db")).data).toEqual({ user: "app", password: "s3cret", port: 5432 });
    await call("write", "app/db", { password: "rotated" });
    expect((await call("read", "app/db")).data).toEqual({ password: "rotated" });
    expect(await call("delete", "app/db")).toEqual({});
    await expect(call("read", "app/db")).rejects.toBeInstanceOf(NotFound);
    expect(await call("delete", "app/db")).toEqual({});
  });

  it("treats paths like data/ and metadata/ as ordinary secrets", async () => {
    const { call } = await mountKv({ version: "1" });
    await call("write", "data/x", { v: "1" });
    expect((await call("read", "data/x")).data).toEqual({ v: "1" });
  });

  it("lists folders and 404s on an empty one", async () => {
    const { call } = await mountKv({});
    for (const path of ["foo", "foo/bar", "foo/baz/qux"]) await call("write", path, { path });
    expect((await call("list", "")).data).toEqual({ keys: ["foo", "foo/"] });
    expect((await call("list", "foo/")).data).toEqual({ keys: ["bar", "baz/"] });
    expect((await call("list", "foo")).data).toEqual({ keys: ["bar", "baz/"] });
    await expect(call("list", "nothing/")).rejects.toBeInstanceOf(NotFound);
  });

  it("rejects an empty body and bad paths", async () => {
    const { call } = await mountKv({});
    await expect(call("write", "k", {})).rejects.toThrow(new UserError("missing data fields"));
    await expect(call("write", "a/../b", { v: 1 })).rejects.toBeInstanceOf(UserError);
    await expect(call("write", "a//b", { v: 1 })).rejects.toBeInstanceOf(UserError);
    await expect(call("read", "")).rejects.toThrow("missing path");
  });
});
