import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { InternalError, NotFound, UserError } from "../../sdk/errors.js";
import type { StorageView } from "../../sdk/types.js";
import type { AuditDevice, AuditDeviceFactory, AuditDevicePolicy } from "./device.js";
import { fileDeviceFactory } from "./file-device.js";
import type { AuditRequestInput, AuditResponseInput } from "./format.js";

/** `POST sys/audit/:path` body, after edge validation. */
export interface AuditEnableParams {
  type: string;
  description?: string;
  options?: Record<string, unknown>;
  /** Vault's replication flag; stored and listed, no effect on a single node. */
  local?: boolean;
}

/** One row of `GET sys/audit`, exactly as Vault lists it. */
export interface AuditDeviceInfo {
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
  /** With trailing slash, e.g. `file/`. */
  path: string;
}

/** One device that failed to write an entry, and why. */
export interface AuditDeviceFailure {
  path: string;
  error: Error;
}

/**
 * No enabled device could record the entry, so the request must not proceed (fail-closed, as in
 * Vault). The client sees a 500 without file paths or OS details; `failures` has them for the log.
 */
export class AuditWriteFailed extends InternalError {
  constructor(readonly failures: AuditDeviceFailure[]) {
    super("audit: no audit device could write the entry");
  }
}

interface AuditTable {
  version: 1;
  entries: AuditDeviceInfo[];
}

interface EnabledDevice {
  info: AuditDeviceInfo;
  device: AuditDevice;
}

export interface AuditBrokerDeps {
  logger?: Pick<Logger, "warn" | "error">;
  /** Device types by name; defaults to `{ file }`. */
  factories?: Record<string, AuditDeviceFactory>;
  /** The server config's `allow_audit_log_prefixing` (default false, as in Vault). */
  allowPrefix?: boolean;
}

const TABLE_KEY = "table";
const SALT_BYTES = 32;

/** `file`, `/file/`, `a/b` → `file/`, `a/b/`; rejects empty and dot segments. */
export function normalizeAuditPath(path: string): string {
  const p = path.trim().replace(/^\/+|\/+$/g, "");
  if (p === "") throw new UserError("audit device path must be specified");
  const segments = p.split("/");
  if (segments.some((s) => !/^[A-Za-z0-9_.-]+$/.test(s) || s === "." || s === "..")) {
    throw new UserError(`invalid audit device path ${JSON.stringify(path)}: use letters, digits, '_', '-', '.' and '/'`);
  }
  return `${p}/`;
}

/** Storage key of a device's HMAC salt. */
function saltKey(path: string): string {
  return `salt/${path.slice(0, -1)}`;
}

/**
 * The audit broker: the table of enabled devices, their salts, and the fan-out of every request
 * and response entry. It owns its storage view: `table` (the device list) and `salt/<path>` (32
 * random bytes per device, encrypted by the barrier like everything else in the view).
 */
export class AuditBroker {
  private devices = new Map<string, EnabledDevice>();
  private readonly factories: Record<string, AuditDeviceFactory>;
  private readonly policy: AuditDevicePolicy;

  constructor(private readonly storage: StorageView, private readonly deps: AuditBrokerDeps = {}) {
    this.factories = deps.factories ?? { file: fileDeviceFactory };
    this.policy = { allowPrefix: deps.allowPrefix ?? false };
  }

  /** Whether any device is enabled (requests are audited, and fail when no device can write). */
  get enabled(): boolean {
    return this.devices.size > 0;
  }

  /**
   * Restores the devices persisted in storage (at unseal). If a device cannot be opened the whole
   * load fails, as Vault's unseal does: coming up with a configured device silently missing would
   * let requests through unaudited.
   */
  async load(): Promise<void> {
    await this.storage.withLock(TABLE_KEY, async () => {
      this.closeAll();
      const table = await this.storage.getJSON<AuditTable>(TABLE_KEY);
      const opened = new Map<string, EnabledDevice>();
      try {
        for (const info of table?.entries ?? []) {
          const factory = this.factories[info.type];
          if (!factory) throw new InternalError(`audit device ${info.path} has unknown type ${JSON.stringify(info.type)}`);
          let salt = await this.storage.get(saltKey(info.path));
          if (!salt || salt.length === 0) {
            // Only a crash between writing the table and the salt could cause this; hashes change from here on.
            salt = randomBytes(SALT_BYTES);
            await this.storage.put(saltKey(info.path), salt);
            this.deps.logger?.warn({ device: info.path }, "audit device had no salt; generated a new one");
          }
          let device: AuditDevice;
          try {
            device = factory.open(info.options, salt, { ...this.policy, enabling: false });
          } catch (err) {
            throw new InternalError(`audit device ${info.path} could not be restored: ${(err as Error).message}`);
          }
          opened.set(info.path, { info, device });
        }
      } catch (err) {
        for (const d of opened.values()) d.device.close();
        throw err;
      }
      this.devices = opened;
    });
  }

