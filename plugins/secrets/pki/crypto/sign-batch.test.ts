import { generateKeyPairSync, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signerFor } from "./keys.js";
import { signInBatch } from "./sign-batch.js";

describe("signatures made in a batch on the event loop", () => {
  it("signs every request of a turn with its own key, and each signature verifies", async () => {
    const a = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const b = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const data = Array.from({ length: 40 }, (_, i) => Buffer.from(`TBS certificate ${i}`));
    const signatures = await Promise.all(data.map((d, i) => signInBatch("sha256", d, i % 2 ? b.privateKey : a.privateKey)));
    signatures.forEach((s, i) => {
      expect(verify("sha256", data[i], (i % 2 ? b : a).publicKey, s)).toBe(true);
      expect(verify("sha256", data[i], (i % 2 ? a : b).publicKey, s)).toBe(false);
    });
  });

  it("does not sign before the current turn's synchronous work is done, then signs the whole batch at once", async () => {
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const settled: number[] = [];
    const pending = [0, 1, 2].map((i) => signInBatch("sha256", Buffer.from([i]), key).then(() => settled.push(i)));
    await Promise.resolve();
    expect(settled).toEqual([]); // still queued: the batch runs after this turn's poll phase
    await Promise.all(pending);
    expect(settled).toEqual([0, 1, 2]);
  });

  it("fails only the request whose signature cannot be made", async () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const x25519 = generateKeyPairSync("x25519"); // a key that cannot sign
    const [ok, failed] = await Promise.allSettled([signInBatch("sha256", Buffer.from("a"), ec.privateKey), signInBatch("sha256", Buffer.from("b"), x25519.privateKey)]);
    expect(ok.status).toBe("fulfilled");
    expect(verify("sha256", Buffer.from("a"), ec.publicKey, (ok as PromiseFulfilledResult<Buffer>).value)).toBe(true);
    expect(failed.status).toBe("rejected");
  });

  it("a P-256 signer with no proof to check makes signatures that verify", async () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const signer = signerFor(pair.privateKey);
    const tbs = Buffer.from("a TBS certificate");
    expect(verify("sha256", tbs, pair.publicKey, await signer.sign(tbs))).toBe(true);
  });
});
