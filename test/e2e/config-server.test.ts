/**
 * End to end: `leasehold server -config=FILE` as an operator runs it, in a child process, against a
 * file-backed SQLite store. Covers Shamir init/unseal, the sealed gate, crash (SIGKILL) recovery,
 * `sys/seal`, the static-key auto-unseal, config errors and graceful shutdown.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { killCliProcesses, spawnCli, waitForHealth, type CliProcess } from "../helpers/cli-process.js";
import { call } from "../helpers/server.js";

const START_TIMEOUT_MS = 45_000;
const EXIT_TIMEOUT_MS = 15_000;

type Child = CliProcess;

const tempDirs: string[] = [];

afterAll(async () => {
  // Reaped before the temp dirs go.
  await killCliProcesses();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** A free loopback port: bind port 0, read it, release it. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `node --import tsx src/cli/main.ts server -config=<file>`, from the repository root. */
function spawnServer(configFile: string): Child {
  return spawnCli(["server", `-config=${configFile}`]);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}


async function kill9(child: Child): Promise<void> {
  child.proc.kill("SIGKILL");
  const { signal } = await withTimeout(child.exited, EXIT_TIMEOUT_MS, "SIGKILL exit");
  expect(signal).toBe("SIGKILL");
}

/** SIGTERM must end the process with code 0, promptly. */
async function terminateGracefully(child: Child): Promise<void> {
  const started = Date.now();
  child.proc.kill("SIGTERM");
  const { code, signal } = await withTimeout(child.exited, 10_000, "SIGTERM exit");
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(Date.now() - started).toBeLessThan(10_000);
}

function writeConfig(dir: string, port: number, extra = ""): string {
  const file = join(dir, "leasehold.hcl");
  writeFileSync(
    file,
    `# written by config-server.test.ts
storage "sqlite" {
  path = "${join(dir, "leasehold.db")}"
}

listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}

default_lease_ttl = "1h"
max_lease_ttl     = "24h"
log_level         = "warn"
${extra}`,
  );
  return file;
}

const POLICY_HCL = `path "secret/data/app" {\n  capabilities = ["read"]\n}\n`;

