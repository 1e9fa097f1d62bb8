/**
 * The operator console's files (the browser application built from src/ui into dist/ui), served at
 * `/ui/` as Vault serves its UI: when `ui = true` in the config, and always in `--dev`. The server
 * only hands out static files; the console talks to the public `/v1/` API with the operator's own
 * token like any other client.
 *
 * As in Vault: `/` redirects (307) to `/ui/`, `/ui` to `/ui/`, and a path under `/ui/` that names no
 * file answers index.html, so the console's own routes survive a reload. With the console off,
 * `/ui/...` answers Go's plain `404 page not found`, what Vault answers then.
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context, Env, Hono } from "hono";
import type { Logger } from "pino";

/**
 * Every console response carries these. The CSP allows nothing inline and nothing from elsewhere:
 * scripts, styles and API calls come from this origin only, and no other site may frame the console
 * (clickjacking an operator into revoking leases).
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

/** Vite names built assets `<name>-<content hash>.<ext>` under assets/: safe to cache for a year. */
const HASHED_ASSET_CACHE = "public, max-age=31536000, immutable";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Go's http.NotFound body, which Vault answers for `/ui/` when its UI is off. */
const VAULT_NOT_FOUND = "404 page not found\n";

/**
 * Where the built console is: `dist/ui` at the package root. This module runs from
 * `src/server/` (tsx, vitest) or from `dist/src/server/` (the built server), so both are tried.
 */
export function defaultConsoleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, "../../ui"), resolve(here, "../../dist/ui")];
  return candidates.find((dir) => existsSync(join(dir, "index.html"))) ?? candidates[candidates.length - 1];
}

/** How the console is served. */
export interface ConsoleOptions {
  /** `ui = true` in the config, or `--dev`. */
  enabled: boolean;
  /** The built files (default: `dist/ui`, see defaultConsoleDir). */
  dir?: string;
  logger?: Logger;
}

/**
 * The file under `root` that a request path after `/ui/` names, or undefined when the path is not
 * one we serve: undecodable, an empty, `.` or `..` segment, a backslash or NUL, or (after
 * resolution) anything outside `root`. The raw request target is used, not a parsed URL, because
 * URL parsing would already have resolved `..` and `%2e%2e`.
 */
export function consoleFileOf(root: string, rawRelative: string): string | undefined {
  let relative: string;
  try {
    relative = decodeURIComponent(rawRelative);
  } catch {
    return undefined;
  }
  if (relative === "") return join(root, "index.html");
  if (/[\\\0]/.test(relative)) return undefined;
  const segments = relative.split("/");
  if (segments.some((s, i) => s === "." || s === ".." || (s === "" && i !== segments.length - 1))) return undefined;
  const file = resolve(root, relative);
  return file.startsWith(root + sep) ? file : undefined;
}

/** The request target's path, as sent (no query, no fragment). */
function rawPathOf(c: Context): string {
  const incoming = (c.env as { incoming?: { url?: string } } | undefined)?.incoming;
  const target = incoming?.url ?? new URL(c.req.url).pathname;
  const path = target.startsWith("/") ? target : new URL(target).pathname;
  return path.replace(/[?#].*$/s, "");
}

/**
 * Adds the console's routes to the server's app: the files when enabled, Vault's 404 when not.
 * Only GET and HEAD are answered; other methods fall through to the app's 404.
 */
export function mountConsole<E extends Env>(app: Hono<E>, opts: ConsoleOptions): void {
  if (!opts.enabled) {
    const notFound = (c: Context<E>) => c.body(VAULT_NOT_FOUND, 404, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
    app.on(["GET", "HEAD"], "/ui", notFound);
    app.on(["GET", "HEAD"], "/ui/*", notFound);
    return;
  }
  const root = resolve(opts.dir ?? defaultConsoleDir());
  if (!existsSync(join(root, "index.html"))) {
    opts.logger?.warn({ dir: root }, "the console is enabled but not built: run `npm run build:ui`; /ui/ answers 404 until then");
  }
  let realRoot: string | undefined;

  const respond = (c: Context<E>, status: number, body: string | Uint8Array, headers: Record<string, string>): Response => {
    for (const [k, v] of Object.entries(CONSOLE_SECURITY_HEADERS)) c.header(k, v);
    return c.body(typeof body === "string" ? body : new Uint8Array(body), status as 200, headers);
  };
  const notFound = (c: Context<E>, why: string) => respond(c, 404, `${why}\n`, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });

  /** The file if it exists as a regular file inside the console's folder (symbolic links resolved). */
  const readInside = async (file: string): Promise<Uint8Array | undefined> => {
    try {
      realRoot ??= await realpath(root);
      const real = await realpath(file);
      if (!real.startsWith(realRoot + sep)) return undefined;
      if (!(await stat(real)).isFile()) return undefined;
      return await readFile(real);
    } catch {
      return undefined;
    }
  };

  const serveIndex = async (c: Context<E>): Promise<Response> => {
    const html = await readInside(join(root, "index.html"));
    if (!html) return notFound(c, "the console is enabled (ui = true) but its files are not built: run `npm run build:ui`");
    return respond(c, 200, html, { "Content-Type": CONTENT_TYPES[".html"], "Cache-Control": "no-store" });
  };

  app.on(["GET", "HEAD"], "/", (c) => c.redirect("/ui/", 307));
  app.on(["GET", "HEAD"], "/ui", (c) => c.redirect("/ui/", 301));
  app.on(["GET", "HEAD"], "/ui/*", async (c) => {
    const rawPath = rawPathOf(c);
    if (!rawPath.startsWith("/ui/")) return notFound(c, "not found");
    const relative = rawPath.slice("/ui/".length);
    const file = consoleFileOf(root, relative);
    if (file === undefined) return notFound(c, "not found");
    if (file === join(root, "index.html")) return serveIndex(c);
    const body = await readInside(file);
    if (body) {
      const ext = extname(file).toLowerCase();
      const hashed = relative.startsWith("assets/");
      return respond(c, 200, body, { "Content-Type": CONTENT_TYPES[ext] ?? "application/octet-stream", "Cache-Control": hashed ? HASHED_ASSET_CACHE : "no-cache" });
    }
    // A missing asset is an error (serving HTML in place of a script hides it); any other path is
    // one of the console's own routes.
    if (relative.startsWith("assets/") || /\.[a-z0-9]+$/i.test(relative)) return notFound(c, "not found");
    return serveIndex(c);
  });
}
