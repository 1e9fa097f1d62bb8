/**
 * The agent: logs in (auto-auth), writes the token to its sinks, renders templates to files and
 * environment variables, keeps every secret fresh and renders again when one is replaced, runs
 * the exec child, and on shutdown optionally revokes what it obtained.
 *
 * Lifecycle: `run()` resolves with the process exit code — 0 after `exit_after_auth`, the child's
 * code in exec mode, 0 after `shutdown()`, 1 after a fatal error (login with `exit_on_err`,
 * rendering with `exit_on_retry_failure`).
 */
import { rmSync, writeFileSync } from "node:fs";
import {
  AbortError,
  Backoff,
  LeaseholdClient,
  TokenKeeper,
  clientOptionsFromSettings,
  isRetryable,
  readPem,
  resolveClientSettings,
  revokeObtained,
  sleep,
  type VaultAuth,
} from "../../client/index.js";
import type { AgentConfig } from "../config.js";
import { SecretCache, renderTemplate } from "../template/index.js";
import { writeFileAtomic } from "./atomic-file.js";
import { authMethodFor } from "./auth.js";
import { ChildSupervisor, type ChildExit } from "./child.js";
import { describeCommand, runCommand } from "./command.js";
import type { AgentLogger } from "./logger.js";
import { AgentSecrets } from "./secrets.js";

export interface AgentOptions {
  config: AgentConfig;
  logger: AgentLogger;
  /** `LEASEHOLD_ADDR`/`VAULT_ADDR` and friends fill what the config leaves out; `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The exec child's stdio; "inherit" by default. */
  childStdio?: "inherit" | "pipe";
  /** Request retry delays (tests shorten them). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Minimum render backoff (tests shorten it); 1 s by default. */
  renderBackoffMs?: number;
}

export class Agent {
  readonly client: LeaseholdClient;
  readonly tokens: TokenKeeper;
  readonly secrets: AgentSecrets;
  private child: ChildSupervisor | undefined;
  private readonly abort = new AbortController();
  private renderRunning: Promise<boolean> | undefined;
  private renderAgain = false;
  private envValues: Record<string, string> | undefined;
  private exitCode: number | undefined;
  private finished!: (code: number) => void;
  private readonly done = new Promise<number>((resolve) => (this.finished = resolve));
  private shuttingDown: Promise<number> | undefined;

  constructor(private readonly options: AgentOptions) {
    const { config, logger } = options;
    const env = options.env ?? process.env;
    const method = config.autoAuth.method;
    const server = config.server;
    const settings = resolveClientSettings(env, {
      address: server.address,
      addresses: server.addresses,
      caCert: server.caCert,
      clientCert: method.type === "cert" && method.config.clientCert ? method.config.clientCert : server.clientCert,
      clientKey: method.type === "cert" && method.config.clientKey ? method.config.clientKey : server.clientKey,
      skipVerify: server.tlsSkipVerify || undefined,
    });
    const caCert = method.type === "cert" && method.config.caCert ? readPem(method.config.caCert, "CA certificate") : undefined;
    this.client = new LeaseholdClient({
      ...clientOptionsFromSettings({ ...settings, token: undefined }),
      ...(caCert ? { caCert } : {}),
      retries: server.numRetries,
      retryMinMs: options.retryMinMs,
      retryMaxMs: options.retryMaxMs,
      onFailover: ({ from, to, error }) => logger.warn({ from, to, error: error.message }, "server unavailable; failing over to the next address"),
    });
    this.tokens = new TokenKeeper({
      client: this.client,
      method: authMethodFor(method),
      minBackoffMs: method.minBackoffSeconds * 1000,
      maxBackoffMs: method.maxBackoffSeconds * 1000,
      keepAlive: true,
      onLogin: (auth, previous) => this.loggedIn(auth, previous),
      onRenewed: (auth, expiresAt) => logger.debug({ accessor: auth.accessor, expires: new Date(expiresAt).toISOString() }, "renewed the token"),
      onError: (err, info) =>
        logger.warn({ error: err.message, retry_in_ms: info.willRetryInMs }, info.willRetryInMs === 0 ? "the token can no longer be renewed; logging in again" : "login or token renewal failed; retrying"),
    });
    this.secrets = new AgentSecrets({
      client: this.client,
      tokens: this.tokens,
      logger,
      staticIntervalMs: config.templateConfig.staticSecretRenderIntervalSeconds * 1000,
      threshold: config.templateConfig.leaseRenewalThreshold,
      minBackoffMs: method.minBackoffSeconds * 1000,
      maxBackoffMs: method.maxBackoffSeconds * 1000,
      onChange: () => void this.render(),
    });
  }

