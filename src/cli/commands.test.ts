import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../server/run.js";
import { startTestServer } from "../../test/helpers/server.js";
import { memoryIo } from "./memory-io.js";
import { runCli } from "./program.js";

/** The CLI in-process against the real dev server, as a vault user's shell script would drive it. */
let server: RunningServer;
let home: string;

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  home = mkdtempSync(join(tmpdir(), "lh-cli-e2e-"));
});

afterAll(async () => {
  await server?.stop();
});

async function cli(argv: string[], opts: { token?: string | null; stdin?: string; env?: Record<string, string> } = {}) {
  const env: Record<string, string> = { LEASEHOLD_ADDR: server.url, ...opts.env };
  if (opts.token !== null) env.LEASEHOLD_TOKEN = opts.token ?? "root";
  const io = memoryIo({ env, homeDir: home, stdin: opts.stdin });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe("leasehold CLI against the dev server", () => {
  it("status prints the seal table and exits 0 when unsealed", async () => {
    const r = await cli(["status"], { token: null });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Key +Value\n/);
    expect(r.out).toMatch(/\nSealed +false\n/);
    expect(r.out).toMatch(/\nInitialized +true\n/);
    const json = await cli(["status", "-format=json"], { token: null });
    expect(JSON.parse(json.out)).toMatchObject({ sealed: false, initialized: true });
  });

  it("login TOKEN verifies the token, stores it 0600, and later commands use it", async () => {
    const r = await cli(["login", "root"], { token: null });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\ntoken +root\n/);
    expect(r.out).toMatch(/\ntoken_policies +\[root\]\n/);
    const file = join(home, ".leasehold-token");
    expect(readFileSync(file, "utf8")).toBe("root");
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const lookup = await cli(["token", "lookup", "-format=json"], { token: null });
    expect(lookup.code).toBe(0);
    expect(JSON.parse(lookup.out).data.policies).toEqual(["root"]);
  });

  it("login with a bad token fails with exit 1 and stores nothing new", async () => {
    const r = await cli(["login", "-no-store", "not-a-token"], { token: null });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error validating token: Code: 403\. Errors:\n\n\* permission denied/);
  });

  it("kv put -mount and kv get -field round-trip a secret", async () => {
    const put = await cli(["kv", "put", "-mount=secret", "app", "username=svc", "password=-"], { stdin: "s3cret" });
    expect(put.code).toBe(0);
    expect(put.out).toContain("secret/data/app");
    expect(put.out).toMatch(/\nversion +1\n/);

    const field = await cli(["kv", "get", "-field=password", "secret/app"]);
    expect(field).toEqual({ code: 0, out: "s3cret", err: "" });

    const table = await cli(["kv", "get", "secret/app"]);
    expect(table.out).toMatch(/=+ Data =+\nKey +Value\n-+ +-+\npassword +s3cret\nusername +svc\n/);

    const list = await cli(["kv", "list", "secret/"]);
    expect(list.out).toBe("Keys\n----\napp\n");
  });

  it("write and read speak the raw API, with -format=json printing the envelope", async () => {
    const write = await cli(["write", "secret/data/raw", "data=-"], { stdin: "ignored" });
    // KV v2 needs an object under `data`; a string is refused by the engine.
    expect(write.code).toBe(1);
    expect(write.err).toMatch(/^Error writing data to secret\/data\/raw: Code: 400\./);

    const ok = await cli(["write", "secret/data/raw", "-"], { stdin: '{"data": {"n": "1"}}' });
    expect(ok.code).toBe(0);
    const read = await cli(["read", "-format=json", "secret/data/raw"]);
    expect(read.code).toBe(0);
    const envelope = JSON.parse(read.out);
    expect(envelope.data.data).toEqual({ n: "1" });
    expect(envelope).toHaveProperty("request_id");
    expect(envelope).toHaveProperty("lease_duration", 0);
  });

  it("read of a missing secret exits 2 with vault's message", async () => {
    const r = await cli(["read", "secret/data/missing"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("No value found at secret/data/missing\n");
  });

  it("policies and a limited token: create with -field=token, then a 403 with a hint", async () => {
    const policy = 'path "secret/data/app" { capabilities = ["read"] }\n';
    expect((await cli(["policy", "write", "reader", "-"], { stdin: policy })).out).toBe("Success! Uploaded policy: reader\n");
    expect((await cli(["policy", "read", "reader"])).out).toBe(policy);
    expect((await cli(["policy", "list"])).out.split("\n")).toContain("reader");

    const created = await cli(["token", "create", "-policy=reader", "-ttl=1h", "-field=token"]);
    expect(created.code).toBe(0);
    const token = created.out;
    expect(token).toMatch(/^\S+$/);

    const lookup = await cli(["token", "lookup", "-format=json", token]);
    expect(JSON.parse(lookup.out).data.policies).toEqual(["default", "reader"]);

    const allowed = await cli(["kv", "get", "-field=username", "secret/app"], { token });
    expect(allowed.out).toBe("svc");

    const denied = await cli(["read", "sys/mounts"], { token });
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/^Error reading sys\/mounts: Code: 403\. Errors:\n\n\* permission denied\n\nHint: /);

    const revoked = await cli(["token", "revoke", token]);
    expect(revoked.out).toBe("Success! Revoked token (if it existed)\n");
    expect((await cli(["token", "lookup"], { token })).code).toBe(1);
  });

  it("secrets enable, list, tune and disable a KV v1 mount", async () => {
    const enable = await cli(["secrets", "enable", "-path=team", "-description=team store", "kv"]);
    expect(enable.out).toBe("Success! Enabled the kv secrets engine at: team/\n");
    const listed = await cli(["secrets", "list", "-format=json"]);
    expect(JSON.parse(listed.out)["team/"]).toMatchObject({ type: "kv", description: "team store" });
    expect((await cli(["secrets", "list"])).out).toMatch(/\nteam\/ +kv +\S+ +team store\n/);
    expect((await cli(["secrets", "tune", "-max-lease-ttl=2h", "team"])).out).toBe("Success! Tuned the secrets engine at: team/\n");

    expect((await cli(["write", "team/db", "pass=a", "pass=b"])).code).toBe(0);
    expect((await cli(["read", "-field=pass", "team/db"])).out).toBe("[a b]");
    expect((await cli(["list", "team"])).out).toBe("Keys\n----\ndb\n");
    expect((await cli(["delete", "team/db"])).out).toBe("Success! Data deleted (if it existed) at: team/db\n");

    expect((await cli(["secrets", "disable", "team/"])).out).toBe("Success! Disabled the secrets engine (if it existed) at: team/\n");
    expect(JSON.parse((await cli(["secrets", "list", "-format=json"])).out)).not.toHaveProperty("team/");
  });

  it("audit enable file writes the device, audit list shows it", async () => {
    expect((await cli(["audit", "list"])).code).toBe(2);
    const file = join(home, "audit.log");
    writeFileSync(file, "");
    const enable = await cli(["audit", "enable", "file", `file_path=${file}`]);
    expect(enable.out).toBe("Success! Enabled the file audit device at: file/\n");
    const list = await cli(["audit", "list", "-detailed"]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/\nfile\/ +file +n\/a +map\[file_path:.*audit\.log\]\n/);
    await cli(["read", "secret/data/app"]);
    expect(readFileSync(file, "utf8")).toContain('"type":"request"');
    expect((await cli(["audit", "disable", "file"])).out).toBe("Success! Disabled audit device (if it was enabled) at: file/\n");
  });
});
