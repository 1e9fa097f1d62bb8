import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UserError } from "../../sdk/errors.js";
import { FileAuditDevice, parseFileConfig, validateFileOptions } from "./file-device.js";
import { hmacSha256, type AuditRequestInput } from "./format.js";

const salt = Buffer.alloc(32, 1);
const now = new Date("2025-06-05T16:10:22.292Z");
const input: AuditRequestInput = {
  id: "req-1",
  operation: "read",
  path: "secret/data/app",
  clientToken: "hvs.token-in-clear",
  clientTokenAccessor: "acc-1",
  caller: { displayName: "token", policies: ["root"] },
  remoteAddress: "127.0.0.1",
};

let dir: string;
const open: FileAuditDevice[] = [];
/** Opens a device as `POST sys/audit/:path` does (`enabling`), with or without the prefix switch. */
function device(options: Record<string, string>, opts: { allowPrefix?: boolean; enabling?: boolean } = {}): FileAuditDevice {
  const d = new FileAuditDevice(parseFileConfig(validateFileOptions(options, { allowPrefix: opts.allowPrefix ?? false })), salt, { enabling: opts.enabling ?? true });
  open.push(d);
  return d;
}
function lines(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "leasehold-audit-"));
});
afterEach(() => {
  for (const d of open.splice(0)) d.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("file device options", () => {
  it("requires file_path", () => {
    expect(() => validateFileOptions({})).toThrow(UserError);
    expect(() => validateFileOptions({})).toThrow(/"file_path" is required/);
    expect(() => validateFileOptions({ file_path: "  " })).toThrow(/"file_path" is required/);
  });

  it("refuses jsonx and unknown formats", () => {
    expect(() => validateFileOptions({ file_path: "discard", format: "jsonx" })).toThrow(/"jsonx" is not supported/);
    expect(() => validateFileOptions({ file_path: "discard", format: "yaml" })).toThrow(/unknown format/);
    expect(validateFileOptions({ file_path: "discard", format: "json" })).toEqual({ file_path: "discard", format: "json" });
  });

  it("refuses unknown options, naming the supported ones", () => {
    expect(() => validateFileOptions({ file_path: "discard", log_rawr: "true" })).toThrow(/unknown option\(s\) for the file audit device: log_rawr; supported: file_path, log_raw/);
  });

  it("parses booleans and modes the way Vault's options arrive (strings), and keeps them as strings", () => {
    const opts = validateFileOptions({ file_path: "/tmp/x.log", log_raw: true, hmac_accessor: "false", mode: "0640" });
    expect(opts).toEqual({ file_path: "/tmp/x.log", log_raw: "true", hmac_accessor: "false", mode: "0640" });
    expect(parseFileConfig(opts)).toEqual({ filePath: "/tmp/x.log", logRaw: true, hmacAccessor: false, mode: 0o640, prefix: "", elideListResponses: false });
    expect(() => validateFileOptions({ file_path: "/tmp/x.log", log_raw: "maybe" })).toThrow(/options.log_raw: expected a boolean/);
  });

  it("refuses bad and executable modes", () => {
    expect(() => validateFileOptions({ file_path: "/tmp/x.log", mode: "rw-------" })).toThrow(/octal file mode/);
    expect(() => validateFileOptions({ file_path: "/tmp/x.log", mode: "0755" })).toThrow(/executable/);
  });

  it("accepts Vault's keywords case-insensitively and the legacy `path` option", () => {
    expect(parseFileConfig({ file_path: "STDOUT" }).filePath).toBe("stdout");
    expect(parseFileConfig({ file_path: "Discard" }).filePath).toBe("discard");
    expect(validateFileOptions({ path: "/var/log/a.log" })).toEqual({ file_path: "/var/log/a.log" });
  });
});

describe("FileAuditDevice", () => {
  it("appends one JSON object per line, readable as soon as log returns", () => {
    const file = path.join(dir, "audit.log");
    const d = device({ file_path: file });
    d.logRequest(input, now);
    expect(lines(file)).toHaveLength(1);
    d.logResponse({ ...input, response: { data: { value: "s3cret" } } }, now);
    const [req, resp] = lines(file);
    expect(req.type).toBe("request");
    expect(resp.type).toBe("response");
    expect((resp.response as { data: unknown }).data).toEqual({ value: hmacSha256(salt, "s3cret") });
    expect(fs.readFileSync(file, "utf8")).not.toContain("hvs.token-in-clear");
    expect(fs.readFileSync(file, "utf8").endsWith("}\n")).toBe(true);
  });

  it("appends to an existing audit log instead of truncating it", () => {
    const file = path.join(dir, "audit.log");
    const old = { time: "2025-06-01T00:00:00.000Z", type: "response", auth: {}, request: { id: "old" } };
    fs.writeFileSync(file, JSON.stringify(old) + "\n", { mode: 0o600 });
    device({ file_path: file }).logRequest(input, now);
    expect(lines(file).map((l) => (l.request as { id: string }).id)).toEqual(["old", "req-1"]);
  });

  it("refuses an existing file that is not an audit log, and leaves it untouched", () => {
    const file = path.join(dir, "notes.txt");
    fs.writeFileSync(file, '{"old":true}\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(() => device({ file_path: file })).toThrow(/is not an audit log/);
    expect(fs.readFileSync(file, "utf8")).toBe('{"old":true}\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    // Restoring a device at unseal does not re-check the content (the path was checked when enabled).
    expect(() => device({ file_path: file }, { enabling: false })).not.toThrow();
  });

  it("accepts an existing log whose lines carry the configured prefix", () => {
    const file = path.join(dir, "audit.log");
    device({ file_path: file, prefix: "AUDIT: " }, { allowPrefix: true }).logRequest(input, now);
    expect(() => device({ file_path: file, prefix: "AUDIT: " }, { allowPrefix: true })).not.toThrow();
    expect(() => device({ file_path: file })).toThrow(/is not an audit log/);
  });

  it("creates the file with mode 0600 by default and applies a configured mode to an existing file", () => {
    const a = path.join(dir, "a.log");
    device({ file_path: a });
    expect(fs.statSync(a).mode & 0o777).toBe(0o600);

    const b = path.join(dir, "b.log");
    fs.writeFileSync(b, "", { mode: 0o644 });
    fs.chmodSync(b, 0o644);
    device({ file_path: b, mode: "0640" });
    expect(fs.statSync(b).mode & 0o777).toBe(0o640);

    const c = path.join(dir, "c.log");
    fs.writeFileSync(c, "");
    fs.chmodSync(c, 0o644);
    device({ file_path: c, mode: "0000" });
    expect(fs.statSync(c).mode & 0o777).toBe(0o644);
  });

  it('"0000" keeps an existing file\'s read/write bits but clears execute and special bits', () => {
    const c = path.join(dir, "c.log");
    fs.writeFileSync(c, "");
    fs.chmodSync(c, 0o4755);
    device({ file_path: c, mode: "0000" });
    expect(fs.statSync(c).mode & 0o7777).toBe(0o644);
  });

  it("refuses directories and FIFOs, and accepts the sink devices", () => {
    expect(() => device({ file_path: dir })).toThrow(/it is a directory/);
    const fifo = path.join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    // Must not hang: the FIFO is recognised before it is opened.
    expect(() => device({ file_path: fifo })).toThrow(/it is a named pipe/);
    const link = path.join(dir, "link-to-pipe");
    fs.symlinkSync(fifo, link);
    expect(() => device({ file_path: link })).toThrow(/it is a named pipe/);
    expect(() => device({ file_path: "/dev/null" })).not.toThrow();
  });

  it("turns an unopenable path into a UserError carrying the OS message", () => {
    const bad = path.join(dir, "missing-dir", "audit.log");
    expect(() => device({ file_path: bad })).toThrow(UserError);
    expect(() => device({ file_path: bad })).toThrow(/ENOENT: no such file or directory/);
  });

  it("propagates a failed write (ENOSPC from /dev/full)", () => {
    const modeBefore = fs.statSync("/dev/full").mode;
    const d = device({ file_path: "/dev/full" });
    expect(() => d.logRequest(input, now)).toThrow(/ENOSPC/);
    // /dev/full is a device node: its mode must not have been touched.
    expect(fs.statSync("/dev/full").mode).toBe(modeBefore);
  });

  it("throws after close instead of writing to a recycled descriptor", () => {
    const d = device({ file_path: path.join(dir, "audit.log") });
    d.close();
    expect(() => d.logRequest(input, now)).toThrow(/closed/);
  });

  it("reopen() follows log rotation: after a rename, new lines go to a fresh file", () => {
    const file = path.join(dir, "audit.log");
    const d = device({ file_path: file });
    d.logRequest({ ...input, id: "before" }, now);
    fs.renameSync(file, `${file}.1`);
    d.logRequest({ ...input, id: "still-old-fd" }, now);
    d.reopen();
    d.logRequest({ ...input, id: "after" }, now);
    expect(lines(`${file}.1`).map((l) => (l.request as { id: string }).id)).toEqual(["before", "still-old-fd"]);
    expect(lines(file).map((l) => (l.request as { id: string }).id)).toEqual(["after"]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it("keeps the old file when reopen fails", () => {
    const sub = path.join(dir, "sub");
    fs.mkdirSync(sub);
    const file = path.join(sub, "audit.log");
    const d = device({ file_path: file });
    fs.renameSync(sub, path.join(dir, "moved"));
    expect(() => d.reopen()).toThrow(/ENOENT/);
    d.logRequest({ ...input, id: "kept" }, now);
    expect(lines(path.join(dir, "moved", "audit.log")).map((l) => (l.request as { id: string }).id)).toEqual(["kept"]);
  });

  it("writes the prefix before each JSON object (with allow_audit_log_prefixing)", () => {
    const file = path.join(dir, "audit.log");
    expect(() => device({ file_path: file, prefix: "AUDIT: " })).toThrow(/audit log prefixing is not allowed/);
    device({ file_path: file, prefix: "AUDIT: " }, { allowPrefix: true }).logRequest(input, now);
    const text = fs.readFileSync(file, "utf8");
    expect(text.startsWith('AUDIT: {"time":"2025-06-05T16:10:22.292Z","type":"request"')).toBe(true);
  });

  it("writes $ and backquotes as JSON escapes, so a sourced log expands nothing", () => {
    const file = path.join(dir, "audit.log");
    device({ file_path: file }).logRequest({ ...input, path: "secret/data/$(id)`id`" }, now);
    const text = fs.readFileSync(file, "utf8");
    expect(text).not.toMatch(/[$`]/);
    expect((lines(file)[0].request as { path: string }).path).toBe("secret/data/$(id)`id`");
  });

  it("discard accepts entries and writes nothing", () => {
    const d = device({ file_path: "discard" });
    expect(() => d.logRequest(input, now)).not.toThrow();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
