/**
 * A token's page in a real browser (Debian's Chromium, headless) against a real in-process server
 * with the test leasing engine: its details and the leases it created, then "revoke everything
 * this token created" after the typed confirmation, which leaves neither the token nor its leases
 * (nor the credentials in the engine).
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

describe("token page", () => {
  let server: RunningServer;
  let control: LeasingEngineControl;
  let browser: Browser;

  const api = async (method: string, path: string, body?: unknown, token = "root") => call(server.url, method, path, { token, body });

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium();
    const engine = leasingEngine();
    control = engine.control;
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
    expect((await api("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
    await api("PUT", "sys/policies/acl/app", { policy: `path "tl/creds/*" { capabilities = ["read"] }` });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("shows a token's details and leases, and revoking everything it created leaves neither", async () => {
    const created = await api("POST", "auth/token/create", { policies: ["app"], ttl: "1h", display_name: "payments", meta: { service_account_name: "payments" } });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const appToken = created.body.auth.client_token as string;
    const accessor = created.body.auth.accessor as string;
    const issued: { leaseId: string; username: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await api("GET", "tl/creds/app?ttl=30m", undefined, appToken);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      issued.push({ leaseId: r.body.lease_id, username: r.body.data.username });
    }
    // An unrelated lease (root's) must survive.
    const other = await api("GET", "tl/creds/app?ttl=30m");
    const listed = await api("GET", `sys/leasehold/leases?token_accessor=${encodeURIComponent(accessor)}`);
    const total = listed.body.data.total as number;
    expect(total).toBeGreaterThanOrEqual(3);

    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 }, colorScheme: "light" });
    await context.addInitScript(() => sessionStorage.setItem("leasehold.token", "root"));
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/ui/tokens/${encodeURIComponent(accessor)}`);

    await expect.poll(() => page.getByTestId("token-display-name").textContent(), { timeout: 10_000 }).toBe("token-payments");
    expect(await page.getByTestId("token-policies").textContent()).toBe("app, default");
    expect(await page.getByTestId("token-meta").textContent()).toBe("service_account_name=payments");
    expect(await page.getByTestId("token-ttl").textContent()).toMatch(/^(59m|1h 00m) \d\ds$/);
    await expect.poll(() => page.getByTestId("token-leases-count").textContent()).toBe(`${total} leases`);
    const shown = await page.getByTestId("token-leases").locator("tbody tr th a").allTextContents();
    for (const l of issued) expect(shown).toContain(l.leaseId);
    expect(shown).not.toContain(other.body.lease_id);

    // The button waits for the typed word.
    const button = page.getByRole("button", { name: "Revoke everything this token created" });
    expect(await button.isDisabled()).toBe(true);
    await page.getByLabel("Type revoke to confirm").fill("yes");
    expect(await button.isDisabled()).toBe(true);
    await page.getByLabel("Type revoke to confirm").fill("revoke");
    await screenshot(page, "token-page");
    await button.click();

    await expect.poll(() => page.getByTestId("token-outcome").textContent(), { timeout: 10_000 }).toBe(`Revoked: the token, its child tokens and the ${total} leases it created are gone.`);
    await expect.poll(() => page.getByTestId("token-error").count()).toBe(1);
    await expect.poll(() => page.getByTestId("token-leases-empty").count()).toBe(1);
    await screenshot(page, "token-revoked");

    const lookup = await api("PUT", "auth/token/lookup-accessor", { accessor });
    expect([400, 403]).toContain(lookup.status);
    await expect.poll(async () => (await api("GET", `sys/leasehold/leases?token_accessor=${encodeURIComponent(accessor)}`)).body.data.total).toBe(0);
    for (const l of issued) {
      expect((await api("PUT", "sys/leases/lookup", { lease_id: l.leaseId })).status).toBe(400);
      expect(control.issued.has(l.username)).toBe(false);
    }
    expect((await api("PUT", "sys/leases/lookup", { lease_id: other.body.lease_id })).status).toBe(200);
    expect((await api("GET", "auth/token/lookup-self", undefined, appToken)).status).toBe(403);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it("links a soon-expiring lease on the overview to its creator's token page", async () => {
    const created = await api("POST", "auth/token/create", { policies: ["app"], ttl: "1h", display_name: "billing" });
    const accessor = created.body.auth.accessor as string;
    const r = await api("GET", "tl/creds/app?ttl=10m", undefined, created.body.auth.client_token);
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
    await context.addInitScript(() => sessionStorage.setItem("leasehold.token", "root"));
    const page = await context.newPage();
    await page.goto(`${server.url}/ui/`);
    const row = page.getByTestId("expiring-table").locator(`tr[data-lease="${r.body.lease_id}"]`);
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    await row.getByTestId("creator-link").click();
    await page.waitForURL(`${server.url}/ui/tokens/${encodeURIComponent(accessor)}`);
    await expect.poll(() => page.getByTestId("token-display-name").textContent(), { timeout: 10_000 }).toBe("token-billing");
    await context.close();
  });
});
