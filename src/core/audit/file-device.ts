import fs from "node:fs";
import { InternalError, UserError } from "../../sdk/errors.js";
import { zBool } from "../../sdk/fields.js";
import type { AuditDevice, AuditDeviceFactory } from "./device.js";
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
  /** Permission bits for the file; 0 leaves an existing file's mode alone (Vault's `"0000"`). */
  mode: number;
  /** Written before each JSON object on the same line (Vault's `prefix`). */
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
export function validateFileOptions(input: Record<string, unknown>): Record<string, string> {
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
  parseFileConfig(options);
  return options;
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

  constructor(readonly config: FileDeviceConfig, private readonly salt: Buffer) {
    const hmac = (v: string) => hmacSha256(salt, v);
    this.format = { hmac: config.logRaw ? null : hmac, hmacAccessor: config.hmacAccessor, elideListResponses: config.elideListResponses };
    this.fd = this.openTarget();
  }

  /** Opens the target; an OS error becomes a `UserError` carrying the OS message. */
  private openTarget(): number | null {
    const p = this.config.filePath;
    if (p === "discard") return null;
    if (p === "stdout") return 1;
    if (p === "stderr") return 2;
    let fd: number;
    try {
      // The mode applies when the file is created; an existing file keeps its owner and gets the mode below.
      fd = fs.openSync(p, "a", this.config.mode || 0o600);
    } catch (err) {
      throw new UserError(`cannot open audit file ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
    try {
      const st = fs.fstatSync(fd);
      // Only regular files: chmod-ing a device node such as /dev/null would change it for everyone.
      if (this.config.mode !== 0 && st.isFile() && (st.mode & 0o7777) !== this.config.mode) fs.fchmodSync(fd, this.config.mode);
    } catch (err) {
      fs.closeSync(fd);
      throw new UserError(`cannot set mode ${this.config.mode.toString(8).padStart(4, "0")} on audit file ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
    return fd;
  }

  hash(value: string): string {
    return hmacSha256(this.salt, value);
  }

  logRequest(input: AuditRequestInput, now: Date): void {
    this.writeLine(JSON.stringify(formatRequestEntry(input, { ...this.format, now })));
  }

  logResponse(input: AuditResponseInput, now: Date): void {
    this.writeLine(JSON.stringify(formatResponseEntry(input, { ...this.format, now })));
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
    const next = this.openTarget();
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
  open: (options, salt) => new FileAuditDevice(parseFileConfig(options), salt),
};
