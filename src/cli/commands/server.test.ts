import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryIo } from "../memory-io.js";
import { runCli } from "../program.js";
import type { ServerRunOptions } from "./server.js";

/** Runs `leasehold <argv>` in process with a stand-in for runServer; returns what it was given. */
async function serverRun(argv: string[], env: Record<string, string> = {}) {
  const calls: ServerRunOptions[] = [];
  const io = memoryIo({ homeDir: mkdtempSync(join(tmpdir(), "lh-cli-")), env, runServer: async (opts) => void calls.push(opts) });
  const code = await runCli(argv, io);
  return { code, calls, err: io.err() };
}

describe("leasehold server -no-revoke", () => {
  it("accepts vault-style -no-revoke and GNU-style --no-revoke, with -dev or -config", async () => {
    for (const argv of [["server", "-dev", "-no-revoke"], ["server", "--no-revoke", "--dev"], ["server", "-config=/etc/lh.hcl", "-no-revoke"]]) {
      const r = await serverRun(argv);
      expect(r.code, r.err).toBe(0);
      expect(r.calls).toHaveLength(1);
      expect(r.calls[0].noRevoke).toBe(true);
    }
  });

  it("is off by default and with -no-revoke=false", async () => {
    expect((await serverRun(["server", "-dev"])).calls[0].noRevoke).toBeUndefined();
    const off = await serverRun(["server", "-dev", "-no-revoke=false"]);
    expect(off.code).toBe(0);
    expect(off.calls[0].noRevoke).toBeUndefined();
  });

  it("reads LEASEHOLD_NO_REVOKE", async () => {
    expect((await serverRun(["server", "-dev"], { LEASEHOLD_NO_REVOKE: "1" })).calls[0].noRevoke).toBe(true);
    expect((await serverRun(["server", "-dev"], { LEASEHOLD_NO_REVOKE: "true" })).calls[0].noRevoke).toBe(true);
    expect((await serverRun(["server", "-dev"], { LEASEHOLD_NO_REVOKE: "0" })).calls[0].noRevoke).toBeUndefined();
    const bad = await serverRun(["server", "-dev"], { LEASEHOLD_NO_REVOKE: "perhaps" });
    expect(bad.code).toBe(2);
    expect(bad.calls).toEqual([]);
    expect(bad.err).toContain("LEASEHOLD_NO_REVOKE");
  });
});
