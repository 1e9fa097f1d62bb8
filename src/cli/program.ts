import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { normaliseArgv } from "./argv.js";
import { registerAgent } from "./commands/agent.js";
import { registerKv } from "./commands/kv.js";
import { registerLease } from "./commands/lease.js";
import { registerLogin } from "./commands/login.js";
import { registerLogical } from "./commands/logical.js";
import { registerOperatorMigrate } from "./commands/migrate.js";
import { registerAudit, registerAuth, registerSecrets } from "./commands/mounts.js";
import { registerOperator, registerStatus } from "./commands/operator.js";
import { registerPolicy } from "./commands/policy.js";
import { registerServer } from "./commands/server.js";
import { registerToken } from "./commands/token.js";
import { CliExit, type CliIo } from "./context.js";

export type { CliIo } from "./context.js";

/** Builds the `leasehold` command tree; every command reads and writes only through `io`. */
export function buildProgram(io: CliIo): Command {
  const program = new Command("leasehold")
    .description("leasehold: a short-lived secrets broker that speaks Vault's HTTP API")
    .version(packageVersion(), "-v, --version", "print the version")
    .usage("<command> [flags] [args]")
    // Program flags only before the subcommand: `kv get -version=2` is the KV version, not ours.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showSuggestionAfterError(true)
    .showHelpAfterError("(add --help for usage)")
    .addHelpText(
      "after",
      "\nFlags also take the vault CLI's single-dash form (-format=json, -field=token, -policy=a -policy=b),\n" +
        "so scripts written for `vault` run with `leasehold` in its place.\n" +
        "Environment: LEASEHOLD_ADDR, LEASEHOLD_TOKEN, LEASEHOLD_CACERT, ... (VAULT_* also honoured).",
    );

  registerServer(program, io);
  registerAgent(program, io);
  registerStatus(program, io);
  registerOperator(program, io);
  registerOperatorMigrate(program, io);
  registerLogin(program, io);
  registerLogical(program, io);
  registerToken(program, io);
  registerPolicy(program, io);
  registerSecrets(program, io);
  registerAuth(program, io);
  registerAudit(program, io);
  registerKv(program, io);
  registerLease(program, io);

  program
    .command("version")
    .description("print the version")
    .action(() => {
      io.stdout.write(`leasehold v${packageVersion()}\n`);
    });
  return program;
}

/**
 * Runs one invocation and returns its exit code: 0 success, 1 a server or connection error,
 * 2 a usage error (unknown command or flag, missing arguments) or a "no value" answer, as `vault`.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(normaliseArgv(argv, program), { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CliExit) {
      if (err.message) io.stderr.write(err.message.endsWith("\n") ? err.message : `${err.message}\n`);
      return err.code;
    }
    if (err instanceof CommanderError) {
      // Commander has already printed its message.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      return 2;
    }
    io.stderr.write(`Error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

let cachedVersion: string | undefined;

/** The version from package.json, found by walking up from this file (src/ or dist/src/). */
function packageVersion(): string {
  if (cachedVersion) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "leasehold" && pkg.version) return (cachedVersion = pkg.version);
    } catch {
      // not here; keep walking up
    }
    dir = dirname(dir);
  }
  return (cachedVersion = "unknown");
}
