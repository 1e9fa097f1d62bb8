import type { Command } from "commander";
import { VaultHttpError, type LeaseholdClient, type VaultResponse } from "../../client/index.js";
import {
  CliExit,
  CommandContext,
  UsageError,
  addConnectionOptions,
  addFormatOption,
  trimSlashes,
  type CliIo,
  type ConnectionFlags,
  type OutputFlags,
} from "../context.js";
import { formatKeyValueTable, formatStructured, sortedEntries } from "../format.js";

type Flags = ConnectionFlags & OutputFlags & { mount?: string };

/** Where a `kv` command's secret lives: the mount, the KV version, the path inside the mount. */
export interface KvLocation {
  mount: string;
  version: 1 | 2;
  relative: string;
}

/**
 * Finds the mount and KV version the way `vault kv` does: ask `sys/internal/ui/mounts/<path>`
 * (the default policy allows it). A server without that endpoint (404) is taken as KV v1.
 */
export async function locateKv(client: LeaseholdClient, mountFlag: string | undefined, path: string): Promise<KvLocation> {
  const full = trimSlashes(mountFlag ? `${trimSlashes(mountFlag)}/${trimSlashes(path)}` : path);
  let info: { path?: string; type?: string; options?: Record<string, string> | null } | undefined;
  try {
    const resp = await client.read<{ path?: string; type?: string; options?: Record<string, string> | null }>(`sys/internal/ui/mounts/${full}`);
    info = resp?.data ?? undefined;
  } catch (err) {
    if (!(err instanceof VaultHttpError && err.status === 404)) throw err;
  }
  if (!info) {
    const mount = mountFlag ? trimSlashes(mountFlag) : "";
    return { mount, version: 1, relative: mount ? trimSlashes(path) : full };
  }
  const mount = trimSlashes(info.path ?? (mountFlag ? mountFlag : full.split("/")[0]));
  const relative = full === mount ? "" : full.startsWith(`${mount}/`) ? full.slice(mount.length + 1) : full;
  return { mount, version: info.options?.version === "2" ? 2 : 1, relative };
}

/** The API path for a KV operation: `secret/data/app` in v2, `secret/app` in v1. */
export function kvApiPath(loc: KvLocation, kind: "data" | "metadata" | "delete" | "undelete" | "destroy"): string {
  const join = (...parts: string[]) => parts.filter((p) => p !== "").join("/");
  return loc.version === 2 ? join(loc.mount, kind, loc.relative) : join(loc.mount, loc.relative);
}

/** Vault centres section titles in `=` signs as wide as the table under them. */
export function sectionTitle(title: string, width: number): string {
  const pad = width - title.length - 2;
  if (pad <= 0) return `== ${title} ==`;
  return `${"=".repeat(Math.floor(pad / 2))} ${title} ${"=".repeat(Math.ceil(pad / 2))}`;
}

/** A titled block; the title is as wide as the table's header row (`Key    Value`), as in Vault. */
function section(title: string, body: string, widthOf: string = body): string {
  return `${sectionTitle(title, widthOf.split("\n")[0].length)}\n${body}`;
}

async function withKv<T>(ctx: CommandContext, flags: Flags, path: string, fn: (loc: KvLocation) => Promise<T>): Promise<T> {
  const loc = await ctx.call(`finding the mount of ${path}`, (c) => locateKv(c, flags.mount, path));
  return fn(loc);
}

