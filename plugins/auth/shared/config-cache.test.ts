import { describe, expect, it } from "vitest";
import { ConfigCache } from "./config-cache.js";

describe("ConfigCache", () => {
  it("loads once and shares the result between callers", async () => {
    let loads = 0;
    const cache = new ConfigCache(async () => ++loads);
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect([a, b, await cache.get()]).toEqual([1, 1, 1]);
    expect(loads).toBe(1);
  });

  it("keeps an absent config until a write sets one", async () => {
    let loads = 0;
    const cache = new ConfigCache<string>(async () => {
      loads++;
      return undefined;
    });
    expect(await cache.get()).toBeUndefined();
    expect(await cache.get()).toBeUndefined();
    expect(loads).toBe(1);
    cache.set("written");
    expect(await cache.get()).toBe("written");
    expect(loads).toBe(1);
  });

  it("does not keep a failed load: the next call tries again", async () => {
    let fail = true;
    const cache = new ConfigCache(async () => {
      if (fail) throw new Error("storage unavailable");
      return "loaded";
    });
    await expect(cache.get()).rejects.toThrow("storage unavailable");
    fail = false;
    expect(await cache.get()).toBe("loaded");
  });
});
