import fs from "node:fs";
import { InternalError, UserError } from "../../sdk/errors.js";
import { zBool } from "../../sdk/fields.js";
import type { AuditDevice, AuditDeviceFactory, AuditDevicePolicy } from "./device.js";
import {
  formatRequestEntry,
  formatResponseEntry,
  hmacSha256,
  type AuditFormatOptions,
  type AuditRequestInput,
  type AuditResponseInput,
} from "./format.js";

/** Options of the `file` device, as Vault names them (`website/content/docs/audit/file.mdx`). */
export interface FileDeviceConfig {
  /** A file path, or one of the keywords `stdout`, `stderr`, `discard`. */
  filePath: string;
  logRaw: boolean;
  hmacAccessor: boolean;
  /**
   * Permission bits for the file, never executable. 0 (Vault's `"0000"`) leaves an existing file's
   * read/write bits alone but still clears its execute and special bits.
   */
  mode: number;
  /** Written before each JSON object on the same line (Vault's `prefix`); only with `allow_audit_log_prefixing`. */
  prefix: string;
  elideListResponses: boolean;
}

const KNOWN_OPTIONS = ["file_path", "path", "log_raw", "hmac_accessor", "mode", "format", "prefix", "elide_list_responses"] as const;
const KEYWORDS = ["stdout", "stderr", "discard"] as const;

function optionString(options: Record<string, unknown>, key: string): string | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new UserError(`options.${key}: expected a string`);
}

function parseBool(options: Record<string, string>, key: string, fallback: boolean): boolean {
  const raw = options[key];
  if (raw === undefined) return fallback;
  const r = zBool.safeParse(raw);
  if (!r.success) throw new UserError(`options.${key}: expected a boolean, got ${JSON.stringify(raw)}`);
  return r.data;
}

/** Normalises and checks `file` options; returns what `sys/audit` lists (string values, as Vault stores them). */
export function validateFileOptions(input: Record<string, unknown>, policy: AuditDevicePolicy = { allowPrefix: false }): Record<string, string> {
  const unknown = Object.keys(input).filter((k) => !(KNOWN_OPTIONS as readonly string[]).includes(k));
  if (unknown.length) {
    throw new UserError(`unknown option(s) for the file audit device: ${unknown.join(", ")}; supported: ${KNOWN_OPTIONS.filter((k) => k !== "path").join(", ")}`);
  }
  const options: Record<string, string> = {};
  for (const key of Object.keys(input)) {
    const v = optionString(input, key);
    if (v !== undefined) options[key] = v;
  }
  // `path` is the pre-0.8 name of `file_path`; Vault still accepts it.
  if (options.file_path === undefined && options.path !== undefined) options.file_path = options.path;
  delete options.path;
  if (options.file_path === undefined || options.file_path.trim() === "") throw new UserError(`"file_path" is required for the file audit device`);
  checkPrefixAllowed(options, policy);
  parseFileConfig(options);
  return options;
}

/**
 * Vault's `allow_audit_log_prefixing` (CVE-2025-6000): a prefix lets whoever enables a device put
 * chosen text at the start of every line (`id > /tmp/x #` turns a log into a shell script), so it
 * needs the server config's consent, not only `sudo` on `sys/audit`. An empty prefix writes nothing.
 */
function checkPrefixAllowed(options: Record<string, string>, policy: AuditDevicePolicy): void {
  if ((options.prefix ?? "") !== "" && !policy.allowPrefix) {
    throw new UserError(`audit log prefixing is not allowed: the "prefix" option needs allow_audit_log_prefixing = true in the server config`);
  }
}

/** Reads validated options into a typed config; throws `UserError` on bad values. */
export function parseFileConfig(options: Record<string, string>): FileDeviceConfig {
  let filePath = (options.file_path ?? "").trim();
  if (filePath === "") throw new UserError(`"file_path" is required for the file audit device`);
  const keyword = KEYWORDS.find((k) => k === filePath.toLowerCase());
  if (keyword) filePath = keyword;

  const format = (options.format ?? "json").trim().toLowerCase();
  if (format === "jsonx") throw new UserError(`options.format: "jsonx" is not supported by leasehold; use "json"`);
  if (format !== "json") throw new UserError(`options.format: unknown format ${JSON.stringify(options.format)}; supported: json`);

  let mode = 0o600;
  if (options.mode !== undefined) {
    const m = options.mode.trim();
    if (!/^[0-7]{1,4}$/.test(m)) throw new UserError(`options.mode: expected an octal file mode such as "0600", got ${JSON.stringify(options.mode)}`);
    mode = parseInt(m, 8);
    // Refused rather than masked, as Vault does since CVE-2025-6000: a 0755 audit log is a script waiting to be run.
    if (mode & 0o7111) throw new UserError(`options.mode: audit files cannot have executable or special permission bits (got ${m})`);
  }

  return {
    filePath,
    logRaw: parseBool(options, "log_raw", false),
    hmacAccessor: parseBool(options, "hmac_accessor", true),
    mode,
    prefix: options.prefix ?? "",
    elideListResponses: parseBool(options, "elide_list_responses", false),
  };
}

const OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

/** How much of an existing file is read to find its first line. */
const FIRST_LINE_LIMIT = 1 << 20;

let sinkDevices: Set<number> | undefined;

/**
 * The device numbers of /dev/null, /dev/zero and /dev/full: character devices that drop (or
 * refuse, ENOSPC) whatever is written, so a log can neither land anywhere nor reach another
 * program through them. They stay usable (tests of the fail-closed rule write to /dev/full).
 */
function isSinkDevice(st: fs.Stats): boolean {
  if (!sinkDevices) {
    sinkDevices = new Set();
    for (const dev of ["/dev/null", "/dev/zero", "/dev/full"]) {
      try {
        const s = fs.statSync(dev);
        if (s.isCharacterDevice()) sinkDevices.add(s.rdev);
      } catch {
        // absent on this system: nothing to allow
      }
    }
  }
  return st.isCharacterDevice() && sinkDevices.has(st.rdev);
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isSocket()) return "a socket";
  if (st.isBlockDevice()) return "a block device";
  if (st.isCharacterDevice()) return "a character device";
  return "not a regular file";
}

/**
 * Only regular files (and the sink devices): a FIFO or socket hands every line to whatever program
 * reads it, a terminal or block device is written through, a directory cannot hold a log.
 */
function refuseUnsuitable(p: string, st: fs.Stats): void {
  if (st.isFile() || isSinkDevice(st)) return;
  throw new UserError(`refusing audit file_path ${JSON.stringify(p)}: it is ${kindOf(st)}; use a regular file, or "stdout" or "discard"`);
}

/** Whether `line` is one entry of a leasehold (or Vault) JSON audit log. */
function isAuditEntry(line: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return (
    (e.type === "request" || e.type === "response") &&
    typeof e.time === "string" &&
    !Number.isNaN(Date.parse(e.time)) &&
    typeof e.request === "object" &&
    e.request !== null
  );
}

/**
 * An existing, non-empty file is appended to only when it already is an audit log (its first line
 * is an entry, after the configured prefix): `sudo` on `sys/audit` must not be a way to append to a
 * shell rc file, a crontab or a config file the server happens to be able to write.
 */
function checkExistingLog(p: string, written: fs.Stats, prefix: string): void {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    throw new UserError(`refusing audit file_path ${JSON.stringify(p)}: it exists and cannot be read to check that it is an audit log: ${(err as Error).message}`);
  }
  let head: string;
  try {
    const st = fs.fstatSync(fd);
    // The file read must be the one opened for writing (not a file swapped in between).
    if (st.dev !== written.dev || st.ino !== written.ino) throw new UserError(`refusing audit file_path ${JSON.stringify(p)}: the file changed while it was being opened`);
    const buf = Buffer.alloc(Math.min(FIRST_LINE_LIMIT, Math.max(st.size, 1)));
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    head = buf.subarray(0, n).toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
  const nl = head.indexOf("\n");
  let first = nl < 0 ? head : head.slice(0, nl);
  if (prefix !== "" && first.startsWith(prefix)) first = first.slice(prefix.length);
  if (!isAuditEntry(first)) {
    throw new UserError(
      `refusing audit file_path ${JSON.stringify(p)}: the file exists and is not an audit log (its first line is not an audit entry); use a new or empty file, or an existing audit log`,
    );
  }
}

/**
 * JSON with `$` and backquote written as `\u0024` and `\u0060` (the same JSON once parsed). A JSON
 * line is one double-quoted word for a POSIX shell, and callers choose parts of it (paths, field
 * names); without these two characters no expansion or command substitution can happen in it, so
 * a log that ends up sourced by a shell runs nothing. They only occur inside JSON strings.
 */
function shellInert(json: string): string {
  return /[$`]/.test(json) ? json.replace(/\$/g, "\\u0024").replace(/`/g, "\\u0060") : json;
}

/** Blocks the thread briefly; used only when stdout/stderr is a full non-blocking pipe. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The `file` audit device: one JSON object per line, appended with a synchronous write so the line
 * is in the file (the kernel's page cache) before the request goes on. Like Vault it does not fsync
 * each line; a power loss can drop the last lines, a killed process cannot.
 */
export class FileAuditDevice implements AuditDevice {
  readonly type = "file";
  private fd: number | null = null;
  private closed = false;
  private readonly format: AuditFormatOptions;