describe("leasehold server -config (Shamir seal)", () => {
  const dir = tempDir("leasehold-e2e-shamir-");
  let configFile = "";
  let base = "";
  let server: Child;
  let keys: string[] = [];
  let keysB64: string[] = [];
  let rootToken = "";
  const secretValue = `pw-${randomBytes(8).toString("hex")}`;

  it("starts uninitialised: sys/health is 501, seal-status says not initialised", { timeout: 60_000 }, async () => {
    const port = await freePort();
    configFile = writeConfig(dir, port);
    base = `http://127.0.0.1:${port}`;
    server = spawnServer(configFile);
    const health = await waitForHealth(base, server);
    expect(health.status).toBe(501);
    expect(health.body).toMatchObject({ initialized: false, sealed: true, standby: false });
    expect(server.stdout()).toContain(`http://127.0.0.1:${port}`);

    const status = await call(base, "GET", "sys/seal-status");
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ type: "shamir", initialized: false, sealed: true });
    expect((await call(base, "GET", "sys/init")).body).toEqual({ initialized: false });
  });

  it("sys/init with 3 shares, threshold 2, returns hex and base64 keys and a root token, and stays sealed", async () => {
    const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 3, secret_threshold: 2 } });
    expect(init.status).toBe(200);
    keys = init.body.keys;
    keysB64 = init.body.keys_base64;
    rootToken = init.body.root_token;
    expect(keys).toHaveLength(3);
    expect(keysB64).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      expect(keys[i]).toMatch(/^[0-9a-f]+$/);
      expect(Buffer.from(keysB64[i], "base64").toString("hex")).toBe(keys[i]);
    }
    expect(new Set(keys).size).toBe(3);
    expect(typeof rootToken).toBe("string");
    expect(rootToken.length).toBeGreaterThan(8);

    const status = await call(base, "GET", "sys/seal-status");
    expect(status.body).toMatchObject({ type: "shamir", initialized: true, sealed: true, t: 2, n: 3, progress: 0, nonce: "" });
    expect((await call(base, "GET", "sys/init")).body).toEqual({ initialized: true });
    expect((await call(base, "GET", "sys/health")).status).toBe(503);
    // A second init is refused.
    expect((await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } })).status).toBe(400);
  });

  it("answers 503 to everything but health/seal-status/init/unseal while sealed", async () => {
    for (const [method, path, body] of [
      ["GET", "sys/mounts", undefined],
      ["POST", "sys/mounts/secret", { type: "kv" }],
      ["GET", "secret/data/app", undefined],
      ["POST", "auth/token/create", {}],
      ["GET", "auth/token/lookup-self", undefined],
      ["GET", "sys/policies/acl/default", undefined],
      ["PUT", "sys/seal", undefined],
    ] as const) {
      const r = await call(base, method, path, { token: rootToken, body });
      expect({ path, status: r.status }).toEqual({ path, status: 503 });
      expect(Array.isArray(r.body?.errors)).toBe(true);
    }
    for (const path of ["sys/health", "sys/seal-status", "sys/init"]) {
      expect((await call(base, "GET", path)).status).not.toBe(404);
    }
  });

  it("a wrong share combination answers 400 and resets progress; reset:true resets progress", async () => {
    const first = await call(base, "PUT", "sys/unseal", { body: { key: keys[0] } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ sealed: true, progress: 1, t: 2, n: 3 });
    // Share 2 with one byte of its value changed (the last byte is the x coordinate; keep it).
    const bad = Buffer.from(keys[1], "hex");
    bad[0] ^= 0xff;
    const wrong = await call(base, "PUT", "sys/unseal", { body: { key: bad.toString("hex") } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors.length).toBeGreaterThan(0);
    const after = await call(base, "GET", "sys/seal-status");
    expect(after.body).toMatchObject({ sealed: true, progress: 0, nonce: "" });

    const again = await call(base, "PUT", "sys/unseal", { body: { key: keys[2] } });
    expect(again.body).toMatchObject({ sealed: true, progress: 1 });
    const reset = await call(base, "PUT", "sys/unseal", { body: { reset: true } });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ sealed: true, progress: 0, nonce: "" });
    expect((await call(base, "GET", "sys/seal-status")).body).toMatchObject({ sealed: true, progress: 0 });

    // Garbage is a 400 too, and still sealed.
    expect((await call(base, "PUT", "sys/unseal", { body: { key: "not a key!" } })).status).toBe(400);
    expect((await call(base, "GET", "sys/seal-status")).body.sealed).toBe(true);
  });

  it("unseals with shares 1 and 2: progress 1 with a nonce, then unsealed", async () => {
    const one = await call(base, "PUT", "sys/unseal", { body: { key: keys[0] } });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ sealed: true, progress: 1, t: 2, n: 3 });
    expect(typeof one.body.nonce).toBe("string");
    expect(one.body.nonce.length).toBeGreaterThan(0);
    const two = await call(base, "PUT", "sys/unseal", { body: { key: keys[1] } });
    expect(two.status).toBe(200);
    expect(two.body).toMatchObject({ sealed: false, progress: 0, t: 2, n: 3 });
    const health = await call(base, "GET", "sys/health");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ initialized: true, sealed: false });
  });

  it("writes a KV v2 secret and a policy", async () => {
    const mount = await call(base, "POST", "sys/mounts/secret", { token: rootToken, body: { type: "kv", options: { version: "2" } } });
    expect(mount.status).toBe(204);
    const write = await call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { password: secretValue, user: "app" } } });
    expect(write.status).toBe(200);
    expect(write.body.data.version).toBe(1);
    const policy = await call(base, "PUT", "sys/policies/acl/app-read", { token: rootToken, body: { policy: POLICY_HCL } });
    expect(policy.status).toBe(204);
    const read = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(read.body.data.data).toEqual({ password: secretValue, user: "app" });
  });

  it("after SIGKILL and a restart on the same config it comes up sealed", { timeout: 60_000 }, async () => {
    await kill9(server);
    server = spawnServer(configFile);
    const health = await waitForHealth(base, server);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ initialized: true, sealed: true });
    const status = await call(base, "GET", "sys/seal-status");
    expect(status.body).toMatchObject({ initialized: true, sealed: true, t: 2, n: 3, progress: 0 });
    const read = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(read.status).toBe(503);
    expect((await call(base, "GET", "sys/policies/acl/app-read", { token: rootToken })).status).toBe(503);
  });

  it("unseals with shares 2 (hex) and 3 (base64); the secret, the mount, the policy and the root token survived", async () => {
    expect((await call(base, "PUT", "sys/unseal", { body: { key: keys[1] } })).body).toMatchObject({ sealed: true, progress: 1 });
    expect((await call(base, "PUT", "sys/unseal", { body: { key: keysB64[2] } })).body).toMatchObject({ sealed: false });

    const read = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ password: secretValue, user: "app" });
    expect(read.body.data.metadata.version).toBe(1);

    const mounts = await call(base, "GET", "sys/mounts", { token: rootToken });
    expect(mounts.body.data["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });

    const policy = await call(base, "GET", "sys/policies/acl/app-read", { token: rootToken });
    expect(policy.status).toBe(200);
    expect(policy.body.data.policy).toBe(POLICY_HCL);

    // The policy still works: a token holding it reads the secret and nothing else.
    const child = await call(base, "POST", "auth/token/create", { token: rootToken, body: { policies: ["app-read"], ttl: "10m" } });
    expect(child.status).toBe(200);
    const childToken = child.body.auth.client_token as string;
    expect((await call(base, "GET", "secret/data/app", { token: childToken })).body.data.data.password).toBe(secretValue);
    expect((await call(base, "GET", "sys/mounts", { token: childToken })).status).toBe(403);
  });

  it("PUT sys/seal needs a token; with the root token it seals the server (then 503)", async () => {
    expect((await call(base, "PUT", "sys/seal")).status).toBe(403);
    expect((await call(base, "GET", "sys/seal-status")).body.sealed).toBe(false);

    const seal = await call(base, "PUT", "sys/seal", { token: rootToken });
    expect(seal.status).toBe(204);
    expect((await call(base, "GET", "sys/seal-status")).body).toMatchObject({ sealed: true, initialized: true });
    expect((await call(base, "GET", "secret/data/app", { token: rootToken })).status).toBe(503);
    expect((await call(base, "GET", "sys/health")).status).toBe(503);

    // And it can be unsealed again in the same process.
    await call(base, "PUT", "sys/unseal", { body: { key: keys[2] } });
    expect((await call(base, "PUT", "sys/unseal", { body: { key: keys[0] } })).body.sealed).toBe(false);
    expect((await call(base, "GET", "secret/data/app", { token: rootToken })).body.data.data.password).toBe(secretValue);
  });

  it("SIGTERM shuts down gracefully with exit code 0", { timeout: 30_000 }, async () => {
    await terminateGracefully(server);
    await expect(call(base, "GET", "sys/health")).rejects.toThrow();
  });
});

