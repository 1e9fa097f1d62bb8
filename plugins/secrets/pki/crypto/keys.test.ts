import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateKey, keyIdentifier, normaliseKeySpec, privateKeyOutput, publicKeyFromSpki, signerFor, spkiPublicKeyBits, type KeySpec } from "./keys.js";
import { toPem } from "./pem.js";

describe("generated keys", () => {
  const specs: KeySpec[] = [
    { type: "ec", bits: 224 },
    { type: "ec", bits: 256 },
    { type: "ec", bits: 384 },
    { type: "ec", bits: 521 },
    { type: "ed25519", bits: 0 },
    { type: "rsa", bits: 2048 },
  ];
  for (const spec of specs) {
    it(`${spec.type} ${spec.bits}: our SPKI, PKCS#8 and native encodings equal node:crypto's`, async () => {
      const key = await generateKey(spec);
      expect(key.spki.toString("hex")).toBe(createPublicKey(key.privateKey).export({ type: "spki", format: "der" }).toString("hex"));
      expect(key.pkcs8Der().toString("hex")).toBe(key.privateKey.export({ type: "pkcs8", format: "der" }).toString("hex"));
      const native = key.nativeDer();
      const expected = { ec: "sec1", rsa: "pkcs1", ed25519: "pkcs8" }[spec.type] as "sec1" | "pkcs1" | "pkcs8";
      expect(native.der.toString("hex")).toBe(key.privateKey.export({ type: expected, format: "der" }).toString("hex"));
      expect(native.label).toBe({ ec: "EC PRIVATE KEY", rsa: "RSA PRIVATE KEY", ed25519: "PRIVATE KEY" }[spec.type]);
      // The key pair works: what the private half signs, the SPKI verifies.
      const reparsed = createPrivateKey({ key: key.pkcs8Der(), format: "der", type: "pkcs8" });
      const hash = spec.type === "ed25519" ? null : "sha256";
      const sig = sign(hash, Buffer.from("x"), reparsed);
      expect(verify(hash, Buffer.from("x"), createPublicKey({ key: key.spki, format: "der", type: "spki" }), sig)).toBe(true);
      expect(keyIdentifier(spkiPublicKeyBits(key.spki)).equals(keyIdentifier(key.publicKeyBits))).toBe(true);
      expect(key.keyId().equals(keyIdentifier(key.publicKeyBits))).toBe(true);
      // Every format Vault offers for the private key, whether made ahead (pooled P-256 keys) or here.
      expect(privateKeyOutput(key, "der", "pem")).toBe(toPem(native.label, native.der).trimEnd());
      expect(privateKeyOutput(key, "der", "pem_bundle")).toBe(toPem(native.label, native.der).trimEnd());
      expect(privateKeyOutput(key, "der", "der")).toBe(native.der.toString("base64"));
      expect(privateKeyOutput(key, "pkcs8", "pem")).toBe(toPem("PRIVATE KEY", key.pkcs8Der()).trimEnd());
      // The JWK fast path of public key import yields the very same key.
      expect(publicKeyFromSpki(key.spki).export({ type: "spki", format: "der" }).toString("hex")).toBe(key.spki.toString("hex"));
    });
  }

  it("P-256 keys from the worker's pool come with their key identifier and SEC1 PEM made there, equal to ours", async () => {
    const ahead = [];
    while (ahead.length < 100) {
      const key = await generateKey({ type: "ec", bits: 256 });
      if (key.nativePem !== undefined) ahead.push(key); // keys asked for before the pool's first refill are made inline
      await new Promise((r) => setImmediate(r));
    }
    for (const key of ahead) {
      const native = key.nativeDer();
      expect(key.nativePem).toBe(toPem(native.label, native.der).trimEnd());
      expect(key.keyId().equals(keyIdentifier(key.publicKeyBits))).toBe(true);
      // The PEM is the key pair's own private half.
      const parsed = createPrivateKey(key.nativePem!);
      expect(createPublicKey(parsed).export({ type: "spki", format: "der" }).equals(key.spki)).toBe(true);
    }
  });

  it("applies Vault's key size defaults and refuses unsupported sizes", () => {
    expect(normaliseKeySpec("rsa", 0)).toEqual({ type: "rsa", bits: 2048 });
    expect(normaliseKeySpec("ec", 0)).toEqual({ type: "ec", bits: 256 });
    expect(normaliseKeySpec("ed25519", 4096)).toEqual({ type: "ed25519", bits: 0 });
    expect(() => normaliseKeySpec("rsa", 1024)).toThrow(/unsupported RSA key size 1024/);
    expect(() => normaliseKeySpec("ec", 255)).toThrow(/unsupported EC key size/);
    expect(() => normaliseKeySpec("dsa", 0)).toThrow(/unknown key_type/);
  });

  it("picks the signature algorithm from the issuer key (and signature_bits for RSA only)", async () => {
    expect(signerFor((await generateKey({ type: "ec", bits: 384 })).privateKey).algorithmOid).toBe("1.2.840.10045.4.3.3");
    expect(signerFor((await generateKey({ type: "ed25519", bits: 0 })).privateKey).algorithmOid).toBe("1.3.101.112");
    const rsa = (await generateKey({ type: "rsa", bits: 2048 })).privateKey;
    expect(signerFor(rsa).algorithmOid).toBe("1.2.840.113549.1.1.11");
    expect(signerFor(rsa, 512).algorithmOid).toBe("1.2.840.113549.1.1.13");
  });
});
