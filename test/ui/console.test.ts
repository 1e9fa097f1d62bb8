/**
 * The operator console in a real browser (Debian's Chromium, headless, driven by playwright-core)
 * against a real in-process dev server: userpass login, the overview, errors from the API, where
 * the token is kept, the Content-Security-Policy, and a token that may not read sys/audit.
 * Each test saves a screenshot of the page it checked (test/ui/browser.ts: a temporary folder, docs/screenshots/ with LEASEHOLD_UPDATE_SCREENSHOTS=1).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { CONSOLE_SECURITY_HEADERS } from "../../src/server/ui.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

const OPERATOR = { username: "alice", password: "correct horse battery staple" };
const VIEWER = { username: "bob", password: "another long passphrase" };

const OPERATOR_POLICY = `
path "sys/leases/count" { capabilities = ["read"] }
path "sys/audit" { capabilities = ["read", "sudo"] }
`;
const VIEWER_POLICY = `
path "sys/leases/count" { capabilities = ["read"] }
`;

describe("the operator console in Chromium", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  const auditDir = mkdtempSync(join(tmpdir(), "leasehold-console-audit-"));
  /** Errors the page printed to its console (CSP violations are reported there too). */
  let consoleErrors: string[];
  /** Why the browser did not start: every test then fails with it (none is skipped). */
  let launchFailure: unknown;

  const api = async (method: string, path: string, body?: unknown, token = root) => {
    const answer = await call(server.url, method, path, { token, body });
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
    await api("POST", "sys/auth/userpass", { type: "userpass" });
    await api("PUT", "sys/policies/acl/operator", { policy: OPERATOR_POLICY });
    await api("PUT", "sys/policies/acl/viewer", { policy: VIEWER_POLICY });
    await api("POST", `auth/userpass/users/${OPERATOR.username}`, { password: OPERATOR.password, token_policies: "operator", token_ttl: "1h" });
    await api("POST", `auth/userpass/users/${VIEWER.username}`, { password: VIEWER.password, token_policies: "viewer", token_ttl: "1h" });
    await api("PUT", "sys/audit/file", { type: "file", description: "every request, HMACed", options: { file_path: join(auditDir, "audit.log") } });
    // Tokens with a TTL are leases: three under auth/token/create.
    for (let i = 0; i < 3; i++) await api("POST", "auth/token/create", { ttl: "30m", policies: ["default"] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(auditDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    // Counts Content-Security-Policy violations as the page sees them.
    ({ context, page, consoleErrors } = await openConsolePage(browser, { height: 860, watchCsp: true }));
  });

  afterEach(async () => {
    await context?.close();
  });

  const logInWithUserpass = async (user: { username: string; password: string }) => {
    await page.goto(`${server.url}/ui/`);
    await page.waitForURL(/\/ui\/login/);
    await page.getByRole("tab", { name: "Userpass" }).click();
    await page.getByLabel("Username").fill(user.username);
    await page.getByLabel("Password", { exact: true }).fill(user.password);
    await page.getByRole("button", { name: "Log in" }).click();
  };

  const section = (id: string) => page.locator(`section[data-section="${id}"]`);

  it("logs in with userpass and shows the overview: unsealed, version, HA, lease counts by state and mount, audit devices", async () => {
    await logInWithUserpass(OPERATOR);
    await page.waitForURL(`${server.url}/ui/`);
    await expect.poll(() => page.getByTestId("seal-state").textContent()).toBe("unsealed");
    await expect.poll(() => page.getByTestId("lease-total").textContent()).toMatch(/leases? in all/);
    // What the page shows is what the API says (read after the page did: nothing changes in between).
    const counts = (await api("GET", "sys/leases/count")).data as { lease_count: number; by_state: Record<string, number>; by_mount: Record<string, number> };
    expect(counts.lease_count).toBeGreaterThanOrEqual(4); // three created tokens and alice's login
    expect(await page.getByTestId("lease-total").textContent()).toBe(`${counts.lease_count.toLocaleString("en-US")} leases in all.`);
    const byMount = page.getByTestId("leases-by-mount");
    for (const [mount, n] of Object.entries(counts.by_mount)) {
      await expect.poll(() => byMount.locator("tr", { hasText: mount }).locator("td").textContent()).toBe(String(n));
    }
    const byState = section("leases").locator("table", { hasText: "By state" });
    expect(await byState.locator("tr", { hasText: "active" }).locator("td").textContent()).toBe(String(counts.by_state.active));
    const version = ((await api("GET", "sys/seal-status")) as { version: string }).version;
    expect(await section("status").textContent()).toContain(version);
    expect(await page.getByTestId("ha-mode").textContent()).toContain("single node");
    await expect.poll(() => page.getByTestId("audit-devices").locator("tr", { hasText: "file/" }).textContent()).toContain("every request, HMACed");
    expect(await page.locator("header").textContent()).toContain("userpass-alice");
    expect(await page.getByText(/^Updated .* \(local time\)\.$/).count()).toBe(1);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "overview");
  });

  it("shows the API's error next to the form for a wrong password, and stays logged out", async () => {
    await logInWithUserpass({ username: OPERATOR.username, password: "not the password" });
    const alert = page.locator("#userpass-error");
    await expect.poll(() => alert.textContent()).toContain("invalid username or password");
    expect(await alert.getAttribute("role")).toBe("alert");
    expect(await page.getByLabel("Password", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    expect(page.url()).toContain("/ui/login");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await screenshot(page, "login-error");
    // A wrong mount path: the server's answer again, with what to do next.
    await page.getByText("More options").click();
    await page.getByLabel("Mount path").fill("nowhere");
    await page.getByLabel("Password", { exact: true }).fill(OPERATOR.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect.poll(() => alert.textContent()).toContain("No login method is mounted at auth/nowhere/");
    expect(await alert.textContent()).toContain("The server said: no handler for route");
    await screenshot(page, "login-wrong-mount");
  });

  it("keeps the token in sessionStorage only, never in localStorage or a cookie, and forgets it at logout", async () => {
    await logInWithUserpass(OPERATOR);
    await expect.poll(() => page.getByTestId("seal-state").textContent()).toBe("unsealed");
    const stored = await page.evaluate(() => ({
      session: Object.fromEntries(Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)])),
      localKeys: Object.keys(localStorage),
      localValues: Object.keys(localStorage).map((k) => localStorage.getItem(k)),
    }));
    const token = stored.session["leasehold.token"];
    expect(token).toBeTruthy();
    // It is alice's token: the server says so.
    const self = (await api("GET", "auth/token/lookup-self", undefined, token!)).data as { display_name: string };
    expect(self.display_name).toBe("userpass-alice");
    expect(stored.localKeys).toEqual([]);
    expect(stored.localValues.join("")).not.toContain(token);
    expect(await context.cookies()).toEqual([]);
    // A reload keeps the session (same tab); logging out forgets it.
    await page.reload();
    await expect.poll(() => page.getByTestId("seal-state").textContent()).toBe("unsealed");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/ui\/login/);
    expect(await page.evaluate(() => sessionStorage.getItem("leasehold.token"))).toBeNull();
    expect(await page.getByRole("status").textContent()).toContain("logged out");
    // Another tab of the same browser starts logged out (sessionStorage is per tab).
    const other = await context.newPage();
    await other.goto(`${server.url}/ui/`);
    await other.waitForURL(/\/ui\/login/);
    await other.close();
    await screenshot(page, "logged-out");
  });

  it("is served with the strict Content-Security-Policy and causes no violation of it", async () => {
    const response = await page.goto(`${server.url}/ui/login`);
    expect(response!.headers()["content-security-policy"]).toBe(CONSOLE_SECURITY_HEADERS["Content-Security-Policy"]);
    expect(response!.headers()["x-content-type-options"]).toBe("nosniff");
    // Keyboard only: the tabs move with the arrow keys, the form submits with Enter.
    await page.getByRole("tab", { name: "Userpass" }).focus();
    await page.keyboard.press("ArrowLeft");
    expect(await page.getByRole("tab", { name: "Token" }).getAttribute("aria-selected")).toBe("true");
    await page.keyboard.press("Tab");
    await page.keyboard.type(root);
    await page.keyboard.press("Enter");
    await page.waitForURL(`${server.url}/ui/`);
    await expect.poll(() => page.getByTestId("seal-state").textContent()).toBe("unsealed");
    await expect.poll(() => page.getByTestId("audit-devices").count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations)).toEqual([]);
    expect(consoleErrors).toEqual([]);
    // The policy is enforced, and the detector above would have seen a violation: an inline style is refused.
    const applied = await page.evaluate(() => {
      const style = document.createElement("style");
      style.textContent = "body { background: rgb(255, 0, 0) !important; }";
      document.head.append(style);
      return getComputedStyle(document.body).backgroundColor;
    });
    expect(applied).not.toBe("rgb(255, 0, 0)");
    await expect.poll(() => page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations.length)).toBe(1);
    await screenshot(page, "csp");
  });

  it("explains the audit section to a token that may not read sys/audit, and still shows what it may read", async () => {
    await logInWithUserpass(VIEWER);
    await page.waitForURL(`${server.url}/ui/`);
    const audit = section("audit");
    await expect.poll(() => audit.locator('[data-state="forbidden"]').textContent()).toContain("sys/audit needs read and sudo");
    expect(await audit.locator("table").count()).toBe(0);
    await expect.poll(() => page.getByTestId("lease-total").textContent()).toMatch(/leases? in all/);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "audit-forbidden");
  });
});
