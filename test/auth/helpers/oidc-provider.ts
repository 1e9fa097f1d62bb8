import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from "jose";

interface ProviderKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

/**
 * A small OpenID Provider for tests, on node:http: `/.well-known/openid-configuration` and a JWKS
 * (`/keys`) built from jose-generated keys; tokens signed with jose. Counts fetches so tests can
 * see the broker's JWKS cache at work, and can publish new keys (rotation).
 */
export class TestOidcProvider {
  private server!: Server;
  url = "";
  discoveryFetches = 0;
  jwksFetches = 0;
  /** When set, the discovery document names this issuer instead of the provider's own URL. */
  advertisedIssuer?: string;
  /** Keys listed in the JWKS. */
  private published: ProviderKey[] = [];
  /** Keys that can sign, published or not. */
  private keys = new Map<string, ProviderKey>();

  static async start(): Promise<TestOidcProvider> {
    const p = new TestOidcProvider();
    p.server = createServer((req, res) => {
      if (req.url === "/.well-known/openid-configuration") {
        p.discoveryFetches++;
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ issuer: p.advertisedIssuer ?? p.url, jwks_uri: `${p.url}/keys`, id_token_signing_alg_values_supported: ["RS256", "ES256"] }));
      } else if (req.url === "/keys") {
        p.jwksFetches++;
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ keys: p.published.map((k) => k.jwk) }));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => p.server.listen(0, "127.0.0.1", resolve));
    p.url = `http://127.0.0.1:${(p.server.address() as AddressInfo).port}`;
    return p;
  }

  /** Makes a key; `publish` lists it in the JWKS. */
  async addKey(kid: string, alg: "RS256" | "ES256" = "RS256", publish = true): Promise<ProviderKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    const key: ProviderKey = { kid, alg, privateKey, publicKey, jwk };
    this.keys.set(kid, key);
    if (publish) this.published.push(key);
    return key;
  }

  publish(kid: string): void {
    const k = this.keys.get(kid);
    if (!k) throw new Error(`no key ${kid}`);
    if (!this.published.includes(k)) this.published.push(k);
  }

  key(kid: string): ProviderKey {
    const k = this.keys.get(kid);
    if (!k) throw new Error(`no key ${kid}`);
    return k;
  }

  /** A signed JWT: `iss` is the provider, `iat` now, `exp` in 5 minutes unless the claims say otherwise. */
  async sign(claims: JWTPayload, kid: string, header: Record<string, unknown> = {}): Promise<string> {
    const k = this.key(kid);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: this.url, iat: now, exp: now + 300, ...claims }).setProtectedHeader({ alg: k.alg, kid, typ: "JWT", ...header }).sign(k.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
