/**
 * Debian's Chromium, headless, driven by playwright-core (Playwright cannot download its own
 * browser here). The flags are the ones this machine needs (see the env notes): without the
 * background-networking ones Chromium keeps trying to reach Google's hosts through a closed network.
 * Playwright gives every launch a fresh, empty profile (its own temporary --user-data-dir).
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.LEASEHOLD_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/**
 * Where each browser test leaves the picture of the page it checked: a temporary folder, or with
 * LEASEHOLD_UPDATE_SCREENSHOTS=1 docs/screenshots, the committed pictures the README shows (so a
 * plain test run leaves the checkout as it was).
 */
export const SCREENSHOT_DIR = process.env.LEASEHOLD_UPDATE_SCREENSHOTS === "1" ? resolve(import.meta.dirname, "../../docs/screenshots") : join(tmpdir(), "leasehold-screenshots");

/** Starts Chromium, or fails saying how to install it: the browser tests are never skipped. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}: the console's browser tests need it. Install Debian's package (apt-get install -y chromium; .ci/run does this) or point LEASEHOLD_CHROMIUM at a Chromium binary.`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
}

/** Saves a full-page screenshot as <SCREENSHOT_DIR>/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** One test's browser context and page, and the console errors and uncaught exceptions it saw. */
export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  consoleErrors: string[];
}

/**
 * A fresh context and page for one test (light colour scheme, a desktop viewport). Console errors
 * and uncaught exceptions are recorded in `consoleErrors`, except those `ignore` accepts (the 404s
 * a page asks for on purpose). With `watchCsp`, every Content-Security-Policy violation the page
 * sees is pushed to `window.__cspViolations` (an init script is injected by the browser itself, so
 * the CSP does not apply to it).
 */
export async function openConsolePage(browser: Browser, opts: { width?: number; height?: number; ignore?: (text: string, page: Page) => boolean; watchCsp?: boolean } = {}): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1200, height: opts.height ?? 900 }, colorScheme: "light" });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !opts.ignore?.(m.text(), page)) consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
  if (opts.watchCsp) {
    await page.addInitScript(() => {
      const w = window as unknown as { __cspViolations: string[] };
      w.__cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => w.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
  }
  return { context, page, consoleErrors };
}
