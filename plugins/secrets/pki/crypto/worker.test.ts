import { createECDH, createHash, generateKeyPairSync, sign, verify, type JsonWebKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signerFor } from "./keys.js";
import { cryptoWorker, ProofRefused } from "./worker.js";

describe("the PKI crypto worker", () => {
  it("hands out distinct, valid P-256 key pairs, with their key identifier and the SEC1 layout filled in", async () => {
    const layout = [Buffer.from("prefix"), Buffer.from("middle")] as const;
    // One at a time, letting the worker's answers in: the pool refills as it drains.
    const keys = [];
    while (keys.filter((k) => k.sec1Pem !== undefined).length < 150) {
      keys.push(await cryptoWorker.p256Key(layout));
      await new Promise((r) => setImmediate(r));
    }
    for (const k of keys) expect(k.d.length).toBe(32);
    const fromWorker = keys.filter((k) => k.sec1Pem !== undefined);
    for (const k of fromWorker) {
      expect(k.keyId!.equals(createHash("sha1").update(k.point).digest())).toBe(true);
      const lines = k.sec1Pem!.split("\n");
      expect(lines[0]).toBe("-----BEGIN EC PRIVATE KEY-----");
      expect(lines.at(-1)).toBe("-----END EC PRIVATE KEY-----");
      expect(lines.slice(1, -1).every((l, i, all) => l.length === 64 || (i === all.length - 1 && l.length > 0 && l.length <= 64))).toBe(true);
      expect(Buffer.from(lines.slice(1, -1).join(""), "base64").equals(Buffer.concat([layout[0], k.d, layout[1], k.point]))).toBe(true);
    }
    const scalars = new Set(keys.map((k) => k.d.toString("hex")));
    expect(scalars.size).toBe(keys.length);
    for (const { d, point } of keys.slice(0, 20)) {
      const ecdh = createECDH("prime256v1");
      ecdh.setPrivateKey(d);
      expect(ecdh.getPublicKey().equals(point)).toBe(true); // the point belongs to the scalar
      expect(point[0]).toBe(0x04);
      expect(point.length).toBe(65);
    }
  });

  it("signs with each issuer key it is handed, and the signatures verify", async () => {
    const a = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const b = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const data = Buffer.from("a TBS certificate");
    const holder = generateKeyPairSync("ed25519");
    const cri = Buffer.from("certification request info");
    const proof = { hash: null, data: cri, jwk: holder.publicKey.export({ format: "jwk" }) as JsonWebKey, signature: sign(null, cri, holder.privateKey) };
    const [sa, sb, sa2] = await Promise.all([cryptoWorker.verifyThenSign("sha256", data, a.privateKey, proof), cryptoWorker.verifyThenSign("sha256", data, b.privateKey, proof), cryptoWorker.verifyThenSign("sha256", data, a.privateKey, proof)]);
    expect(verify("sha256", data, a.publicKey, sa)).toBe(true);
    expect(verify("sha256", data, b.publicKey, sb)).toBe(true);
    expect(verify("sha256", data, b.publicKey, sa)).toBe(false);
    expect(verify("sha256", data, a.publicKey, sa2)).toBe(true);
  });

  it("verifies signatures with JWK public keys (P-256, P-384, Ed25519), in batches, and refuses wrong ones", async () => {
    const data = Buffer.from("a certification request info");
    const keys = [
      { pair: generateKeyPairSync("ec", { namedCurve: "P-256" }), hash: "sha256" },
      { pair: generateKeyPairSync("ec", { namedCurve: "P-384" }), hash: "sha384" },
      { pair: generateKeyPairSync("ed25519"), hash: null },
    ];
    const checks = keys.flatMap(({ pair, hash }) => {
      const jwk = pair.publicKey.export({ format: "jwk" }) as JsonWebKey;
      const good = sign(hash, data, pair.privateKey);
      const bad = Buffer.from(good);
      bad[bad.length - 1] ^= 1;
      return [
        cryptoWorker.verify({ hash, data, jwk, signature: good }).then((ok) => expect(ok).toBe(true)),
        cryptoWorker.verify({ hash, data: Buffer.from("other data"), jwk, signature: good }).then((ok) => expect(ok).toBe(false)),
        cryptoWorker.verify({ hash, data, jwk, signature: bad }).then((ok) => expect(ok).toBe(false)),
      ];
    });
    await Promise.all(checks);
  });

  it("signs with a proof only when the proof verifies, each request of a batch on its own", async () => {
    const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const holder = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = holder.publicKey.export({ format: "jwk" }) as JsonWebKey;
    const cri = Buffer.from("certification request info");
    const good = sign("sha256", cri, holder.privateKey);
    const forged = sign("sha256", cri, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    const tbs = Buffer.from("a TBS certificate");
    const [ok, refused, broken] = await Promise.allSettled([
      cryptoWorker.verifyThenSign("sha256", tbs, ca.privateKey, { hash: "sha256", data: cri, jwk, signature: good }),
      cryptoWorker.verifyThenSign("sha256", tbs, ca.privateKey, { hash: "sha256", data: cri, jwk, signature: forged }),
      cryptoWorker.verifyThenSign("sha256", tbs, ca.privateKey, { hash: "sha256", data: cri, jwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" }, signature: good }),
    ]);
    expect(ok.status).toBe("fulfilled");
    expect(verify("sha256", tbs, ca.publicKey, (ok as PromiseFulfilledResult<Buffer>).value)).toBe(true);
    for (const r of [refused, broken]) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ProofRefused);
    }
  });

  it("signers of other key types check a proof before signing too", async () => {
    const signer = signerFor(generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey);
    const holder = generateKeyPairSync("ed25519");
    const jwk = holder.publicKey.export({ format: "jwk" }) as JsonWebKey;
    const cri = Buffer.from("certification request info");
    const tbs = Buffer.from("a TBS certificate");
    const signature = await signer.sign(tbs, { hash: null, data: cri, jwk, signature: sign(null, cri, holder.privateKey) });
    expect(verify("sha384", tbs, signer.key, signature)).toBe(true);
    await expect(signer.sign(tbs, { hash: null, data: Buffer.from("other"), jwk, signature: sign(null, cri, holder.privateKey) })).rejects.toBeInstanceOf(ProofRefused);
  });
});
