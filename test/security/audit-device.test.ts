import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { loadServerConfig } from "../../src/server/config.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Issue 15, item 8 (the class of Vault's CVE-2025-6000): `sudo` on `sys/audit/*` must not be a
 * way to make the server write a script. A `prefix` needs the server config's
 * `allow_audit_log_prefixing`; audit files never get execute bits; an existing file is appended
 * to only when it is empty or already an audit log; FIFOs, sockets, directories and devices
 * (other than /dev/null, /dev/zero, /dev/full) are refused; and no line expands anything when a
 * shell sources it.
 */
describe("file audit device: where an operator points it", () => {
  let server: RunningServer;
  let base: string;
  let auditor: string;
  let dir: string;

  const enable = (name: string, options: Record<string, string>, token = auditor) => call(base, "PUT", `sys/audit/${name}`, { token, body: { type: "file", options } });
  const disable = (name: string, token = auditor) => call(base, "DELETE", `sys/audit/${name}`, { token });
  const devices = async () => Object.keys((await call(base, "GET", "sys/audit", { token: "root" })).body.data).sort();
  const auditLines = (file: string) =>
    fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l !== "");

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    // The attacker of the report: every capability, sudo included, on sys/audit/* and nothing else.
    const policy = 'path "sys/audit/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }';
    expect((await call(base, "PUT", "sys/policies/acl/auditor", { token: "root", body: { policy } })).status).toBe(204);
    const t = await call(base, "POST", "auth/token/create", { token: "root", body: { policies: ["auditor"], ttl: "1h" } });
    auditor = t.body.auth.client_token as string;
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-audit-sec-"));
  });
  afterEach(async () => {
    // Devices left enabled would keep auditing into a removed directory.
    for (const d of await devices()) await disable(d.slice(0, -1), "root");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses the reported attack: an rc file, mode 0000 and a shell-command prefix", async () => {
    const rc = path.join(dir, ".bashrc");
    const rcText = "# ~/.bashrc\nexport PATH=$HOME/bin:$PATH\n";
    fs.writeFileSync(rc, rcText);
    fs.chmodSync(rc, 0o644);
    const marker = path.join(dir, "pwned");

    const attack = await enable("rc", { file_path: rc, mode: "0000", prefix: `id > ${marker} #` });
    expect(attack.status).toBe(400);
    expect(attack.body.errors.join(" ")).toMatch(/audit log prefixing is not allowed/);
    // Without the prefix: the file is not an audit log, so it is not appended to either.
    const noPrefix = await enable("rc", { file_path: rc, mode: "0000" });
    expect(noPrefix.status).toBe(400);
    expect(noPrefix.body.errors.join(" ")).toMatch(/is not an audit log/);

    expect(await devices()).toEqual([]);
    expect(fs.readFileSync(rc, "utf8")).toBe(rcText);
    expect(fs.statSync(rc).mode & 0o7777).toBe(0o644);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("never makes an audit file executable", async () => {
    const fresh = path.join(dir, "audit-0755.log");
    const r = await enable("exec", { file_path: fresh, mode: "0755" });
    expect(r.status).toBe(400);
    expect(r.body.errors.join(" ")).toMatch(/executable/);
    expect(fs.existsSync(fresh)).toBe(false);

    // An existing empty file that is executable, with "0000" (keep the mode): it loses its execute bits.
    const script = path.join(dir, "hook.sh");
    fs.writeFileSync(script, "");
    fs.chmodSync(script, 0o755);
    expect((await enable("hook", { file_path: script, mode: "0000" })).status).toBe(204);
    expect(fs.statSync(script).mode & 0o7777).toBe(0o644);
    expect(auditLines(script).length).toBeGreaterThan(0);
  });

  it("refuses FIFOs, directories and symlinks to them; /dev/null and discard stay usable", async () => {
    const fifo = path.join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    const viaLink = path.join(dir, "audit.log");
    fs.symlinkSync(fifo, viaLink);
    for (const p of [fifo, viaLink, dir]) {
      const r = await enable("special", { file_path: p });
      expect(r.status, p).toBe(400);
      expect(r.body.errors.join(" ")).toMatch(/it is a (named pipe|directory)/);
    }
    expect(await devices()).toEqual([]);
    expect((await enable("null", { file_path: "/dev/null" })).status).toBe(204);
    expect((await enable("discard", { file_path: "discard" })).status).toBe(204);
    expect(await devices()).toEqual(["discard/", "null/"]);
  });

  it("positive control: a fresh path with mode 0600 is created and written", async () => {
    const file = path.join(dir, "audit.log");
    expect((await enable("file", { file_path: file, mode: "0600" })).status).toBe(204);
    expect((await call(base, "GET", "sys/mounts", { token: "root" })).status).toBe(200);
    expect(fs.statSync(file).mode & 0o7777).toBe(0o600);
    const entries = auditLines(file).map((l) => JSON.parse(l) as { type: string; request: { path: string } });
    expect(entries.some((e) => e.type === "response" && e.request.path === "sys/mounts")).toBe(true);
  });

  it("positive control: an existing audit log is re-enabled after disable and appended to", async () => {
    const file = path.join(dir, "audit.log");
    expect((await enable("file", { file_path: file })).status).toBe(204);
    expect((await disable("file")).status).toBe(204);
    const before = auditLines(file);
    expect(before.length).toBeGreaterThan(0);

    expect((await enable("file", { file_path: file })).status).toBe(204);
    expect((await call(base, "GET", "sys/mounts", { token: "root" })).status).toBe(200);
    const after = auditLines(file);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
  });

  it("a log sourced by a shell runs nothing, whatever callers put in paths and field names", async () => {
    const file = path.join(dir, "audit.log");
    const marker = path.join(dir, "pwned");
    expect((await enable("file", { file_path: file })).status).toBe(204);
    const payload = `$(touch ${marker})`;
    await call(base, "POST", `secret/data/x${encodeURIComponent("`touch " + marker + "`")}`, { token: "root", body: { data: { [payload]: "v" } } });
    const text = fs.readFileSync(file, "utf8");
    // The payload is in the log (as JSON escapes), so the check below has something to run.
    expect(auditLines(file).some((l) => JSON.stringify(JSON.parse(l)).includes(payload))).toBe(true);
    spawnSync("sh", ["-c", `. '${file}'`], { stdio: "ignore", cwd: dir, timeout: 10_000 });
    expect(fs.existsSync(marker)).toBe(false);
    expect(text).not.toMatch(/[$`]/);
  });
});

describe("file audit device: prefix with allow_audit_log_prefixing", () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root", allowAuditLogPrefixing: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-audit-prefix-"));
  });
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the server config key parses (off unless set)", () => {
    const base = 'storage "sqlite" { path = "/tmp/x.db" }\nlistener "tcp" { tls_disable = true }\n';
    expect(loadServerConfig(base, "l.hcl").allowAuditLogPrefixing).toBeUndefined();
    expect(loadServerConfig(base + "allow_audit_log_prefixing = true\n", "l.hcl").allowAuditLogPrefixing).toBe(true);
  });

  it("with the switch on, a prefix is written before every line", async () => {
    const file = path.join(dir, "audit.log");
    const r = await call(server.url, "PUT", "sys/audit/file", { token: "root", body: { type: "file", options: { file_path: file, prefix: "AUDIT: " } } });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    expect((await call(server.url, "GET", "sys/mounts", { token: "root" })).status).toBe(200);
    const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(l.startsWith("AUDIT: {")).toBe(true);
      expect(JSON.parse(l.slice("AUDIT: ".length)).time).toBeTypeOf("string");
    }
  });
});
