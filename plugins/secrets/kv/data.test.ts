import { afterEach, describe, expect, it, vi } from "vitest";
import { callBackend, silentLogger, testMount } from "../../../test/helpers/backend.js";
import { makeBarrierView } from "../../../test/helpers/storage.js";
import { matchRoute, resolveWriteOperation } from "../../../src/core/dispatch.js";
import { CheckAndSetMismatch, NotFound, UserError } from "../../../src/sdk/index.js";
import type { HandlerRequest, Operation } from "../../../src/sdk/index.js";
import { kvPlugin } from "./index.js";

async function mountKv() {
  const { view } = await makeBarrierView("logical/kv-data/");
  const mount = testMount("kv", "secret/", { version: "2" });
  const backend = await kvPlugin.create({ mount, storage: view, logger: silentLogger });
  const call = (op: Operation | "write", path: string, data?: Record<string, unknown>) => callBackend(backend, { op, path, data, storage: view, mount });
  /** Which operation the ACL would check for a write to `path`. */
  const writeOperation = async (path: string) => {
    const match = matchRoute(backend, path)!;
    const req = { params: match.params, storage: view, data: {} } as unknown as HandlerRequest;
    return resolveWriteOperation(match, req);
  };
  return { call, writeOperation };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

afterEach(() => {
  vi.useRealTimers();
});

describe("kv v2 data/", () => {
  it("writes versions and reads the latest or a given one", async () => {
    const { call } = await mountKv();
    const w1 = await call("write", "data/app/db", { data: { user: "app", password: "s3cret" } });
    expect(w1.data).toEqual({ created_time: expect.stringMatching(RFC3339), custom_metadata: null, deletion_time: "", destroyed: false, version: 1 });
    const w2 = await call("write", "data/app/db", { data: { user: "app", password: "rotated" } });
    expect(w2.data).toMatchObject({ version: 2, deletion_time: "", destroyed: false });

    const latest = await call("read", "data/app/db");
    expect(latest.status).toBeUndefined();
    expect(latest.data).toEqual({
      data: { user: "app", password: "rotated" },
      metadata: { created_time: w2.data!.created_time, custom_metadata: null, deletion_time: "", destroyed: false, version: 2 },
    });
    const first = await call("read", "data/app/db", { version: "1" });
    expect(first.data).toMatchObject({ data: { user: "app", password: "s3cret" }, metadata: { version: 1 } });
    // version=0 means latest, as in Vault.
    expect((await call("read", "data/app/db", { version: 0 })).data).toMatchObject({ metadata: { version: 2 } });
  });

  it("keeps nested and non-string values as written", async () => {
    const { call } = await mountKv();
    // A body parsed from JSON may carry a key named __proto__; it is data like any other.
    const data = JSON.parse('{"n": 42, "ok": true, "list": [1, "two"], "nested": {"a": {"b": null}}, "__proto__": "p"}') as Record<string, unknown>;
    await call("write", "data/shapes", { data });
    expect((await call("read", "data/shapes")).data!.data).toEqual(data);
  });

  it("answers 404 for a missing key and a missing version", async () => {
    const { call } = await mountKv();
    await expect(call("read", "data/nope")).rejects.toBeInstanceOf(NotFound);
    await call("write", "data/one", { data: { a: "1" } });
    await expect(call("read", "data/one", { version: 7 })).rejects.toBeInstanceOf(NotFound);
  });

  it("makes the first write a create and later writes updates", async () => {
    const { call, writeOperation } = await mountKv();
    expect(await writeOperation("data/fresh")).toBe("create");
    await call("write", "data/fresh", { data: { a: "1" } });
    expect(await writeOperation("data/fresh")).toBe("update");
    expect(await writeOperation("metadata/fresh")).toBe("update");
    expect(await writeOperation("metadata/other")).toBe("create");
  });

  describe("check-and-set", () => {
    it("cas=0 writes only a new key; cas=N only over version N", async () => {
      const { call } = await mountKv();
      expect((await call("write", "data/k", { data: { v: "1" }, options: { cas: 0 } })).data).toMatchObject({ version: 1 });
      await expect(call("write", "data/k", { data: { v: "x" }, options: { cas: 0 } })).rejects.toThrow(
        new CheckAndSetMismatch("check-and-set parameter did not match the current version"),
      );
      await expect(call("write", "data/k", { data: { v: "x" }, options: { cas: 2 } })).rejects.toBeInstanceOf(CheckAndSetMismatch);
      expect((await call("write", "data/k", { data: { v: "2" }, options: { cas: "1" } })).data).toMatchObject({ version: 2 });
      expect((await call("read", "data/k")).data!.data).toEqual({ v: "2" });
    });

    it("a mismatch is a 400 with Vault's message", async () => {
      const { call } = await mountKv();
      await call("write", "data/k", { data: { v: "1" } });
      const err = await call("write", "data/k", { data: { v: "2" }, options: { cas: 5 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckAndSetMismatch);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).status).toBe(400);
      expect((err as UserError).message).toBe("check-and-set parameter did not match the current version");
    });

    it("cas_required on the mount demands cas on every write", async () => {
      const { call } = await mountKv();
      await call("write", "config", { cas_required: true });
      await expect(call("write", "data/k", { data: { v: "1" } })).rejects.toThrow("check-and-set parameter required for this call");
      expect((await call("write", "data/k", { data: { v: "1" }, options: { cas: 0 } })).data).toMatchObject({ version: 1 });
    });

    it("cas_required on one key leaves the others alone", async () => {
      const { call } = await mountKv();
      await call("write", "metadata/guarded", { cas_required: true });
      await expect(call("write", "data/guarded", { data: { v: "1" } })).rejects.toThrow("check-and-set parameter required for this call");
      await call("write", "data/guarded", { data: { v: "1" }, options: { cas: 0 } });
      await call("write", "data/free", { data: { v: "1" } });
      expect((await call("read", "data/guarded")).data!.data).toEqual({ v: "1" });
    });

    it("of 20 concurrent writes with the same cas exactly one wins", async () => {
      const { call } = await mountKv();
      await call("write", "data/race", { data: { winner: "none" } });
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => call("write", "data/race", { data: { winner: String(i) }, options: { cas: 1 } })),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(19);
      for (const r of lost) expect(r.reason).toBeInstanceOf(CheckAndSetMismatch);

      const winner = results.findIndex((r) => r.status === "fulfilled");
      const latest = await call("read", "data/race");
      expect(latest.data).toMatchObject({ data: { winner: String(winner) }, metadata: { version: 2 } });
      expect((await call("read", "metadata/race")).data).toMatchObject({ current_version: 2 });
    });

    it("concurrent writes without cas each get their own version", async () => {
      const { call } = await mountKv();
      await call("write", "metadata/busy", { max_versions: 50 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call("write", "data/busy", { data: { i } })));
      expect(results.map((r) => r.data!.version).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      for (const r of results) {
        const stored = await call("read", "data/busy", { version: r.data!.version as number });
        expect(stored.data!.data).toEqual({ i: results.indexOf(r) });
      }
    });
  });

  describe("patch", () => {
    it("merges into the latest version as a new version (JSON merge patch)", async () => {
      const { call } = await mountKv();
      await call("write", "data/p", { data: { keep: "k", drop: "d", nested: { a: "1", b: "2" } } });
      const res = await call("patch", "data/p", { data: { drop: null, added: "x", nested: { b: "3", c: { deep: true } } } });
      expect(res.data).toMatchObject({ version: 2, destroyed: false });
      expect((await call("read", "data/p")).data!.data).toEqual({ keep: "k", added: "x", nested: { a: "1", b: "3", c: { deep: true } } });
      expect((await call("read", "data/p", { version: 1 })).data!.data).toEqual({ keep: "k", drop: "d", nested: { a: "1", b: "2" } });
    });

    it("needs an existing, live key and honours cas", async () => {
      const { call } = await mountKv();
      await expect(call("patch", "data/missing", { data: { a: "1" } })).rejects.toBeInstanceOf(NotFound);
      await call("write", "data/p", { data: { a: "1" } });
      await expect(call("patch", "data/p", { data: { a: "2" }, options: { cas: 3 } })).rejects.toBeInstanceOf(CheckAndSetMismatch);
      expect((await call("patch", "data/p", { data: { a: "2" }, options: { cas: 1 } })).data).toMatchObject({ version: 2 });
      await expect(call("patch", "data/p", {})).rejects.toThrow("no data provided");

      await call("delete", "data/p");
      const deleted = await call("patch", "data/p", { data: { a: "3" } });
      expect(deleted.status).toBe(404);
      expect(deleted.data).toMatchObject({ version: 2, deletion_time: expect.stringMatching(RFC3339) });
      expect((await call("read", "metadata/p")).data).toMatchObject({ current_version: 2 });
    });
  });

  describe("bad input", () => {
    it("rejects a write without data, or with data that is not a map", async () => {
      const { call } = await mountKv();
      await expect(call("write", "data/x", {})).rejects.toThrow(new UserError("no data provided"));
      await expect(call("write", "data/x", { data: null })).rejects.toThrow("no data provided");
      await expect(call("write", "data/x", { data: "password=1" })).rejects.toThrow("data: expected a JSON object");
      await expect(call("write", "data/x", { data: ["a"] })).rejects.toBeInstanceOf(UserError);
      await expect(call("write", "data/x", { data: { a: 1 }, options: { cas: "one" } })).rejects.toThrow(/options\.cas: expected an integer/);
      await expect(call("read", "data/x", { version: "latest" })).rejects.toThrow(/version: expected an integer/);
      await expect(call("read", "data/x")).rejects.toBeInstanceOf(NotFound);
    });

    it("rejects `..` and empty path segments", async () => {
      const { call } = await mountKv();
      for (const path of ["data/../etc", "data/a/../b", "data/a//b", "data//a", "data/a/"]) {
        await expect(call("write", path, { data: { a: "1" } })).rejects.toBeInstanceOf(UserError);
        await expect(call("read", path)).rejects.toBeInstanceOf(UserError);
      }
      await expect(call("write", "metadata/a/../b", { max_versions: 1 })).rejects.toThrow('".." segments are not allowed');
      await expect(call("write", "destroy/..", { versions: [1] })).rejects.toBeInstanceOf(UserError);
      await expect(call("list", "metadata/a/../")).rejects.toBeInstanceOf(UserError);
    });

    it("warns about fields it does not know", async () => {
      const { call } = await mountKv();
      const res = await call("write", "data/x", { data: { a: "1" }, version: 3 });
      expect(res.warnings).toEqual(["Endpoint ignored these unrecognized parameters: [version]"]);
    });
  });

  describe("max_versions", () => {
    it("keeps 10 versions by default and prunes the oldest data", async () => {
      const { call } = await mountKv();
      for (let i = 1; i <= 12; i++) await call("write", "data/many", { data: { i } });
      const meta = (await call("read", "metadata/many")).data!;
      expect(meta).toMatchObject({ current_version: 12, oldest_version: 3, max_versions: 0 });
      expect(Object.keys(meta.versions as object)).toEqual(["3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]);
      await expect(call("read", "data/many", { version: 2 })).rejects.toBeInstanceOf(NotFound);
      expect((await call("read", "data/many", { version: 3 })).data!.data).toEqual({ i: 3 });
    });

    it("follows the mount's setting, and the key's when larger", async () => {
      const { call } = await mountKv();
      await call("write", "config", { max_versions: 2 });
      for (let i = 1; i <= 4; i++) await call("write", "data/two", { data: { i } });
      expect(Object.keys((await call("read", "metadata/two")).data!.versions as object)).toEqual(["3", "4"]);

      await call("write", "metadata/three", { max_versions: 3 });
      for (let i = 1; i <= 5; i++) await call("write", "data/three", { data: { i } });
      const meta = (await call("read", "metadata/three")).data!;
      expect(Object.keys(meta.versions as object)).toEqual(["3", "4", "5"]);
      expect(meta).toMatchObject({ oldest_version: 3, max_versions: 3 });
    });

    it("lowering a key's max_versions prunes several versions on the next write", async () => {
      const { call } = await mountKv();
      for (let i = 1; i <= 6; i++) await call("write", "data/shrink", { data: { i } });
      await call("write", "metadata/shrink", { max_versions: 2 });
      await call("write", "data/shrink", { data: { i: 7 } });
      const meta = (await call("read", "metadata/shrink")).data!;
      expect(Object.keys(meta.versions as object)).toEqual(["6", "7"]);
      expect(meta.oldest_version).toBe(6);
      await expect(call("read", "data/shrink", { version: 5 })).rejects.toBeInstanceOf(NotFound);
    });
  });

  describe("delete_version_after", () => {
    it("schedules deletion; a version past it reads as deleted (404 with metadata)", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      const start = Date.parse("2030-01-01T00:00:00Z");
      vi.setSystemTime(start);
      const { call } = await mountKv();
      await call("write", "metadata/ephemeral", { delete_version_after: "1h" });
      const written = await call("write", "data/ephemeral", { data: { token: "t" } });
      expect(written.data).toMatchObject({ created_time: "2030-01-01T00:00:00Z", deletion_time: "2030-01-01T01:00:00Z" });
      expect((await call("read", "data/ephemeral")).data!.data).toEqual({ token: "t" });

      vi.setSystemTime(start + 3600_000 + 1);
      const expired = await call("read", "data/ephemeral");
      expect(expired.status).toBe(404);
      expect(expired.data).toEqual({
        data: null,
        metadata: { created_time: "2030-01-01T00:00:00Z", custom_metadata: null, deletion_time: "2030-01-01T01:00:00Z", destroyed: false, version: 1 },
      });
    });

    it("uses the smaller of the key's and the mount's, and none when the mount disables it", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.parse("2030-01-01T00:00:00Z"));
      const { call } = await mountKv();
      await call("write", "config", { delete_version_after: "30m" });
      await call("write", "metadata/k", { delete_version_after: "2h" });
      expect((await call("write", "data/k", { data: { a: 1 } })).data!.deletion_time).toBe("2030-01-01T00:30:00Z");
      await call("write", "config", { delete_version_after: -1 });
      expect((await call("read", "config")).data!.delete_version_after).toBe("-1s");
      expect((await call("write", "data/k", { data: { a: 2 } })).data!.deletion_time).toBe("");
    });
  });

  describe("DELETE data/", () => {
    it("soft-deletes the latest version only; the read is a 404 carrying the metadata", async () => {
      const { call } = await mountKv();
      await call("write", "data/d", { data: { v: "1" } });
      await call("write", "data/d", { data: { v: "2" } });
      expect(await call("delete", "data/d")).toEqual({});
      const res = await call("read", "data/d");
      expect(res.status).toBe(404);
      expect(res.data).toMatchObject({ data: null, metadata: { version: 2, destroyed: false, deletion_time: expect.stringMatching(RFC3339) } });
      expect((await call("read", "data/d", { version: 1 })).data!.data).toEqual({ v: "1" });
      // Deleting a missing key, or an already deleted version, is still a 204.
      expect(await call("delete", "data/d")).toEqual({});
      expect(await call("delete", "data/never")).toEqual({});
      // A new write makes the key readable again.
      await call("write", "data/d", { data: { v: "3" } });
      expect((await call("read", "data/d")).data).toMatchObject({ data: { v: "3" }, metadata: { version: 3 } });
    });
  });

  describe("subkeys/", () => {
    it("returns the structure with values replaced by null, optionally to a depth", async () => {
      const { call } = await mountKv();
      await call("write", "data/s", { data: { foo: "abc", bar: { baz: "def", deep: { x: 1 } }, quux: {}, list: [1] } });
      expect((await call("read", "subkeys/s")).data).toEqual({
        subkeys: { foo: null, bar: { baz: null, deep: { x: null } }, quux: null, list: null },
        metadata: expect.objectContaining({ version: 1, destroyed: false }),
      });
      expect((await call("read", "subkeys/s", { depth: 1 })).data!.subkeys).toEqual({ foo: null, bar: null, quux: null, list: null });
      expect((await call("read", "subkeys/s", { depth: "2" })).data!.subkeys).toEqual({ foo: null, bar: { baz: null, deep: null }, quux: null, list: null });
      await call("write", "destroy/s", { versions: [1] });
      const destroyed = await call("read", "subkeys/s");
      expect(destroyed.status).toBe(404);
      expect(destroyed.data).toMatchObject({ subkeys: null, metadata: { destroyed: true } });
      await expect(call("read", "subkeys/none")).rejects.toBeInstanceOf(NotFound);
    });
  });
});