  /**
   * Opens the target. `enabling` (a device enabled over the API now, not one restored at unseal or
   * reopened after rotation) adds the check that an existing file is empty or already an audit log.
   */
  constructor(readonly config: FileDeviceConfig, private readonly salt: Buffer, opts: { enabling?: boolean } = {}) {
    const hmac = (v: string) => hmacSha256(salt, v);
    this.format = { hmac: config.logRaw ? null : hmac, hmacAccessor: config.hmacAccessor, elideListResponses: config.elideListResponses };
    this.fd = this.openTarget(opts.enabling ?? false);
  }

  /** Opens the target; refusals and OS errors become a `UserError` carrying the reason. */
  private openTarget(enabling: boolean): number | null {
    const p = this.config.filePath;
    if (p === "discard") return null;
    if (p === "stdout") return 1;
    if (p === "stderr") return 2;
    // Checked before opening: opening a FIFO blocks until a reader comes, and opening some devices acts on them.
    let before: fs.Stats | undefined;
    try {
      before = fs.statSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new UserError(`cannot open audit file ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
    if (before) refuseUnsuitable(p, before);
    let fd: number;
    try {
      // O_NONBLOCK: should the path have become a FIFO since the check, the open fails instead of hanging.
      fd = fs.openSync(p, OPEN_FLAGS, (this.config.mode || 0o600) & 0o666);
    } catch (err) {
      throw new UserError(`cannot open audit file ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
    try {
      const st = fs.fstatSync(fd);
      refuseUnsuitable(p, st);
      if (st.isFile()) {
        if (enabling && st.size > 0) checkExistingLog(p, st, this.config.prefix);
        this.applyMode(fd, p, st);
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return fd;
  }

  /**
   * The configured mode, never with execute or special bits; with `"0000"` the file keeps its
   * read/write bits but loses those (an existing executable file must not stay one once it holds
   * lines whose content callers choose). Only regular files get here: chmod-ing a device node
   * such as /dev/null would change it for everyone.
   */
  private applyMode(fd: number, p: string, st: fs.Stats): void {
    const current = st.mode & 0o7777;
    const wanted = this.config.mode === 0 ? current & 0o666 : this.config.mode & 0o666;
    if (current === wanted) return;
    try {
      fs.fchmodSync(fd, wanted);
    } catch (err) {
      throw new UserError(`cannot set mode ${wanted.toString(8).padStart(4, "0")} on audit file ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
  }

  hash(value: string): string {
    return hmacSha256(this.salt, value);
  }

  logRequest(input: AuditRequestInput, now: Date): void {
    this.writeLine(shellInert(JSON.stringify(formatRequestEntry(input, { ...this.format, now }))));
  }

  logResponse(input: AuditResponseInput, now: Date): void {
    this.writeLine(shellInert(JSON.stringify(formatResponseEntry(input, { ...this.format, now }))));
  }

  /** Appends one line; throws if the operating system refuses it (ENOSPC, EIO, EBADF...). */
  writeLine(json: string): void {
    if (this.closed) throw new InternalError(`audit device for ${JSON.stringify(this.config.filePath)} is closed`);
    if (this.config.filePath === "discard") return;
    const fd = this.fd;
    if (fd === null) throw new InternalError(`audit file ${JSON.stringify(this.config.filePath)} is not open`);
    const buf = Buffer.from(`${this.config.prefix}${json}\n`, "utf8");
    let offset = 0;
    let busy = 0;
    while (offset < buf.length) {
      try {
        offset += fs.writeSync(fd, buf, offset, buf.length - offset);
      } catch (err) {
        // stdout/stderr may be non-blocking pipes: wait for the reader rather than drop the entry.
        if ((err as NodeJS.ErrnoException).code === "EAGAIN" && busy++ < 5000) {
          pause(1);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Opens the path again and switches to the new descriptor (after `logrotate` renamed the file).
   * If the open fails, the old descriptor stays in use and the error is thrown.
   */
  reopen(): void {
    if (this.closed || this.fd === null || this.fd === 1 || this.fd === 2) return;
    const next = this.openTarget(false);
    const prev = this.fd;
    this.fd = next;
    if (prev !== null) fs.closeSync(prev);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd;
    this.fd = null;
    if (fd !== null && fd !== 1 && fd !== 2) fs.closeSync(fd);
  }
}

/** Registration of the `file` type for the broker. */
export const fileDeviceFactory: AuditDeviceFactory = {
  validate: validateFileOptions,
  open: (options, salt, ctx) => {
    // Also at unseal: a device stored with a prefix does not come back once the switch is off.
    checkPrefixAllowed(options, ctx);
    return new FileAuditDevice(parseFileConfig(options), salt, { enabling: ctx.enabling });
  },
};
