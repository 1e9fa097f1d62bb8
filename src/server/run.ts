import "reflect-metadata";
import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { builtinPlugins } from "../../plugins/index.js";
import { Core } from "../core/core.js";
import type { RetryPolicy } from "../core/leases/manager.js";
import type { PluginFactory } from "../sdk/types.js";
import { loadStaticKey } from "../core/seal.js";
import { isLeaseholdError } from "../sdk/errors.js";
import { SqliteStorage } from "../storage/sqlite.js";
import { PostgresStorage, describeConnection } from "../storage/postgres.js";
import type { WriteFence } from "../storage/postgres-schema.js";
import { HaNode } from "../cluster/ha.js";
import { Forwarder } from "../cluster/forwarding.js";
import { ensureClusterTls, loadClusterTls, type ClusterTlsMaterial } from "../cluster/tls.js";
import { createSecureContext, type SecureContext } from "node:tls";
import type { PhysicalStorage } from "../storage/types.js";
import { buildApp, DEFAULT_APP_LIMITS, type AppLimits } from "./app.js";
import { DEFAULT_LEASE_TTL_SECONDS, loadDevServerConfig, loadServerConfig, type ListenerConfig, type ServerConfig, type StorageConfig } from "./config.js";
import { generateDevTls, type DevTlsFiles } from "./dev-tls.js";
import { listen, splitAddress, type HttpTimeouts, type RunningListener } from "./listen.js";
import { createLogger } from "./logger.js";
import { writeTokenFile } from "../client/token-file.js";

/** What `leasehold server` passes in (see src/cli/commands/server.ts). */
export interface ServerRunOptions {
  config?: string;
  dev: boolean;
  devRootTokenId?: string;
  devListenAddress?: string;
  devTls: boolean;
  devTlsCertDir?: string;
  logLevel?: string;
  /** `-no-revoke` / `LEASEHOLD_NO_REVOKE=1`: safety mode, nothing is revoked by time (as `disable_revocation = true`). */
  noRevoke?: boolean;
}

/** A running server: its core, listeners and how to stop it. */
export interface RunningServer {
  core: Core;
  listeners: RunningListener[];
  /** First listener's base URL (`http://127.0.0.1:8200`). */
  url: string;
  logger: Logger;
  /** Dev mode only. */
  rootToken?: string;
  unsealKey?: string;
  devTls?: DevTlsFiles;
  /** HA with request forwarding: the cluster listener (mutual TLS). */
  clusterListener?: RunningListener;
  stop(): Promise<void>;
}

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** The physical store a config's `storage` block names (PostgreSQL: connected and migrated). */
async function openStorage(storage: StorageConfig, logger: Logger, fence?: WriteFence): Promise<PhysicalStorage> {
  if (storage.type === "sqlite") return new SqliteStorage({ path: storage.path, synchronous: storage.synchronous });
  return PostgresStorage.open({
    connectionUrl: storage.connectionUrl,
    table: storage.table,
    schema: storage.schema,
    maxParallel: storage.maxParallel,
    haTable: storage.haTable,
    fence,
    onIdleError: (err) => logger.warn({ err: err.message }, "PostgreSQL storage: an idle connection failed; the next query reconnects"),
  });
}

function describeStorage(storage: StorageConfig): string {
  return storage.type === "sqlite" ? `sqlite ${storage.path}` : describeConnection(storage.connectionUrl);
}

/**
 * Where the cluster listener binds: the first listener's `cluster_address`, else the first
 * listener's address with its port plus one (Vault's default).
 */
export function clusterListenAddress(listeners: ListenerConfig[]): string {
  const explicit = listeners.find((l) => l.clusterAddress)?.clusterAddress;
  if (explicit) return explicit;
  const first = listeners[0];
  const { host, port } = splitAddress(first.address);
  const shown = host.includes(":") ? `[${host}]` : host;
  return `${shown}:${port === 0 ? 0 : port + 1}`;
}

/**
 * HA request forwarding: the cluster listener (mutual TLS with the cluster certificate, which the
 * active node makes and keeps in the barrier) and the standby's forwarder. The listener opens at
 * start but completes no handshake until this node has read the certificate, as the active.
 */
class ClusterSide {
  private context?: SecureContext;
  private material?: ClusterTlsMaterial;
  listener?: RunningListener;
  forwarder?: Forwarder;

  constructor(
    private readonly core: () => Core,
    private readonly logger: Logger,
  ) {}

  /** The active node: makes (first time) or reads the certificate, and serves handshakes with it. */
  async becameActive(): Promise<void> {
    const material = await ensureClusterTls(this.core().barrier.view(""));
    this.use(material);
  }

