import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { UserError } from "../../sdk/errors.js";
import { CliExit, UsageError, type CliIo } from "../context.js";

interface AgentFlags {
  config?: string;
  logLevel?: string;
  exitAfterAuth?: boolean;
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"];

/** `leasehold agent -config FILE`: the sidecar (see src/agent/runtime/agent.ts). */
export function registerAgent(program: Command, io: CliIo): void {
  program
    .command("agent")
    .description("run the agent: auto-auth, token sinks, templates, exec mode (Vault Agent's config)")
    .option("--config <file>", "agent configuration file (HCL or JSON)")
    .option("--log-level <level>", "trace, debug, info, warn or error (default: the config's log_level, else info)")
    .option("--exit-after-auth", "log in, render the templates once, and exit (overrides the config)")
    .action(async (flags: AgentFlags) => {
      if (!flags.config) throw new UsageError("No configuration file given: pass -config=FILE (Vault Agent's HCL or JSON).");
      const level = flags.logLevel ?? io.env.LEASEHOLD_LOG_LEVEL ?? io.env.VAULT_LOG_LEVEL;
      if (level !== undefined && !LOG_LEVELS.includes(level)) throw new UsageError(`unknown log level ${JSON.stringify(level)}: use ${LOG_LEVELS.join(", ")}`);
      // Loaded on demand: other commands need not pay for the agent's modules.
      const [{ loadAgentConfig }, { Agent }, { createLogger }] = await Promise.all([
        import("../../agent/config.js"),
        import("../../agent/runtime/agent.js"),
        import("../../server/logger.js"),
      ]);
      let text: string;
      try {
        text = readFileSync(flags.config, "utf8");
      } catch (err) {
        throw new CliExit(1, `cannot read the agent config ${flags.config}: ${(err as Error).message}`);
      }
      let config;
      try {
        config = loadAgentConfig(text, flags.config);
      } catch (err) {
        if (err instanceof UserError) throw new CliExit(1, `Error loading the agent config: ${err.message}`);
        throw err;
      }
      if (flags.exitAfterAuth) config.exitAfterAuth = true;
      const logger = createLogger(level ?? config.logLevel ?? "info", io.stderr as NodeJS.WritableStream).child({ component: "agent" });
      const agent = new Agent({ config, logger, env: io.env });
      const onSignal = (signal: NodeJS.Signals) => void agent.shutdown(signal);
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      // Waiting for a lease to need renewal holds no handle of its own: stay alive until stopped.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      try {
        const code = await agent.run();
        if (code !== 0) throw new CliExit(code);
      } finally {
        clearInterval(keepAlive);
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    });
}
