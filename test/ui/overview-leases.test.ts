/**
 * The overview's lease sections in a real browser (Debian's Chromium, headless) against a real
 * in-process server with the test leasing engine: leases whose revocation keeps failing become
 * irrevocable and are listed with their error; Retry (after the failure is fixed) revokes one,
 * Force revoke removes another's record after a confirmation; a lease expiring within the hour is
 * listed with a countdown and one expiring later is not.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

/** Fast retries so a failing revocation becomes irrevocable within a second. */
const RETRY = { baseMs: 50, capMs: 200, maxAttempts: 3 };

describe("overview: irrevocable and soon-expiring leases", () => {
  let server: RunningServer;
  let control: LeasingEngineControl;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const api = async (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
  const issue = async (ttl: string) => {
    const r = await api("GET", `tl/creds/app?ttl=${ttl}&max_ttl=3h`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { leaseId: r.body.lease_id as string, username: r.body.data.username as string };
  };
  const irrevocableIds = async (): Promise<string[]> => ((await api("GET", "sys/leases?type=irrevocable")).body.data.leases as { lease_id: string }[]).map((l) => l.lease_id);

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium();
    const engine = leasingEngine();
    control = engine.control;
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin], leaseRetry: RETRY });
    expect((await api("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
    context = await browser.newContext({ viewport: { width: 1200, height: 1000 }, colorScheme: "light" });
    await context.addInitScript(() => sessionStorage.setItem("leasehold.token", "root"));
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("lists irrevocable leases with their error, retries one, force-revokes another, and lists only leases expiring within the hour", async () => {
    const retried = await issue("1h");
    const forced = await issue("1h");
    control.failRevoke = true;
    for (const l of [retried, forced]) expect((await api("PUT", "sys/leases/revoke", { lease_id: l.leaseId })).status).toBe(500);
    await expect.poll(irrevocableIds, { timeout: 10_000 }).toEqual(expect.arrayContaining([retried.leaseId, forced.leaseId]));
    const soon = await issue("30m");
    const later = await issue("2h");

    await page.goto(`${server.url}/ui/`);
    const irrevocable = page.getByTestId("irrevocable-table");
    await expect.poll(() => irrevocable.locator("tbody tr").count(), { timeout: 10_000 }).toBe(2);
    const retriedRow = irrevocable.locator(`tr[data-lease="${retried.leaseId}"]`);
    const forcedRow = irrevocable.locator(`tr[data-lease="${forced.leaseId}"]`);
    expect(await retriedRow.getByTestId("irrevocable-error").textContent()).toBe("external system unreachable");
    expect(await forcedRow.getByTestId("irrevocable-error").textContent()).toBe("external system unreachable");

    // Expiring within the hour: the 30-minute lease with a countdown, not the 2-hour one (nor the irrevocable ones).
    const expiring = page.getByTestId("expiring-table");
    await expect.poll(() => expiring.locator("tbody tr").count()).toBe(1);
    expect(await expiring.locator(`tr[data-lease="${soon.leaseId}"]`).count()).toBe(1);
    expect(await expiring.locator(`tr[data-lease="${later.leaseId}"]`).count()).toBe(0);
    const countdown = expiring.getByTestId("expiring-countdown");
    expect(await countdown.textContent()).toMatch(/^in (29m|30m) \d\ds$/);
    const first = await countdown.textContent();
    await expect.poll(() => countdown.textContent(), { timeout: 3_000 }).not.toBe(first);
    await screenshot(page, "overview-irrevocable");

    // Retry while the engine still fails: the lease stays, with the error shown.
    await retriedRow.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => page.getByTestId("irrevocable-outcome").textContent()).toContain("Retry failed, the lease stays irrevocable");
    expect(control.issued.has(retried.username)).toBe(true);

    // The failure is fixed: Retry revokes it and the row goes.
    control.failRevoke = false;
    await retriedRow.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => page.getByTestId("irrevocable-outcome").textContent()).toBe(`Revoked ${retried.leaseId}: the engine revoked the credential this time.`);
    await expect.poll(() => irrevocable.locator("tbody tr").count()).toBe(1);
    expect(control.issued.has(retried.username)).toBe(false);
    expect(await irrevocableIds()).toEqual([forced.leaseId]);

    // Force revoke asks first; the record goes although the engine was never told (the credential still exists).
    control.failRevoke = true;
    await forcedRow.getByRole("button", { name: "Force revoke" }).click();
    const confirm = page.getByRole("group", { name: `Confirm force revocation of ${forced.leaseId}` });
    expect(await confirm.textContent()).toContain("the credential may still exist");
    expect(await irrevocableIds()).toEqual([forced.leaseId]);
    await confirm.getByRole("button", { name: "Remove the record" }).click();
    await expect.poll(() => page.getByTestId("irrevocable-empty").count()).toBe(1);
    expect(await irrevocableIds()).toEqual([]);
    expect((await api("PUT", "sys/leases/lookup", { lease_id: forced.leaseId })).status).toBe(400);
    expect(control.issued.has(forced.username)).toBe(true);
    await screenshot(page, "overview-irrevocable-cleared");
    expect(pageErrors).toEqual([]);
  });

  it("hides Retry and Force revoke from a token that may only list irrevocable leases", async () => {
    const stuck = await issue("1h");
    control.failRevoke = true;
    expect((await api("PUT", "sys/leases/revoke", { lease_id: stuck.leaseId })).status).toBe(500);
    await expect.poll(irrevocableIds, { timeout: 10_000 }).toContain(stuck.leaseId);
    await api("PUT", "sys/policies/acl/watcher", { policy: `path "sys/leases" { capabilities = ["read", "sudo"] }` });
    const created = await api("POST", "auth/token/create", { policies: ["watcher"], ttl: "1h" });
    const watcher = created.body.auth.client_token as string;
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await ctx.addInitScript((t: string) => sessionStorage.setItem("leasehold.token", t), watcher);
    const p = await ctx.newPage();
    await p.goto(`${server.url}/ui/`);
    const row = p.getByTestId("irrevocable-table").locator(`tr[data-lease="${stuck.leaseId}"]`);
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    expect(await row.getByRole("button").count()).toBe(0);
    expect(await row.textContent()).toContain("Your token may not revoke it");
    // The expiring section says which capability it lacks.
    expect(await p.locator("#expiring").textContent()).toContain("sys/leasehold/leases needs read and sudo");
    await ctx.close();
    control.failRevoke = false;
    await api("PUT", `sys/leases/revoke-force/${stuck.leaseId}`);
  });
});
