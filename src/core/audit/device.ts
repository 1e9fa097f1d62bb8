import type { AuditRequestInput, AuditResponseInput } from "./format.js";

/**
 * An enabled audit device: formats entries with its own salt and options and writes them
 * somewhere. Writes are synchronous: when `logRequest`/`logResponse` return, the line has been
 * handed to the operating system; when they throw, it has not (the broker then decides whether the
 * request may proceed).
 */
export interface AuditDevice {
  readonly type: string;
  logRequest(input: AuditRequestInput, now: Date): void;
  logResponse(input: AuditResponseInput, now: Date): void;
  /** `hmac-sha256:<hex>` of `value` with this device's salt (for `sys/audit-hash`), whatever `log_raw` says. */
  hash(value: string): string;
  /** Closes and reopens the underlying file (SIGHUP, after log rotation). */
  reopen(): void;
  close(): void;
}

/** Builds a device from user-supplied options. Throws `UserError` for bad options or an unopenable target. */
export interface AuditDeviceFactory {
  /** Checks the options and returns them normalised as Vault stores them (strings), without opening anything. */
  validate(options: Record<string, unknown>): Record<string, string>;
  /** Opens the device; `options` are the normalised ones `validate` returned. */
  open(options: Record<string, string>, salt: Buffer): AuditDevice;
}
