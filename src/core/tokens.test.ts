import { describe, expect, it } from "vitest";
import { makeBarrierView } from "../../test/helpers/storage.js";
import type { StorageView } from "../sdk/types.js";
import { TokenStore } from "./tokens.js";

const params = { policies: ["default"], displayName: "t", ttl: 3600, renewable: true, path: "auth/token/create", authMount: "auth/token/", parent: null, mountMaxTtl: 0 };

describe("TokenStore cache", () => {
  it("a lookup that was reading when the token was revoked does not bring it back", async () => {
    const { view } = await makeBarrierView("sys/token/");
    // A storage view whose reads can be held: the value is read at once, delivered when released.
    let hold: Promise<void> | undefined;
    const gated: StorageView = {
      get: (k) => view.get(k),
      put: (k, v) => view.put(k, v),
      delete: (k) => view.delete(k),
      list: (p) => view.list(p),
      putJSON: (k, v) => view.putJSON(k, v),
      withLock: (k, fn) => view.withLock(k, fn),
      async getJSON<T>(k: string) {
        const value = await view.getJSON<T>(k);
        if (hold) await hold;
        return value;
      },
    };
    const store = new TokenStore(gated);
    const { token, entry } = await store.create(params);
    store.invalidateAll();
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const racing = store.lookup(token);
    await new Promise((r) => setTimeout(r, 10));
    hold = undefined;
    await store.revokeTree(entry);
    release();
    // The racing lookup read the entry before the revocation; it may answer with it, but it must not cache it.
    await racing;
    expect(await store.lookup(token)).toBeUndefined();
  });

  it("hands out copies: changing what a lookup returned changes nothing stored or cached", async () => {
    const { view } = await makeBarrierView("sys/token/");
    const store = new TokenStore(view);
    const { token } = await store.create(params);
    const first = (await store.lookup(token))!;
    first.policies = ["root"];
    first.expireTime = 0;
    const again = (await store.lookup(token))!;
    expect(again.policies).toEqual(["default"]);
    expect(again.expireTime).toBeGreaterThan(Date.now());
  });

  it("never caches limited-use tokens and keeps at most its size", async () => {
    const { view } = await makeBarrierView("sys/token/");
    const store = new TokenStore(view, 2);
    const limited = await store.create({ ...params, numUses: 2 });
    const e = (await store.lookup(limited.token))!;
    expect(await store.consumeUse(e)).toBe(false);
    expect((await store.lookup(limited.token))!.numUses).toBe(1);
    expect(await store.consumeUse((await store.lookup(limited.token))!)).toBe(true);
    const tokens = await Promise.all([1, 2, 3].map(() => store.create(params)));
    for (const t of tokens) expect(await store.lookup(t.token)).toBeDefined();
    for (const t of tokens) expect((await store.lookup(t.token))!.hmac).toBe(t.entry.hmac);
  });
});

describe("TokenStore accessor index", () => {
  it("is keyed by an HMAC of the accessor, and entries written in clear by older versions are moved at unseal", async () => {
    const { view } = await makeBarrierView("sys/token/");
    const store = new TokenStore(view);
    const { entry } = await store.create(params);
    // The current layout: no key names the accessor.
    expect((await view.list("accessor/")).some((k) => k.includes(entry.accessor))).toBe(false);
    expect((await store.lookupAccessor(entry.accessor))?.hmac).toBe(entry.hmac);

    // An older version's entry, keyed by the accessor in clear, for a second token.
    const legacy = await store.create(params);
    for (const ref of await store.accessorIndex()) if (ref.accessor === legacy.entry.accessor) await view.delete(`accessor/${ref.key}`);
    await view.putJSON(`accessor/${legacy.entry.accessor}`, { hmac: legacy.entry.hmac });
    expect(await store.lookupAccessor(legacy.entry.accessor)).toBeUndefined();

    expect(await store.migrateAccessorIndex()).toBe(1);
    expect(await view.get(`accessor/${legacy.entry.accessor}`)).toBeUndefined();
    expect((await store.lookupAccessor(legacy.entry.accessor))?.hmac).toBe(legacy.entry.hmac);
    expect((await store.listAccessors()).sort()).toEqual([entry.accessor, legacy.entry.accessor].sort());
    // Run again, nothing left to move.
    expect(await store.migrateAccessorIndex()).toBe(0);
  });
});
