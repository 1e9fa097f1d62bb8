// A minimal JWKS endpoint for the auth benchmark: one RS256 key from jose, served over node:http,
// with a fetch counter (the benchmark checks that logins run from the cached JWKS).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";

export interface BenchIdp {
  url: string;
  jwksUrl: string;
  publicKey: CryptoKey;
  fetches(): number;
  sign(claims: Record<string, unknown>, ttlSeconds: number): Promise<string>;
  close(): Promise<void>;
}

export async function startBenchIdp(): Promise<BenchIdp> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench-1", alg: "RS256", use: "sig" };
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.url !== "/keys") return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksUrl: `${url}/keys`,
    publicKey,
    fetches: () => fetches,
    sign: (claims, ttlSeconds) =>
      new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "bench-1", typ: "JWT" }).setIssuer(url).setIssuedAt().setExpirationTime(`${ttlSeconds}s`).sign(privateKey),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
