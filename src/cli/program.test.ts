import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kvApiPath } from "./commands/kv.js";
import { mountMap, secretsEnableRequest } from "./commands/mounts.js";
import type { ServerRunOptions } from "./commands/server.js";
import { tokenCreateRequest, tokenRevokeRequest } from "./commands/token.js";
import { UsageError } from "./context.js";
import { memoryIo } from "./memory-io.js";
import { runCli } from "./program.js";

const home = () => mkdtempSync(join(tmpdir(), "lh-cli-"));

async function run(argv: string[], init: Parameters<typeof memoryIo>[0] = { homeDir: home() }) {
  const io = memoryIo(init);
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe("exit codes for usage errors", () => {
  it("exits 2 for an unknown command, with commander's message on stderr", async () => {
    const r = await run(["bogus"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown command 'bogus'");
  });

  it("exits 2 for an unknown flag, vault-style or GNU-style", async () => {
    expect((await run(["read", "-bogus=1", "secret/foo"])).code).toBe(2);
    const r = await run(["read", "--bogus", "secret/foo"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option '--bogus'");
  });

  it("exits 2 for missing and excess arguments", async () => {
    const missing = await run(["read"]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("missing required argument 'path'");
    expect((await run(["list", "a", "b"])).code).toBe(2);
    expect((await run(["policy", "write", "only-name"])).code).toBe(2);
  });

  it("exits 2 for a group without its subcommand", async () => {
    const r = await run(["token"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("Usage: leasehold token");
  });

  it("exits 2 for an invalid -format, and for write without data or -f", async () => {
    const format = await run(["read", "-format=xml", "secret/foo"]);
    expect(format.code).toBe(2);
    expect(format.err).toContain("xml");
    const write = await run(["write", "secret/foo"]);
    expect(write.code).toBe(2);
    expect(write.err).toBe("Must supply data or use -force\n");
  });

  it("exits 2 for contradictory token revoke flags before contacting any server", async () => {
    const r = await run(["token", "revoke", "-self", "lhs.abc"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("-self revokes the token in use");
  });

  it("exits 0 for help and version", async () => {
    const help = await run(["read", "-help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("Usage: leasehold read");
    const version = await run(["version"]);
    expect(version.code).toBe(0);
    expect(version.out).toMatch(/^leasehold v\d+\.\d+\.\d+\n$/);
    expect((await run(["-version"])).out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe("connection failures", () => {
  it("exit 1 with vault's error prefix and a hint about LEASEHOLD_ADDR", async () => {
    const port = await closedPort();
    const r = await run(["read", "secret/foo"], { homeDir: home(), env: { VAULT_ADDR: `http://127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `Error reading secret/foo: connection refused: is the server running at http://127.0.0.1:${port}? set LEASEHOLD_ADDR (or -address) to the server's address\n`,
    );
    expect(r.out).toBe("");
  });

  it("takes -address over the environment", async () => {
    const port = await closedPort();
    const r = await run(["list", `-address=http://127.0.0.1:${port}`, "secret/"], { homeDir: home(), env: { LEASEHOLD_ADDR: "http://127.0.0.1:1" } });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`http://127.0.0.1:${port}`);
  });
});

describe("server command", () => {
  const serverRun = async (argv: string[], env: Record<string, string> = {}) => {
    const calls: ServerRunOptions[] = [];
    const r = await run(argv, { homeDir: home(), env, runServer: async (opts) => void calls.push(opts) });
    return { ...r, calls };
  };

  it("passes vault's dev flags through to runServer", async () => {
    const r = await serverRun(["server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=0.0.0.0:8300", "-log-level=debug"]);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      { config: undefined, dev: true, devRootTokenId: "root", devListenAddress: "0.0.0.0:8300", devTls: false, devTlsCertDir: undefined, logLevel: "debug" },
    ]);
  });

  it("treats -dev-tls as dev mode and reads VAULT_DEV_ROOT_TOKEN_ID", async () => {
    const r = await serverRun(["server", "-dev-tls", "-dev-tls-cert-dir", "/tmp/certs"], { VAULT_DEV_ROOT_TOKEN_ID: "myroot" });
    expect(r.calls[0]).toMatchObject({ dev: true, devTls: true, devTlsCertDir: "/tmp/certs", devRootTokenId: "myroot" });
  });

  it("passes -config, and refuses to start with neither -config nor -dev", async () => {
    expect((await serverRun(["server", "-config=/etc/leasehold.hcl"])).calls[0]).toMatchObject({ config: "/etc/leasehold.hcl", dev: false });
    const none = await serverRun(["server"]);
    expect(none.code).toBe(2);
    expect(none.calls).toEqual([]);
    expect(none.err).toContain("-config=FILE");
  });
});

describe("request builders", () => {
  it("token create sends only the flags given, with policies and metadata collected", () => {
    expect(tokenCreateRequest({ policy: ["a", "b,c"], ttl: "1h", renewable: false, numUses: "3", metadata: ["team=pay", "env=prod"], defaultPolicy: false })).toEqual({
      path: "auth/token/create",
      body: { policies: ["a", "b", "c"], ttl: "1h", renewable: false, num_uses: 3, no_default_policy: true, meta: { team: "pay", env: "prod" } },
    });
    expect(tokenCreateRequest({ orphan: true }).path).toBe("auth/token/create-orphan");
    expect(tokenCreateRequest({ role: "ci" }).path).toBe("auth/token/create/ci");
    expect(() => tokenCreateRequest({ metadata: ["novalue"] })).toThrow(UsageError);
  });

  it("token revoke picks the endpoint from -self, -accessor and -mode", () => {
    expect(tokenRevokeRequest(undefined, { self: true })).toEqual({ path: "auth/token/revoke-self", body: {} });
    expect(tokenRevokeRequest("acc", { accessor: true })).toEqual({ path: "auth/token/revoke-accessor", body: { accessor: "acc" } });
    expect(tokenRevokeRequest("t", { mode: "orphan" })).toEqual({ path: "auth/token/revoke-orphan", body: { token: "t" } });
    expect(tokenRevokeRequest("t", {})).toEqual({ path: "auth/token/revoke", body: { token: "t" } });
    expect(() => tokenRevokeRequest(undefined, {})).toThrow(UsageError);
    expect(() => tokenRevokeRequest("t", { mode: "path" })).toThrow(/-mode=orphan/);
  });

  it("secrets enable maps -version, kv-v2 and TTL flags onto the mount body", () => {
    expect(secretsEnableRequest("kv", { path: "app/", version: "2", description: "apps", maxLeaseTtl: "24h" })).toEqual({
      path: "app",
      body: { type: "kv", description: "apps", config: { max_lease_ttl: "24h" }, options: { version: "2" } },
    });
    expect(secretsEnableRequest("kv-v2", {})).toEqual({ path: "kv-v2", body: { type: "kv", config: {}, options: { version: "2" } } });
    expect(secretsEnableRequest("pki", { options: ["a=b"] }).body.options).toEqual({ a: "b" });
  });

  it("kv paths insert data/ and metadata/ only for KV v2", () => {
    expect(kvApiPath({ mount: "secret", version: 2, relative: "app/db" }, "data")).toBe("secret/data/app/db");
    expect(kvApiPath({ mount: "secret", version: 2, relative: "" }, "metadata")).toBe("secret/metadata");
    expect(kvApiPath({ mount: "kv1", version: 1, relative: "app" }, "data")).toBe("kv1/app");
  });

  it("reads the mount map from data or from the top level of sys/mounts", () => {
    const entry = { type: "kv", accessor: "kv_1" };
    expect(mountMap({ data: { "secret/": entry } })).toEqual({ "secret/": entry });
    expect(mountMap({ request_id: "r", "secret/": entry, data: null })).toEqual({ "secret/": entry });
  });
});
