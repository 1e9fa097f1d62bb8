import type { Command } from "commander";
import type { VaultResponse } from "../../client/index.js";
import { CliExit, CommandContext, UsageError, addConnectionOptions, addFormatOption, collect, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";

type Flags = ConnectionFlags & OutputFlags;

export interface TokenCreateFlags {
  id?: string;
  policy?: string[];
  ttl?: string;
  explicitMaxTtl?: string;
  period?: string;
  orphan?: boolean;
  displayName?: string;
  renewable?: boolean;
  numUses?: string;
  metadata?: string[];
  role?: string;
  type?: string;
  /** Commander's negation of `-no-default-policy`. */
  defaultPolicy?: boolean;
  entityAlias?: string;
}

/** The endpoint and body `token create` sends; flags left unset are left to the server's defaults. */
export function tokenCreateRequest(flags: TokenCreateFlags): { path: string; body: Record<string, unknown> } {
  const body: Record<string, unknown> = {};
  if (flags.id) body.id = flags.id;
  if (flags.policy && flags.policy.length > 0) body.policies = flags.policy.flatMap((p) => p.split(",")).map((p) => p.trim()).filter(Boolean);
  if (flags.ttl !== undefined) body.ttl = flags.ttl;
  if (flags.explicitMaxTtl !== undefined) body.explicit_max_ttl = flags.explicitMaxTtl;
  if (flags.period !== undefined) body.period = flags.period;
  if (flags.displayName !== undefined) body.display_name = flags.displayName;
  if (flags.renewable !== undefined) body.renewable = flags.renewable;
  if (flags.numUses !== undefined) {
    if (!/^\d+$/.test(flags.numUses)) throw new UsageError(`-num-uses must be a non-negative integer, got ${JSON.stringify(flags.numUses)}`);
    body.num_uses = Number(flags.numUses);
  }
  if (flags.defaultPolicy === false) body.no_default_policy = true;
  if (flags.type !== undefined) body.type = flags.type;
  if (flags.entityAlias !== undefined) body.entity_alias = flags.entityAlias;
  if (flags.metadata && flags.metadata.length > 0) {
    const meta: Record<string, string> = {};
    for (const kv of flags.metadata) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new UsageError(`-metadata must be key=value, got ${JSON.stringify(kv)}`);
      meta[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    body.meta = meta;
  }
  if (flags.role && flags.orphan) throw new UsageError("-role and -orphan cannot be combined: the role decides whether its tokens are orphans");
  const path = flags.role ? `auth/token/create/${flags.role}` : flags.orphan ? "auth/token/create-orphan" : "auth/token/create";
  return { path, body };
}

export interface TokenRevokeFlags {
  accessor?: boolean;
  self?: boolean;
  mode?: string;
}

/** The endpoint and body `token revoke` sends. */
export function tokenRevokeRequest(arg: string | undefined, flags: TokenRevokeFlags): { path: string; body: Record<string, unknown> } {
  const mode = flags.mode ?? "";
  if (mode !== "" && mode !== "orphan") throw new UsageError(`Invalid -mode ${JSON.stringify(mode)}: use -mode=orphan (or no -mode)`);
  if (flags.self) {
    if (arg !== undefined) throw new UsageError("Too many arguments: -self revokes the token in use and takes no TOKEN");
    if (flags.accessor || mode) throw new UsageError("-self cannot be combined with -accessor or -mode");
    return { path: "auth/token/revoke-self", body: {} };
  }
  if (arg === undefined) throw new UsageError("Not enough arguments: give a TOKEN (or ACCESSOR with -accessor), or -self");
  if (flags.accessor) {
    if (mode) throw new UsageError("-mode cannot be combined with -accessor");
    return { path: "auth/token/revoke-accessor", body: { accessor: arg } };
  }
  return mode === "orphan" ? { path: "auth/token/revoke-orphan", body: { token: arg } } : { path: "auth/token/revoke", body: { token: arg } };
}

export function registerToken(program: Command, io: CliIo): void {
  const token = program.command("token").description("create, look up, renew and revoke tokens");

  addFormatOption(addConnectionOptions(token.command("create")))
    .description("create a child token of the token in use (or an orphan, or from a role)")
    .option("--id <id>", "the token's value (root only)")
    .option("--policy <name>", "policy to attach (repeatable, or comma-separated)", collect)
    .option("--ttl <duration>", "initial TTL, e.g. 30m or 3600")
    .option("--explicit-max-ttl <duration>", "hard limit no renewal can pass")
    .option("--period <duration>", "make a periodic token renewed for this long each time")
    .option("--orphan", "create without a parent (auth/token/create-orphan)")
    .option("--display-name <name>", "name shown in audit logs and lookups")
    .option("--renewable", "allow renewal (the default)")
    .option("--no-renewable", "forbid renewal")
    .option("--num-uses <n>", "number of uses before the token is revoked (0: unlimited)")
    .option("--use-limit <n>", "alias of -num-uses")
    .option("--metadata <key=value>", "metadata (repeatable)", collect)
    .option("--role <name>", "create from the token role auth/token/roles/NAME")
    .option("--type <type>", "token type (service)")
    .option("--no-default-policy", "do not attach the default policy")
    .option("--entity-alias <name>", "entity alias to associate (with -role)")
    .action(async (flags: Flags & TokenCreateFlags & { useLimit?: string }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const { path, body } = tokenCreateRequest({ ...flags, numUses: flags.numUses ?? flags.useLimit });
        const resp = await ctx.call("creating token", (c) => c.write<unknown>(path, body));
        if (!resp) throw new CliExit(1, "Error creating token: the server answered without a token");
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(token.command("lookup")))
    .description("show a token's properties (the token in use when TOKEN is omitted)")
    .argument("[token]", "token, or accessor with -accessor")
    .option("--accessor", "TOKEN is an accessor")
    .action(async (arg: string | undefined, flags: Flags & { accessor?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        let resp: VaultResponse<unknown> | undefined;
        if (arg === undefined) {
          if (flags.accessor) throw new UsageError("Not enough arguments: -accessor needs an ACCESSOR");
          resp = await ctx.call("looking up token", (c) => c.read<unknown>("auth/token/lookup-self"));
        } else if (flags.accessor) {
          resp = await ctx.call("looking up token", (c) => c.write<unknown>("auth/token/lookup-accessor", { accessor: arg }));
        } else {
          resp = await ctx.call("looking up token", (c) => c.write<unknown>("auth/token/lookup", { token: arg }));
        }
        if (!resp) throw new CliExit(1, "Error looking up token: token not found");
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(token.command("renew")))
    .description("renew a token's lease (the token in use when TOKEN is omitted)")
    .argument("[token]", "token, or accessor with -accessor")
    .option("-i, --increment <duration>", "requested new TTL, e.g. 1h (the server may cap it)")
    .option("--accessor", "TOKEN is an accessor")
    .action(async (arg: string | undefined, flags: Flags & { increment?: string; accessor?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const body: Record<string, unknown> = {};
        if (flags.increment !== undefined) body.increment = flags.increment;
        let path = "auth/token/renew-self";
        if (arg !== undefined) {
          path = flags.accessor ? "auth/token/renew-accessor" : "auth/token/renew";
          body[flags.accessor ? "accessor" : "token"] = arg;
        } else if (flags.accessor) {
          throw new UsageError("Not enough arguments: -accessor needs an ACCESSOR");
        }
        const resp = await ctx.call("renewing token", (c) => c.write<unknown>(path, body));
        if (!resp) throw new CliExit(1, "Error renewing token: the server answered without a token");
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(token.command("revoke"))
    .description("revoke a token, its children and their leases")
    .argument("[token]", "token, or accessor with -accessor")
    .option("--accessor", "TOKEN is an accessor")
    .option("--self", "revoke the token in use")
    .option("--mode <mode>", "orphan: revoke only this token; its children become orphans")
    .action(async (arg: string | undefined, flags: Flags & TokenRevokeFlags) => {
      const { path, body } = tokenRevokeRequest(arg, flags);
      const ctx = new CommandContext(io, flags);
      try {
        await ctx.call("revoking token", (c) => c.write(path, body));
        ctx.print("Success! Revoked token (if it existed)");
      } finally {
        ctx.close();
      }
    });
}
