import type { Command } from "commander";
import { LeaseholdClient, clientOptionsFromSettings, type VaultResponse } from "../../client/index.js";
import { CliExit, CommandContext, UsageError, addConnectionOptions, addFormatOption, collect, describeFailure, trimSlashes, type CliIo, type ConnectionFlags, type OutputFlags, type OutputStream } from "../context.js";
import { formatKeyValueTable, formatTable, formatWarnings } from "../format.js";

type Flags = ConnectionFlags & OutputFlags;

/**
 * `leasehold lease ...`: Vault's `lease lookup|renew|revoke` (same flags, same endpoints), plus
 * leasehold's selector commands on `sys/leasehold/leases`: `lease list --selector ...` and
 * `lease revoke --selector ... [--dry-run]`.
 */

/** Selector keys `lease revoke --selector` takes (besides `metadata.<key>`), as the API spells them. */
export const REVOKE_SELECTOR_KEYS = ["mount", "role", "path_prefix", "token_accessor", "auth_mount", "display_name", "issued_after", "issued_before", "kind"] as const;
/** `lease list --selector` also filters on the lease state. */
export const LIST_SELECTOR_KEYS = [...REVOKE_SELECTOR_KEYS, "state"] as const;

/** A bulk revocation is one request the server may spend minutes on: wait longer than the usual 60 s. */
const BULK_TIMEOUT_MS = 30 * 60_000;
/** Largest page `sys/leasehold/leases` gives. */
const MAX_PAGE = 1000;

export interface Selector {
  fields: Record<string, string>;
  metadata: Record<string, string>;
}

/**
 * Parses `role=ro,metadata.app=web,mount=database`: comma-separated `key=value` pairs (a literal
 * comma in a value is written `\,`); keys as in the API, metadata as `metadata.<key>`. A key
 * outside `allowed` is a usage error naming the valid keys.
 */
export function parseSelector(texts: readonly string[], allowed: readonly string[]): Selector {
  const sel: Selector = { fields: {}, metadata: {} };
  const valid = `${allowed.join(", ")}, metadata.<key>`;
  for (const text of texts) {
    for (const raw of splitUnescaped(text)) {
      const part = raw.trim();
      if (part === "") continue;
      const eq = part.indexOf("=");
      if (eq <= 0) throw new UsageError(`Invalid selector ${JSON.stringify(part)}: expected key=value (valid keys: ${valid})`);
      const key = part.slice(0, eq).trim();
      const value = part.slice(eq + 1).trim();
      if (value === "") throw new UsageError(`Invalid selector ${JSON.stringify(part)}: ${key} needs a value`);
      if (key.startsWith("metadata.")) {
        const mk = key.slice("metadata.".length);
        if (mk === "") throw new UsageError(`Invalid selector ${JSON.stringify(part)}: metadata.<key> needs a key`);
        if (mk in sel.metadata) throw new UsageError(`Selector key ${key} given twice`);
        sel.metadata[mk] = value;
      } else if (allowed.includes(key)) {
        if (key in sel.fields) throw new UsageError(`Selector key ${key} given twice`);
        sel.fields[key] = value;
      } else {
        throw new UsageError(`Unknown selector key ${JSON.stringify(key)} (valid keys: ${valid})`);
      }
    }
  }
  return sel;
}

function splitUnescaped(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\" && text[i + 1] === ",") {
      cur += ",";
      i++;
    } else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function selectorIsEmpty(sel: Selector): boolean {
  return Object.keys(sel.fields).length === 0 && Object.keys(sel.metadata).length === 0;
}

/** The `selector` object of `POST sys/leasehold/leases/revoke`. */
export function selectorBody(sel: Selector): Record<string, unknown> {
  const body: Record<string, unknown> = { ...sel.fields };
  if (Object.keys(sel.metadata).length) body.metadata = { ...sel.metadata };
  return body;
}

