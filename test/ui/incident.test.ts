/**
 * The incident-response and lease pages in a real browser (Debian's Chromium, headless) against a
 * real in-process server whose database engine issues real PostgreSQL roles (the embedded
 * PostgreSQL of test/global-setup.ts): two service identities hold credentials, an operator finds
 * one identity's leases by metadata, checks the dry run, confirms, revokes with progress, and
 * PostgreSQL shows that exactly that identity's roles are gone. A lease's own page renews and
 * revokes one lease; a token without sudo sees no revoke action and is told why.
 */
import pg from "pg";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { createTestDatabase, rand, roleExists, templatedUrl, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

const OPERATOR = { username: "ines", password: "incident commander passphrase" };
const VIEWER = { username: "victor", password: "viewer without sudo passphrase" };

const OPERATOR_POLICY = `
path "sys/leasehold/leases" { capabilities = ["read", "sudo"] }
path "sys/leasehold/leases/revoke" { capabilities = ["update", "sudo"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/lookup/*" { capabilities = ["list", "sudo"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/leases/count" { capabilities = ["read"] }
`;
/** May search, may not revoke: update without sudo. */
const VIEWER_POLICY = `
path "sys/leasehold/leases" { capabilities = ["read", "sudo"] }
path "sys/leasehold/leases/revoke" { capabilities = ["update"] }
`;
const APP_POLICY = `path "database/creds/ro" { capabilities = ["read"] }`;

/** "1h 02m 05s", "59m 58s", "7s" (the lease page's TTL) in seconds; NaN for anything else. */
function seconds(text: string): number {
  const m = /^(?:(\d+)h )?(?:(\d+)m )?(\d+)s$/.exec(text.trim());
  return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]) : Number.NaN;
}

/** Credentials each identity holds. */
const PER_IDENTITY = 6;

