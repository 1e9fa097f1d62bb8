import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { CliExit, CommandContext, addConnectionOptions, addFormatOption, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";
import { formatStructured } from "../format.js";
import { readAll } from "../kv-args.js";

type Flags = ConnectionFlags & OutputFlags;

const policyPath = (name: string) => `sys/policies/acl/${encodeURIComponent(name)}`;

export function registerPolicy(program: Command, io: CliIo): void {
  const policy = program.command("policy").description("manage ACL policies (sys/policies/acl)");

  addConnectionOptions(policy.command("write"))
    .description("upload a policy from a file or stdin (-)")
    .argument("<name>")
    .argument("<file>", "HCL or JSON policy file, or - for stdin")
    .action(async (name: string, file: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        let rules: string;
        try {
          rules = file === "-" ? await readAll(io.stdin) : await readFile(file, "utf8");
        } catch (err) {
          throw new CliExit(1, `Error opening policy file: ${(err as Error).message}`);
        }
        await ctx.call(`uploading policy ${name}`, (c) => c.write(policyPath(name), { policy: rules }));
        ctx.print(`Success! Uploaded policy: ${name}`);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(policy.command("read")), false)
    .description("print a policy's rules")
    .argument("<name>")
    .action(async (name: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const resp = await ctx.call(`reading policy ${name}`, (c) => c.read<{ name?: string; policy?: string }>(policyPath(name)));
        if (!resp?.data) throw new CliExit(2, `No policy named: ${name}`);
        if (ctx.format === "table") ctx.print(resp.data.policy ?? "");
        else ctx.print(formatStructured(resp.data, ctx.format));
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(policy.command("list")), false)
    .description("list policy names")
    .action(async (flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const resp = await ctx.call("listing policies", (c) => c.list("sys/policies/acl"));
        const names = resp?.data?.keys ?? [];
        if (ctx.format === "table") ctx.print(names.join("\n"));
        else ctx.print(formatStructured(names, ctx.format));
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(policy.command("delete"))
    .description("delete a policy (tokens keep its name but lose its rules)")
    .argument("<name>")
    .action(async (name: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        await ctx.call(`deleting ${name}`, (c) => c.delete(policyPath(name)));
        ctx.print(`Success! Deleted policy: ${name}`);
      } finally {
        ctx.close();
      }
    });
}
