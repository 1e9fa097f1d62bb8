/**
 * OIDC single sign-on (Vault's `oidc/auth_url` and `oidc/callback` on a jwt mount) through the
 * real server against panva's certified OpenID Provider, in-process: the authorization code flow
 * with state, nonce and PKCE, the code exchange, ID token verification, UserInfo claims, the role's
 * bindings and mappings, single-use state, refusals, and `leasehold login -method=oidc` end to end.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { killCliProcesses, spawnCli } from "../helpers/cli-process.js";
import { call, startTestServer } from "../helpers/server.js";
import { TestOpenIdProvider } from "./helpers/openid-provider.js";

let server: RunningServer;
let base: string;
let op: TestOpenIdProvider;
let cliPort: number;
const root = { token: "root" };
/** A redirect URI of a browser console (not loopback: matched exactly). */
const UI_REDIRECT = "https://broker.example/ui/vault/auth/oidc/oidc/callback";
/** response_mode=form_post: the console's redirect URI, which auth_url turns into the API's (as Vault). */
const FORM_UI_REDIRECT = "https://broker.example/ui/vault/auth/oidc-form/oidc/callback";
const FORM_API_REDIRECT = "https://broker.example/v1/auth/oidc-form/oidc/callback";

const users = {
  alice: { email: "alice@acme.test", email_verified: true, name: "Alice Liddell", groups: ["dev", "ops"] },
  bob: { email: "bob@acme.test", email_verified: true, name: "Bob", groups: ["dev"] },
};

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function authUrl(body: Record<string, unknown> = {}): Promise<{ status: number; url: URL | undefined; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON body
  const r = await call(base, "POST", "auth/oidc/oidc/auth_url", { body: { role: "dev", redirect_uri: UI_REDIRECT, ...body } });
  return { status: r.status, url: r.body?.data?.auth_url ? new URL(r.body.data.auth_url) : undefined, body: r.body };
}

const callback = (query: Record<string, string>) => call(base, "GET", `auth/oidc/oidc/callback?${new URLSearchParams(query)}`);

/** auth_url, the provider's login and consent as `login`, and the redirect's state and code. */
async function signIn(login: string, body: Record<string, unknown> = {}): Promise<{ state: string; code: string }> {
  const { url } = await authUrl(body);
  const back = await op.signIn(url!.toString(), login);
  expect(back.toString().startsWith(String(body.redirect_uri ?? UI_REDIRECT))).toBe(true);
  return { state: back.searchParams.get("state")!, code: back.searchParams.get("code")! };
}

beforeAll(async () => {
  cliPort = await freePort();
  op = await TestOpenIdProvider.start({ redirectUris: [UI_REDIRECT, FORM_API_REDIRECT, `http://localhost:${cliPort}/oidc/callback`], users });
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await write("sys/auth/oidc", { type: "jwt" });
  await call(base, "PUT", "sys/policies/acl/sso", { ...root, body: { policy: 'path "secret/data/team/*" { capabilities = ["read"] }' } });
});
afterAll(async () => {
  await killCliProcesses();
  await server?.stop();
  await op?.close();
});

