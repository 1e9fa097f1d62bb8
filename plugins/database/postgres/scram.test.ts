import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { scramVerifier } from "./scram.js";

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();

describe("scramVerifier", () => {
  // RFC 7677 section 3: user "user", password "pencil". The verifier must let the RFC's client proof
  // pass and produce the RFC's server signature.
  it("matches the RFC 7677 exchange", async () => {
    const verifier = await scramVerifier("pencil", { salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64") });
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    expect(m).not.toBeNull();
    const [, salt, storedKeyB64, serverKeyB64] = m!;
    expect(salt).toBe("W22ZaJ0SNY7soEsUEjb6gQ==");
    const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    const serverSignature = hmac(Buffer.from(serverKeyB64, "base64"), authMessage).toString("base64");
    expect(serverSignature).toBe("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    // The server's check: ClientKey = proof XOR HMAC(StoredKey, AuthMessage); SHA-256(ClientKey) = StoredKey.
    const proof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64");
    const signature = hmac(Buffer.from(storedKeyB64, "base64"), authMessage);
    const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]));
    expect(createHash("sha256").update(clientKey).digest("base64")).toBe(storedKeyB64);
  });

  it("uses a fresh salt each time and never contains the password", async () => {
    const a = await scramVerifier("Correct-Horse-1");
    const b = await scramVerifier("Correct-Horse-1");
    expect(a).not.toBe(b);
    expect(a).not.toContain("Correct-Horse-1");
  });
});
