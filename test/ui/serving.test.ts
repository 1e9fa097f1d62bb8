/**
 * The console's files over plain HTTP (no browser): content types, caching, the security headers,
 * client-side routes answered with index.html, traversal refused, and Vault's 404 when `ui` is off.
 * Raw request targets go through node:http, which sends `..` and `%2e%2e` as written (fetch would
 * resolve them first).
 */
import { request } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, type RunningListener } from "../../src/server/listen.js";
import { loadServerConfig } from "../../src/server/config.js";
import { startConfiguredServer, type RunningServer } from "../../src/server/run.js";
import { CONSOLE_SECURITY_HEADERS, consoleFileOf, mountConsole } from "../../src/server/ui.js";
import { startTestServer } from "../helpers/server.js";
import { CONSOLE_BUILD_DIR, requireConsoleBuild } from "./console-build.js";

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET with the request target exactly as given. */
function rawGet(base: string, target: string, method = "GET"): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: target }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function expectSecurityHeaders(answer: RawAnswer): void {
  expect(answer.headers["content-security-policy"]).toBe(CONSOLE_SECURITY_HEADERS["Content-Security-Policy"]);
  expect(answer.headers["x-content-type-options"]).toBe("nosniff");
  expect(answer.headers["referrer-policy"]).toBe("no-referrer");
  expect(answer.headers["x-frame-options"]).toBe("DENY");
}

const PACKAGE_JSON = readFileSync(new URL("../../package.json", import.meta.url), "utf8");

describe("the console served by the dev server (ui on)", () => {
  let server: RunningServer;
  let index: RawAnswer;

  beforeAll(async () => {
    requireConsoleBuild();
    server = await startTestServer();
    index = await rawGet(server.url, "/ui/");
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("answers /ui/ with the built index.html, never cached, with the security headers", () => {
    expect(index.status).toBe(200);
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.headers["cache-control"]).toBe("no-store");
    expect(index.body).toBe(readFileSync(join(CONSOLE_BUILD_DIR, "index.html"), "utf8"));
    expectSecurityHeaders(index);
  });

  it("has no inline script, inline style, event handler attribute or outside URL in the built HTML", () => {
    const scripts = [...index.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, content] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/ui\/assets\/[^"]+\.js"/);
      expect(content.trim()).toBe("");
    }
    expect(index.body).not.toMatch(/<style\b/i);
    expect(index.body).not.toMatch(/\sstyle\s*=/i);
    expect(index.body).not.toMatch(/\son[a-z]+\s*=/i);
    expect(index.body).not.toMatch(/(src|href)="(https?:)?\/\//i);
  });

  it("serves the hashed script and stylesheet with their content types and a long cache", async () => {
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(index.body)![1];
    const style = /href="(\/ui\/assets\/[^"]+\.css)"/.exec(index.body)![1];
    const js = await rawGet(server.url, script);
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expectSecurityHeaders(js);
    const css = await rawGet(server.url, style);
    expect(css.status).toBe(200);
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.body).toBe(readFileSync(join(CONSOLE_BUILD_DIR, style.slice("/ui/".length)), "utf8"));
    const icon = await rawGet(server.url, "/ui/favicon.svg");
    expect(icon.status).toBe(200);
    expect(icon.headers["content-type"]).toBe("image/svg+xml");
    expect(icon.headers["cache-control"]).toBe("no-cache");
  });

  it("answers the console's own routes with index.html, and a missing asset with 404", async () => {
    for (const route of ["/ui/login", "/ui/overview", "/ui/leases/database/creds/app", "/ui/login?next=%2Fui%2F"]) {
      const page = await rawGet(server.url, route);
      expect(page.status, route).toBe(200);
      expect(page.body, route).toBe(index.body);
      expect(page.headers["cache-control"], route).toBe("no-store");
    }
    const missing = await rawGet(server.url, "/ui/assets/index-doesnotexist.js");
    expect(missing.status).toBe(404);
    expect(missing.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expectSecurityHeaders(missing);
    expect((await rawGet(server.url, "/ui/robots.txt")).status).toBe(404);
  });

  it("answers HEAD like GET without a body", async () => {
    const head = await rawGet(server.url, "/ui/", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-security-policy"]).toBe(CONSOLE_SECURITY_HEADERS["Content-Security-Policy"]);
  });

  it("redirects / (307) and /ui (301) to /ui/, as Vault does", async () => {
    const root = await rawGet(server.url, "/");
    expect(root.status).toBe(307);
    expect(root.headers.location).toBe("/ui/");
    const bare = await rawGet(server.url, "/ui");
    expect(bare.status).toBe(301);
    expect(bare.headers.location).toBe("/ui/");
  });

  it.each([
    "/ui/../package.json",
    "/ui/%2e%2e/package.json",
    "/ui/%2E%2E/package.json",
    "/ui/..%2fpackage.json",
    "/ui/%2e%2e%2fpackage.json",
    "/ui/assets/..%2f..%2f..%2fpackage.json",
    "/ui/assets/%2e%2e/%2e%2e/%2e%2e/package.json",
    "/ui/..%5cpackage.json",
    "/ui/%2fetc%2fpasswd",
    "/ui//etc/passwd",
    "/ui/index.html%00.js",
    "/ui/%",
  ])("refuses the traversal %s", async (target) => {
    const answer = await rawGet(server.url, target);
    expect(answer.status, answer.body).toBe(404);
    expect(answer.body).not.toContain('"name": "leasehold"');
    expect(answer.body).not.toContain("root:");
    expect(answer.body).not.toBe(PACKAGE_JSON);
  });

  it("leaves the API alone: /v1/ answers as before", async () => {
    const health = await rawGet(server.url, "/v1/sys/health");
    expect(health.status).toBe(200);
    expect(health.headers["content-security-policy"]).toBeUndefined();
  });
});