describe("oidc config and roles", () => {
  it("validates the OIDC settings with Vault's messages", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ oidc_discovery_url: op.url, oidc_client_id: "x" }, "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"],
      [{ oidc_discovery_url: op.url, oidc_client_secret: "x" }, "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"],
      [{ jwks_url: `${op.url}/jwks`, oidc_client_id: "x", oidc_client_secret: "y" }, "'oidc_discovery_url' must be set for OIDC"],
      [{ oidc_discovery_url: op.url, oidc_client_id: "x", oidc_client_secret: "y", oidc_response_mode: "fragment" }, 'invalid response_mode: "fragment"'],
      [{ oidc_discovery_url: op.url, oidc_client_id: "x", oidc_client_secret: "y", oidc_response_types: "token" }, "invalid response_types [token]. 'code' and 'id_token' are allowed"],
      [{ oidc_discovery_url: op.url, oidc_client_id: "x", oidc_client_secret: "y", oidc_response_types: "id_token" }, "query response_mode may not be used with an id_token response_type"],
    ];
    for (const [body, msg] of cases) {
      const r = await call(base, "POST", "auth/oidc/config", { ...root, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors).toEqual([msg]);
    }
  });

  it("stores the client and never returns its secret", async () => {
    await write("auth/oidc/config", { oidc_discovery_url: op.url, oidc_client_id: op.clientId, oidc_client_secret: op.clientSecret, default_role: "dev" });
    const r = await call(base, "GET", "auth/oidc/config", root);
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ oidc_discovery_url: op.url, oidc_client_id: op.clientId, default_role: "dev", oidc_response_mode: "", oidc_response_types: [] });
    expect(r.body.data).not.toHaveProperty("oidc_client_secret");
    expect(JSON.stringify(r.body)).not.toContain(op.clientSecret);
  });

  it("validates oidc roles: redirect URIs required, role type inferred as Vault would accept it", async () => {
    const noUris = await call(base, "POST", "auth/oidc/role/bad", { ...root, body: { role_type: "oidc", user_claim: "email" } });
    expect(noUris.status).toBe(400);
    expect(noUris.body.errors).toEqual(["'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."]);
    const badType = await call(base, "POST", "auth/oidc/role/bad", { ...root, body: { role_type: "saml", user_claim: "email" } });
    expect(badType.body.errors).toEqual(["invalid 'role_type': saml"]);
    // No bound constraint is needed: the ID token's audience must be the client ID.
    await write("auth/oidc/role/dev", {
      allowed_redirect_uris: [UI_REDIRECT, "http://localhost:8250/oidc/callback"],
      user_claim: "email",
      groups_claim: "groups",
      oidc_scopes: "email,groups,profile",
      bound_claims: { groups: "ops" },
      claim_mappings: { email: "email", name: "name" },
      token_policies: "sso",
      token_ttl: "15m",
    });
    const r = await call(base, "GET", "auth/oidc/role/dev", root);
    expect(r.body.data).toMatchObject({
      role_type: "oidc",
      allowed_redirect_uris: [UI_REDIRECT, "http://localhost:8250/oidc/callback"],
      oidc_scopes: ["email", "groups", "profile"],
      verbose_oidc_logging: false,
      max_age: 0,
      callback_mode: "client",
      bound_audiences: [],
      token_policies: ["sso"],
      token_ttl: 900,
    });
    const verbose = await write("auth/oidc/role/dev-verbose", { role_type: "oidc", allowed_redirect_uris: UI_REDIRECT, user_claim: "sub", verbose_oidc_logging: true });
    expect(verbose.body.warnings?.[0]).toMatch(/^verbose_oidc_logging has been enabled for this role/);
  });

  it("refuses a JWT login through an oidc role", async () => {
    const r = await call(base, "POST", "auth/oidc/login", { body: { role: "dev", jwt: "a.b.c" } });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual(["role with oidc role_type is not allowed"]);
  });
});

describe("oidc auth_url", () => {
  it("answers a provider URL with state, nonce and an S256 PKCE challenge", async () => {
    const { status, url } = await authUrl();
    expect(status).toBe(200);
    expect(url!.origin + url!.pathname).toBe(`${op.url}/auth`);
    const q = url!.searchParams;
    expect(q.get("client_id")).toBe(op.clientId);
    expect(q.get("redirect_uri")).toBe(UI_REDIRECT);
    expect(q.get("response_type")).toBe("code");
    expect(q.get("scope")).toBe("openid email groups profile");
    expect(q.get("state")!.length).toBeGreaterThanOrEqual(40);
    expect(q.get("nonce")!.length).toBeGreaterThanOrEqual(40);
    expect(q.get("nonce")).not.toBe(q.get("state"));
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Every request starts a new login.
    expect((await authUrl()).url!.searchParams.get("state")).not.toBe(q.get("state"));
  });

  it("answers an empty auth_url for a redirect_uri the role does not allow (as Vault); loopback matches on any port", async () => {
    for (const redirect_uri of ["https://evil.example/callback", `${UI_REDIRECT}/x`, "http://localhost:8250/other"]) {
      const r = await authUrl({ redirect_uri });
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({ auth_url: "" });
    }
    expect((await authUrl({ redirect_uri: "http://localhost:9999/oidc/callback" })).url).toBeDefined();
  });

  it("refuses a missing redirect_uri, an unknown role, and a mount without an OIDC client", async () => {
    expect((await call(base, "POST", "auth/oidc/oidc/auth_url", { body: { role: "dev" } })).body.errors).toEqual(["missing redirect_uri"]);
    expect((await authUrl({ role: "nope" })).body.errors).toEqual(['role "nope" could not be found']);
    await write("sys/auth/jwt-only", { type: "jwt" });
    await write("auth/jwt-only/config", { oidc_discovery_url: op.url });
    const r = await call(base, "POST", "auth/jwt-only/oidc/auth_url", { body: { role: "dev", redirect_uri: UI_REDIRECT } });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual(["OIDC login is not configured for this mount"]);
  });
});

