import { type Command, Option } from "commander";
import {
  ClientConfigError,
  ConnectionError,
  LeaseholdClient,
  VaultHttpError,
  clientOptionsFromSettings,
  resolveClientSettings,
  type ClientSettings,
  type VaultResponse,
} from "../client/index.js";
import type { ServerRunOptions } from "./commands/server.js";
import {
  OUTPUT_FORMATS,
  asEnvelope,
  formatField,
  formatList,
  formatSecretTable,
  formatStructured,
  resolveFormat,
  secretEntries,
  type OutputFormat,
} from "./format.js";
import { KeyValueParseError, parseKeyValueArgs } from "./kv-args.js";

export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** Everything a command touches outside itself, so tests run commands in-process. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** Starts the server; defaults to `src/server/run.ts`. */
  runServer?: (opts: ServerRunOptions) => Promise<void>;
}

/** Ends the command with `code`, printing `message` (if any) to stderr. */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = "",
  ) {
    super(message);
    this.name = "CliExit";
  }
}

/** Wrong arguments or flags: exit code 2, as the `vault` CLI uses. */
export class UsageError extends CliExit {
  constructor(message: string) {
    super(2, message);
    this.name = "UsageError";
  }
}

/** Flags every command that talks to the server accepts (Vault calls them "HTTP Options"). */
export interface ConnectionFlags {
  address?: string;
  token?: string;
  namespace?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  tlsSkipVerify?: boolean;
}

export interface OutputFlags {
  format?: string;
  field?: string;
}

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option("--address <url>", "server address (env LEASEHOLD_ADDR, VAULT_ADDR; default http://127.0.0.1:8200)")
    .option("--token <token>", "token (env LEASEHOLD_TOKEN, VAULT_TOKEN; else ~/.leasehold-token)")
    .option("--namespace <ns>", "namespace sent as X-Vault-Namespace (env LEASEHOLD_NAMESPACE, VAULT_NAMESPACE)")
    .option("--ca-cert <file>", "CA certificate PEM file to verify the server (env LEASEHOLD_CACERT, VAULT_CACERT)")
    .option("--client-cert <file>", "client certificate PEM file (env LEASEHOLD_CLIENT_CERT, VAULT_CLIENT_CERT)")
    .option("--client-key <file>", "client key PEM file (env LEASEHOLD_CLIENT_KEY, VAULT_CLIENT_KEY)")
    .option("--tls-skip-verify", "do not verify the server's certificate (env LEASEHOLD_SKIP_VERIFY, VAULT_SKIP_VERIFY)");
}

export function addFormatOption(cmd: Command, withField = true): Command {
  cmd.addOption(new Option("--format <format>", "output format (env LEASEHOLD_FORMAT, VAULT_FORMAT)").choices(OUTPUT_FORMATS));
  if (withField) cmd.option("--field <name>", "print only this field's raw value");
  return cmd;
}

/** What a command needs to talk to the server and print the answer. */
export class CommandContext {
  readonly settings: ClientSettings;
  readonly format: OutputFormat;
  readonly field: string | undefined;
  private clientInstance: LeaseholdClient | undefined;

  constructor(
    readonly io: CliIo,
    flags: ConnectionFlags & OutputFlags,
  ) {
    try {
      this.settings = resolveClientSettings(
        io.env,
        {
          address: flags.address,
          token: flags.token,
          namespace: flags.namespace,
          caCert: flags.caCert,
          clientCert: flags.clientCert,
          clientKey: flags.clientKey,
          skipVerify: flags.tlsSkipVerify,
        },
        io.homeDir,
      );
    } catch (err) {
      throw new CliExit(1, `Error: ${(err as Error).message}`);
    }
    const format = resolveFormat(flags.format, io.env);
    if (!format) throw new UsageError(`Invalid output format: ${flags.format ?? io.env.LEASEHOLD_FORMAT ?? io.env.VAULT_FORMAT} (use ${OUTPUT_FORMATS.join(", ")})`);
    this.format = format;
    this.field = flags.field;
  }