  private use(material: ClusterTlsMaterial): void {
    if (this.material?.cert === material.cert && this.material.key === material.key) return;
    this.material = material;
    this.context = createSecureContext({ cert: material.cert, key: material.key, ca: material.cert, minVersion: "TLSv1.3" });
  }

  async open(config: ServerConfig): Promise<void> {
    const core = this.core();
    const first = config.listeners[0];
    const limits = listenerLimits(first ?? {});
    const maxDuration = limits.app.maxRequestDurationMs ?? DEFAULT_APP_LIMITS.maxRequestDurationMs;
    this.forwarder = new Forwarder({
      loadTls: async () => {
        const m = await loadClusterTls(core.barrier.view(""));
        if (m) this.use(m);
        return m;
      },
      responseTimeoutMs: maxDuration + 5_000,
      registry: core.metrics.registry,
    });
    const address = clusterListenAddress(config.listeners);
    this.listener = await listen(buildApp(core, this.logger, limits.app, { clusterPeer: true }), {
      address,
      mutualTls: { context: () => this.context },
      timeouts: limits.timeouts,
    });
    this.logger.info({ cluster_listener: this.listener.url, cluster_addr: config.clusterAddr }, "cluster listener open (request forwarding)");
  }

  async close(): Promise<void> {
    this.forwarder?.close();
    await this.listener?.close();
  }
}

/** Starts a server from a parsed config file. */
export async function startConfiguredServer(config: ServerConfig, logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const haConfig = config.storage.type === "postgresql" && config.storage.haEnabled ? config.storage : undefined;
  let core: Core | undefined;
  // Request forwarding needs a cluster_addr to advertise (Vault: no cluster address, no forwarding).
  const cluster = haConfig && config.clusterAddr && !config.disableClustering ? new ClusterSide(() => core!, logger.child({ component: "cluster" })) : undefined;
  // HA: every write is fenced by the epoch of the lock this node holds now (none on a standby).
  const ha = haConfig
    ? new HaNode({
        connectionUrl: haConfig.connectionUrl,
        apiAddr: config.apiAddr!,
        clusterAddr: config.clusterAddr,
        lifetimeMs: haConfig.haLockLifetimeMs,
        logger: logger.child({ component: "ha" }),
        onActive: cluster ? () => cluster.becameActive() : undefined,
      })
    : undefined;
  const physical = await openStorage(config.storage, logger, ha?.fence);
  core = new Core({
    physical,
    plugins: builtinPlugins,
    logger,
    staticSealKey: config.seal ? loadStaticKey(config.seal.keyFile) : undefined,
    defaultLeaseTtl: config.defaultLeaseTtl,
    maxLeaseTtl: config.maxLeaseTtl,
    clusterName: config.clusterName,
    disableRevocation: config.disableRevocation,
    leaseCountWarningThreshold: config.leaseCountWarningThreshold,
    leaseRetry: config.leaseRetry,
    loginRateLimit: config.loginRateLimit,
    allowAuditLogPrefixing: config.allowAuditLogPrefixing,
    ha,
  });
  const shutDownEarly = async () => {
    // An open PostgreSQL pool would keep the process alive after the error is reported.
    await ha?.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
  };
  try {
    if (ha) await ha.open((physical as PostgresStorage).names, core);
    await cluster?.open(config);
    await core.start();
  } catch (err) {
    await shutDownEarly();
    await physical.close().catch(() => undefined);
    throw err;
  }
  const listeners = await listenOrShutDown(core, logger, config.listeners, cluster?.forwarder, config.ui).catch(async (err: unknown) => {
    await shutDownEarly();
    throw err;
  });
  return running(core, listeners, logger, { clusterListener: cluster?.listener }, ha, cluster);
}

/** A listener's limits and timeouts, without the keys it does not set (0 = the default for the two limits, as in Vault). */
function listenerLimits(l: Partial<ListenerConfig>): { app: Partial<AppLimits>; timeouts: Partial<HttpTimeouts> } {
  const app: Partial<AppLimits> = {};
  if (l.maxRequestSize) app.maxRequestSize = l.maxRequestSize;
  if (l.maxRequestDurationMs) app.maxRequestDurationMs = l.maxRequestDurationMs;
  const timeouts: Partial<HttpTimeouts> = {};
  for (const k of ["readHeaderTimeoutMs", "readTimeoutMs", "writeTimeoutMs", "idleTimeoutMs"] as const) if (l[k] !== undefined) timeouts[k] = l[k];
  return { app, timeouts };
}

/** `listenOn`, shutting the core down when a listener cannot open (so the process can exit). */
async function listenOrShutDown(core: Core, logger: Logger, configs: ListenerConfig[], forwarder?: Forwarder, ui = false): Promise<RunningListener[]> {
  try {
    return await listenOn(core, logger, configs, forwarder, ui);
  } catch (err) {
    await core.shutdown();
    throw err;
  }
}