describe("oidc callback", () => {
  it("completes a login: the role's policies, claim mappings from the ID token and UserInfo", async () => {
    const started = performance.now();
    const { url } = await authUrl();
    const back = await op.signIn(url!.toString(), "alice");
    const r = await callback({ state: back.searchParams.get("state")!, code: back.searchParams.get("code")! });
    const elapsed = performance.now() - started;
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth).toMatchObject({ policies: ["default", "sso"], metadata: { role: "dev", email: "alice@acme.test", name: "Alice Liddell" }, lease_duration: 900, renewable: true });
    const self = await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.body.data).toMatchObject({ path: "auth/oidc/oidc/callback", meta: { email: "alice@acme.test", role: "dev" } });
    expect(self.body.data.display_name).toContain("alice@acme.test");
    // The client authenticated at the token endpoint as the provider's discovery document advertises first.
    expect(op.tokenRequests.at(-1)).toEqual({ auth: "basic" });
    // Warm round trips (provider keys and discovery cached), each a full login with login and consent.
    const warm: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const { state, code } = await signIn("alice");
      expect((await callback({ state, code })).status).toBe(200);
      warm.push(performance.now() - t0);
    }
    warm.sort((a, b) => a - b);
    console.log(`oidc: full login round trip (auth_url, provider login and consent, callback): first ${elapsed.toFixed(0)} ms, then median ${warm[5]!.toFixed(0)} ms (min ${warm[0]!.toFixed(0)}, max ${warm[9]!.toFixed(0)}) over 10`);
  });

  it("sends max_age and accepts an ID token whose auth_time is recent", async () => {
    await write("auth/oidc/role/recent", { allowed_redirect_uris: UI_REDIRECT, user_claim: "sub", max_age: "5m", token_policies: "sso" });
    const { url } = await authUrl({ role: "recent" });
    expect(url!.searchParams.get("max_age")).toBe("300");
    const back = await op.signIn(url!.toString(), "alice");
    const r = await callback({ state: back.searchParams.get("state")!, code: back.searchParams.get("code")! });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth.metadata).toEqual({ role: "recent" });
  });

  it("refuses a replayed state, even with its code", async () => {
    const { state, code } = await signIn("alice");
    expect((await callback({ state, code })).status).toBe(200);
    const again = await callback({ state, code });
    expect(again.status).toBe(400);
    expect(again.body.errors).toEqual(["Vault login failed. Expired or missing OAuth state."]);
    expect((await callback({ state: "made-up", code })).body.errors).toEqual(["Vault login failed. Expired or missing OAuth state."]);
  });

  it("refuses a user whose claims miss the role's bound claims", async () => {
    const { state, code } = await signIn("bob");
    const r = await callback({ state, code });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual(['error validating claims: claim "groups" does not match any associated bound claim values']);
  });

  it("checks client_nonce, refuses a bad code and uses the state once even when the login fails", async () => {
    const { state, code } = await signIn("alice", { client_nonce: "cli-nonce-1" });
    const wrong = await callback({ state, code, client_nonce: "other" });
    expect(wrong.body.errors).toEqual(["invalid client_nonce"]);
    expect((await callback({ state, code, client_nonce: "cli-nonce-1" })).body.errors).toEqual(["Vault login failed. Expired or missing OAuth state."]);

    const second = await signIn("alice", { client_nonce: "cli-nonce-2" });
    const bad = await callback({ state: second.state, code: "not-a-code", client_nonce: "cli-nonce-2" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/^Vault login failed\. Error exchanging oidc code: ".*invalid_grant.*"\.$/);
  });

  it("sends the PKCE verifier whose S256 hash was the challenge (the provider refuses any other)", async () => {
    const { url } = await authUrl();
    const challenge = url!.searchParams.get("code_challenge")!;
    expect(challenge).not.toBe(createHash("sha256").update("").digest("base64url"));
    const back = await op.signIn(url!.toString(), "alice");
    expect((await callback({ state: back.searchParams.get("state")!, code: back.searchParams.get("code")! })).status).toBe(200);
  });

  it("falls back to client_secret_post when the provider refuses client_secret_basic", async () => {
    const { state, code } = await signIn("alice");
    op.refuseBasicAuth = true;
    const seen = op.tokenRequests.length;
    try {
      const r = await callback({ state, code });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(op.tokenRequests.slice(seen)).toEqual([{ auth: "basic" }, { auth: "post" }]);
    } finally {
      op.refuseBasicAuth = false;
    }
  });

  it("refuses a code delivered with another login's state (PKCE binds the code to its login)", async () => {
    const first = await signIn("alice");
    const other = await authUrl();
    const r = await callback({ state: other.url!.searchParams.get("state")!, code: first.code });
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/^Vault login failed\. Error exchanging oidc code: ".*invalid_grant.*"\.$/);
  });

  it("answers 405 to a POST callback unless the mount uses form_post", async () => {
    const r = await call(base, "POST", "auth/oidc/oidc/callback", { body: { state: "x", code: "y" } });
    expect(r.status).toBe(405);
  });

  it("response_mode=form_post: the posted code waits with the state for the console's GET with code=no_code (as Vault)", async () => {
    await write("sys/auth/oidc-form", { type: "jwt" });
    await write("auth/oidc-form/config", { oidc_discovery_url: op.url, oidc_client_id: op.clientId, oidc_client_secret: op.clientSecret, oidc_response_mode: "form_post" });
    await write("auth/oidc-form/role/dev", { allowed_redirect_uris: FORM_UI_REDIRECT, user_claim: "email", oidc_scopes: "email", token_policies: "sso" });
    const started = await call(base, "POST", "auth/oidc-form/oidc/auth_url", { body: { role: "dev", redirect_uri: FORM_UI_REDIRECT } });
    const url = new URL(started.body.data.auth_url);
    expect(url.searchParams.get("response_mode")).toBe("form_post");
    expect(url.searchParams.get("redirect_uri")).toBe(FORM_API_REDIRECT);

    const { action, fields } = await op.signInFormPost(url.toString(), "alice");
    expect(action.toString()).toBe(FORM_API_REDIRECT);
    const state = fields.get("state")!;
    expect(fields.get("code")).toBeTruthy();
    // The browser posts the provider's form to the API, as a form.
    const posted = await fetch(`${base}/v1/auth/oidc-form/oidc/callback`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: fields.toString() });
    expect(posted.status).toBe(200);
    expect(posted.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await posted.text();
    expect(html).toContain(`localStorage.setItem("oidcState"`);
    expect(html).toContain(JSON.stringify(JSON.stringify({ path: "oidc-form", code: "no_code", state })));

    const r = await call(base, "GET", `auth/oidc-form/oidc/callback?${new URLSearchParams({ state, code: "no_code" })}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.auth).toMatchObject({ policies: ["default", "sso"], metadata: { role: "dev" } });
    const unknown = await fetch(`${base}/v1/auth/oidc-form/oidc/callback`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "state=made-up&code=x" });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("Vault login failed. Expired or missing OAuth state.");
  });
});

describe("leasehold login -method=oidc", () => {
  it("prints the URL, takes the provider's redirect on its loopback port, and stores the token", async () => {
    const home = mkdtempSync(join(tmpdir(), "leasehold-oidc-cli-"));
    const cli = spawnCli(["login", "-method=oidc", "role=dev", `port=${cliPort}`, "skip_browser=true"], { HOME: home, LEASEHOLD_ADDR: base, LEASEHOLD_TOKEN: "", VAULT_TOKEN: "" });
    let printed: URL | undefined;
    for (let i = 0; i < 300 && !printed; i++) {
      const m = /^ {4}(http\S+)$/m.exec(cli.stderr());
      if (m) printed = new URL(m[1]!);
      else await new Promise((r) => setTimeout(r, 50));
      if (cli.proc.exitCode !== null) throw new Error(`the CLI exited early: ${cli.stderr()}`);
    }
    expect(printed, cli.stderr()).toBeDefined();
    expect(printed!.searchParams.get("redirect_uri")).toBe(`http://localhost:${cliPort}/oidc/callback`);
    expect(printed!.searchParams.get("code_challenge_method")).toBe("S256");

    // The test is the browser: through the provider, then to the CLI's callback listener.
    const back = await op.signIn(printed!.toString(), "alice");
    expect(`${back.origin}${back.pathname}`).toBe(`http://localhost:${cliPort}/oidc/callback`);
    back.hostname = "127.0.0.1";
    // A redirect with another state (another login, or a local process) is refused; the CLI keeps waiting.
    const forged = await fetch(`http://127.0.0.1:${cliPort}/oidc/callback?state=forged&code=x`);
    expect(forged.status).toBe(400);
    expect(cli.proc.exitCode).toBeNull();
    const page = await fetch(back);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Authentication succeeded");

    expect((await cli.exited).code, cli.stderr()).toBe(0);
    expect(cli.stdout()).toContain("Success! You are now authenticated.");
    const token = readFileSync(join(home, ".leasehold-token"), "utf8").trim();
    const self = await call(base, "GET", "auth/token/lookup-self", { token });
    expect(self.status).toBe(200);
    expect(self.body.data).toMatchObject({ policies: ["default", "sso"], meta: { email: "alice@acme.test", role: "dev" } });
  });

  it("takes a response_mode=form_post answer: the browser posts the form to the CLI's listener", async () => {
    await write("auth/oidc-form/role/cli", { allowed_redirect_uris: "http://localhost:8250/oidc/callback", user_claim: "email", oidc_scopes: "email", token_policies: "sso" });
    const home = mkdtempSync(join(tmpdir(), "leasehold-oidc-cli-"));
    const cli = spawnCli(["login", "-method=oidc", "-path=oidc-form", "role=cli", `port=${cliPort}`, "skip_browser=true", "-format=json"], { HOME: home, LEASEHOLD_ADDR: base, LEASEHOLD_TOKEN: "", VAULT_TOKEN: "" });
    let printed: string | undefined;
    for (let i = 0; i < 300 && !printed; i++) {
      printed = /^ {4}(http\S+)$/m.exec(cli.stderr())?.[1];
      if (!printed) await new Promise((r) => setTimeout(r, 50));
      if (cli.proc.exitCode !== null) throw new Error(`the CLI exited early: ${cli.stderr()}`);
    }
    const { action, fields } = await op.signInFormPost(printed!, "alice");
    expect(action.toString()).toBe(`http://localhost:${cliPort}/oidc/callback`);
    action.hostname = "127.0.0.1";
    const page = await fetch(action, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: fields.toString() });
    expect(page.status).toBe(200);
    expect((await cli.exited).code, cli.stderr()).toBe(0);
    const printedAuth = JSON.parse(cli.stdout()).auth;
    expect(printedAuth).toMatchObject({ policies: ["default", "sso"], metadata: { role: "cli" } });
    expect(readFileSync(join(home, ".leasehold-token"), "utf8").trim()).toBe(printedAuth.client_token);
  });

  it("fails with Vault's message when the role does not allow the CLI's redirect URI", async () => {
    await write("auth/oidc/role/ui-only", { role_type: "oidc", allowed_redirect_uris: UI_REDIRECT, user_claim: "email" });
    const home = mkdtempSync(join(tmpdir(), "leasehold-oidc-cli-"));
    const cli = spawnCli(["login", "-method=oidc", "role=ui-only", `port=${cliPort}`, "skip_browser=true"], { HOME: home, LEASEHOLD_ADDR: base, LEASEHOLD_TOKEN: "", VAULT_TOKEN: "" });
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr()).toContain(`Unable to authorize role "ui-only" with redirect_uri "http://localhost:${cliPort}/oidc/callback"`);
  });
});
