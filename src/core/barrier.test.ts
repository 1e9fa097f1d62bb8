import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SqliteStorage } from "../storage/sqlite.js";
import { Barrier } from "./barrier.js";
import { SealManager } from "./seal.js";

describe("barrier", () => {
  it("stores ciphertext only, and reads it back while unsealed", async () => {
    const physical = new SqliteStorage({ path: ":memory:" });
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.put("logical/x/secret", Buffer.from("hunter2-plaintext"));
    const raw = await physical.get("logical/x/secret");
    expect(raw).toBeDefined();
    expect(raw!.includes(Buffer.from("hunter2"))).toBe(false);
    expect((await barrier.get("logical/x/secret"))!.toString()).toBe("hunter2-plaintext");
  });

  it("refuses a ciphertext moved to another key (the path is authenticated)", async () => {
    const physical = new SqliteStorage({ path: ":memory:" });
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    await barrier.put("a", Buffer.from("value-of-a"));
    await physical.put("b", (await physical.get("a"))!);
    await expect(barrier.get("b")).rejects.toThrow();
  });

  it("answers 503 while sealed and unseals only with the right root key", async () => {
    const physical = new SqliteStorage({ path: ":memory:" });
    const barrier = new Barrier(physical);
    const root = randomBytes(32);
    await barrier.initialize(root);
    await barrier.put("k", Buffer.from("v"));
    barrier.seal();
    await expect(barrier.get("k")).rejects.toMatchObject({ status: 503 });
    expect(await barrier.unseal(randomBytes(32))).toBe(false);
    expect(barrier.sealed).toBe(true);
    expect(await barrier.unseal(root)).toBe(true);
    expect((await barrier.get("k"))!.toString()).toBe("v");
  });

  it("lists immediate children like Vault", async () => {
    const physical = new SqliteStorage({ path: ":memory:" });
    const barrier = new Barrier(physical);
    await barrier.initialize(randomBytes(32));
    for (const k of ["p/a", "p/b/c", "p/b/d", "p/e/f/g", "q/z"]) await barrier.put(k, Buffer.from("1"));
    expect(await barrier.list("p/")).toEqual(["a", "b/", "e/"]);
  });
});

describe("Shamir seal", () => {
  it("unseals with any threshold of shares and rejects a wrong combination", async () => {
    const physical = new SqliteStorage({ path: ":memory:" });
    const barrier = new Barrier(physical);
    const seal = new SealManager(barrier);
    const shares = await seal.initialize(5, 3);
    expect(shares).toHaveLength(5);
    await barrier.put("k", Buffer.from("v"));
    barrier.seal();

    await seal.submitShare(shares[4].toString("hex"));
    await seal.submitShare(shares[4].toString("hex")); // duplicates do not count
    expect(seal.progress.progress).toBe(1);
    await seal.submitShare(shares[1].toString("base64"));
    await seal.submitShare(shares[3].toString("hex"));
    expect(barrier.sealed).toBe(false);
    expect((await barrier.get("k"))!.toString()).toBe("v");

    barrier.seal();
    const forged = Buffer.from(shares[0]);
    forged[5] ^= 0xff;
    await seal.submitShare(forged.toString("hex"));
    await seal.submitShare(shares[1].toString("hex"));
    await expect(seal.submitShare(shares[2].toString("hex"))).rejects.toMatchObject({ status: 400 });
    expect(barrier.sealed).toBe(true);
    expect(seal.progress.progress).toBe(0);
  });

  it("validates share counts as Vault does", async () => {
    const seal = new SealManager(new Barrier(new SqliteStorage({ path: ":memory:" })));
    await expect(seal.initialize(3, 1)).rejects.toThrow(/greater than one/);
    await expect(seal.initialize(2, 3)).rejects.toThrow(/at most secret_shares/);
    await expect(seal.initialize(0, 0)).rejects.toThrow(/between 1 and 255/);
  });
});