/** Opens the `listener` blocks of a config file, in order; on a failure closes those already open. */
async function listenOn(core: Core, logger: Logger, configs: ListenerConfig[], forwarder?: Forwarder, ui = false): Promise<RunningListener[]> {
  const listeners: RunningListener[] = [];
  try {
    for (const l of configs) {
      const tls = l.tlsDisable
        ? undefined
        : { cert: readFile(l.tlsCertFile!, "tls_cert_file"), key: readFile(l.tlsKeyFile!, "tls_key_file"), ca: l.tlsClientCaFile ? readFile(l.tlsClientCaFile, "tls_client_ca_file") : undefined };
      // One app per listener: its body limit and request duration are the listener's.
      const limits = listenerLimits(l);
      listeners.push(await listen(buildApp(core, logger, limits.app, { forwarder, ui }), { address: l.address, tls, timeouts: limits.timeouts }));
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    throw err;
  }
  return listeners;
}

function running(core: Core, listeners: RunningListener[], logger: Logger, extra: Partial<RunningServer> = {}, ha?: HaNode, cluster?: ClusterSide): RunningServer {
  let stopped: Promise<void> | undefined;
  return {
    core,
    listeners,
    url: listeners[0].url,
    logger,
    ...extra,
    stop: () =>
      (stopped ??= (async () => {
        // HA: give the lock up first, so a standby takes over while the listeners drain.
        if (ha) await ha.stepDownForShutdown();
        await Promise.all(listeners.map((l) => l.close()));
        await cluster?.close();
        await core.shutdown();
        await ha?.close();
      })()),
  };
}

export interface DevServerOptions {
  address?: string;
  rootTokenId?: string;
  tls?: boolean;
  tlsCertDir?: string;
  logger?: Logger;
  defaultLeaseTtl?: number;
  maxLeaseTtl?: number;
  /** Plugins besides the built-in ones (tests register their own engines). */
  extraPlugins?: PluginFactory[];
  leaseRetry?: Partial<RetryPolicy>;
  /** Revocations running at once per mount (default 64). */
  leaseRevocationConcurrency?: number;
  /** Safety mode: start without revoking anything by time (`-no-revoke`). */
  noRevoke?: boolean;
  leaseCountWarningThreshold?: number;
  /** Logins per second per client address and burst (tests and benchmarks raise it; 0 = unlimited). */
  loginRateLimit?: { rate: number; burst: number };
  clusterName?: string;
  /** Listeners from `-config` served besides the dev listener (as Vault appends them). */
  listeners?: ListenerConfig[];
  /** `allow_audit_log_prefixing`: file audit devices may use `prefix`. */
  allowAuditLogPrefixing?: boolean;
  /** Limits and timeouts of the dev listener (Vault's defaults when absent; tests shorten them). */
  http?: Partial<Omit<ListenerConfig, "address" | "tlsDisable" | "tlsCertFile" | "tlsKeyFile" | "tlsClientCaFile" | "clusterAddress">>;
  /** The store, empty (default: SQLite in memory); the tests run the storage-agnostic suite on PostgreSQL too. Closed by `stop`. */
  physical?: PhysicalStorage;
  /** Serve the operator console at `/ui/` (default true, as `vault server -dev` does). */
  ui?: boolean;
}

/** The dev server: in-memory store, initialised, unsealed, KV v2 at `secret/`. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger("info");
  const core = new Core({
    physical: opts.physical ?? new SqliteStorage({ path: ":memory:" }),
    plugins: [...builtinPlugins, ...(opts.extraPlugins ?? [])],
    leaseRetry: opts.leaseRetry,
    leaseRevocationConcurrency: opts.leaseRevocationConcurrency,
    disableRevocation: opts.noRevoke,
    leaseCountWarningThreshold: opts.leaseCountWarningThreshold,
    loginRateLimit: opts.loginRateLimit,
    allowAuditLogPrefixing: opts.allowAuditLogPrefixing,
    logger,
    defaultLeaseTtl: opts.defaultLeaseTtl ?? DEFAULT_LEASE_TTL_SECONDS,
    maxLeaseTtl: opts.maxLeaseTtl ?? DEFAULT_LEASE_TTL_SECONDS,
    clusterName: opts.clusterName ?? "leasehold-dev",
  });
  const { keys, rootToken } = await core.initialize(1, 1, opts.rootTokenId);
  await core.submitUnsealKey(keys[0].toString("hex"));
  await core.mounts.enable("secrets", "secret/", { type: "kv", description: "key/value secret storage", options: { version: "2" } });
  let devTls: DevTlsFiles | undefined;
  if (opts.tls) devTls = await generateDevTls(opts.tlsCertDir ?? mkdtempSync(join(tmpdir(), "leasehold-dev-tls-")));
  const limits = listenerLimits(opts.http ?? {});
  const ui = opts.ui ?? true;
  const listener = await listen(buildApp(core, logger, limits.app, { ui }), {
    address: opts.address ?? "127.0.0.1:8200",
    tls: devTls ? { cert: devTls.cert, key: devTls.key, ca: devTls.ca } : undefined,
    timeouts: limits.timeouts,
  });
  const more = await listenOrShutDown(core, logger, opts.listeners ?? [], undefined, ui).catch(async (err: unknown) => {
    await listener.close();
    throw err;
  });
  return running(core, [listener, ...more], logger, { rootToken, unsealKey: keys[0].toString("base64"), devTls });
}

/** `leasehold server`: starts, prints how to reach it, and runs until SIGTERM/SIGINT. */
export async function runServer(opts: ServerRunOptions): Promise<void> {
  let server: RunningServer;
  try {
    if (opts.dev) {
      const config = opts.config ? loadDevServerConfig(readFile(opts.config, "configuration file"), opts.config) : undefined;
      server = await startDevServer({
        address: opts.devListenAddress,
        rootTokenId: opts.devRootTokenId,
        tls: opts.devTls,
        tlsCertDir: opts.devTlsCertDir,
        logger: createLogger(opts.logLevel ?? config?.logLevel ?? "info"),
        noRevoke: opts.noRevoke || config?.disableRevocation,
        defaultLeaseTtl: config?.defaultLeaseTtl,
        maxLeaseTtl: config?.maxLeaseTtl,
        clusterName: config?.clusterName,
        leaseRetry: config?.leaseRetry,
        leaseCountWarningThreshold: config?.leaseCountWarningThreshold,
        loginRateLimit: config?.loginRateLimit,
        listeners: config?.listeners,
        allowAuditLogPrefixing: config?.allowAuditLogPrefixing,
      });
      // As `vault server -dev` does: the CLI on this machine is logged in as root right away.
      try {
        writeTokenFile(server.rootToken!);
      } catch (err) {
        server.logger.warn({ err: (err as Error).message }, "could not write the root token to ~/.leasehold-token; use the token printed below");
      }
      printDevBanner(server);
    } else {
      const config = loadServerConfig(readFile(opts.config!, "configuration file"), opts.config!);
      if (opts.logLevel) config.logLevel = opts.logLevel as ServerConfig["logLevel"];
      if (opts.noRevoke) config.disableRevocation = true;
      server = await startConfiguredServer(config);
      process.stdout.write(
        `==> leasehold server started on ${server.listeners.map((l) => l.url).join(", ")} (storage: ${describeStorage(config.storage)})\n` +
          (server.core.sealed ? "    The server is sealed: run `leasehold operator init` (first start) or `leasehold operator unseal`.\n" : ""),
      );
    }
  } catch (err) {
    const msg = isLeaseholdError(err) || err instanceof Error ? err.message : String(err);
    process.stderr.write(`Error starting the server: ${msg}\n`);
    process.exitCode = 1;
    return;
  }
  if (!server.core.leases.expiryEnabled) {
    process.stdout.write('WARNING! lease revocation is disabled (-no-revoke / disable_revocation): expired leases are NOT revoked. Turn it on with `POST sys/leasehold/revocation {"enabled": true}`.\n');
  }
  await waitForShutdown(server);
}

function printDevBanner(s: RunningServer): void {
  const lines = [
    "==> leasehold dev server started! Log data will stream in below (stderr).",
    "",
    "WARNING! dev mode is enabled! In this mode, leasehold runs entirely in-memory",
    "and starts unsealed with a single unseal key. The root token is already",
    "authenticated to the CLI, so you can immediately begin using leasehold.",
    "",
    "You may need to set the following environment variables:",
    "",
    `    $ export VAULT_ADDR='${s.url}'`,
    ...(s.devTls ? [`    $ export VAULT_CACERT='${s.devTls.caFile}'`] : []),
    "",
    "The unseal key and root token are displayed below in case you want to",
    "seal/unseal the server or re-authenticate.",
    "",
    `Unseal Key: ${s.unsealKey}`,
    `Root Token: ${s.rootToken}`,
    "",
    "Development mode should NOT be used in production installations!",
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

/** Graceful shutdown on SIGTERM/SIGINT; SIGHUP reopens audit files (log rotation). */
function waitForShutdown(s: RunningServer): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      s.logger.info({ signal }, "shutting down");
      s.stop().then(
        () => resolve(),
        (err) => {
          s.logger.error({ err }, "shutdown failed");
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      const failures = s.core.audit.reopen();
      for (const f of failures) s.logger.error({ device: f.path, err: f.error }, "audit device reopen failed");
    });
  });
}
