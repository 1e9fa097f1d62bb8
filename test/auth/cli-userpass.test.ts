/** `leasehold login -method=userpass username=... [password=...]` in process against the real server. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;

async function cli(home: string, argv: string[], stdin?: string) {
  const io = memoryIo({ env: { LEASEHOLD_ADDR: server.url }, homeDir: home, stdin });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
});
afterAll(async () => {
  await server?.stop();
});

describe("leasehold login -method=userpass", () => {
  it("logs in with username=... password=..., or asks for the password, and stores a working token", async () => {
    const home = mkdtempSync(join(tmpdir(), "lh-userpass-cli-"));
    expect((await call(server.url, "POST", "sys/auth/userpass", { token: "root", body: { type: "userpass" } })).status).toBe(204);
    expect((await call(server.url, "POST", "auth/userpass/users/mitchellh", { token: "root", body: { password: "foo", token_policies: "app" } })).status).toBe(204);

    const r = await cli(home, ["login", "-method=userpass", "username=mitchellh", "password=foo"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/\ntoken_policies +\[app default\]\n/);
    expect(r.out).toMatch(/\ntoken_meta_username +mitchellh\n/);
    const token = readFileSync(join(home, ".leasehold-token"), "utf8");
    const lookup = await cli(home, ["token", "lookup", "-format=json"]);
    expect(JSON.parse(lookup.out).data).toMatchObject({ path: "auth/userpass/login/mitchellh", display_name: "userpass-mitchellh" });

    const prompted = await cli(home, ["login", "-method=userpass", "-no-store", "username=mitchellh"], "foo\n");
    expect(prompted.code, prompted.err).toBe(0);
    expect(prompted.err).toMatch(/^Password \(will be hidden\): /);

    const bad = await cli(home, ["login", "-method=userpass", "-no-store", "username=mitchellh", "password=wrong"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^Error authenticating: Code: 400\. Errors:\n\n\* invalid username or password/);
    const noUser = await cli(home, ["login", "-method=userpass", "password=foo"]);
    expect(noUser.code).not.toBe(0);
    expect(noUser.err).toMatch(/'username' must be specified/);
    expect(readFileSync(join(home, ".leasehold-token"), "utf8")).toBe(token);
  });
});