/** The query of `GET sys/leasehold/leases` (metadata as `metadata.<key>=value`). */
export function selectorQuery(sel: Selector): Record<string, string> {
  const q: Record<string, string> = { ...sel.fields };
  for (const [k, v] of Object.entries(sel.metadata)) q[`metadata.${k}`] = v;
  return q;
}

/**
 * A spinner with the elapsed time on stderr, redrawn every second until `work` settles. On a
 * terminal it redraws one line and erases it at the end; elsewhere (`--progress` into a log) it
 * writes one line per second.
 */
export async function withProgress<T>(stream: OutputStream, enabled: boolean, label: string, work: Promise<T>, intervalMs = 1000): Promise<T> {
  if (!enabled) return work;
  const tty = stream.isTTY === true;
  const frames = ["|", "/", "-", "\\"];
  const started = Date.now();
  let n = 0;
  const draw = () => {
    const secs = Math.floor((Date.now() - started) / 1000);
    const text = `${frames[n++ % frames.length]} ${label} (${secs}s elapsed)`;
    stream.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
  };
  draw();
  const timer = setInterval(draw, intervalMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    if (tty) stream.write("\r\x1b[2K");
  }
}

/** Runs a long request on a client that waits up to BULK_TIMEOUT_MS, mapping failures as `ctx.call` does. */
async function callBulk<T>(ctx: CommandContext, doing: string, fn: (client: LeaseholdClient) => Promise<T>): Promise<T> {
  let client: LeaseholdClient;
  try {
    client = new LeaseholdClient(clientOptionsFromSettings(ctx.settings, { timeoutMs: BULK_TIMEOUT_MS }));
  } catch (err) {
    throw new CliExit(1, `Error: ${(err as Error).message}`);
  }
  try {
    return await fn(client);
  } catch (err) {
    throw new CliExit(1, describeFailure(`Error ${doing}`, err, ctx.settings));
  } finally {
    client.close();
  }
}

interface LeaseRowOut {
  lease_id: string;
  state: string;
  expire_time: string;
  role: string;
  display_name: string;
}

interface ListData {
  leases: LeaseRowOut[];
  next_after: string | null;
  total: number;
}

interface RevokeData {
  dry_run?: boolean;
  matched: number;
  revoked: number;
  failed: number;
  leases: string[];
  errors_sample?: { lease_id: string; error: string }[];
}

interface RevokeFlags extends Flags {
  prefix?: boolean;
  force?: boolean;
  sync?: boolean;
  selector?: string[];
  dryRun?: boolean;
  progress?: boolean;
}

