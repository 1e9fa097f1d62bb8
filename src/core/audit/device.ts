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

/** What the server config lets audit devices do (the same for the API and for devices restored at unseal). */
export interface AuditDevicePolicy {
  /** `allow_audit_log_prefixing`: whether the `prefix` option may be used (Vault's switch, off by default). */
  allowPrefix: boolean;
}

/** How a device is being opened. */
export interface AuditOpenContext extends AuditDevicePolicy {
  /**
   * True when an operator enables the device now (`POST sys/audit/:path`): the target is checked
   * more strictly than when a device already in the table is restored at unseal.
   */
  enabling: boolean;
}

/** Builds a device from user-supplied options. Throws `UserError` for bad options or an unopenable target. */
export interface AuditDeviceFactory {
  /** Checks the options and returns them normalised as Vault stores them (strings), without opening anything. */
  validate(options: Record<string, unknown>, policy: AuditDevicePolicy): Record<string, string>;
  /** Opens the device; `options` are the normalised ones `validate` returned. */
  open(options: Record<string, string>, salt: Buffer, ctx: AuditOpenContext): AuditDevice;
}
