/**
 * The console's policies pages in a real browser (Debian's Chromium, headless, playwright-core)
 * against a real in-process dev server: the server's refusal of a policy shown at the line it
 * names (a syntax error with line and column, a rule error with a line) with nothing saved, then a
 * fix that saves; create and delete with a confirmation; "what may this token do at this path";
 * a token that may read policies but not update them sees no save or delete button.
 * Each test saves a screenshot of the page it checked (test/ui/browser.ts).
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { policyProblemOf } from "../../src/ui/pages/policy-error.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

const DEV_POLICY = `# Developers read their team's secrets
path "secret/data/dev/*" {
  capabilities = ["read", "list"]
}
`;

const READER_POLICY = `
path "sys/policies/acl" { capabilities = ["list"] }
path "sys/policies/acl/*" { capabilities = ["read", "list"] }
path "secret/data/shared/*" { capabilities = ["read"] }
`;

describe("the console's policies pages in Chromium", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let reader: string;
  let consoleErrors: string[];
  let launchFailure: unknown;

  const api = async (method: string, path: string, body?: unknown, token = root) => call(server.url, method, path, { token, body });
  const storedPolicy = async (name: string) => (await api("GET", `sys/policies/acl/${name}`)).body?.data?.policy as string | undefined;

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium().catch((err: unknown) => {
      launchFailure = err;
      return undefined as unknown as Browser;
    });
    server = await startTestServer();
    root = server.rootToken!;
    await api("PUT", "sys/policies/acl/policy-reader", { policy: READER_POLICY });
    reader = (await api("POST", "auth/token/create", { policies: ["policy-reader"], ttl: "30m" })).body.auth.client_token as string;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    await api("PUT", "sys/policies/acl/dev", { policy: DEV_POLICY });
    ({ context, page, consoleErrors } = await openConsolePage(browser, { ignore: (t) => /status of (400|404)/.test(t), watchCsp: true }));
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

  const editor = () => page.getByLabel("Policy (HCL or JSON)");
  const gutterLine = (n: number) => page.locator(`.hcl-editor .gutter [data-line="${n}"]`);

  it("shows the server's refusal next to the line it names, keeps the text, saves nothing, then saves the fix", async () => {
    await logInWithToken(root, "/ui/policies");
    await page.getByTestId("policy-list").getByRole("link", { name: "dev", exact: true }).click();
    await page.waitForURL(`${server.url}/ui/policies/dev`);
    await expect.poll(() => editor().inputValue()).toBe(DEV_POLICY);
    expect(await page.locator(".hcl-editor .gutter [data-line]").count()).toBe(DEV_POLICY.split("\n").length);

    // A syntax error: the list on line 3 is not closed; the parser names line 4, column 1.
    const broken = `# Developers read their team's secrets\npath "secret/data/dev/*" {\n  capabilities = ["read", "list"\n}\n`;
    await editor().fill(broken);
    await page.getByRole("button", { name: "Save policy" }).click();
    const serverSaid = (await api("PUT", "sys/policies/acl/dev-probe", { policy: broken })).body.errors[0] as string;
    expect(serverSaid).toMatch(/^policy "dev-probe":4:1: /);
    const message = serverSaid.replace(/^policy "dev-probe":4:1: /, "");
    await expect.poll(() => page.getByTestId("policy-problem").textContent()).toContain(`at line 4, column 1: ${message}`);
    expect(await page.getByTestId("policy-problem").textContent()).toContain("Nothing was saved");
    const beside = page.getByTestId("policy-line-problem");
    expect(await beside.getAttribute("data-line")).toBe("4");
    expect(await beside.textContent()).toContain(`Line 4, column 1: ${message}`);
    expect(await gutterLine(4).getAttribute("class")).toBe("bad");
    expect(await gutterLine(3).getAttribute("class")).toBeNull();
    // Beside line 4 on screen: just under its row of the gutter.
    const lineBox = (await gutterLine(4).boundingBox())!;
    const noteBox = (await beside.boundingBox())!;
    expect(Math.abs(noteBox.y - (lineBox.y + lineBox.height))).toBeLessThanOrEqual(2);
    expect(await editor().inputValue()).toBe(broken);
    expect(await editor().getAttribute("aria-invalid")).toBe("true");
    expect(await storedPolicy("dev")).toBe(DEV_POLICY);
    expect((await api("GET", "sys/policies/acl/dev-probe")).status).toBe(404);
    await screenshot(page, "policy-syntax-error");

    // A rule error on line 3 (an unknown capability): the message names the line, not a column.
    const misspelt = DEV_POLICY.replace('["read", "list"]', '["read", "lst"]');
    await editor().fill(misspelt);
    await page.getByRole("button", { name: "Save policy" }).click();
    await expect.poll(() => page.getByTestId("policy-line-problem").getAttribute("data-line")).toBe("3");
    expect(await page.getByTestId("policy-problem").textContent()).toContain('at line 3: path "secret/data/dev/*": unknown capability "lst"');
    expect(await gutterLine(3).getAttribute("class")).toBe("bad");
    expect(await storedPolicy("dev")).toBe(DEV_POLICY);
    // "Go to line 3" puts the caret at the start of line 3.
    await page.getByRole("button", { name: "Go to line 3" }).click();
    const caret = await editor().evaluate((el) => (el as HTMLTextAreaElement).selectionStart);
    expect(caret).toBe(misspelt.indexOf("  capabilities"));

    // The fix saves (Ctrl+S from the editor), and the marks go.
    const fixed = DEV_POLICY.replace('["read", "list"]', '["read", "list", "update"]');
    await editor().fill(fixed);
    await editor().press("Control+s");
    await expect.poll(() => page.getByTestId("policy-status").textContent()).toContain("Saved policy dev");
    expect(await storedPolicy("dev")).toBe(fixed);
    expect(await page.getByTestId("policy-problem").count()).toBe(0);
    expect(await page.locator(".hcl-editor .gutter .bad").count()).toBe(0);
    expect(consoleErrors).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations)).toEqual([]);
    await screenshot(page, "policy-saved");
  });

  it("creates a policy from the list and deletes it after a confirmation", async () => {
    await logInWithToken(root, "/ui/policies");
    await page.getByLabel("Name").fill("ci-deploy");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.waitForURL(`${server.url}/ui/policies/ci-deploy?new=1`);
    const text = `path "secret/data/ci/*" {\n  capabilities = ["read"]\n}\n`;
    await editor().fill(text);
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.waitForURL(`${server.url}/ui/policies/ci-deploy`);
    await expect.poll(() => storedPolicy("ci-deploy")).toBe(text);
    await expect.poll(() => editor().inputValue()).toBe(text);

    await page.getByRole("button", { name: "Delete policy" }).click();
    // Nothing is deleted until the confirmation.
    expect((await api("GET", "sys/policies/acl/ci-deploy")).status).toBe(200);
    await screenshot(page, "policy-delete-confirm");
    await page.getByRole("button", { name: "Yes, delete ci-deploy" }).click();
    await page.waitForURL(`${server.url}/ui/policies`);
    expect((await api("GET", "sys/policies/acl/ci-deploy")).status).toBe(404);
    await expect.poll(() => page.getByTestId("policy-list").textContent()).toContain("dev");
    expect(await page.getByTestId("policy-list").textContent()).not.toContain("ci-deploy");
  });

  it("answers what the token may do at a path, as sys/capabilities-self does", async () => {
    await logInWithToken(reader, "/ui/policies");
    const box = page.getByTestId("capabilities-box");
    const result = page.getByTestId("capabilities-result");
    for (const path of ["sys/policies/acl/dev", "secret/data/shared/db", "secret/data/other"]) {
      const expected = (await api("POST", "sys/capabilities-self", { paths: [path] }, reader)).body.data[path] as string[];
      await box.getByLabel("Path").fill(path);
      await box.getByLabel("Path").press("Enter");
      await expect.poll(() => result.getAttribute("data-capabilities")).toBe(expected.join(","));
      expect(await result.textContent()).toContain(`On ${path} this token may:`);
      if (path === "secret/data/other") expect(await result.textContent()).toContain("nothing (deny)");
      else for (const c of expected) expect(await result.locator(".cap", { hasText: c }).count()).toBe(1);
    }
    await box.getByLabel("Path").fill("sys/policies/acl/dev");
    await box.getByRole("button", { name: "Check" }).click();
    await expect.poll(() => result.getAttribute("data-capabilities")).toBe("list,read");
    await screenshot(page, "policy-capabilities");
  });

  it("shows a token that may not update policies the text read-only, with no save or delete button", async () => {
    await logInWithToken(reader, "/ui/policies/dev");
    await expect.poll(() => editor().inputValue()).toBe(DEV_POLICY);
    await expect.poll(() => page.getByTestId("policy-read-only").textContent()).toContain("your token may not update sys/policies/acl/dev");
    expect(await editor().getAttribute("readonly")).not.toBeNull();
    expect(await page.getByRole("button", { name: "Save policy" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: "Delete policy" }).count()).toBe(0);
    // The server agrees: this token's write is refused.
    expect((await api("PUT", "sys/policies/acl/dev", { policy: DEV_POLICY }, reader)).status).toBe(403);
    // Ctrl+S in the read-only editor sends nothing either.
    await editor().press("Control+s");
    expect(await storedPolicy("dev")).toBe(DEV_POLICY);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "policy-read-only");
  });
});

describe("reading the server's policy errors", () => {
  it("takes the line and column of a syntax error, the line of a rule error, and keeps any other message whole", () => {
    expect(policyProblemOf('policy "dev":3:1: expected "," or "]" in list, got "}"')).toEqual({ line: 3, column: 1, message: 'expected "," or "]" in list, got "}"' });
    expect(policyProblemOf('policy "a.b", line 12: path "x": unknown capability "reed"; valid capabilities are read')).toEqual({ line: 12, message: 'path "x": unknown capability "reed"; valid capabilities are read' });
    expect(policyProblemOf('policy "dev": the policy text is empty')).toEqual({ message: "the policy text is empty" });
    expect(policyProblemOf("'policy' parameter not supplied or empty")).toEqual({ message: "'policy' parameter not supplied or empty" });
  });
});
