import { describe, expect, it } from "vitest";
import { ClientConfigError } from "./errors.js";
import { Leasehold } from "./leasehold.js";

/** How `Leasehold` finds its server and settings (the behaviour against a real server is in test/client). */
describe("Leasehold settings", () => {
  it("takes the address, token and retries from LEASEHOLD_* before VAULT_*", () => {
    const lh = new Leasehold({ env: { LEASEHOLD_ADDR: "https://lh.example:8200", VAULT_ADDR: "https://vault.example:8200", VAULT_TOKEN: "hvs.x", VAULT_MAX_RETRIES: "5" } });
    expect(lh.client.address).toBe("https://lh.example:8200");
    expect(lh.token).toBe("hvs.x");
    expect(lh.client.retries).toBe(5);
    lh.client.close();
  });

  it("lets options win over the environment, and defaults to two retries", () => {
    const lh = new Leasehold({ env: { VAULT_ADDR: "http://from-env:8200", LEASEHOLD_TOKEN: "env-token" }, address: "http://option:8200", token: "option-token", timeoutMs: 1234 });
    expect(lh.client.address).toBe("http://option:8200");
    expect(lh.token).toBe("option-token");
    expect(lh.client.timeoutMs).toBe(1234);
    expect(lh.client.retries).toBe(2);
    lh.client.close();
  });

  it("refuses a bad retry count and a bad address with what to fix", () => {
    expect(() => new Leasehold({ env: { LEASEHOLD_MAX_RETRIES: "many" } })).toThrow(/LEASEHOLD_MAX_RETRIES="many" is not a number of retries/);
    expect(() => new Leasehold({ env: {}, address: "ftp://x" })).toThrow(ClientConfigError);
  });

  it("cannot watch a secret it did not fetch unless told how to fetch it again", () => {
    const lh = new Leasehold({ env: {}, address: "http://127.0.0.1:1" });
    const foreign = { request_id: "", lease_id: "x/1", renewable: true, lease_duration: 60, data: {}, wrap_info: null, warnings: null, auth: null };
    expect(() => lh.watch(foreign)).toThrow(/pass options.fetch/);
    lh.client.close();
  });
});

describe("the leasehold/client package entry", () => {
  it("points package.json exports at what the build emits for src/client/library.ts", async () => {
    const { readFileSync, existsSync } = await import("node:fs");
    const root = new URL("../../", import.meta.url);
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { exports: Record<string, { types: string; default: string }> };
    const build = JSON.parse(readFileSync(new URL("tsconfig.build.json", root), "utf8")) as { include: string[]; exclude: string[] };
    const entry = pkg.exports["./client"];
    expect(entry.default).toBe("./dist/src/client/library.js");
    expect(entry.types).toBe("./dist/src/client/library.d.ts");
    // tsc emits dist/<path>.js for each included source: the source must exist and be included.
    expect(existsSync(new URL("src/client/library.ts", root))).toBe(true);
    expect(build.include).toContain("src");
    const library = await import("leasehold/client");
    expect(typeof library.Leasehold).toBe("function");
    expect(typeof library.databasePool).toBe("function");
    expect(typeof library.tlsCertificate).toBe("function");
  });
});