  /**
   * Enables a device at `path`. Validation and opening happen before anything is persisted, so a
   * refused device leaves no trace in storage.
   */
  async enable(path: string, params: AuditEnableParams): Promise<void> {
    const p = normalizeAuditPath(path);
    const factory = this.factories[params.type];
    if (!factory) {
      throw new UserError(`unknown audit device type ${JSON.stringify(params.type)}; supported types: ${Object.keys(this.factories).join(", ")}`);
    }
    const options = factory.validate(params.options ?? {}, this.policy);
    await this.storage.withLock(TABLE_KEY, async () => {
      for (const existing of this.devices.keys()) {
        // Vault refuses nested paths too (`file/` and `file/x/`), not only the same one.
        if (existing.startsWith(p) || p.startsWith(existing)) throw new UserError(`path already in use at ${existing}`);
      }
      const info: AuditDeviceInfo = { type: params.type, description: params.description ?? "", options, local: params.local ?? false, path: p };
      const salt = randomBytes(SALT_BYTES);
      const device = factory.open(options, salt, { ...this.policy, enabling: true });
      try {
        // Salt before table: a persisted device always has its salt.
        await this.storage.put(saltKey(p), salt);
        await this.storage.putJSON(TABLE_KEY, this.tableWith([...this.infos(), info]));
      } catch (err) {
        device.close();
        await this.storage.delete(saltKey(p)).catch(() => undefined);
        throw err;
      }
      this.devices.set(p, { info, device });
    });
  }

  /** Disables the device at `path` and forgets its salt. Returns false when there was none (Vault answers 204 either way). */
  async disable(path: string): Promise<boolean> {
    const p = normalizeAuditPath(path);
    return this.storage.withLock(TABLE_KEY, async () => {
      const enabled = this.devices.get(p);
      if (!enabled) return false;
      await this.storage.putJSON(TABLE_KEY, this.tableWith(this.infos().filter((i) => i.path !== p)));
      this.devices.delete(p);
      enabled.device.close();
      // Vault clears the device's storage on disable: re-enabling starts with a new salt.
      await this.storage.delete(saltKey(p)).catch((err: unknown) => this.deps.logger?.warn({ device: p, err }, "could not delete the audit salt"));
      return true;
    });
  }

  /** `GET sys/audit`: `{ "file/": { type, description, options, local, path } }`. */
  list(): Record<string, AuditDeviceInfo> {
    const out: Record<string, AuditDeviceInfo> = {};
    for (const [path, { info }] of this.devices) out[path] = { ...info, options: { ...info.options } };
    return out;
  }

  /** `POST sys/audit-hash/:path`: the value as that device would log it, `hmac-sha256:<hex>`. */
  hash(path: string, input: string): string {
    const enabled = this.devices.get(normalizeAuditPath(path));
    if (!enabled) throw new NotFound(`unknown audit device ${JSON.stringify(path)}`);
    return enabled.device.hash(input);
  }

  /** Writes the request entry to every device. Throws `AuditWriteFailed` when devices exist and none wrote. */
  async logRequest(input: AuditRequestInput): Promise<void> {
    this.fanOut((device, now) => device.logRequest(input, now));
  }

  /** Writes the response entry to every device; same rule as `logRequest`. */
  async logResponse(input: AuditResponseInput): Promise<void> {
    this.fanOut((device, now) => device.logResponse(input, now));
  }

  /** Reopens every device's file (on SIGHUP, for log rotation). Returns the devices that failed; they keep their old file. */
  reopen(): AuditDeviceFailure[] {
    const failures: AuditDeviceFailure[] = [];
    for (const [path, { device }] of this.devices) {
      try {
        device.reopen();
      } catch (err) {
        failures.push({ path, error: err as Error });
        this.deps.logger?.error({ device: path, err }, "audit device could not reopen its file");
      }
    }
    return failures;
  }

  /** Closes every device (seal, shutdown). The table stays in storage for the next `load`. */
  close(): void {
    this.closeAll();
  }

  private closeAll(): void {
    for (const { device } of this.devices.values()) device.close();
    this.devices = new Map();
  }

  private infos(): AuditDeviceInfo[] {
    return [...this.devices.values()].map((d) => d.info);
  }

  private tableWith(entries: AuditDeviceInfo[]): AuditTable {
    return { version: 1, entries };
  }

  /** Vault's rule: an entry is recorded if at least one device wrote it; if none did, the request fails. */
  private fanOut(write: (device: AuditDevice, now: Date) => void): void {
    if (this.devices.size === 0) return;
    const now = new Date();
    const failures: AuditDeviceFailure[] = [];
    for (const [path, { device }] of this.devices) {
      try {
        write(device, now);
      } catch (err) {
        failures.push({ path, error: err as Error });
      }
    }
    for (const f of failures) this.deps.logger?.error({ device: f.path, err: f.error }, "audit device failed to write an entry");
    if (failures.length === this.devices.size) throw new AuditWriteFailed(failures);
  }
}