export function registerKv(program: Command, io: CliIo): void {
  const kv = program.command("kv").description("work with KV secrets engines (v1 and v2)");
  const kvCommand = (parent: Command, name: string, field: boolean) =>
    addFormatOption(addConnectionOptions(parent.command(name)), field).option("--mount <path>", "mount path of the KV engine (else the first path segment)");

  kvCommand(kv, "get", true)
    .description("read a secret (-version=N for an older v2 version)")
    .argument("<path>")
    .option("--version <n>", "version to read (KV v2)")
    .action(async (path: string, flags: Flags & { version?: string }) => {
      const ctx = new CommandContext(io, flags);
      try {
        await withKv(ctx, flags, path, async (loc) => {
          const apiPath = kvApiPath(loc, "data");
          const query = loc.version === 2 && flags.version !== undefined ? { version: flags.version } : undefined;
          const resp = await ctx.call(`reading ${apiPath}`, (c) => c.read<Record<string, unknown>>(apiPath, query));
          const data = loc.version === 2 ? (resp?.data?.data as Record<string, unknown> | null | undefined) : resp?.data;
          if (!resp || !data) throw new CliExit(2, `No value found at ${apiPath}`);
          if (ctx.field !== undefined) return ctx.printField(sortedEntries(data), ctx.field);
          if (ctx.format !== "table" || loc.version === 1) return ctx.outputSecret(resp);
          const metadataTable = formatKeyValueTable(sortedEntries((resp.data?.metadata as Record<string, unknown> | null) ?? {}));
          ctx.print(
            [
              section("Secret Path", apiPath, metadataTable),
              "",
              section("Metadata", metadataTable),
              section("Data", formatKeyValueTable(sortedEntries(data))),
            ].join("\n"),
          );
        });
      } finally {
        ctx.close();
      }
    });

  kvCommand(kv, "put", true)
    .description("write a secret (a new version in KV v2): kv put -mount=secret app k=v")
    .argument("<path>")
    .argument("<data...>", "K=V data (K=@file, K=-, - for a JSON object on stdin)")
    .option("--cas <n>", "check-and-set: write only if the current version is N (0: only if absent)")
    .action(async (path: string, args: string[], flags: Flags & { cas?: string }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const data = await ctx.keyValues(args);
        await withKv(ctx, flags, path, async (loc) => {
          const apiPath = kvApiPath(loc, "data");
          let body: Record<string, unknown> = data;
          if (loc.version === 2) {
            body = { data };
            if (flags.cas !== undefined) {
              if (!/^-?\d+$/.test(flags.cas)) throw new UsageError(`-cas must be an integer, got ${JSON.stringify(flags.cas)}`);
              body.options = { cas: Number(flags.cas) };
            }
          }
          const resp = await ctx.call(`writing data to ${apiPath}`, (c) => c.write<Record<string, unknown>>(apiPath, body));
          if (!resp) {
            if (ctx.format === "table" && ctx.field === undefined) ctx.print(`Success! Data written to: ${apiPath}`);
            return;
          }
          if (ctx.field !== undefined || ctx.format !== "table") return ctx.outputSecret(resp);
          const metadataTable = formatKeyValueTable(sortedEntries(resp.data ?? {}));
          ctx.print([section("Secret Path", apiPath, metadataTable), "", section("Metadata", metadataTable)].join("\n"));
        });
      } finally {
        ctx.close();
      }
    });

  kvCommand(kv, "delete", false)
    .description("delete a secret (in KV v2: its latest version, or -versions=1,2)")
    .argument("<path>")
    .option("--versions <list>", "comma-separated versions to delete (KV v2)")
    .action(async (path: string, flags: Flags & { versions?: string }) => {
      const ctx = new CommandContext(io, flags);
      try {
        await withKv(ctx, flags, path, async (loc) => {
          if (flags.versions !== undefined && loc.version === 2) {
            const versions = flags.versions.split(",").map((v) => v.trim()).filter(Boolean);
            if (versions.some((v) => !/^\d+$/.test(v))) throw new UsageError(`-versions must be comma-separated numbers, got ${JSON.stringify(flags.versions)}`);
            const apiPath = kvApiPath(loc, "delete");
            await ctx.call(`deleting ${apiPath}`, (c) => c.write(apiPath, { versions: versions.map(Number) }));
            ctx.print(`Success! Data deleted (if it existed) at: ${apiPath}`);
            return;
          }
          const apiPath = kvApiPath(loc, "data");
          await ctx.call(`deleting ${apiPath}`, (c) => c.delete(apiPath));
          ctx.print(`Success! Data deleted (if it existed) at: ${apiPath}`);
        });
      } finally {
        ctx.close();
      }
    });

  kvCommand(kv, "list", false)
    .description("list the keys under a path")
    .argument("[path]", "path inside the mount", "")
    .action(async (path: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        if (!path && !flags.mount) throw new UsageError("Not enough arguments: give a PATH or -mount");
        await withKv(ctx, flags, path, async (loc) => {
          const apiPath = kvApiPath(loc, "metadata");
          const resp = await ctx.call(`listing ${apiPath}`, (c) => c.list(apiPath));
          const keys = resp?.data?.keys;
          if (!Array.isArray(keys) || keys.length === 0) throw new CliExit(2, `No value found at ${apiPath}/`);
          ctx.outputList(keys);
        });
      } finally {
        ctx.close();
      }
    });

  const metadata = kv.command("metadata").description("KV v2 metadata");
  kvCommand(metadata, "get", false)
    .description("show a KV v2 secret's metadata and versions")
    .argument("<path>")
    .action(async (path: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        await withKv(ctx, flags, path, async (loc) => {
          if (loc.version !== 2) throw new CliExit(1, "Metadata not supported on KV Version 1");
          const apiPath = kvApiPath(loc, "metadata");
          const resp: VaultResponse<Record<string, unknown>> | undefined = await ctx.call(`reading ${apiPath}`, (c) => c.read(apiPath));
          if (!resp?.data) throw new CliExit(2, `No value found at ${apiPath}`);
          if (ctx.format !== "table") return ctx.print(formatStructured(resp, ctx.format));
          const { versions, ...top } = resp.data;
          const topTable = formatKeyValueTable(sortedEntries(top));
          const parts = [section("Metadata Path", apiPath, topTable), "", section("Metadata", topTable)];
          const byVersion = sortedEntries((versions as Record<string, unknown>) ?? {}).sort(([a], [b]) => Number(a) - Number(b));
          for (const [n, v] of byVersion) {
            parts.push(section(`Version ${n}`, formatKeyValueTable(sortedEntries((v as Record<string, unknown>) ?? {}))));
          }
          ctx.print(parts.join("\n"));
        });
      } finally {
        ctx.close();
      }
    });
}
