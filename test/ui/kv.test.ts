/**
 * The console's KV version 2 pages in a real browser (Debian's Chromium, headless, playwright-core)
 * against a real in-process dev server (KV v2 at secret/): the empty state, writing a secret with
 * two keys, values masked until revealed one by one (and equal to what the API returns), a second
 * version, reading version 1, delete and undelete of the latest version, and the error for a path
 * that holds nothing. Each test saves a screenshot of the page it checked (test/ui/browser.ts).
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

const MASK = "••••••••";

describe("the console's KV v2 pages in Chromium", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let consoleErrors: string[];
  let launchFailure: unknown;

  const api = async (method: string, path: string, body?: unknown, token = root) => call(server.url, method, path, { token, body });

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium().catch((err: unknown) => {
      launchFailure = err;
      return undefined as unknown as Browser;
    });
    server = await startTestServer();
    root = server.rootToken!;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    ({ context, page, consoleErrors } = await openConsolePage(browser, { ignore: (t) => /status of 404/.test(t), watchCsp: true }));
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

  const valueOf = (key: string) => page.locator(`[data-testid="kv-values"] tr[data-key="${key}"] [data-testid="kv-value"]`);

  it("writes a secret with two keys, reveals each value as the API returns it, writes version 2, opens version 1, deletes and undeletes", async () => {
    await logInWithToken(root, "/ui/secrets");
    await page.getByTestId("kv-mounts").getByRole("link", { name: "secret/" }).click();
    await page.waitForURL(`${server.url}/ui/secrets/secret/`);
    await expect.poll(() => page.getByTestId("kv-empty").textContent()).toContain("No secrets here yet: create one");
    await screenshot(page, "kv-empty");

    // A new secret with two keys, typed through the labelled rows.
    await page.getByTestId("kv-empty").getByRole("link", { name: "create one" }).click();
    await page.getByLabel("Path").fill("app/db");
    await page.getByLabel("Key 1", { exact: true }).fill("username");
    await page.getByLabel("Value 1", { exact: true }).fill("svc-app");
    await page.getByRole("button", { name: "Add a key" }).click();
    // "Add a key" moved the focus to the new row's key: type there without clicking.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toMatch(/^kv-key-/);
    await page.keyboard.type("password");
    await page.getByLabel("Value 2", { exact: true }).fill("s3cr3t-Ä €");
    await page.getByRole("button", { name: "Save secret" }).click();
    await page.waitForURL(`${server.url}/ui/secrets/secret/show/app/db`);

    const v1 = (await api("GET", "secret/data/app/db")).body.data as { data: Record<string, string>; metadata: { version: number } };
    expect(v1.data).toEqual({ username: "svc-app", password: "s3cr3t-Ä €" });
    expect(v1.metadata.version).toBe(1);

    // Masked until revealed, one value at a time; the page holds no value before that.
    await expect.poll(() => valueOf("password").textContent()).toBe(MASK);
    await expect.poll(() => valueOf("username").textContent()).toBe(MASK);
    expect(await page.locator("main").textContent()).not.toContain("svc-app");
    await page.getByRole("button", { name: "Reveal the value of password" }).click();
    await expect.poll(() => valueOf("password").textContent()).toBe(v1.data.password);
    await expect.poll(() => valueOf("username").textContent()).toBe(MASK);
    // The keyboard reveals too.
    await page.getByRole("button", { name: "Reveal the value of username" }).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => valueOf("username").textContent()).toBe(v1.data.username);
    expect(await page.getByRole("button", { name: "Hide the value of username" }).getAttribute("aria-pressed")).toBe("true");
    await screenshot(page, "kv-secret");

    // Version 2: the editor starts from version 1's keys and values.
    await page.getByRole("button", { name: "Write a new version" }).click();
    expect(await page.getByLabel("Key 1", { exact: true }).inputValue()).toBe("password");
    await page.getByLabel("Value 1", { exact: true }).fill("rotated-2");
    await page.getByRole("button", { name: "Save new version" }).click();
    await expect.poll(() => page.getByTestId("kv-status").textContent()).toBe("Saved version 2.");
    const v2 = (await api("GET", "secret/data/app/db")).body.data as { data: Record<string, string>; metadata: { version: number } };
    expect(v2.metadata.version).toBe(2);
    expect(v2.data).toEqual({ username: "svc-app", password: "rotated-2" });
    await expect.poll(() => valueOf("password").textContent()).toBe(MASK);
    await page.getByRole("button", { name: "Reveal the value of password" }).click();
    await expect.poll(() => valueOf("password").textContent()).toBe("rotated-2");
    const versions = page.getByTestId("kv-versions");
    await expect.poll(() => versions.locator("tbody tr").count()).toBe(2);
    expect(await versions.locator('tr[data-version="2"] [data-testid="kv-version-state"]').textContent()).toContain("current");

    // Version 1 is still there, at ?version=1.
    await page.getByRole("link", { name: "Open version 1" }).click();
    await page.waitForURL(`${server.url}/ui/secrets/secret/show/app/db?version=1`);
    await expect.poll(() => page.getByTestId("kv-shown-version").textContent()).toContain("version 1");
    await page.getByRole("button", { name: "Reveal the value of password" }).click();
    await expect.poll(() => valueOf("password").textContent()).toBe("s3cr3t-Ä €");
    expect(await page.getByText("This is an older version. The latest is version 2").count()).toBe(1);
    await screenshot(page, "kv-version-1");

    // Delete the latest version (with a confirmation), then undelete it.
    await page.getByRole("link", { name: "open it" }).click();
    await page.waitForURL(`${server.url}/ui/secrets/secret/show/app/db`);
    await page.getByRole("button", { name: "Delete version 2" }).click();
    // The confirmation takes the focus: Enter confirms.
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Yes, delete version 2");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByTestId("kv-deleted").textContent()).toContain("Version 2 was deleted");
    const afterDelete = await api("GET", "secret/data/app/db");
    expect(afterDelete.status).toBe(404);
    expect(afterDelete.body.data.metadata.deletion_time).not.toBe("");
    expect(await versions.locator('tr[data-version="2"] [data-testid="kv-version-state"]').textContent()).toContain("deleted");
    expect(await page.getByTestId("kv-values").count()).toBe(0);
    await screenshot(page, "kv-deleted");

    await page.getByTestId("kv-deleted").getByRole("button", { name: "Undelete version 2" }).click();
    await expect.poll(() => page.getByTestId("kv-status").textContent()).toBe("Version 2 is back.");
    const afterUndelete = await api("GET", "secret/data/app/db");
    expect(afterUndelete.status).toBe(200);
    expect(afterUndelete.body.data.data).toEqual({ username: "svc-app", password: "rotated-2" });
    await page.getByRole("button", { name: "Reveal the value of password" }).click();
    await expect.poll(() => valueOf("password").textContent()).toBe("rotated-2");

    // The folder lists what was written.
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "app" }).click();
    await page.waitForURL(`${server.url}/ui/secrets/secret/list/app/`);
    await expect.poll(() => page.getByTestId("kv-keys").textContent()).toContain("db");
    expect(consoleErrors).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations)).toEqual([]);
  });

  it("says what to do for a secret that does not exist and for a token that may not read it", async () => {
    await api("POST", "secret/data/team/cfg", { data: { a: "1" } });
    await api("PUT", "sys/policies/acl/kv-lister", { policy: `path "secret/metadata/*" { capabilities = ["list", "read"] }` });
    const limited = (await api("POST", "auth/token/create", { policies: ["kv-lister"], ttl: "20m" })).body.auth.client_token as string;

    await logInWithToken(root, "/ui/secrets/secret/show/nothing/here");
    await expect.poll(() => page.getByTestId("kv-error").textContent()).toContain("Nothing at secret/data/nothing/here");
    expect(await page.getByTestId("kv-error").textContent()).toContain("go back to the folder");

    await page.getByRole("button", { name: "Log out" }).click();
    await logInWithToken(limited, "/ui/secrets/secret/show/team/cfg");
    await expect.poll(() => page.getByTestId("kv-error").textContent()).toContain("Your token may not read this secret (secret/data/team/cfg)");
    expect(await page.getByTestId("kv-error").textContent()).toContain("Ask an operator for a policy that grants it");
    // The metadata it may read: the versions are listed.
    await expect.poll(() => page.getByTestId("kv-versions").locator("tbody tr").count()).toBe(1);
    await screenshot(page, "kv-forbidden");
  });

  it("shows a token that may read but not write a secret its values, with no write, delete or undelete button", async () => {
    await api("POST", "secret/data/ro/cfg", { data: { region: "eu-west" } });
    await api("POST", "secret/data/ro/cfg", { data: { region: "eu-north" } });
    await api("DELETE", "secret/data/ro/cfg");
    await api("PUT", "sys/policies/acl/kv-reader", { policy: `path "secret/data/*" { capabilities = ["read"] }\npath "secret/metadata/*" { capabilities = ["read", "list"] }` });
    const reader = (await api("POST", "auth/token/create", { policies: ["kv-reader"], ttl: "20m" })).body.auth.client_token as string;

    await logInWithToken(reader, "/ui/secrets/secret/show/ro/cfg?version=1");
    await page.getByRole("button", { name: "Reveal the value of region" }).click();
    await expect.poll(() => valueOf("region").textContent()).toBe("eu-west");
    await expect.poll(() => page.getByTestId("kv-read-only").textContent()).toContain("your token may not write secret/data/ro/cfg or delete its versions");
    expect(await page.getByTestId("kv-versions").locator('tr[data-version="2"] [data-testid="kv-version-state"]').textContent()).toContain("deleted");
    expect(await page.getByRole("button", { name: "Write a new version" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: /^(Yes, )?[Dd]elete version/ }).count()).toBe(0);
    expect(await page.getByRole("button", { name: /^Undelete/ }).count()).toBe(0);
    // The server agrees with what the page hides.
    expect((await api("POST", "secret/data/ro/cfg", { data: { region: "x" } }, reader)).status).toBe(403);
    expect((await api("POST", "secret/undelete/ro/cfg", { versions: [2] }, reader)).status).toBe(403);
    await screenshot(page, "kv-read-only");
  });
});