  get client(): LeaseholdClient {
    if (!this.clientInstance) {
      try {
        this.clientInstance = new LeaseholdClient(clientOptionsFromSettings(this.settings));
      } catch (err) {
        throw new CliExit(1, `Error: ${(err as Error).message}`);
      }
    }
    return this.clientInstance;
  }

  close(): void {
    this.clientInstance?.close();
  }

  /** Runs one API call; a failure ends the command with `Error <doing>: ...` and exit code 1. */
  async call<T>(doing: string, fn: (client: LeaseholdClient) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client);
    } catch (err) {
      if (err instanceof CliExit) throw err;
      throw new CliExit(1, describeFailure(`Error ${doing}`, err, this.settings));
    }
  }

  print(text: string): void {
    this.io.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  }

  warn(text: string): void {
    this.io.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Prints a secret (envelope) as a table, structured, or one field, as the flags ask. */
  outputSecret(resp: VaultResponse<unknown>): void {
    if (this.field !== undefined) {
      this.printField(secretEntries(asEnvelope(resp)), this.field);
      return;
    }
    this.print(this.format === "table" ? formatSecretTable(asEnvelope(resp)) : formatStructured(resp, this.format));
  }

  /** Prints a value as JSON or YAML (`table` callers render their own layout). */
  printStructured(value: unknown): void {
    this.print(formatStructured(value, this.format === "table" ? "json" : this.format));
  }

  /** A list prints a `Keys` column; structured formats print the array, as `vault list -format=json` does. */
  outputList(keys: readonly string[], header = "Keys"): void {
    this.print(this.format === "table" ? formatList(keys, header) : formatStructured(keys, this.format));
  }

  printField(entries: readonly (readonly [string, unknown])[], field: string): void {
    const found = entries.find(([k]) => k === field);
    if (!found) throw new CliExit(1, `Field "${field}" not present in secret`);
    if (this.format === "table") this.io.stdout.write(formatField(found[1], this.io.stdout.isTTY === true));
    else this.print(formatStructured(found[1], this.format));
  }

  /** Parses `k=v` arguments; a bad one ends the command like `vault` does. */
  async keyValues(args: readonly string[]): Promise<Record<string, unknown>> {
    try {
      return await parseKeyValueArgs(args, { stdin: this.io.stdin });
    } catch (err) {
      if (err instanceof KeyValueParseError) throw new CliExit(1, `Failed to parse K=V data: ${err.message}`);
      throw err;
    }
  }
}

/** `Error reading secret/foo: Code: 403. Errors:\n\n* permission denied`, plus a hint where one helps. */
export function describeFailure(prefix: string, err: unknown, settings?: ClientSettings): string {
  if (err instanceof VaultHttpError) {
    const list = err.errors.length > 0 ? err.errors.map((e) => `* ${e}`).join("\n") : "* (no error message)";
    const hint = hintFor(err, settings);
    return `${prefix}: Code: ${err.status}. Errors:\n\n${list}${hint ? `\n\n${hint}` : ""}`;
  }
  if (err instanceof ConnectionError || err instanceof ClientConfigError) return `${prefix}: ${err.message}`;
  return `${prefix}: ${(err as Error)?.message ?? String(err)}`;
}

function hintFor(err: VaultHttpError, settings?: ClientSettings): string | undefined {
  if (err.status === 403 && settings) {
    if (!settings.token) return "Hint: no token is set: run `leasehold login`, or set LEASEHOLD_TOKEN.";
    const from = settings.tokenSource === "token-file" ? settings.tokenFile : settings.tokenSource === "flag" ? "-token" : settings.tokenSource;
    return `Hint: the token (from ${from}) may be expired or revoked, or its policies do not allow this; check it with \`leasehold token lookup\`.`;
  }
  if (err.status === 503 && err.errors.some((e) => /sealed/i.test(e))) {
    return "Hint: the server is sealed: unseal it with `leasehold operator unseal`.";
  }
  return undefined;
}

/** Splits off a trailing slash so paths print as Vault prints mount paths (`secret/`). */
export function withTrailingSlash(path: string): string {
  return path.endsWith("/") ? path : `${path}/`;
}

export function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

/** Commander gives a repeatable option's values through this accumulator. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