describe("incident response in the console", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let db: TestDatabase;
  const group = `lh_incident_${rand()}`;
  /** PostgreSQL users by identity, and their lease ids. */
  const issued: Record<"payments" | "billing", { usernames: string[]; leaseIds: string[] }> = { payments: { usernames: [], leaseIds: [] }, billing: { usernames: [], leaseIds: [] } };
  let consoleErrors: string[];
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
    db = await createTestDatabase(inject("pgUrl"), "incident");
    await db.admin.query(`CREATE ROLE ${pg.escapeIdentifier(group)} NOLOGIN`);
    server = await startTestServer({ loginRateLimit: { rate: 0, burst: 0 } });
    root = server.rootToken!;
    await api("POST", "sys/mounts/database", { type: "database" });
    await api("POST", "database/config/pg", {
      plugin_name: "postgresql-database-plugin",
      connection_url: templatedUrl(db.url),
      username: "postgres",
      password: decodeURIComponent(new URL(inject("pgUrl")).password),
      allowed_roles: "*",
    });
    await api("POST", "database/roles/ro", {
      db_name: "pg",
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT "${group}" TO "{{name}}";`],
      default_ttl: "1h",
      max_ttl: "2h",
    });
    await api("PUT", "sys/policies/acl/app", { policy: APP_POLICY });
    await api("PUT", "sys/policies/acl/incident", { policy: OPERATOR_POLICY });
    await api("PUT", "sys/policies/acl/incident-viewer", { policy: VIEWER_POLICY });
    await api("POST", "sys/auth/userpass", { type: "userpass" });
    await api("POST", `auth/userpass/users/${OPERATOR.username}`, { password: OPERATOR.password, token_policies: "incident", token_ttl: "1h" });
    await api("POST", `auth/userpass/users/${VIEWER.username}`, { password: VIEWER.password, token_policies: "incident-viewer", token_ttl: "1h" });
    // Two service identities: tokens whose metadata names their service account.
    for (const name of ["payments", "billing"] as const) {
      const created = (await api("POST", "auth/token/create", { policies: ["app"], ttl: "1h", meta: { service_account_name: name, namespace: "prod" } })) as { auth: { client_token: string } };
      for (let i = 0; i < PER_IDENTITY; i++) {
        const creds = (await api("GET", "database/creds/ro", undefined, created.auth.client_token)) as { lease_id: string; data: { username: string } };
        issued[name].usernames.push(creds.data.username);
        issued[name].leaseIds.push(creds.lease_id);
      }
    }
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      await call(server.url, "PUT", "sys/leases/revoke-prefix/database/", { token: root }).catch(() => undefined);
      await server.stop();
    }
    await db?.admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(group)}`).catch(() => undefined);
    await db?.drop();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    ({ context, page, consoleErrors } = await openConsolePage(browser));
  });

  afterEach(async () => {
    await context?.close();
  });

  const logIn = async (user: { username: string; password: string }, path: string) => {
    await page.goto(`${server.url}/ui/${path}`);
    await page.waitForURL(/\/ui\/login/);
    await page.getByRole("tab", { name: "Userpass" }).click();
    await page.getByLabel("Username").fill(user.username);
    await page.getByLabel("Password", { exact: true }).fill(user.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(`${server.url}/ui/${path}`);
  };

  const existing = async (usernames: string[]) => {
    const present: string[] = [];
    for (const u of usernames) if (await roleExists(db.admin, u)) present.push(u);
    return present;
  };

  it("finds one identity's leases by metadata, dry-runs, revokes them all with progress, and PostgreSQL keeps only the other's roles", async () => {
    expect(await existing(issued.payments.usernames)).toHaveLength(PER_IDENTITY);
    expect(await existing(issued.billing.usernames)).toHaveLength(PER_IDENTITY);

    await logIn(OPERATOR, "incident");
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("Incident response");
    await page.getByLabel("Metadata (key=value, one a line)").fill("service_account_name=payments\nnamespace=prod");
    await page.getByLabel("Kind").selectOption("secret");
    await page.getByLabel("Mount", { exact: true }).fill("database");
    await page.getByRole("button", { name: "Find" }).click();

    await expect.poll(() => page.getByTestId("match-count").textContent()).toContain(`${PER_IDENTITY} leases match this selector (dry run: nothing was revoked)`);
    // The table lists exactly payments' leases, each a link to its page (the first column; the
    // display name links to the creating token's page).
    const links = page.getByTestId("match-table").locator("tbody tr td:first-child a");
    await expect.poll(() => links.count()).toBe(PER_IDENTITY);
    expect(await page.getByTestId("match-table").locator("tbody tr a[href^='/ui/tokens/']").count()).toBe(PER_IDENTITY);
    const shownIds = (await links.allTextContents()).sort();
    expect(shownIds).toEqual([...issued.payments.leaseIds].sort());
    expect(await links.first().getAttribute("href")).toMatch(/^\/ui\/leases\/database\/creds\/ro\//);
    expect(await page.getByTestId("page-range").textContent()).toBe(`1–${PER_IDENTITY} of ${PER_IDENTITY}`);
    // The dry run revoked nothing.
    expect(await existing(issued.payments.usernames)).toHaveLength(PER_IDENTITY);

    // The revoke button waits for the confirmation: the number of leases.
    const revokeButton = page.getByRole("button", { name: `Revoke all ${PER_IDENTITY}` });
    expect(await revokeButton.isDisabled()).toBe(true);
    const confirmation = page.getByLabel(/to revoke them all/);
    await confirmation.fill("revoke");
    expect(await revokeButton.isDisabled()).toBe(true);
    await confirmation.fill(String(PER_IDENTITY));
    expect(await revokeButton.isDisabled()).toBe(false);
    await screenshot(page, "incident-dry-run");
    // Every progress text the page shows while the revocation runs, in order.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __progress: string[] }).__progress = seen;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="progress-text"]')?.textContent;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await revokeButton.click();

    await expect.poll(() => page.getByTestId("revoke-result").textContent(), { timeout: 20_000 }).toBe(`${PER_IDENTITY} of ${PER_IDENTITY} revoked.`);
    const bar = page.getByTestId("revocation").locator("progress");
    expect(await bar.getAttribute("value")).toBe(String(PER_IDENTITY));
    expect(await bar.getAttribute("max")).toBe(String(PER_IDENTITY));
    expect(await page.getByTestId("failures").count()).toBe(0);
    // The bar ran from 0 and only went forward (how far it got before the answer depends on the machine).
    const seen = await page.evaluate(() => (window as unknown as { __progress: string[] }).__progress);
    expect(seen[0]).toBe(`Revoking… 0 of ${PER_IDENTITY} done.`);
    const done = seen.map((t) => Number(/(\d+) of/.exec(t)?.[1]));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    // The listing was read again: nothing of payments' is left.
    await expect.poll(() => page.getByTestId("page-range").textContent()).toBe("No lease left.");

    // PostgreSQL: payments' roles are gone, billing's are all there.
    expect(await existing(issued.payments.usernames)).toEqual([]);
    expect(await existing(issued.billing.usernames)).toEqual(issued.billing.usernames);
    // And the broker agrees.
    const left = (await api("GET", "sys/leasehold/leases?mount=database&metadata.service_account_name=billing")) as { data: { total: number } };
    expect(left.data.total).toBe(PER_IDENTITY);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "incident-revoked");
  });

  it("shows a lease with a live TTL, renews it and revokes it (its PostgreSQL role goes)", async () => {
    const id = issued.billing.leaseIds[0]!;
    const username = issued.billing.usernames[0]!;
    // From the overview's lease counts, down the lease tree to the lease.
    await logIn(OPERATOR, "");
    await page.getByTestId("leases-by-mount").getByRole("link", { name: "database/" }).click();
    await page.waitForURL(`${server.url}/ui/leases?prefix=database%2F`);
    await page.getByTestId("lease-keys").getByRole("link", { name: "creds/" }).click();
    await page.getByTestId("lease-keys").getByRole("link", { name: "ro/" }).click();
    await page.getByTestId("lease-keys").getByRole("link", { name: id.slice("database/creds/ro/".length), exact: true }).click();
    await page.waitForURL(`${server.url}/ui/leases/${id}`);
    expect(await page.getByTestId("lease-id").textContent()).toBe(id);
    const ttl = page.getByTestId("lease-ttl");
    const looked = (await api("PUT", "sys/leases/lookup", { lease_id: id })) as { data: { expire_time: string } };
    // The TTL shown is the time left until the API's expire_time (within the second it ticks).
    const secondsLeft = () => (new Date(looked.data.expire_time).getTime() - Date.now()) / 1000;
    await expect.poll(async () => Math.abs(seconds((await ttl.textContent()) ?? "") - secondsLeft())).toBeLessThan(2.5);
    const first = await ttl.textContent();
    await expect.poll(() => ttl.textContent(), { timeout: 5_000 }).not.toBe(first);
    // The expiry in local time, as the API says it.
    const expected = await page.evaluate((t) => new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(t)), looked.data.expire_time);
    expect(await page.getByTestId("lease-expires").textContent()).toBe(`${expected} (local time)`);

    await page.getByLabel("Increment").fill("30m");
    await page.getByRole("button", { name: "Renew" }).click();
    await expect.poll(() => page.getByTestId("lease-outcome").textContent()).toContain("Renewed: the lease now lasts 30m 00s from now.");
    await expect.poll(async () => seconds((await ttl.textContent()) ?? "")).toBeLessThanOrEqual(30 * 60);
    expect(seconds((await ttl.textContent()) ?? "")).toBeGreaterThan(29 * 60);
    expect(await page.getByTestId("lease-renewed").textContent()).not.toBe("never");
    await screenshot(page, "lease");

    await page.getByRole("button", { name: "Revoke…" }).click();
    await page.getByRole("button", { name: "Yes, revoke" }).click();
    await expect.poll(() => page.getByTestId("lease-outcome").textContent()).toContain("Revoked");
    await expect.poll(() => page.getByTestId("lease-error").textContent()).toContain(`There is no lease ${id}`);
    expect(await roleExists(db.admin, username)).toBe(false);
    // The other billing roles are untouched.
    expect(await existing(issued.billing.usernames.slice(1))).toHaveLength(PER_IDENTITY - 1);

    // Browsing by prefix reaches the remaining leases.
    await page.getByRole("link", { name: /Other leases under database\/creds\/ro\// }).click();
    await page.waitForURL(/\/ui\/leases\?prefix=database%2Fcreds%2Fro%2F/);
    await expect.poll(() => page.getByTestId("lease-keys").locator("li").count()).toBe(PER_IDENTITY - 1);
    await screenshot(page, "leases-browse");
    // The only error is the lookup of the revoked lease, which the browser logs (the page explains it above).
    expect(consoleErrors).toEqual(["Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
  });

  it("lists the leases that could not be revoked with their errors", async () => {
    // A role whose revocation always fails in PostgreSQL: its leases stay, scheduled for retry.
    await api("POST", "database/roles/broken", {
      db_name: "pg",
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
      revocation_statements: ["SELECT leasehold_no_such_function('{{name}}');"],
      default_ttl: "1h",
    });
    await api("PUT", "sys/policies/acl/reports", { policy: `path "database/creds/*" { capabilities = ["read"] }` });
    const created = (await api("POST", "auth/token/create", { policies: ["reports"], ttl: "1h", meta: { service_account_name: "reports" } })) as { auth: { client_token: string } };
    const good = (await api("GET", "database/creds/ro", undefined, created.auth.client_token)) as { lease_id: string; data: { username: string } };
    const bad = (await api("GET", "database/creds/broken", undefined, created.auth.client_token)) as { lease_id: string; data: { username: string } };
    try {
      await logIn(OPERATOR, "incident");
      await page.getByLabel("Metadata (key=value, one a line)").fill("service_account_name=reports");
      await page.getByLabel("Kind").selectOption("secret");
      await page.getByRole("button", { name: "Find" }).click();
      await expect.poll(() => page.getByTestId("match-count").textContent()).toContain("2 leases match");
      await page.getByLabel(/to revoke them all/).fill("2");
      await page.getByRole("button", { name: "Revoke all 2" }).click();
      await expect.poll(() => page.getByTestId("revoke-result").textContent(), { timeout: 20_000 }).toBe("1 of 2 revoked, 1 failed.");
      const failures = page.getByTestId("failures");
      expect(await failures.locator("tbody tr").count()).toBe(1);
      expect(await failures.locator("tbody tr a").textContent()).toBe(bad.lease_id);
      expect(await failures.locator("tbody tr td").nth(1).textContent()).toContain("leasehold_no_such_function");
      expect(await page.getByTestId("revocation").textContent()).toContain("could not be revoked; they stay scheduled");
      // The failed lease is still listed, with its error.
      await expect.poll(() => page.getByTestId("match-table").locator("tbody tr").count()).toBe(1);
      expect(await roleExists(db.admin, good.data.username)).toBe(false);
      expect(await roleExists(db.admin, bad.data.username)).toBe(true);
      // The browser logs nothing: a failed revocation is a 200 with failures, not an error.
      expect(consoleErrors).toEqual([]);
      await screenshot(page, "incident-failures");
      // The failed lease's own page says it is being revoked, and why it did not work yet.
      await failures.locator("tbody tr a").click();
      await page.waitForURL(`${server.url}/ui/leases/${bad.lease_id}`);
      await expect.poll(() => page.getByTestId("lease-state").textContent()).toMatch(/^revoking after \d+ revocation attempts? .*leasehold_no_such_function/);
    } finally {
      await call(server.url, "PUT", `sys/leases/revoke-force/${bad.lease_id}`, { token: root });
      await db.admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(bad.data.username)}`);
    }
  });

  it("shows no revoke action to a token without sudo on sys/leasehold/leases/revoke, and says why", async () => {
    await logIn(VIEWER, "incident");
    const why = page.getByTestId("revoke-forbidden");
    await expect.poll(() => why.textContent()).toContain("sys/leasehold/leases/revoke needs the update and sudo capabilities");
    expect(await why.textContent()).toContain("You can still search");
    // It can still search (through the listing): billing's remaining leases.
    const billing = (await api("GET", "sys/leasehold/leases?kind=secret&metadata.service_account_name=billing")) as { data: { total: number } };
    expect(billing.data.total).toBeGreaterThan(1);
    await page.getByLabel("Metadata (key=value, one a line)").fill("service_account_name=billing");
    await page.getByLabel("Kind").selectOption("secret");
    await page.getByRole("button", { name: "Find" }).click();
    await expect.poll(() => page.getByTestId("match-count").textContent()).toContain(`${billing.data.total} leases match this selector.`);
    expect(await page.getByRole("button", { name: /Revoke all/ }).count()).toBe(0);
    expect(await page.getByLabel(/to revoke them all/).count()).toBe(0);
    // And the server would indeed refuse it.
    const token = await page.evaluate(() => sessionStorage.getItem("leasehold.token"));
    const refused = await call(server.url, "POST", "sys/leasehold/leases/revoke", { token: token!, body: { selector: { metadata: { service_account_name: "billing" } }, dry_run: true } });
    expect(refused.status).toBe(403);
    expect(consoleErrors).toEqual([]);
    await screenshot(page, "incident-no-sudo");
  });
});
