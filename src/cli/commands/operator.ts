import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Command } from "commander";
import type { InitResponse, LeaseholdClient, SealStatus } from "../../client/index.js";
import { CliExit, CommandContext, UsageError, addConnectionOptions, addFormatOption, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";
import { formatKeyValueTable, formatTable } from "../format.js";

/** `sys/leader` as `status` uses it (Vault's LeaderResponse). */
export interface LeaderStatus {
  ha_enabled: boolean;
  is_self?: boolean;
  active_time?: string;
  leader_address?: string;
  leader_cluster_address?: string;
  performance_standby?: boolean;
  performance_standby_last_remote_wal?: number;
  raft_committed_index?: number;
  raft_applied_index?: number;
}

/** Go's zero time, which sys/leader sends as `active_time` on a standby or without HA. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * Vault's seal-status table, with its HA rows when HA is enabled: `HA Cluster` (the active's
 * cluster address), `HA Mode` (active/standby), `Active Since` on the active, `Active Node Address`
 * on a standby (`<none>` when no node holds the lock). A sealed node shows `HA Enabled` only.
 */
export function formatSealStatus(status: SealStatus, leader: LeaderStatus | boolean | undefined): string {
  const ha: LeaderStatus | undefined = typeof leader === "boolean" ? { ha_enabled: leader } : leader;
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
  rows.push(["HA Enabled", ha?.ha_enabled ?? false]);
  if (ha?.ha_enabled && !status.sealed && ha.is_self !== undefined) {
    rows.push(["HA Cluster", ha.leader_cluster_address ?? ""]);
    rows.push(["HA Mode", ha.is_self ? "active" : "standby"]);
    if (ha.is_self && ha.active_time && ha.active_time !== ZERO_TIME) rows.push(["Active Since", ha.active_time]);
    if (!ha.is_self) rows.push(["Active Node Address", ha.leader_address || "<none>"]);
    if (ha.performance_standby) {
      rows.push(["Performance Standby Node", true], ["Performance Standby Last Remote WAL", ha.performance_standby_last_remote_wal ?? 0]);
    }
  }
  if (ha?.raft_committed_index) rows.push(["Raft Committed Index", ha.raft_committed_index]);
  if (ha?.raft_applied_index) rows.push(["Raft Applied Index", ha.raft_applied_index]);
  return formatKeyValueTable(rows);
}

/**
 * `vault status -format=json`: the seal status with the leader's fields merged in (`ha_enabled`
 * always; the others only when set, as Vault's `omitempty` does).
 */
export function sealStatusOutput(status: SealStatus, leader: LeaderStatus | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...status, ha_enabled: leader?.ha_enabled ?? status.ha_enabled ?? false };
  if (!leader) return out;
  if (leader.is_self) out.is_self = true;
  if (leader.active_time && leader.active_time !== ZERO_TIME) out.active_time = leader.active_time;
  if (leader.leader_address) out.leader_address = leader.leader_address;
  if (leader.leader_cluster_address) out.leader_cluster_address = leader.leader_cluster_address;
  if (leader.performance_standby) out.performance_standby = true;
  if (leader.performance_standby_last_remote_wal) out.performance_standby_last_remote_wal = leader.performance_standby_last_remote_wal;
  if (leader.raft_committed_index) out.raft_committed_index = leader.raft_committed_index;
  if (leader.raft_applied_index) out.raft_applied_index = leader.raft_applied_index;
  return out;
}

async function readSealStatus(ctx: CommandContext): Promise<SealStatus> {
  const res = await ctx.call("checking seal status", (c) => c.request<SealStatus>("GET", "sys/seal-status", { token: null }));
  return res.body as SealStatus;
}

/** `sys/leader` (answered sealed or not, by any node); undefined when the server does not answer it. */
async function readLeader(status: SealStatus, client: LeaseholdClient): Promise<LeaderStatus | undefined> {
  try {
    const res = await client.request<LeaderStatus>("GET", "sys/leader", { token: null });
    if (typeof res.body?.ha_enabled === "boolean") return res.body;
  } catch {
    // an older server, or one that refuses it: the seal status alone
  }
  return typeof status.ha_enabled === "boolean" ? { ha_enabled: status.ha_enabled } : undefined;
}

async function printSealStatus(ctx: CommandContext, status: SealStatus): Promise<void> {
  const leader = await readLeader(status, ctx.client);
  if (ctx.format !== "table") {
    ctx.printStructured(sealStatusOutput(status, leader));
    return;
  }
  ctx.print(formatSealStatus(status, leader));
}

/** One node of `sys/ha-status`. */
export interface HaStatusNode {
  hostname: string;
  api_address: string;
  cluster_address: string;
  active_node: boolean;
  last_echo: string | null;
  version?: string;
  [field: string]: unknown;
}

/** `vault operator members`' table: one row per node, `n/a` for the active's empty Last Echo. */
export function formatMembers(nodes: readonly HaStatusNode[]): string {
  return formatTable(
    ["Host Name", "API Address", "Cluster Address", "Active Node", "Version", "Last Echo"],
    nodes.map((n) => [n.hostname, n.api_address, n.cluster_address, String(n.active_node), n.version ?? "", n.last_echo ?? ""]),
  );
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
  const operator = program.command("operator").description("initialise, unseal and seal the server; list the HA cluster's members");

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

  addFormatOption(addConnectionOptions(operator.command("members")), false)
    .description("list the nodes of the HA cluster: the active node and the standbys heard from lately (sys/ha-status)")
    .action(async (flags: ConnectionFlags & OutputFlags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const res = await ctx.call("listing the HA members", (c) => c.request<{ nodes?: HaStatusNode[]; data?: { nodes?: HaStatusNode[] } }>("GET", "sys/ha-status"));
        const nodes = res.body?.data?.nodes ?? res.body?.nodes ?? [];
        if (ctx.format !== "table") ctx.printStructured({ nodes });
        else ctx.print(formatMembers(nodes));
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
