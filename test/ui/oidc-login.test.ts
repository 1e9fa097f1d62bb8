/**
 * Single sign-on in the console, in a real browser: the OIDC tab asks a jwt mount in OIDC mode for
 * the provider's address (panva's certified `oidc-provider`, in-process, with a scripted user),
 * Chromium goes through the provider's own login and consent pages, comes back to the console's
 * callback route, which finishes the login with the server (state, PKCE and nonce checked there),
 * and lands on the overview with the role's policies.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { TestOpenIdProvider } from "../auth/helpers/openid-provider.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

const users = { alice: { email: "alice@acme.test", email_verified: true, name: "Alice Liddell", groups: ["ops"] } };

describe("OIDC login in the console", () => {
  let server: RunningServer;
  let op: TestOpenIdProvider;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let consoleErrors: string[];
  let launchFailure: unknown;
  /** The console's callback route for the mount `sso` (Vault's UI path). */
  let redirectUri: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const answer = await call(server.url, method, path, { token: root, body });
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium().catch((err: unknown) => {
      launchFailure = err;
      return undefined as unknown as Browser;
    });
    server = await startTestServer({ loginRateLimit: { rate: 0, burst: 0 } });
    root = server.rootToken!;
    redirectUri = `${server.url}/ui/vault/auth/sso/oidc/callback`;
    op = await TestOpenIdProvider.start({ redirectUris: [redirectUri], users });
    await api("POST", "sys/auth/sso", { type: "jwt" });
    await api("POST", "auth/sso/config", { oidc_discovery_url: op.url, oidc_client_id: op.clientId, oidc_client_secret: op.clientSecret, default_role: "ops" });
    await api("PUT", "sys/policies/acl/ops-console", { policy: 'path "sys/leases/count" { capabilities = ["read"] }' });
    await api("POST", "auth/sso/role/ops", {
      role_type: "oidc",
      allowed_redirect_uris: [redirectUri],
      user_claim: "email",
      groups_claim: "groups",
      oidc_scopes: "email,groups",
      bound_claims: { groups: "ops" },
      token_policies: "ops-console",
      token_ttl: "30m",
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await op?.close();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    // Only the console's own errors: the provider's pages are not ours.
    ({ context, page, consoleErrors } = await openConsolePage(browser, { height: 860, ignore: (_t, p) => new URL(p.url()).origin !== server.url }));
  });

  afterEach(async () => {
    await context?.close();
  });

  it("signs in through the provider's login and consent pages and lands on the overview with the role's policies", async () => {
    await page.goto(`${server.url}/ui/`);
    await page.waitForURL(/\/ui\/login/);
    await page.getByRole("tab", { name: "OIDC" }).click();
    await page.getByLabel("Mount path").fill("sso");
    await page.getByLabel("Role").fill("ops");
    await page.getByRole("button", { name: "Sign in with OIDC" }).click();

    // The provider's own pages (oidc-provider's dev interactions): login, then consent.
    await page.waitForURL((u) => u.origin === op.url);
    await page.locator('input[name="login"]').fill("alice");
    await page.locator('input[name="password"]').fill("any");
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((u) => u.origin === op.url && /consent|interaction/.test(u.pathname));
    await page.locator('button[type="submit"]').click();

    // Back at the console: the callback finishes the login, then the overview.
    await page.waitForURL(`${server.url}/ui/`, { timeout: 15_000 });
    const header = page.locator("header");
    await expect.poll(() => header.textContent()).toContain("Signed in as sso-alice@acme.test");
    expect(await header.textContent()).toContain("(default, ops-console)");
    await expect.poll(() => page.getByTestId("lease-total").textContent()).toMatch(/leases? in all/);

    // The token is the server's: an oidc login of alice through auth/sso, kept in sessionStorage.
    const token = await page.evaluate(() => sessionStorage.getItem("leasehold.token"));
    const self = await call(server.url, "GET", "auth/token/lookup-self", { token: token! });
    expect(self.status).toBe(200);
    expect(self.body.data.path).toMatch(/^auth\/sso\/oidc\/callback/);
    expect(self.body.data.policies).toEqual(["default", "ops-console"]);
    expect(self.body.data.meta?.role ?? self.body.data.metadata?.role).toBe("ops");
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "oidc-login");
  });

  it("explains a redirect URI the role does not allow, and stays on the login page", async () => {
    await api("POST", "auth/sso/role/elsewhere", { role_type: "oidc", allowed_redirect_uris: ["https://other.example/ui/vault/auth/sso/oidc/callback"], user_claim: "email", token_policies: "ops-console" });
    await page.goto(`${server.url}/ui/login`);
    await page.getByRole("tab", { name: "OIDC" }).click();
    await page.getByLabel("Mount path").fill("sso");
    await page.getByLabel("Role").fill("elsewhere");
    await page.getByRole("button", { name: "Sign in with OIDC" }).click();
    const alert = page.locator("#oidc-error");
    await expect.poll(() => alert.textContent()).toContain(`allowed_redirect_uris include ${redirectUri}`);
    expect(page.url()).toBe(`${server.url}/ui/login`);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "oidc-login-refused");
  });
});
