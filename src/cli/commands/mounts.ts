import type { Command } from "commander";
import type { VaultResponse } from "../../client/index.js";
import {
  CliExit,
  CommandContext,
  UsageError,
  addConnectionOptions,
  addFormatOption,
  collect,
  trimSlashes,
  withTrailingSlash,
  type CliIo,
  type ConnectionFlags,
  type OutputFlags,
} from "../context.js";
import { formatStructured, formatTable, formatValue, humanDuration, sortedEntries } from "../format.js";

type Flags = ConnectionFlags & OutputFlags;

/** One entry of `GET sys/mounts`, `sys/auth` or `sys/audit`. */
export interface MountEntry {
  type?: string;
  description?: string;
  accessor?: string;
  path?: string;
  config?: { default_lease_ttl?: number; max_lease_ttl?: number };
  options?: Record<string, string> | null;
  local?: boolean;
}

const ENVELOPE_KEYS = new Set(["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth", "mount_type"]);

/** Vault answers sys/mounts with the map in `data` and copied to the top level; either will do. */
export function mountMap(body: unknown): Record<string, MountEntry> {
  const envelope = body as Partial<VaultResponse<Record<string, MountEntry>>> | undefined;
  if (envelope?.data && typeof envelope.data === "object") return envelope.data;
  const out: Record<string, MountEntry> = {};
  for (const [k, v] of Object.entries((body as Record<string, unknown>) ?? {})) {
    if (!ENVELOPE_KEYS.has(k) && v && typeof v === "object") out[k] = v as MountEntry;
  }
  return out;
}

/** The table of `secrets list` / `auth list` (`-detailed` adds TTLs and options). */
export function formatMountTable(mounts: Record<string, MountEntry>, detailed: boolean): string {
  const ttl = (s: number | undefined) => (s ? humanDuration(s) : "system");
  const rows = sortedEntries(mounts).map(([path, raw]) => {
    const m = raw as MountEntry;
    return detailed
      ? [path, m.type ?? "", m.accessor ?? "", ttl(m.config?.default_lease_ttl), ttl(m.config?.max_lease_ttl), formatValue(m.options ?? null), m.description ?? ""]
      : [path, m.type ?? "", m.accessor ?? "", m.description ?? ""];
  });
  const header = detailed ? ["Path", "Type", "Accessor", "Default TTL", "Max TTL", "Options", "Description"] : ["Path", "Type", "Accessor", "Description"];
  return formatTable(header, rows);
}

