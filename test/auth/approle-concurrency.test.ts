/**
 * Use counting under real interleaving. Through the HTTP server, SQLite answers synchronously, so
 * concurrent logins rarely interleave between reading and writing a secret ID; here every storage
 * call yields to the event loop first (as a networked store would), so a login that reads, then
 * waits, then writes would let two logins consume the same last use. The lock must prevent it.
 */
import { describe, expect, it } from "vitest";
import { approlePlugin } from "../../plugins/auth/approle/index.js";
import type { StorageView } from "../../src/sdk/index.js";
import { callBackend, silentLogger, testMount } from "../helpers/backend.js";
import { makeBarrierView } from "../helpers/storage.js";

/** A real barrier view whose every call first yields to the event loop. */
function slow(view: StorageView): StorageView {
  const tick = () => new Promise<void>((r) => setImmediate(r));
  return {
    get: async (k) => (await tick(), view.get(k)),
    put: async (k, v) => (await tick(), view.put(k, v)),
    delete: async (k) => (await tick(), view.delete(k)),
    list: async (p) => (await tick(), view.list(p)),
    getJSON: async (k) => (await tick(), view.getJSON(k)),
    putJSON: async (k, v) => (await tick(), view.putJSON(k, v)),
    withLock: (k, fn) => view.withLock(k, fn),
  };
}

describe("approle secret ID uses with a store that interleaves", () => {
  it.each([1, 4])("num_uses=%i and 20 parallel logins: exactly that many succeed", async (uses) => {
    const storage = slow((await makeBarrierView("auth/approle-slow/")).view);
    const mount = testMount("approle", "auth/approle/");
    const backend = await approlePlugin.create({ mount, storage, logger: silentLogger });
    const call = (op: "write" | "read", path: string, data?: Record<string, unknown>) => callBackend(backend, { op, path, data, storage, mount });
    await call("write", "role/web", {});
    const roleId = (await call("read", "role/web/role-id")).data!.role_id as string;
    const secretId = (await call("write", "role/web/secret-id", { num_uses: uses })).data!.secret_id as string;
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => call("write", "login", { role_id: roleId, secret_id: secretId })));
    const granted = results.filter((r) => r.status === "fulfilled" && r.value.auth);
    const refused = results.filter((r) => r.status === "rejected" && (r.reason as Error).message === "invalid role or secret ID");
    expect(granted).toHaveLength(uses);
    expect(refused).toHaveLength(20 - uses);
  });
});