  /** Runs until shutdown (or `exit_after_auth`); resolves with the exit code. */
  async run(): Promise<number> {
    const { config, logger } = this.options;
    if (config.pidFile) writeFileSync(config.pidFile, `${process.pid}\n`);
    try {
      const addresses = this.client.addresses.length > 1 ? { addresses: this.client.addresses } : {};
      logger.info({ address: this.client.address, ...addresses, method: config.autoAuth.method.type, mount: config.autoAuth.method.mountPath }, "agent starting: logging in");
      await this.tokens.start({ retry: !config.autoAuth.method.exitOnError, signal: this.abort.signal });
      const rendered = await this.firstRender();
      // A shutdown during the first render: no child may start after it (nobody would stop it).
      if (this.abort.signal.aborted) return await this.done;
      if (!rendered) return await this.finish(1);
      if (config.exitAfterAuth) {
        logger.info("exit_after_auth: logged in and rendered; exiting");
        return await this.finish(0, { keepToken: true });
      }
      if (config.exec) await this.startChild();
      return await this.done;
    } catch (err) {
      if (err instanceof AbortError || this.abort.signal.aborted) return await this.done;
      logger.error({ error: (err as Error).message }, "agent failed");
      return await this.finish(1);
    }
  }

  /** Stops the agent (SIGTERM/SIGINT): the child gets `signal`, leases are revoked if configured. */
  shutdown(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    this.options.logger.info({ signal }, "shutting down");
    return this.finish(undefined, { signal });
  }

  private async loggedIn(auth: VaultAuth, previous: VaultAuth | undefined): Promise<void> {
    const { config, logger } = this.options;
    logger.info({ accessor: auth.accessor, policies: auth.policies, ttl: auth.lease_duration, renewable: auth.renewable }, previous ? "logged in again" : "logged in");
    for (const sink of config.autoAuth.sinks) {
      try {
        await writeFileAtomic(sink.path, auth.client_token, { mode: sink.mode, createDirs: true });
        logger.info({ path: sink.path }, "token written to sink");
      } catch (err) {
        logger.error({ path: sink.path, error: (err as Error).message }, "could not write the token sink");
      }
    }
    // Secrets obtained with the previous token die with it: their keepers re-plan with its deadline.
    if (previous) this.secrets.reschedule();
  }

  /** Renders until every template succeeded once (or gives up with `exit_on_retry_failure`). */
  private async firstRender(): Promise<boolean> {
    const { config, logger } = this.options;
    if (config.templates.length === 0 && config.envTemplates.length === 0) return true;
    const backoff = new Backoff(this.options.renderBackoffMs ?? 1_000, config.autoAuth.method.maxBackoffSeconds * 1000);
    for (let failures = 0; ; failures++) {
      if (await this.render()) return true;
      if (config.templateConfig.exitOnRetryFailure && failures >= config.server.numRetries) {
        logger.error({ attempts: failures + 1 }, "templates could not be rendered and exit_on_retry_failure is set; exiting");
        return false;
      }
      await sleep(backoff.next(), this.abort.signal, true);
    }
  }

  /** One render pass of every template (serialised; a change during a pass runs another). */
  render(): Promise<boolean> {
    if (this.renderRunning) {
      this.renderAgain = true;
      return this.renderRunning;
    }
    this.renderRunning = (async () => {
      let ok: boolean;
      do {
        this.renderAgain = false;
        ok = await this.renderOnce();
      } while (this.renderAgain && !this.abort.signal.aborted);
      return ok;
    })().finally(() => (this.renderRunning = undefined));
    return this.renderRunning;
  }