export function registerLease(program: Command, io: CliIo): void {
  const lease = program.command("lease").description("look up, renew, list and revoke leases (by id, prefix or selector)");

  addFormatOption(addConnectionOptions(lease.command("lookup")))
    .description("show a lease's properties (sys/leases/lookup)")
    .argument("<lease_id>")
    .action(async (id: string, flags: Flags) => {
      const ctx = new CommandContext(io, flags);
      try {
        const resp = await ctx.call("looking up lease", (c) => c.write<unknown>("sys/leases/lookup", { lease_id: id }));
        if (!resp) throw new CliExit(1, "Error looking up lease: the server answered without data");
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(lease.command("renew")))
    .description("renew a lease; -increment asks for a new TTL from now (the server may cap it)")
    .argument("<lease_id>")
    .option("--increment <duration>", "requested TTL from now, e.g. 1h or 3600 (default: the lease's original TTL)")
    .action(async (id: string, flags: Flags & { increment?: string }) => {
      const ctx = new CommandContext(io, flags);
      try {
        const body: Record<string, unknown> = { lease_id: id };
        if (flags.increment !== undefined) body.increment = flags.increment;
        const resp = await ctx.call("renewing lease", (c) => c.write<unknown>("sys/leases/renew", body));
        if (!resp) throw new CliExit(1, "Error renewing lease: the server answered without a lease");
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(lease.command("revoke")), false)
    .description(
      "revoke a lease (ID), every lease under a prefix (-prefix), forcibly (-force), or every lease matching --selector\n" +
        "(e.g. --selector 'role=ro,metadata.app=web'; --dry-run only counts them)",
    )
    .argument("[target]", "lease id, or a prefix with -prefix/-force")
    .option("--prefix", "revoke every lease whose id starts with TARGET (sys/leases/revoke-prefix)")
    .option("-f, --force", "remove the lease records even if the engine fails to revoke (implies -prefix; sys/leases/revoke-force)")
    .option("--sync", "wait for the revocation to finish (the default)")
    .option("--no-sync", "queue the revocation and return at once (202)")
    .option("--selector <selector>", `revoke every lease matching key=value[,key=value...]; keys: ${REVOKE_SELECTOR_KEYS.join(", ")}, metadata.<key>`, collect)
    .option("--dry-run", "with --selector: count and name the matching leases, revoke nothing")
    .option("--progress", "show a progress line on stderr while the server works (the default on a terminal)")
    .action(async (target: string | undefined, flags: RevokeFlags) => {
      if (flags.selector !== undefined) return revokeBySelector(io, target, flags);
      if (flags.dryRun) throw new UsageError("-dry-run needs -selector (ids and prefixes have no dry run)");
      if (target === undefined || trimSlashes(target) === "") throw new UsageError("Not enough arguments: give a LEASE_ID, a PREFIX with -prefix, or -selector");
      const ctx = new CommandContext(io, flags);
      try {
        const sync = flags.sync !== false;
        const progress = flags.progress === true || io.stderr.isTTY === true;
        if (flags.force) {
          if (!sync) throw new UsageError("-force cannot be combined with -sync=false");
          const prefix = trimSlashes(target);
          ctx.warn("Warning! Force-removing leases can cause leasehold to become out of sync with secret engines!");
          const resp = await withProgress(io.stderr, progress, `force-revoking leases under ${prefix}`, callBulk(ctx, "force revoking leases", (c) => c.write<unknown>(`sys/leases/revoke-force/${prefix}`, {})));
          if (resp?.warnings?.length) ctx.warn(formatWarnings(resp.warnings));
          ctx.print(`Success! Force revoked any leases with prefix: ${target}`);
        } else if (flags.prefix) {
          const prefix = trimSlashes(target);
          const work = callBulk(ctx, "revoking leases", (c) => c.write<unknown>(`sys/leases/revoke-prefix/${prefix}`, { sync }));
          await withProgress(io.stderr, progress && sync, `revoking leases under ${prefix}`, work);
          ctx.print(sync ? `Success! Revoked any leases with prefix: ${target}` : "All revocation operations queued successfully!");
        } else {
          await ctx.call("revoking lease", (c) => c.write<unknown>("sys/leases/revoke", { lease_id: target, sync }));
          ctx.print(sync ? `Success! Revoked lease: ${target}` : "All revocation operations queued successfully!");
        }
      } finally {
        ctx.close();
      }
    });

  addFormatOption(addConnectionOptions(lease.command("list")), false)
    .argument("[prefix]", "only leases whose id starts with PREFIX (the selector key path_prefix), e.g. database/creds/app")
    .description("list leases under PREFIX and/or matching --selector (every lease without either), following pages to the end or --limit")
    .option("--selector <selector>", `key=value[,key=value...]; keys: ${LIST_SELECTOR_KEYS.join(", ")}, metadata.<key>`, collect)
    .option("--limit <n>", "show at most N leases")
    .action(async (prefix: string | undefined, flags: Flags & { selector?: string[]; limit?: string }) => {
      const sel = parseSelector(flags.selector ?? [], LIST_SELECTOR_KEYS);
      if (prefix !== undefined) {
        if (sel.fields.path_prefix !== undefined) throw new UsageError("Give the prefix once: as the PREFIX argument or as path_prefix in -selector");
        sel.fields.path_prefix = prefix;
      }
      let limit = Infinity;
      if (flags.limit !== undefined) {
        if (!/^\d+$/.test(flags.limit) || Number(flags.limit) < 1) throw new UsageError(`-limit must be a positive integer, got ${JSON.stringify(flags.limit)}`);
        limit = Number(flags.limit);
      }
      const ctx = new CommandContext(io, flags);
      try {
        const query = selectorQuery(sel);
        const rows: LeaseRowOut[] = [];
        let first: VaultResponse<ListData> | undefined;
        let after = "";
        let next: string | null = null;
        let total = 0;
        for (;;) {
          const page = Math.min(MAX_PAGE, limit - rows.length);
          const resp = await ctx.call("listing leases", (c) => c.read<ListData>("sys/leasehold/leases", { ...query, limit: String(page), ...(after ? { after } : {}) }));
          if (!resp?.data) throw new CliExit(1, "Error listing leases: the server answered without data");
          first ??= resp;
          rows.push(...resp.data.leases);
          total = resp.data.total;
          next = resp.data.next_after;
          if (next === null || rows.length >= limit) break;
          after = next;
        }
        if (ctx.format !== "table") {
          // The envelope as the server sent it, with every page's rows gathered into one.
          ctx.printStructured({ ...first, data: { leases: rows, next_after: next, total } });
          return;
        }
        if (rows.length === 0) {
          ctx.warn("No leases found");
          return;
        }
        ctx.print(formatTable(["LEASE ID", "STATE", "EXPIRES", "ROLE", "DISPLAY NAME"], rows.map((r) => [r.lease_id, r.state, r.expire_time.replace(/\.\d+Z$/, "Z"), r.role, r.display_name])));
        if (next !== null) ctx.warn(`Showing ${rows.length} of ${total} leases (raise -limit to see more)`);
      } finally {
        ctx.close();
      }
    });
}

async function revokeBySelector(io: CliIo, target: string | undefined, flags: RevokeFlags): Promise<void> {
  if (target !== undefined) throw new UsageError("-selector takes no LEASE_ID or PREFIX argument");
  if (flags.prefix || flags.force) throw new UsageError("-selector cannot be combined with -prefix or -force");
  if (flags.sync === false) throw new UsageError("-selector cannot be combined with -sync=false");
  const sel = parseSelector(flags.selector ?? [], REVOKE_SELECTOR_KEYS);
  if (selectorIsEmpty(sel)) throw new UsageError("Refusing to revoke every lease: give at least one selector key (e.g. -selector 'role=ro')");
  const ctx = new CommandContext(io, flags);
  try {
    const body = { selector: selectorBody(sel), dry_run: flags.dryRun === true };
    const label = `${flags.dryRun ? "counting" : "revoking"} leases matching ${(flags.selector ?? []).join(",")}`;
    const progress = flags.progress === true || io.stderr.isTTY === true;
    const resp = await withProgress(io.stderr, progress, label, callBulk(ctx, "revoking leases", (c) => c.write<RevokeData>("sys/leasehold/leases/revoke", body)));
    if (!resp?.data) throw new CliExit(1, "Error revoking leases: the server answered without data");
    const d = resp.data;
    if (ctx.format !== "table") {
      ctx.printStructured(resp);
    } else {
      if (flags.dryRun) ctx.print(`Dry run: ${d.matched} lease${d.matched === 1 ? "" : "s"} would be revoked; nothing was changed.\n`);
      ctx.print(formatKeyValueTable([["matched", d.matched], ["revoked", d.revoked], ["failed", d.failed]]));
      if (d.leases.length) ctx.print(`\n${formatTable([`Lease IDs (first ${d.leases.length} of ${d.matched})`], d.leases.map((id) => [id]))}`);
      if (d.errors_sample?.length) ctx.warn(`Errors (first ${d.errors_sample.length} of ${d.failed}):\n${d.errors_sample.map((e) => `  ${e.lease_id}: ${e.error}`).join("\n")}`);
      if (resp.warnings?.length) ctx.warn(formatWarnings(resp.warnings));
    }
    if (d.failed > 0) throw new CliExit(1);
  } finally {
    ctx.close();
  }
}