describe('leasehold server -config with seal "static"', () => {
  const dir = tempDir("leasehold-e2e-static-");
  let configFile = "";
  let base = "";
  let server: Child;
  let rootToken = "";
  const secretValue = `static-${randomBytes(8).toString("hex")}`;

  it("init unseals at once and returns recovery keys", { timeout: 60_000 }, async () => {
    const keyFile = join(dir, "unseal.key");
    writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    configFile = writeConfig(dir, port, `\nseal "static" {\n  key_file = "${keyFile}"\n}\n`);
    server = spawnServer(configFile);
    const health = await waitForHealth(base, server);
    expect(health.status).toBe(501);

    const init = await call(base, "PUT", "sys/init", { body: { recovery_shares: 3, recovery_threshold: 2 } });
    expect(init.status).toBe(200);
    expect(init.body.keys).toEqual([]);
    expect(init.body.recovery_keys).toHaveLength(3);
    rootToken = init.body.root_token;
    expect(typeof rootToken).toBe("string");

    const status = await call(base, "GET", "sys/seal-status");
    expect(status.body).toMatchObject({ type: "static", initialized: true, sealed: false });
    expect((await call(base, "GET", "sys/health")).status).toBe(200);

    expect((await call(base, "POST", "sys/mounts/secret", { token: rootToken, body: { type: "kv", options: { version: "2" } } })).status).toBe(204);
    expect((await call(base, "POST", "secret/data/app", { token: rootToken, body: { data: { password: secretValue } } })).status).toBe(200);
    expect((await call(base, "PUT", "sys/policies/acl/app-read", { token: rootToken, body: { policy: POLICY_HCL } })).status).toBe(204);
  });

  it("after SIGKILL and a restart it comes up unsealed by itself, data intact", { timeout: 60_000 }, async () => {
    await kill9(server);
    server = spawnServer(configFile);
    const health = await waitForHealth(base, server);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ initialized: true, sealed: false });
    expect((await call(base, "GET", "sys/seal-status")).body).toMatchObject({ type: "static", sealed: false });
    const read = await call(base, "GET", "secret/data/app", { token: rootToken });
    expect(read.status).toBe(200);
    expect(read.body.data.data).toEqual({ password: secretValue });
    expect((await call(base, "GET", "sys/policies/acl/app-read", { token: rootToken })).body.data.policy).toBe(POLICY_HCL);
    await terminateGracefully(server);
  });

  it("refuses to start with a key file that does not match the store", { timeout: 60_000 }, async () => {
    const otherKey = join(dir, "other.key");
    writeFileSync(otherKey, randomBytes(32).toString("hex"), { mode: 0o600 });
    const port = await freePort();
    const dir2 = tempDir("leasehold-e2e-static-wrong-");
    const file = join(dir2, "wrong.hcl");
    writeFileSync(
      file,
      `storage "sqlite" { path = "${join(dir, "leasehold.db")}" }\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\nseal "static" { key_file = "${otherKey}" }\n`,
    );
    const child = spawnServer(file);
    const { code } = await withTimeout(child.exited, START_TIMEOUT_MS, "exit with a wrong seal key");
    expect(code).toBe(1);
    expect(child.stderr()).toMatch(/key_file does not match/);
  });
});

