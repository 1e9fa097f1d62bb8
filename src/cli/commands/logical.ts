import type { Command } from "commander";
import { CliExit, CommandContext, UsageError, addConnectionOptions, addFormatOption, trimSlashes, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";

type Flags = ConnectionFlags & OutputFlags;

/** Query parameters for `read`/`delete` from `k=v` arguments; a repeated key sends the parameter twice. */
function toQuery(data: Record<string, unknown>): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(data)) query[k] = Array.isArray(v) ? v.map(String) : String(v);
  return query;
}

export function registerLogical(program: Command, io: CliIo): void {
  addFormatOption(addConnectionOptions(program.command("read")))
    .description("read data at a path (k=v arguments become query parameters)")
    .argument("<path>")
    .argument("[data...]", "K=V query parameters")
    .action(async (path: string, args: string[], flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const query = toQuery(await ctx.keyValues(args));
        const resp = await ctx.call(`reading ${path}`, (c) => c.read<unknown>(trimSlashes(path), query));
        if (!resp) throw new CliExit(2, `No value found at ${path}`);
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(program.command("write")))
    .description("write data to a path: K=V, K=@file, K=- (stdin), - or @file.json (a JSON object)")
    .argument("<path>")
    .argument("[data...]", "K=V data")
    .option("-f, --force", "write even without data")
    .action(async (path: string, args: string[], flags: Flags & { force?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        if (args.length === 0 && !flags.force) throw new UsageError("Must supply data or use -force");
        const data = await ctx.keyValues(args);
        const resp = await ctx.call(`writing data to ${path}`, (c) => c.write<unknown>(trimSlashes(path), data));
        if (!resp) {
          if (ctx.format === "table" && ctx.field === undefined) ctx.print(`Success! Data written to: ${path}`);
          return;
        }
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(program.command("list")), false)
    .description("list the keys under a path")
    .argument("<path>")
    .action(async (path: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const resp = await ctx.call(`listing ${path}`, (c) => c.list(trimSlashes(path)));
        const keys = resp?.data?.keys;
        if (!Array.isArray(keys) || keys.length === 0) throw new CliExit(2, `No value found at ${path}`);
        ctx.outputList(keys);
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(program.command("delete"))
    .description("delete data at a path (k=v arguments become query parameters)")
    .argument("<path>")
    .argument("[data...]", "K=V query parameters")
    .action(async (path: string, args: string[], flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const query = toQuery(await ctx.keyValues(args));
        await ctx.call(`deleting ${path}`, (c) => c.delete(trimSlashes(path), query));
        ctx.print(`Success! Data deleted (if it existed) at: ${path}`);
      } finally {
        ctx.close();
      }
    });
}
