import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Command } from "commander";
import type { InitResponse, LeaseholdClient, SealStatus } from "../../client/index.js";
import { CliExit, CommandContext, UsageError, addConnectionOptions, addFormatOption, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";
import { formatKeyValueTable } from "../format.js";

/** Vault's seal-status table. */
export function formatSealStatus(status: SealStatus, haEnabled: boolean | undefined): string {
  const rows: [string, unknown][] = [
    ["Seal Type", status.type],
    ["Initialized", status.initialized],
    ["Sealed", status.sealed],
    ["Total Shares", status.n],
    ["Threshold", status.t],
  ];
  if (status.sealed) rows.push(["Unseal Progress", `${status.progress}/${status.t}`], ["Unseal Nonce", status.nonce ?? ""]);
  rows.push(["Version", status.version ?? ""]);
  if (status.build_date) rows.push(["Build Date", status.build_date]);
  rows.push(["Storage Type", status.storage_type ?? ""]);
  if (status.cluster_name) rows.push(["Cluster Name", status.cluster_name]);
  if (status.cluster_id) rows.push(["Cluster ID", status.cluster_id]);
  rows.push(["HA Enabled", haEnabled ?? false]);
  return formatKeyValueTable(rows);
}

async function readSealStatus(ctx: CommandContext): Promise<SealStatus> {
  const res = await ctx.call("checking seal status", (c) => c.request<SealStatus>("GET", "sys/seal-status", { token: null }));
  return res.body as SealStatus;
}

async function haEnabled(status: SealStatus, client: LeaseholdClient): Promise<boolean | undefined> {
  if (typeof status.ha_enabled === "boolean") return status.ha_enabled;
  if (status.sealed) return undefined;
  try {
    const res = await client.request<{ ha_enabled?: boolean }>("GET", "sys/leader", { token: null });
    return res.body?.ha_enabled;
  } catch {
    return undefined;
  }
}

async function printSealStatus(ctx: CommandContext, status: SealStatus): Promise<void> {
  if (ctx.format !== "table") {
    ctx.printStructured(status);
    return;
  }
  ctx.print(formatSealStatus(status, await haEnabled(status, ctx.client)));
}

/** Reads one line, with echo off on a terminal (unseal keys and tokens must not land in scrollback). */
export async function promptSecret(io: CliIo, prompt: string): Promise<string> {
  const terminal = io.stdin.isTTY === true;
  io.stderr.write(prompt);
  const muted = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: io.stdin, output: muted, terminal });
  try {
    const line = await new Promise<string | undefined>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(undefined));
    });
    if (terminal) io.stderr.write("\n");
    return (line ?? "").trim();
  } finally {
    rl.close();
  }
}

export function registerStatus(program: Command, io: CliIo): void {
  addFormatOption(addConnectionOptions(program.command("status")), false)
    .description("show the seal status (exit code 0 unsealed, 2 sealed, 1 error)")
    .action(async (flags: ConnectionFlags & OutputFlags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const status = await readSealStatus(ctx);
        await printSealStatus(ctx, status);
        if (status.sealed) throw new CliExit(2);
      } finally {
        ctx.close();
      }
    });
}

interface InitFlags extends ConnectionFlags, OutputFlags {
  keyShares: string;
  keyThreshold: string;
  status?: boolean;
}

export function registerOperator(program: Command, io: CliIo): void {
  const operator = program.command("operator").description("initialise, unseal and seal the server");

  addFormatOption(addConnectionOptions(operator.command("init")), false)
    .description("initialise the server: prints the unseal keys and the initial root token")
    .option("--key-shares <n>", "number of unseal key shares", "5")
    .option("--key-threshold <n>", "number of shares needed to unseal", "3")
    .option("--status", "only report whether the server is initialised (exit 0 yes, 2 no)")
    .action(async (flags: InitFlags) => {
      const ctx = new CommandContext(io, flags);
      try {
        if (flags.status) {
          const res = await ctx.call("checking initialization status", (c) => c.request<{ initialized: boolean }>("GET", "sys/init", { token: null }));
          const initialized = res.body?.initialized === true;
          ctx.print(initialized ? "Leasehold is initialized" : "Leasehold is not initialized");
          if (!initialized) throw new CliExit(2);
          return;
        }
        const shares = positiveInt(flags.keyShares, "-key-shares");
        const threshold = positiveInt(flags.keyThreshold, "-key-threshold");
        if (threshold > shares) throw new UsageError(`-key-threshold (${threshold}) cannot exceed -key-shares (${shares})`);
        const res = await ctx.call("initializing", (c) =>
          c.request<InitResponse>("PUT", "sys/init", { body: { secret_shares: shares, secret_threshold: threshold }, token: null }),
        );
        const init = res.body as InitResponse;
        if (ctx.format !== "table") {
          ctx.printStructured({
            unseal_keys_b64: init.keys_base64,
            unseal_keys_hex: init.keys,
            unseal_shares: shares,
            unseal_threshold: threshold,
            recovery_keys_b64: [],
            recovery_keys_hex: [],
            recovery_keys_shares: 0,
            recovery_keys_threshold: 0,
            root_token: init.root_token,
          });
          return;
        }
        const keys = init.keys_base64 ?? init.keys;
        const lines = keys.map((k, i) => `Unseal Key ${i + 1}: ${k}`);
        lines.push("", `Initial Root Token: ${init.root_token}`, "");
        lines.push(
          `Leasehold initialized with ${shares} key shares and a key threshold of ${threshold}. Please securely`,
          "distribute the key shares printed above. When the server is re-sealed or restarted,",
          `at least ${threshold} of these keys are needed to unseal it (\`leasehold operator unseal\`).`,
          "",
          "The root key is never stored whole: if you lose more than the number of shares",
          "above the threshold, the stored data cannot be recovered.",
        );
        ctx.print(lines.join("\n"));
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(operator.command("unseal")), false)
    .description("submit one unseal key share (prompted for when not given)")
    .argument("[key]", "unseal key share (base64 or hex); read from stdin when omitted")
    .option("--reset", "discard the shares submitted so far")
    .action(async (key: string | undefined, flags: ConnectionFlags & OutputFlags & { reset?: boolean }) => {
      const ctx = new CommandContext(io, flags);
      try {
        let body: Record<string, unknown>;
        if (flags.reset) {
          if (key !== undefined) throw new UsageError("-reset takes no unseal key");
          body = { reset: true };
        } else {
          const share = key === undefined || key === "-" ? await promptSecret(io, "Unseal Key (will be hidden): ") : key;
          if (share === "") throw new UsageError("no unseal key given");
          body = { key: share };
        }
        const res = await ctx.call("unsealing", (c) => c.request<SealStatus>("PUT", "sys/unseal", { body, token: null }));
        await printSealStatus(ctx, res.body as SealStatus);
      } finally {
        ctx.close();
      }
    });

  addConnectionOptions(operator.command("seal"))
    .description("seal the server (needs a token with sudo on sys/seal)")
    .action(async (flags: ConnectionFlags) => {
      const ctx = new CommandContext(io, flags);
      try {
        await ctx.call("sealing", (c) => c.request("PUT", "sys/seal"));
        ctx.print("Success! Leasehold is sealed.");
      } finally {
        ctx.close();
      }
    });
}

function positiveInt(raw: string, flag: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}
