/**
 * The console's PKI page in a real browser (Debian's Chromium, headless, playwright-core) against a
 * real in-process dev server: a root CA and a role made through the API, two certificates issued
 * through the API and both listed with their names, one revoked through the console (after its
 * confirmation), the revocation checked through the API (`cert/<serial>`) and shown on the page,
 * with the CRL listing exactly that serial and the OCSP responder (asked by the page) answering
 * revoked for it and good for the other; a token without `update` on `<mount>/revoke` gets no
 * revoke button. Screenshots via test/ui/browser.ts.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

describe("the console's PKI page in Chromium", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let consoleErrors: string[];
  let launchFailure: unknown;
  let serials: { api: string; web: string };

  const api = async (method: string, path: string, body?: unknown, token = root) => {
    const r = await call(server.url, method, path, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium().catch((err: unknown) => {
      launchFailure = err;
      return undefined as unknown as Browser;
    });
    server = await startTestServer();
    root = server.rootToken!;
    await api("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
    await api("POST", "pki/root/generate/internal", { common_name: "Console Test Root CA", key_type: "ec", ttl: "8760h", issuer_name: "console-root" });
    await api("POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", max_ttl: "72h" });
    const a = await api("POST", "pki/issue/web", { common_name: "api.example.com", alt_names: "api-internal.example.com", ttl: "24h" });
    const w = await api("POST", "pki/issue/web", { common_name: "www.example.com", ttl: "48h" });
    serials = { api: a.data.serial_number, web: w.data.serial_number };
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    ({ context, page, consoleErrors } = await openConsolePage(browser, { width: 1300, ignore: (t) => /status of 404/.test(t) }));
  });

  afterEach(async () => {
    await context?.close();
  });

  const logInWithToken = async (token: string, next: string) => {
    await page.goto(`${server.url}/ui/login?next=${encodeURIComponent(next)}`);
    await page.getByRole("tab", { name: "Token" }).click();
    await page.getByRole("textbox", { name: "Token", exact: true }).fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(`${server.url}${next}`);
  };

  const row = (serial: string) => page.locator(`[data-testid="pki-certs"] tr[data-serial="${serial}"]`);

  it("lists the issuer and both certificates, revokes one after a confirmation, and shows it revoked and in the CRL", async () => {
    await logInWithToken(root, "/ui/pki");
    await page.getByTestId("pki-mounts").getByRole("link", { name: "pki/" }).click();
    await page.waitForURL(`${server.url}/ui/pki/pki`);

    // The issuer: its name, common name, expiry and default flag.
    const issuers = page.getByTestId("pki-issuers");
    await expect.poll(() => issuers.locator("tbody tr").count()).toBe(1);
    const issuerText = await issuers.locator("tbody tr").textContent();
    expect(issuerText).toContain("console-root");
    expect(issuerText).toContain("Console Test Root CA");
    expect(issuerText).toMatch(/in (364|365|366) days/);
    expect(await issuers.getByTestId("pki-issuer-default").textContent()).toBe("default");

    // Both certificates, with subject, SANs, expiry, valid and not in the CRL.
    await expect.poll(() => row(serials.api).count()).toBe(1);
    expect(await row(serials.api).textContent()).toContain("CN=api.example.com");
    expect(await row(serials.api).textContent()).toContain("api-internal.example.com");
    expect(await row(serials.api).textContent()).toMatch(/in (23|24) hours/);
    expect(await row(serials.web).textContent()).toContain("CN=www.example.com");
    expect(await row(serials.web).textContent()).toMatch(/in 2 days/);
    for (const s of [serials.api, serials.web]) {
      expect(await row(s).getByTestId("pki-cert-state").textContent()).toBe("valid");
      expect(await row(s).getByTestId("pki-cert-crl").textContent()).toBe("no");
      await expect.poll(() => row(s).getByTestId("pki-cert-ocsp").textContent()).toBe("good");
    }
    expect(await page.getByTestId("pki-crl").textContent()).toContain("0 revoked serials");
    await screenshot(page, "pki-certificates");

    // Revoke api.example.com: a confirmation first, which takes the focus; Cancel leaves it alone.
    await row(serials.api).getByRole("button", { name: `Revoke ${serials.api}` }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Yes, revoke");
    await row(serials.api).getByRole("button", { name: "Cancel" }).click();
    expect((await api("GET", `pki/cert/${serials.api}`)).data.revocation_time).toBe(0);
    await row(serials.api).getByRole("button", { name: `Revoke ${serials.api}` }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Yes, revoke");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByTestId("pki-status").textContent()).toContain(`Certificate ${serials.api} revoked at`);

    // The API agrees: revoked, the other one not.
    const revoked = await api("GET", `pki/cert/${serials.api}`);
    expect(revoked.data.revocation_time).toBeGreaterThan(0);
    expect((await api("GET", `pki/cert/${serials.web}`)).data.revocation_time).toBe(0);

    // The page shows it revoked, in the CRL; the other one valid, not in it.
    await expect.poll(() => row(serials.api).getByTestId("pki-cert-state").textContent()).toMatch(/^revoked .*(now|seconds? ago)/);
    expect(await row(serials.api).getByTestId("pki-cert-crl").textContent()).toBe("yes");
    expect(await row(serials.api).getByRole("button", { name: /^Revoke/ }).count()).toBe(0);
    expect(await row(serials.web).getByTestId("pki-cert-state").textContent()).toBe("valid");
    expect(await row(serials.web).getByTestId("pki-cert-crl").textContent()).toBe("no");
    // The OCSP responder, asked by the page: revoked for one, good for the other.
    await expect.poll(() => row(serials.api).getByTestId("pki-cert-ocsp").textContent()).toBe("revoked");
    await expect.poll(() => row(serials.web).getByTestId("pki-cert-ocsp").textContent()).toBe("good");
    expect(await page.getByTestId("pki-crl").textContent()).toContain("1 revoked serial,");
    await screenshot(page, "pki-revoked");
    expect(consoleErrors).toEqual([]);
  });

  it("shows a token that may not revoke the certificates without a revoke button", async () => {
    await api("PUT", "sys/policies/acl/pki-reader", { policy: `path "pki/*" { capabilities = ["read", "list"] }\npath "sys/mounts" { capabilities = ["read"] }` });
    const reader = (await api("POST", "auth/token/create", { policies: ["pki-reader"], ttl: "20m" })).auth.client_token as string;
    await logInWithToken(reader, "/ui/pki/pki");
    await expect.poll(() => row(serials.web).count()).toBe(1);
    await expect.poll(() => page.getByTestId("pki-read-only").textContent()).toContain("may not revoke certificates here");
    expect(await page.getByRole("button", { name: /^Revoke/ }).count()).toBe(0);
    expect((await call(server.url, "POST", "pki/revoke", { token: reader, body: { serial_number: serials.web } })).status).toBe(403);
    await screenshot(page, "pki-read-only");
  });
});
