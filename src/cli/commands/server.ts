import type { Command } from "commander";
import { UsageError, type CliIo } from "../context.js";

import type { ServerRunOptions } from "../../server/run.js";

/** What `leasehold server` hands to `runServer` (type only: the server code loads on demand). */
export type { ServerRunOptions };

interface ServerFlags {
  config?: string;
  dev?: boolean;
  devRootTokenId?: string;
  devListenAddress?: string;
  devTls?: boolean;
  devTlsCertDir?: string;
  logLevel?: string;
  /** commander's `--no-revoke` sets `revoke` to false. */
  revoke?: boolean;
}

/** Go's ParseBool spellings for `LEASEHOLD_NO_REVOKE`; unset or empty is off. */
function envFlag(name: string, value: string | undefined): boolean {
  if (value === undefined || value.trim() === "") return false;
  const s = value.trim().toLowerCase();
  if (["1", "t", "true", "yes", "on"].includes(s)) return true;
  if (["0", "f", "false", "no", "off"].includes(s)) return false;
  throw new UsageError(`${name} must be true or false (1 or 0), got ${JSON.stringify(value)}`);
}

/** Flags first, then `LEASEHOLD_*`, then the `VAULT_*` variables `vault server -dev` reads. */
export function serverRunOptions(flags: ServerFlags, env: Readonly<Record<string, string | undefined>>): ServerRunOptions {
  const fromEnv = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== "");
  const devTls = flags.devTls === true;
  const dev = flags.dev === true || devTls;
  const opts: ServerRunOptions = {
    config: flags.config,
    dev,
    devRootTokenId: flags.devRootTokenId ?? (dev ? fromEnv("LEASEHOLD_DEV_ROOT_TOKEN_ID", "VAULT_DEV_ROOT_TOKEN_ID") : undefined),
    devListenAddress: flags.devListenAddress ?? (dev ? fromEnv("LEASEHOLD_DEV_LISTEN_ADDRESS", "VAULT_DEV_LISTEN_ADDRESS") : undefined),
    devTls,
    devTlsCertDir: flags.devTlsCertDir,
    logLevel: flags.logLevel ?? fromEnv("LEASEHOLD_LOG_LEVEL", "VAULT_LOG_LEVEL"),
  };
  if (flags.revoke === false || envFlag("LEASEHOLD_NO_REVOKE", env.LEASEHOLD_NO_REVOKE)) opts.noRevoke = true;
  if (!opts.dev && !opts.config) {
    throw new UsageError("No configuration file given: pass -config=FILE, or -dev for an in-memory development server.");
  }
  return opts;
}

export function registerServer(program: Command, io: CliIo): void {
  program
    .command("server")
    .description("start a leasehold server (-dev: in-memory, unsealed, with a root token)")
    .option("--config <file>", "configuration file")
    .option("--dev", "development mode: in-memory storage, unsealed, root token printed")
    .option("--dev-root-token-id <id>", "root token id in dev mode (env VAULT_DEV_ROOT_TOKEN_ID)")
    .option("--dev-listen-address <addr>", "listen address in dev mode (default 127.0.0.1:8200; env VAULT_DEV_LISTEN_ADDRESS)")
    .option("--dev-tls", "dev mode with a generated CA and TLS certificate (implies -dev)")
    .option("--dev-tls-cert-dir <dir>", "where -dev-tls writes its CA and certificate")
    .option("--log-level <level>", "trace, debug, info, warn or error")
    .option("--no-revoke", "safety mode: revoke nothing by time, e.g. after restoring a backup (env LEASEHOLD_NO_REVOKE=1); turn it on with sys/leasehold/revocation")
    .action(async (flags: ServerFlags) => {
      const opts = serverRunOptions(flags, io.env);
      const run = io.runServer ?? (await import("../../server/run.js")).runServer;
      await run(opts);
    });
}
