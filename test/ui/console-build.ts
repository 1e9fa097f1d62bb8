/**
 * The console tests run against the real build in dist/ui (what `npm ci` builds through
 * `prepare`). A missing or stale build fails them with what to run, rather than testing old code.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const CONSOLE_SOURCE_DIR = resolve(import.meta.dirname, "../../src/ui");
export const CONSOLE_BUILD_DIR = resolve(import.meta.dirname, "../../dist/ui");

function newestIn(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Throws unless dist/ui holds a build at least as new as every file of src/ui. */
export function requireConsoleBuild(): void {
  const index = join(CONSOLE_BUILD_DIR, "index.html");
  if (!existsSync(index)) throw new Error(`the console is not built (${index} is missing): run \`npm run build:ui\` first`);
  if (newestIn(CONSOLE_SOURCE_DIR) > statSync(index).mtimeMs) throw new Error("the console build in dist/ui is older than src/ui: run `npm run build:ui` first");
}
