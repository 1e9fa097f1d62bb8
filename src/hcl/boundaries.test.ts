import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Module boundaries (ARCHITECTURE.md): the agent is a client and depends only on src/client,
 * src/sdk and the shared HCL module; plugins import only the plugin contract (src/sdk). Every
 * relative import of their files is read and resolved.
 */
const root = resolve(dirname(new URL(import.meta.url).pathname), "../..");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") ? [p] : [];
  });
}

/** The repository-relative targets of a file's relative imports. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g)].map((m) => relative(root, resolve(dirname(file), m[1])));
}

describe("module boundaries", () => {
  it("the agent imports only src/agent, src/client, src/sdk and src/hcl", () => {
    const outside = sources(join(root, "src/agent")).flatMap((f) => importsOf(f).filter((t) => !/^src\/(agent|client|sdk|hcl)\//.test(t)).map((t) => `${relative(root, f)} -> ${t}`));
    expect(outside).toEqual([]);
  });

  it("src/hcl depends on nothing but src/sdk", () => {
    const outside = sources(join(root, "src/hcl")).flatMap((f) => importsOf(f).filter((t) => !/^src\/(hcl|sdk)\//.test(t)).map((t) => `${relative(root, f)} -> ${t}`));
    expect(outside).toEqual([]);
  });

  it("plugins import only the plugin contract (src/sdk) and their own files", () => {
    const outside = sources(join(root, "plugins")).flatMap((f) => importsOf(f).filter((t) => !/^(src\/sdk|plugins)\//.test(t)).map((t) => `${relative(root, f)} -> ${t}`));
    expect(outside).toEqual([]);
  });
});
