import { describe, expect, it } from "vitest";
import { callBackend, silentLogger, testMount } from "../../../test/helpers/backend.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { KEYRING_PATH } from "../../../src/core/barrier.js";
import { NotFound, UserError } from "../../../src/sdk/index.js";
import type { Operation } from "../../../src/sdk/index.js";
import { kvPlugin } from "./index.js";

async function mountKv() {
  const { view, barrier, physical } = await makeBarrierView("logical/kv-versions/");
  const mount = testMount("kv", "secret/", { version: "2" });
  const backend = await kvPlugin.create({ mount, storage: view, logger: silentLogger });
  const call = (op: Operation | "write", path: string, data?: Record<string, unknown>) => callBackend(backend, { op, path, data, storage: view, mount });
  /** Every value in the physical store, decrypted: what an attacker with the key would find. */
  const everythingStored = async (): Promise<string> => {
    const rows = physical.db.prepare("SELECT key FROM kv").all() as { key: string }[];
    const values = await Promise.all(rows.filter((r) => r.key !== KEYRING_PATH).map(async (r) => (await barrier.get(r.key))!.toString("utf8")));
    return values.join("\n");
  };
  return { call, everythingStored };
}

describe("kv v2 delete/ undelete/ destroy/", () => {
  it("delete hides the given versions and undelete restores them", async () => {
    const { call } = await mountKv();
    for (const v of ["one", "two", "three"]) await call("write", "data/k", { data: { v } });

    expect(await call("write", "delete/k", { versions: [1, 3] })).toEqual({});
    const gone = await call("read", "data/k");
    expect(gone.status).toBe(404);
    expect(gone.data).toMatchObject({ data: null, metadata: { version: 3, destroyed: false } });
    expect((gone.data!.metadata as { deletion_time: string }).deletion_time).not.toBe("");
    expect((await call("read", "data/k", { version: 1 })).status).toBe(404);
    expect((await call("read", "data/k", { version: 2 })).data!.data).toEqual({ v: "two" });

    const meta = (await call("read", "metadata/k")).data!.versions as Record<string, { deletion_time: string; destroyed: boolean }>;
    expect(meta["1"].deletion_time).not.toBe("");
    expect(meta["2"].deletion_time).toBe("");
    expect(meta["3"].deletion_time).not.toBe("");

    expect(await call("write", "undelete/k", { versions: "1,3" })).toEqual({});
    expect((await call("read", "data/k")).data).toMatchObject({ data: { v: "three" }, metadata: { version: 3, deletion_time: "" } });
    expect((await call("read", "data/k", { version: 1 })).data!.data).toEqual({ v: "one" });
  });

  it("destroy removes the data from storage for good", async () => {
    const { call, everythingStored } = await mountKv();
    await call("write", "data/app", { data: { password: "first-secret-value" } });
    await call("write", "data/app", { data: { password: "second-secret-value" } });
    expect(await everythingStored()).toContain("first-secret-value");

    expect(await call("write", "destroy/app", { versions: [1] })).toEqual({});
    const stored = await everythingStored();
    expect(stored).not.toContain("first-secret-value");
    expect(stored).toContain("second-secret-value");

    const read = await call("read", "data/app", { version: 1 });
    expect(read.status).toBe(404);
    expect(read.data).toMatchObject({ data: null, metadata: { version: 1, destroyed: true } });
    expect((await call("read", "metadata/app")).data!.versions).toMatchObject({ "1": { destroyed: true }, "2": { destroyed: false } });

    // A destroyed version cannot be undeleted.
    await call("write", "undelete/app", { versions: [1] });
    expect((await call("read", "data/app", { version: 1 })).status).toBe(404);
  });

  it("destroys a soft-deleted version too", async () => {
    const { call, everythingStored } = await mountKv();
    await call("write", "data/x", { data: { v: "deleted-then-destroyed" } });
    await call("delete", "data/x");
    expect(await everythingStored()).toContain("deleted-then-destroyed");
    await call("write", "destroy/x", { versions: ["1"] });
    expect(await everythingStored()).not.toContain("deleted-then-destroyed");
  });

  it("metadata delete and pruning leave no version data behind", async () => {
    const { call, everythingStored } = await mountKv();
    await call("write", "metadata/short", { max_versions: 1 });
    await call("write", "data/short", { data: { v: "pruned-away" } });
    await call("write", "data/short", { data: { v: "kept" } });
    expect(await everythingStored()).not.toContain("pruned-away");

    await call("write", "data/short/child", { data: { v: "child-value" } });
    expect(await call("delete", "metadata/short")).toEqual({});
    const stored = await everythingStored();
    expect(stored).not.toContain("kept");
    expect(stored).toContain("child-value");
    await expect(call("read", "metadata/short")).rejects.toBeInstanceOf(NotFound);
    await expect(call("read", "data/short")).rejects.toBeInstanceOf(NotFound);
    expect((await call("read", "data/short/child")).data!.data).toEqual({ v: "child-value" });
  });

  it("ignores versions that do not exist and keys that do not exist", async () => {
    const { call } = await mountKv();
    await call("write", "data/k", { data: { v: "1" } });
    expect(await call("write", "delete/k", { versions: [9] })).toEqual({});
    expect(await call("write", "destroy/k", { versions: [9] })).toEqual({});
    expect(await call("write", "undelete/nothing", { versions: [1] })).toEqual({});
    expect((await call("read", "data/k")).data!.data).toEqual({ v: "1" });
  });

  it("requires a list of integer versions", async () => {
    const { call } = await mountKv();
    await call("write", "data/k", { data: { v: "1" } });
    for (const verb of ["delete", "undelete", "destroy"]) {
      await expect(call("write", `${verb}/k`, {})).rejects.toThrow(new UserError("No version number provided"));
      await expect(call("write", `${verb}/k`, { versions: [] })).rejects.toThrow("No version number provided");
      await expect(call("write", `${verb}/k`, { versions: ["one"] })).rejects.toThrow(/versions: expected a list of integers/);
      await expect(call("write", `${verb}/k`, { versions: { a: 1 } })).rejects.toBeInstanceOf(UserError);
    }
    await expect(call("read", "destroy/k")).rejects.toHaveProperty("status", 405);
  });
});
