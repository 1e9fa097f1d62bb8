import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { CliExit, UsageError, type CliIo } from "../context.js";
import { OUTPUT_FORMATS, formatKeyValueTable, formatStructured, resolveFormat } from "../format.js";

interface MigrateFlags {
  config?: string;
  maxParallel?: string;
  format?: string;
  start?: string;
  reset?: boolean;
}

/** `1234` → `1,234`: progress lines with six-digit totals stay readable. */
const n = (x: number) => x.toLocaleString("en-US");

/**
 * `leasehold operator migrate -config migrate.hcl`: Vault's offline storage migration. The file has
 * a `storage_source` and a `storage_destination` block, each written like a server's `storage`
 * block. Progress goes to stderr (at most once a second), the summary to stdout.
 */
export function registerOperatorMigrate(program: Command, io: CliIo): void {
  const operator = program.commands.find((c) => c.name() === "operator");
  if (!operator) throw new Error("registerOperatorMigrate: register the operator command first");
  operator
    .command("migrate")
    .description("copy a stopped server's whole store (entries and leases) into another, empty storage backend")
    .option("--config <file>", "migration file with storage_source and storage_destination blocks")
    .option("--max-parallel <n>", "destination transactions in flight at once (default 10)")
    .addOption(new Option("--format <format>", "summary format (env LEASEHOLD_FORMAT, VAULT_FORMAT)").choices(OUTPUT_FORMATS))
    .option("--start <key>", "not supported: leasehold restarts an interrupted migration from an empty destination")
    .option("--reset", "not supported: leasehold keeps no migration lock")
    .addHelpText(
      "after",
      "\nStop the server first. Example migrate.hcl:\n\n" +
        '  storage_source "sqlite" {\n    path = "/var/lib/leasehold/leasehold.db"\n  }\n\n' +
        '  storage_destination "postgresql" {\n    connection_url = "postgres://leasehold:PASSWORD@db.example:5432/leasehold?sslmode=verify-full"\n  }\n',
    )
    .action(async (flags: MigrateFlags) => {
      if (flags.start !== undefined || flags.reset) {
        throw new UsageError(
          `${flags.start !== undefined ? "-start" : "-reset"} is not supported: leasehold copies into an empty destination only and takes no lock in the source. ` +
            "To retry an interrupted migration, empty the destination and run `leasehold operator migrate -config FILE` again.",
        );
      }
      if (!flags.config) throw new UsageError("No migration file given: pass -config=FILE (with storage_source and storage_destination blocks).");
      const format = resolveFormat(flags.format, io.env);
      if (!format) throw new UsageError(`Invalid output format: ${flags.format ?? io.env.LEASEHOLD_FORMAT ?? io.env.VAULT_FORMAT} (use ${OUTPUT_FORMATS.join(", ")})`);
      let maxParallel: number | undefined;
      if (flags.maxParallel !== undefined) {
        if (!/^\d+$/.test(flags.maxParallel) || Number(flags.maxParallel) < 1) throw new UsageError(`-max-parallel must be a positive integer, got ${JSON.stringify(flags.maxParallel)}`);
        maxParallel = Number(flags.maxParallel);
      }

      let text: string;
      try {
        text = readFileSync(flags.config, "utf8");
      } catch (err) {
        throw new CliExit(1, `Error reading the migration file ${flags.config}: ${(err as Error).message}`);
      }
      // Loaded on demand: the storage drivers are not needed by any other command.
      const { loadStorageBlocks } = await import("../../server/config.js");
      const mig = await import("../../storage/migrate.js");
      let blocks;
      try {
        // cluster_addr is Vault's, for a raft destination: accepted so Vault migration files load; leasehold has no raft.
        blocks = loadStorageBlocks(text, flags.config, ["storage_source", "storage_destination"], ["cluster_addr"]).storage;
      } catch (err) {
        throw new CliExit(1, `Error parsing the migration file: ${(err as Error).message}`);
      }
      if (mig.sameStore(blocks.storage_source, blocks.storage_destination)) {
        throw new CliExit(1, "Error: storage_source and storage_destination name the same store: point storage_destination at a new, empty one.");
      }

      const opened: { close(): Promise<void> }[] = [];
      try {
        const source = await mig.openMigrationEndpoint(blocks.storage_source, "source");
        opened.push(source.storage);
        const others = await mig.otherServerSessions(source.storage);
        if (others > 0) {
          io.stderr.write(
            `WARNING! ${others} other leasehold session(s) are connected to the source database. If a server still uses ${source.description}, ` +
              "stop it: what it writes from now on is not copied.\n",
          );
        }
        const destination = await mig.openMigrationEndpoint(blocks.storage_destination, "destination");
        opened.push(destination.storage);
        io.stderr.write(`Copying ${source.description} to ${destination.description}\n`);

        let last = 0;
        const summary = await mig.copyStore(source, destination, {
          maxParallel,
          onProgress: (p) => {
            const now = Date.now();
            const complete = p.entries === p.totalEntries && p.leases === p.totalLeases;
            if (now - last < 1000 && !complete) return;
            last = now;
            const total = p.totalEntries + p.totalLeases;
            const pct = total ? Math.floor(((p.entries + p.leases) * 100) / total) : 100;
            io.stderr.write(`  copied ${n(p.entries)}/${n(p.totalEntries)} entries, ${n(p.leases)}/${n(p.totalLeases)} leases (${pct}%)\n`);
          },
        });
        const seconds = summary.ms / 1000;
        const rate = seconds > 0 ? Math.round((summary.entries + summary.leases) / seconds) : summary.entries + summary.leases;
        if (format === "table") {
          io.stdout.write(
            `Success! Copied ${n(summary.entries)} entries and ${n(summary.leases)} leases in ${seconds.toFixed(1)}s.\n\n` +
              formatKeyValueTable([
                ["Source", source.description],
                ["Destination", destination.description],
                ["Entries", summary.entries],
                ["Leases", summary.leases],
                ["Seconds", seconds.toFixed(2)],
                ["Rows per second", rate],
              ]) +
              "\nNext: point the server's storage block at the destination, start it and unseal it with the same unseal keys.\n",
          );
        } else {
          io.stdout.write(
            formatStructured(
              { source: source.description, destination: destination.description, entries: summary.entries, leases: summary.leases, seconds: Number(seconds.toFixed(3)), rows_per_second: rate },
              format,
            ),
          );
        }
      } catch (err) {
        if (err instanceof mig.MigrationError) throw new CliExit(1, `Error migrating: ${err.message}`);
        throw err;
      } finally {
        for (const s of opened.reverse()) await s.close().catch(() => undefined);
      }
    });
}
