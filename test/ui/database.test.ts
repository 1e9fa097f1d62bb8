/**
 * The console's database page in a real browser (Debian's Chromium, headless, playwright-core)
 * against a real in-process dev server and the embedded PostgreSQL (a database of its own, and a
 * dedicated root role so rotate-root never touches the shared superuser): a connection with
 * username and password fields and one with the password inside its URL (masked by the server,
 * and no rotation offered), a role's TTLs and statements, rotate-root through the console after a
 * confirmation, checked in PostgreSQL (the old root password no longer logs in) and by issuing
 * credentials afterwards; a token without `update` on rotate-root sees no rotate button.
 */
import pg from "pg";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { canLogin, createTestDatabase, rand, templatedUrl, urlWith, type TestDatabase } from "../database/helpers.js";
import { call, startTestServer } from "../helpers/server.js";
import { launchChromium, screenshot, openConsolePage } from "./browser.js";
import { requireConsoleBuild } from "./console-build.js";

describe("the console's database page in Chromium", () => {
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  let db: TestDatabase;
  let consoleErrors: string[];
  let launchFailure: unknown;
  const created: string[] = [];
  const rootInitial = `Root-Initial-${rand()}`;
  const urlPassword = `In-Url-${rand()}`;
  let rootUser: string;
  let group: string;

  const api = async (method: string, path: string, body?: unknown, token = root) => {
    const r = await call(server.url, method, path, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const dbUser = async (prefix: string, password: string, extra = "") => {
    const name = `${prefix}_${rand()}`;
    await db.admin.query(`CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(password)} ${extra}`);
    created.push(name);
    return name;
  };

  beforeAll(async () => {
    requireConsoleBuild();
    browser = await launchChromium().catch((err: unknown) => {
      launchFailure = err;
      return undefined as unknown as Browser;
    });
    db = await createTestDatabase(inject("pgUrl"), "uidb");
    server = await startTestServer();
    root = server.rootToken!;
    rootUser = await dbUser("lh_uiroot", rootInitial, "CREATEROLE");
    await db.admin.query(`GRANT pg_signal_backend TO ${pg.escapeIdentifier(rootUser)}`);
    // A group role the root user may grant (ADMIN OPTION), as the README recommends.
    group = `lh_uireaders_${rand()}`;
    await db.admin.query(`CREATE ROLE ${pg.escapeIdentifier(group)} NOLOGIN`);
    created.push(group);
    await db.admin.query(`GRANT ${pg.escapeIdentifier(group)} TO ${pg.escapeIdentifier(rootUser)} WITH ADMIN OPTION`);
    const urlUser = await dbUser("lh_uiurl", urlPassword);
    await api("POST", "sys/mounts/database", { type: "database" });
    await api("POST", "database/config/appdb", { plugin_name: "postgresql-database-plugin", connection_url: templatedUrl(db.url), username: rootUser, password: rootInitial, allowed_roles: "app-ro" });
    await api("POST", "database/config/legacy", { plugin_name: "postgresql-database-plugin", connection_url: urlWith(db.url, { user: urlUser, password: urlPassword }), allowed_roles: "" });
    await api("POST", "database/roles/app-ro", {
      db_name: "appdb",
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, `GRANT ${group} TO "{{name}}"`],
      default_ttl: "1h",
      max_ttl: "24h",
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    for (const name of created) await db?.admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(name)}`).catch(() => undefined);
    await db?.drop();
  });

  beforeEach(async () => {
    if (launchFailure) throw launchFailure;
    ({ context, page, consoleErrors } = await openConsolePage(browser, { ignore: (t) => /status of 404/.test(t) }));
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

  const connection = (name: string) => page.locator(`article[data-connection="${name}"]`);

  it("shows the connections (URL masked by the server), the role's statements, and rotates the root password after a confirmation", async () => {
    await logInWithToken(root, "/ui/database");
    await page.getByTestId("database-mounts").getByRole("link", { name: "database/" }).click();
    await page.waitForURL(`${server.url}/ui/database/database`);

    // appdb: the templated URL, the root user, allowed roles; legacy: the password in its URL masked.
    await expect.poll(() => connection("appdb").getByTestId("db-connection-url").textContent()).toBe(templatedUrl(db.url));
    expect(await connection("appdb").textContent()).toContain(rootUser);
    expect(await connection("appdb").getByTestId("db-allowed-roles").textContent()).toBe("app-ro");
    expect(await connection("appdb").textContent()).toContain("postgresql-database-plugin");
    const legacyUrl = await connection("legacy").getByTestId("db-connection-url").textContent();
    expect(legacyUrl).toContain("*****");
    expect(await page.locator("main").textContent()).not.toContain(urlPassword);
    expect(await page.locator("main").textContent()).not.toContain(rootInitial);
    expect(await connection("legacy").getByTestId("db-allowed-roles").textContent()).toContain("none");
    expect(await connection("legacy").getByRole("button", { name: /Rotate root/ }).count()).toBe(0);

    // The role: TTLs and both creation statements, as the API answers them.
    const role = page.locator('article[data-role="app-ro"]');
    await expect.poll(() => role.getByTestId("db-role-ttl").textContent()).toBe("1h");
    expect(await role.textContent()).toContain("Max TTL1d");
    const statements = await role.getByTestId("db-statements").first().textContent();
    const fromApi = (await api("GET", "database/roles/app-ro")).data.creation_statements as string[];
    expect(statements).toBe(fromApi.join(";\n"));
    expect(statements).toContain(`GRANT ${group} TO "{{name}}"`);
    await screenshot(page, "database-mount");

    // Rotate root: a confirmation that takes the focus; Cancel changes nothing.
    await connection("appdb").getByRole("button", { name: "Rotate root of appdb" }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Yes, rotate the root password");
    await connection("appdb").getByRole("button", { name: "Cancel" }).click();
    expect(await canLogin(db.url, rootUser, rootInitial)).toBe(true);
    await connection("appdb").getByRole("button", { name: "Rotate root of appdb" }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe("Yes, rotate the root password");
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await page.getByTestId("db-status").textContent()) || (await page.getByTestId("db-action-error").textContent({ timeout: 100 }).catch(() => ""))).toContain("Rotated the root password of appdb");
    await screenshot(page, "database-rotated");

    // In PostgreSQL: the old root password no longer logs in; the engine still works with the new one.
    expect(await canLogin(db.url, rootUser, rootInitial)).toBe(false);
    const creds = await api("GET", "database/creds/app-ro");
    expect(await canLogin(db.url, creds.data.username, creds.data.password)).toBe(true);
    created.push(creds.data.username);
    await api("PUT", "sys/leases/revoke", { lease_id: creds.lease_id });
    expect(consoleErrors).toEqual([]);
  });

  it("shows a token that may not rotate the root password no rotate button", async () => {
    await api("PUT", "sys/policies/acl/db-reader", { policy: `path "database/*" { capabilities = ["read", "list"] }\npath "sys/mounts" { capabilities = ["read"] }` });
    const reader = (await api("POST", "auth/token/create", { policies: ["db-reader"], ttl: "20m" })).auth.client_token as string;
    await logInWithToken(reader, "/ui/database/database");
    await expect.poll(() => connection("appdb").getByTestId("db-rotate-forbidden").textContent()).toContain("may not rotate this root password");
    expect(await page.getByRole("button", { name: /Rotate root/ }).count()).toBe(0);
    expect((await call(server.url, "POST", "database/rotate-root/appdb", { token: reader })).status).toBe(403);
    await screenshot(page, "database-read-only");
  });
});