  private async renderOnce(): Promise<boolean> {
    const { config, logger } = this.options;
    if (this.abort.signal.aborted) return false;
    const cache = new SecretCache();
    let ok = true;
    for (const t of config.templates) {
      try {
        const { text } = await renderTemplate(t.template, { source: this.secrets, cache, errorOnMissingKey: t.errorOnMissingKey });
        const changed = await writeFileAtomic(t.destination, text, { mode: t.perms, createDirs: t.createDestDirs, keepExistingMode: true, backup: t.backup });
        if (!changed) continue;
        logger.info({ destination: t.destination }, "rendered template");
        if (t.exec) {
          const result = await runCommand(t.exec.command, { timeoutMs: t.exec.timeoutSeconds * 1000, logger });
          const fields = { destination: t.destination, command: describeCommand(t.exec.command), code: result.code, signal: result.signal, output: result.output || undefined };
          if (result.error || result.timedOut || result.code !== 0) logger.error({ ...fields, error: result.error, timed_out: result.timedOut }, "the template's command failed");
          else logger.info(fields, "ran the template's command");
        }
      } catch (err) {
        ok = false;
        if (this.abort.signal.aborted) break;
        this.logRenderError(err, t.destination);
      }
    }
    if (config.envTemplates.length > 0) {
      const values: Record<string, string> = {};
      for (const t of config.envTemplates) {
        try {
          values[t.name] = (await renderTemplate(t.template, { source: this.secrets, cache, errorOnMissingKey: t.errorOnMissingKey })).text;
        } catch (err) {
          ok = false;
          if (this.abort.signal.aborted) break;
          this.logRenderError(err, `env ${t.name}`);
        }
      }
      if (ok && !this.abort.signal.aborted) await this.environmentRendered(values);
    }
    return ok;
  }

  private logRenderError(err: unknown, what: string): void {
    const message = (err as Error).message;
    const hint = isRetryable(err) ? "the server is unreachable or failing; keeping the last rendered version and retrying" : "not rendered; will retry";
    this.options.logger.error({ template: what, error: message }, `could not render template: ${hint}`);
  }

  private async environmentRendered(values: Record<string, string>): Promise<void> {
    const previous = this.envValues;
    this.envValues = values;
    if (!this.child || !previous) return; // the child starts after the first render
    if (JSON.stringify(previous) === JSON.stringify(values)) return;
    const restarted = await this.child.restart(values);
    this.options.logger.info({ restarted }, restarted ? "secrets changed: restarted the child process" : "secrets changed: the child keeps running (restart_on_secret_changes = never)");
  }

  private async startChild(): Promise<void> {
    const exec = this.options.config.exec!;
    // Checked with no await before `this.child` is set: `finish` either sees the child or has aborted.
    if (this.abort.signal.aborted) return;
    this.child = ChildSupervisor.fromConfig(exec, { logger: this.options.logger, stdio: this.options.childStdio ?? "inherit" });
    this.child.onExit((exit: ChildExit) => {
      if (exit.stopped) return;
      this.options.logger.info({ code: exit.code, signal: exit.signal, error: exit.error }, "the child process exited; the agent exits with its code");
      void this.finish(exit.exitCode);
    });
    await this.child.start(this.envValues ?? {});
    this.options.logger.info({ command: describeCommand(exec.command), pid: this.child.pid }, "started the child process");
  }

  /** Shuts down once: child, renewals, revocation if configured, pid file. */
  private finish(code: number | undefined, how: { signal?: NodeJS.Signals; keepToken?: boolean } = {}): Promise<number> {
    this.shuttingDown ??= (async () => {
      const { config, logger } = this.options;
      this.abort.abort();
      let exitCode = code ?? 0;
      if (this.child) {
        const exit = await this.child.stop(how.signal ?? "SIGTERM");
        if (code === undefined && exit) exitCode = exit.exitCode;
      }
      await this.secrets.stop();
      if (config.revokeOnShutdown && !how.keepToken) {
        await this.revokeEverything();
      } else {
        await this.tokens.stop();
      }
      if (config.pidFile) rmSync(config.pidFile, { force: true });
      this.client.close();
      this.exitCode = exitCode;
      logger.info({ code: exitCode }, "agent stopped");
      this.finished(exitCode);
      return exitCode;
    })();
    return this.shuttingDown;
  }

  /** `revoke_on_shutdown`: each lease in use, then every token (revoke-self revokes what each created). */
  private async revokeEverything(): Promise<void> {
    const { logger } = this.options;
    const revoked = await revokeObtained(this.client, this.secrets.leaseIds(), this.tokens, {
      retries: 1,
      // Policies often deny sys/leases/revoke; revoking the tokens revokes their leases anyway.
      onLeaseError: (leaseId, err) => logger.debug({ lease_id: leaseId, error: err.message }, "could not revoke the lease directly"),
    });
    logger.info(revoked, "revoke_on_shutdown: revoked the agent's leases and tokens");
  }

  /** The exit code once the agent has stopped. */
  get stoppedWith(): number | undefined {
    return this.exitCode;
  }
}