describe("the console off (no `ui = true`)", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTestServer({ ui: false });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("answers /ui/ and its pages with Go's plain 404, as Vault does", async () => {
    for (const target of ["/ui/", "/ui", "/ui/login", "/ui/assets/x.js"]) {
      const answer = await rawGet(server.url, target);
      expect(answer.status, target).toBe(404);
      expect(answer.body, target).toBe("404 page not found\n");
      expect(answer.headers["content-type"], target).toBe("text/plain; charset=utf-8");
    }
  });

  it("does not redirect /", async () => {
    const root = await rawGet(server.url, "/");
    expect(root.status).toBe(404);
    expect(root.headers.location).toBeUndefined();
  });
});

describe("the `ui` config key", () => {
  const base = `storage "sqlite" { path = "/tmp/x.db" }\nlistener "tcp" { address = "127.0.0.1:8200"\n tls_disable = true }\n`;
  it("turns the console on with ui = true and leaves it off otherwise", () => {
    expect(loadServerConfig(`${base}ui = true\n`, "c.hcl").ui).toBe(true);
    expect(loadServerConfig(`${base}ui = false\n`, "c.hcl").ui).toBeUndefined();
    expect(loadServerConfig(base, "c.hcl").ui).toBeUndefined();
    expect(() => loadServerConfig(`${base}ui = "yes please"\n`, "c.hcl")).toThrow(/ui/);
  });
});

describe("a server started from a config file", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-console-config-"));
  const servers: RunningServer[] = [];
  const start = async (extra: string) => {
    const hcl = `storage "sqlite" { path = "${join(dir, `${servers.length}.db`)}" }\nlistener "tcp" {\n address = "127.0.0.1:0"\n tls_disable = true\n}\n${extra}`;
    const server = await startConfiguredServer(loadServerConfig(hcl, "leasehold.hcl"), pino({ level: "silent" }));
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the console with ui = true, even sealed (the console is how an operator sees it)", async () => {
    requireConsoleBuild();
    const server = await start("ui = true\n");
    expect(server.core.sealed).toBe(true);
    const index = await rawGet(server.url, "/ui/");
    expect(index.status).toBe(200);
    expectSecurityHeaders(index);
    expect((await rawGet(server.url, "/")).headers.location).toBe("/ui/");
  });

  it("answers 404 without it", async () => {
    const server = await start("");
    expect((await rawGet(server.url, "/ui/")).body).toBe("404 page not found\n");
  });
});

describe("consoleFileOf and symbolic links", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-console-"));
  const root = join(dir, "ui");
  let listener: RunningListener;

  beforeAll(async () => {
    mkdirSync(join(root, "assets"), { recursive: true });
    writeFileSync(join(root, "index.html"), "<!doctype html><title>t</title>");
    writeFileSync(join(root, "assets", "app-1.js"), "export {};\n");
    writeFileSync(join(dir, "secret.txt"), "outside the console\n");
    symlinkSync(join(dir, "secret.txt"), join(root, "assets", "leak.js"));
    const app = new Hono();
    mountConsole(app, { enabled: true, dir: root });
    listener = await listen(app, { address: "127.0.0.1:0" });
  });
  afterAll(async () => {
    await listener?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("maps paths inside the folder and refuses the others", () => {
    expect(consoleFileOf(root, "")).toBe(join(root, "index.html"));
    expect(consoleFileOf(root, "assets/app-1.js")).toBe(join(root, "assets", "app-1.js"));
    for (const bad of ["..", "../secret.txt", "%2e%2e/secret.txt", "assets/../../secret.txt", "assets/./app-1.js", "a//b", "..%5csecret.txt", "x%00", "%E0%A4%A"]) {
      expect(consoleFileOf(root, bad), bad).toBeUndefined();
    }
  });

  it("does not follow a symbolic link out of the folder", async () => {
    expect((await rawGet(listener.url, "/ui/assets/app-1.js")).status).toBe(200);
    const leak = await rawGet(listener.url, "/ui/assets/leak.js");
    expect(leak.status).toBe(404);
    expect(leak.body).not.toContain("outside the console");
  });
});