/** Parses repeated `-options=k=v` flags. */
export function optionsMap(pairs: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of pairs ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`-options must be key=value, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export interface EnableFlags {
  path?: string;
  description?: string;
  defaultLeaseTtl?: string;
  maxLeaseTtl?: string;
  version?: string;
  options?: string[];
  local?: boolean;
}

/** The mount path and body of `secrets enable`; `kv-v2` is `kv` with `version=2`, as in Vault. */
export function secretsEnableRequest(type: string, flags: EnableFlags): { path: string; body: Record<string, unknown> } {
  let engine = type;
  const options = optionsMap(flags.options);
  if (type === "kv-v2") {
    engine = "kv";
    options.version = "2";
  }
  if (flags.version !== undefined) options.version = flags.version;
  const config: Record<string, unknown> = {};
  if (flags.defaultLeaseTtl !== undefined) config.default_lease_ttl = flags.defaultLeaseTtl;
  if (flags.maxLeaseTtl !== undefined) config.max_lease_ttl = flags.maxLeaseTtl;
  const body: Record<string, unknown> = { type: engine, config };
  if (flags.description !== undefined) body.description = flags.description;
  if (Object.keys(options).length > 0) body.options = options;
  if (flags.local) body.local = true;
  return { path: trimSlashes(flags.path ?? type), body };
}

interface Family {
  /** `secrets` or `auth`. */
  command: string;
  /** `sys/mounts` or `sys/auth`. */
  api: string;
  noun: (type: string) => string;
}

const SECRETS: Family = { command: "secrets", api: "sys/mounts", noun: (t) => `the ${t} secrets engine` };
const AUTH: Family = { command: "auth", api: "sys/auth", noun: (t) => `the ${t} auth method` };

function registerFamily(program: Command, io: CliIo, family: Family, description: string): void {
  const group = program.command(family.command).description(description);
  const isSecrets = family === SECRETS;

  const enable = addConnectionOptions(group.command("enable"))
    .description(isSecrets ? "mount a secrets engine (at TYPE/ unless -path is given)" : "enable an auth method (at auth/TYPE/ unless -path is given)")
    .argument("<type>")
    .option("--path <path>", "mount path (default: the type)")
    .option("--description <text>", "human-friendly description")
    .option("--default-lease-ttl <duration>", "default lease TTL")
    .option("--max-lease-ttl <duration>", "maximum lease TTL")
    .option("--options <key=value>", "mount option (repeatable)", collect)
    .option("--local", "do not replicate this mount");
  if (isSecrets) enable.option("--version <n>", "engine version (kv: 2 for versioned KV)");
  enable.action(async (type: string, flags: Flags & EnableFlags) => {
    const ctx = new CommandContext(io, flags);
    try {
      const { path, body } = secretsEnableRequest(type, flags);
      // Vault's wording: "Error enabling: ..." for engines, "Error enabling approle auth: ..." for methods.
      await ctx.call(isSecrets ? "enabling" : `enabling ${type} auth`, (c) => c.write(`${family.api}/${path}`, body));
      ctx.print(`Success! Enabled ${family.noun(String(body.type))} at: ${withTrailingSlash(path)}`);
    } finally {
      ctx.close();
    }
  });

  addConnectionOptions(group.command("disable"))
    .description(isSecrets ? "unmount a secrets engine, revoking its leases" : "disable an auth method, revoking the tokens it issued")
    .argument("<path>")
    .action(async (path: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const mount = trimSlashes(path);
        await ctx.call(`disabling ${isSecrets ? "secrets engine" : "auth method"} at ${withTrailingSlash(mount)}`, (c) => c.delete(`${family.api}/${mount}`));
        ctx.print(`Success! Disabled ${isSecrets ? "the secrets engine" : "the auth method"} (if it existed) at: ${withTrailingSlash(mount)}`);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(group.command("list")), false)
    .description(isSecrets ? "list mounted secrets engines" : "list enabled auth methods")
    .option("--detailed", "show TTLs and options")
    .action(async (flags: Flags & { detailed?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const res = await ctx.call(`listing ${isSecrets ? "secrets engines" : "enabled authentications"}`, (c) => c.request("GET", family.api));
        const mounts = mountMap(res.body);
        if (ctx.format === "table") ctx.print(formatMountTable(mounts, flags.detailed === true));
        else ctx.print(formatStructured(mounts, ctx.format));
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(group.command("tune"))
    .description("change a mount's TTLs or description")
    .argument("<path>")
    .option("--default-lease-ttl <duration>", "default lease TTL")
    .option("--max-lease-ttl <duration>", "maximum lease TTL")
    .option("--description <text>", "human-friendly description")
    .action(async (path: string, flags: Flags & EnableFlags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const mount = trimSlashes(path);
        const body: Record<string, unknown> = {};
        if (flags.defaultLeaseTtl !== undefined) body.default_lease_ttl = flags.defaultLeaseTtl;
        if (flags.maxLeaseTtl !== undefined) body.max_lease_ttl = flags.maxLeaseTtl;
        if (flags.description !== undefined) body.description = flags.description;
        if (Object.keys(body).length === 0) throw new UsageError("Nothing to tune: give -default-lease-ttl, -max-lease-ttl or -description");
        await ctx.call(`tuning ${isSecrets ? "secrets engine" : "auth method"} ${withTrailingSlash(mount)}`, (c) => c.write(`${family.api}/${mount}/tune`, body));
        ctx.print(`Success! Tuned ${isSecrets ? "the secrets engine" : "the auth method"} at: ${withTrailingSlash(mount)}`);
      } finally {
        ctx.close();
      }
    });
}

export function registerSecrets(program: Command, io: CliIo): void {
  registerFamily(program, io, SECRETS, "enable, disable, list and tune secrets engines");
}

export function registerAuth(program: Command, io: CliIo): void {
  registerFamily(program, io, AUTH, "enable, disable, list and tune auth methods");
}

export function registerAudit(program: Command, io: CliIo): void {
  const audit = program.command("audit").description("enable, disable and list audit devices");

  addConnectionOptions(audit.command("enable"))
    .description("enable an audit device: audit enable file file_path=/var/log/leasehold/audit.log")
    .argument("<type>")
    .argument("[options...]", "K=V device options")
    .option("--path <path>", "device path (default: the type)")
    .option("--description <text>", "human-friendly description")
    .option("--local", "do not replicate this device")
    .action(async (type: string, args: string[], flags: Flags & { path?: string; description?: string; local?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const raw = await ctx.keyValues(args);
        const options: Record<string, string> = {};
        for (const [k, v] of Object.entries(raw)) options[k] = Array.isArray(v) ? v.join(",") : String(v);
        const path = trimSlashes(flags.path ?? type);
        const body: Record<string, unknown> = { type, options };
        if (flags.description !== undefined) body.description = flags.description;
        if (flags.local) body.local = true;
        await ctx.call(`enabling audit device`, (c) => c.write(`sys/audit/${path}`, body));
        ctx.print(`Success! Enabled the ${type} audit device at: ${withTrailingSlash(path)}`);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(audit.command("list")), false)
    .description("list enabled audit devices (exit code 2 when there are none)")
    .option("--detailed", "show the device options")
    .action(async (flags: Flags & { detailed?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const res = await ctx.call("retrieving audits", (c) => c.request("GET", "sys/audit"));
        const devices = mountMap(res.body);
        if (ctx.format !== "table") {
          ctx.print(formatStructured(devices, ctx.format));
          return;
        }
        if (Object.keys(devices).length === 0) {
          ctx.print("No audit devices are enabled.");
          throw new CliExit(2);
        }
        const rows = sortedEntries(devices).map(([path, raw]) => {
          const d = raw as MountEntry;
          return flags.detailed ? [path, d.type ?? "", d.description ?? "", formatValue(d.options ?? null)] : [path, d.type ?? "", d.description ?? ""];
        });
        ctx.print(formatTable(flags.detailed ? ["Path", "Type", "Description", "Options"] : ["Path", "Type", "Description"], rows));
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(audit.command("disable"))
    .description("disable an audit device")
    .argument("<path>")
    .action(async (path: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const device = trimSlashes(path);
        await ctx.call("disabling audit device", (c) => c.delete(`sys/audit/${device}`));
        ctx.print(`Success! Disabled audit device (if it was enabled) at: ${withTrailingSlash(device)}`);
      } finally {
        ctx.close();
      }
    });
}