describe("leasehold server -config with a bad config file", () => {
  const dir = tempDir("leasehold-e2e-badconfig-");

  async function runBad(name: string, text: string): Promise<{ code: number | null; stderr: string }> {
    const file = join(dir, name);
    writeFileSync(file, text);
    const child = spawnServer(file);
    const { code } = await withTimeout(child.exited, START_TIMEOUT_MS, `exit on ${name}`);
    return { code, stderr: child.stderr() };
  }

  it("an unknown key: exit 1, the error names the key and its line", { timeout: 60_000 }, async () => {
    const r = await runBad(
      "bad.hcl",
      `storage "sqlite" {\n  path = "${join(dir, "db")}"\n}\nlistener "tcp" {\n  adress      = "127.0.0.1:8200"\n  tls_disable = true\n}\n`,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bad.hcl:5");
    expect(r.stderr).toContain('"adress"');
    expect(r.stderr).toContain('did you mean "address"');
  });

  it("a listener address already in use: exit 1 (the process does not hang), the error names the address", { timeout: 60_000 }, async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await runBad("busy.hcl", `storage "sqlite" {\n  path = "${join(dir, "busy-db")}"\n}\nlistener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n`);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
    } finally {
      busy.close();
    }
  });

  it("a bad duration: exit 1, the error names the key and its line", { timeout: 60_000 }, async () => {
    const r = await runBad(
      "bad-ttl.hcl",
      `storage "sqlite" {\n  path = "${join(dir, "db")}"\n}\nlistener "tcp" {\n  address     = "127.0.0.1:8200"\n  tls_disable = true\n}\n\nmax_lease_ttl = "forever"\n`,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bad-ttl.hcl:9");
    expect(r.stderr).toContain("max_lease_ttl");
    expect(r.stderr).toContain("forever");
  });
});

describe("leasehold server -dev -config=FILE (Vault merges config files into its dev config)", () => {
  const dir = tempDir("leasehold-e2e-devconfig-");

  it("applies the file's max_lease_ttl and serves its listener besides the dev one", { timeout: 60_000 }, async () => {
    const [devPort, extraPort] = [await freePort(), await freePort()];
    const file = join(dir, "dev.hcl");
    writeFileSync(file, `max_lease_ttl = "87600h"\nlistener "tcp" {\n  address     = "127.0.0.1:${extraPort}"\n  tls_disable = true\n}\n`);
    const child = spawnCli(["server", "-dev", `-config=${file}`, `-dev-listen-address=127.0.0.1:${devPort}`, "-dev-root-token-id=root"], { HOME: dir });
    const base = `http://127.0.0.1:${devPort}`;
    expect((await waitForHealth(base, child)).status).toBe(200);
    // The README's PKI example: a CA mount for ten years needs the system maximum raised.
    const mount = await call(base, "POST", "sys/mounts/pki", { token: "root", body: { type: "pki", config: { max_lease_ttl: "87600h" } } });
    expect(mount.status, JSON.stringify(mount.body)).toBe(204);
    const tune = await call(base, "GET", "sys/mounts/pki/tune", { token: "root" });
    expect(tune.body.max_lease_ttl).toBe(87600 * 3600);
    const extra = await call(`http://127.0.0.1:${extraPort}`, "GET", "sys/health");
    expect(extra.status).toBe(200);
    expect(extra.body.initialized).toBe(true);
    child.proc.kill("SIGTERM");
    expect((await withTimeout(child.exited, EXIT_TIMEOUT_MS, "SIGTERM exit")).code).toBe(0);
  });

  it("refuses a storage block: exit 1, the error names the line and what to do", { timeout: 60_000 }, async () => {
    const file = join(dir, "dev-storage.hcl");
    writeFileSync(file, `max_lease_ttl = "87600h"\nstorage "sqlite" {\n  path = "${join(dir, "db")}"\n}\n`);
    const child = spawnCli(["server", "-dev", `-config=${file}`, `-dev-listen-address=127.0.0.1:${await freePort()}`], { HOME: dir });
    const { code } = await withTimeout(child.exited, START_TIMEOUT_MS, "exit on a storage block in dev mode");
    expect(code).toBe(1);
    expect(child.stderr()).toContain("dev-storage.hcl:2");
    expect(child.stderr()).toContain("remove the storage block, or start without -dev");
  });
});
