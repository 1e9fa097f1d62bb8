import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";

/** The little of oidc-provider's API used here (the package ships no type declarations). */
interface KoaContext {
  path: string;
  method: string;
  status: number;
  body: unknown;
  get(header: string): string;
}
interface OidcProvider {
  use(mw: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type ProviderConstructor = new (issuer: string, config: Record<string, unknown>) => OidcProvider;
// A non-literal specifier keeps TypeScript from looking for declarations the package does not ship.
const loadProvider = async (): Promise<ProviderConstructor> => ((await import("oidc-provider" as string)) as { default: ProviderConstructor }).default;

/** A user the provider signs in: the dev-interaction login name is the subject. */
export type ScriptedUser = Record<string, unknown>;

export interface OpenIdProviderOptions {
  /** Redirect URIs registered for the client (the provider compares them exactly). */
  redirectUris: string[];
  /** Users by login name; their claims (email, groups...) are released by scope. */
  users: Record<string, ScriptedUser>;
}

/**
 * panva's certified OpenID Provider (`oidc-provider`), in-process on a free port of 127.0.0.1: one
 * confidential client, PKCE required, dev interactions for login and consent, and scripted users.
 * `signIn` plays the browser (plain fetch, cookies carried by hand) through login and consent.
 */
export class TestOpenIdProvider {
  readonly clientId = "leasehold";
  readonly clientSecret = randomBytes(24).toString("base64url");
  url = "";
  provider!: OidcProvider;
  /** Token endpoint requests seen, with how the client authenticated. */
  readonly tokenRequests: { auth: "basic" | "post" }[] = [];
  /** When set, the token endpoint refuses client_secret_basic with `invalid_client`. */
  refuseBasicAuth = false;
  private server!: Server;

  static async start(opts: OpenIdProviderOptions): Promise<TestOpenIdProvider> {
    const p = new TestOpenIdProvider();
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.writeHead(503).end();
    p.server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => p.server.listen(0, "127.0.0.1", resolve));
    p.url = `http://127.0.0.1:${(p.server.address() as AddressInfo).port}`;

    const { privateKey } = await generateKeyPair("RS256", { extractable: true });
    const signingKey = { ...(await exportJWK(privateKey)), kid: "op-1", use: "sig", alg: "RS256" };
    const users = opts.users;
    const Provider = await loadProvider();
    p.provider = new Provider(p.url, {
      clients: [
        {
          client_id: p.clientId,
          client_secret: p.clientSecret,
          redirect_uris: opts.redirectUris,
          grant_types: ["authorization_code"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_basic",
        },
      ],
      jwks: { keys: [signingKey] },
      cookies: { keys: [randomBytes(16).toString("hex")] },
      claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
      pkce: { required: () => true },
      // Explicit lifetimes (seconds) keep the provider from printing a notice per artifact type.
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
      features: { devInteractions: { enabled: true } },
      async findAccount(_ctx: unknown, id: string) {
        const user = users[id];
        if (!user) return undefined;
        return { accountId: id, claims: async () => ({ sub: id, ...user }) };
      },
    });
    p.provider.use(async (ctx, next) => {
      if (ctx.path === "/token" && ctx.method === "POST") {
        const basic = ctx.get("authorization").startsWith("Basic ");
        p.tokenRequests.push({ auth: basic ? "basic" : "post" });
        if (basic && p.refuseBasicAuth) {
          // What a provider that only takes client_secret_post answers (oidc-provider itself takes both).
          ctx.status = 401;
          ctx.body = { error: "invalid_client", error_description: "this client authenticates with client_secret_post" };
          return;
        }
      }
      await next();
    });
    handler = p.provider.callback();
    return p;
  }

  /**
   * Plays the browser: opens `authUrl`, signs in as `login` on the dev login form, confirms consent,
   * and follows redirects until one leaves the provider; that URL (the redirect URI with `code` and
   * `state`) is returned without being opened.
   */
  async signIn(authUrl: string, login: string): Promise<URL> {
    const out = await this.browse(authUrl, login);
    if (out.fields) throw new Error("the provider answered with a form_post page: use signInFormPost");
    return out.url;
  }

  /** As `signIn`, for response_mode=form_post: the form the provider's page would post, and where. */
  async signInFormPost(authUrl: string, login: string): Promise<{ action: URL; fields: URLSearchParams }> {
    const out = await this.browse(authUrl, login);
    if (!out.fields) throw new Error(`the provider redirected to ${out.url.origin}${out.url.pathname} instead of answering a form_post page`);
    return { action: out.url, fields: out.fields };
  }

  private async browse(authUrl: string, login: string): Promise<{ url: URL; fields?: URLSearchParams }> {
    const cookies = new Map<string, string>();
    let url = new URL(authUrl);
    let init: { method: string; body?: string; contentType?: string } = { method: "GET" };
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(url, {
        method: init.method,
        body: init.body,
        redirect: "manual",
        headers: {
          ...(cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {}),
          ...(init.contentType ? { "content-type": init.contentType } : {}),
        },
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        const eq = pair!.indexOf("=");
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(c) || value === "") cookies.delete(name);
        else cookies.set(name, value);
      }
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get("location")!, url);
        if (url.origin !== this.url) return { url };
        init = { method: "GET" };
        continue;
      }
      const html = await res.text();
      const form = /<form[^>]*>/i.exec(html)?.[0];
      const action = form && /action="([^"]+)"/i.exec(form)?.[1];
      if (res.status !== 200 || !action || !/method="post"/i.test(form)) throw new Error(`the provider answered ${res.status} at ${url.pathname}: ${html.slice(0, 500)}`);
      const fields = new URLSearchParams();
      for (const input of html.matchAll(/<input[^>]*>/gi)) {
        const name = /name="([^"]+)"/.exec(input[0])?.[1];
        if (name) fields.set(name, (/value="([^"]*)"/.exec(input[0])?.[1] ?? "").replace(/&amp;/g, "&"));
      }
      const target = new URL(action.replace(/&amp;/g, "&"), url);
      // A form to another origin is the provider's form_post answer: the browser would post it there.
      if (target.origin !== this.url) return { url: target, fields };
      if (fields.has("login")) {
        fields.set("login", login);
        fields.set("password", "any");
      }
      url = target;
      init = { method: "POST", body: fields.toString(), contentType: "application/x-www-form-urlencoded" };
    }
    throw new Error("too many redirects at the provider");
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
