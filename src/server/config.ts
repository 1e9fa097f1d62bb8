/**
 * The server config file: Vault-style HCL (or its JSON form), e.g.
 *
 *   storage "sqlite" { path = "/var/lib/leasehold/leasehold.db" }
 *   # or: storage "postgresql" { connection_url = "postgres://leasehold:...@db:5432/leasehold" }
 *   listener "tcp" { address = "0.0.0.0:8200"  tls_cert_file = "..."  tls_key_file = "..." }
 *   seal "static" { key_file = "/etc/leasehold/unseal.key" }
 *   api_addr = "https://leasehold.example:8200"
 *
 * Every key is checked: a typo in a security setting (`tls_disbale`) must stop the server, not be
 * ignored. `disable_mlock` is accepted (its value must still be a boolean) and otherwise ignored,
 * so Vault configs load unchanged: Node cannot lock its heap into memory, so leasehold never
 * mlocks (operators who care should disable swap or encrypt it). `ui = true` serves the operator
 * console at `/ui/`, as in Vault.
 *
 * leasehold's own top-level keys:
 *   disable_revocation = true              # safety mode, as `leasehold server -no-revoke`: nothing is
 *                                          # revoked by time (restoring a backup without killing live
 *                                          # credentials); turn it on with POST sys/leasehold/revocation
 *   lease_count_warning_threshold = 500000 # log a warning when the number of leases passes this
 *   lease_revoke_retry_base = "1s"         # first delay before retrying a failed revocation (doubles, with jitter)
 *   lease_revoke_retry_cap = "5m"          # longest delay between two attempts
 *   lease_revoke_max_attempts = 8          # attempts before a lease is marked irrevocable
 *   login_rate_limit = 20                  # logins per second per client address (0 = unlimited)
 *   login_rate_limit_burst = 40            # logins one address may make at once
 *   allow_audit_log_prefixing = true       # Vault's switch: lets file audit devices use the `prefix`
 *                                          # option (off by default since CVE-2025-6000)
 */
import { UserError } from "../sdk/errors.js";
import { parseDuration } from "../sdk/durations.js";
import { hclBlocks, parseHclJson, parseHclWithPositions, positionOf, describeValue, type HclBlock, type HclObject, type HclValue } from "../hcl/parser.js";
import { HclConfigReader, type ConfigLogLevel } from "../hcl/reader.js";
import { PG_DEFAULT_HA_TABLE, PG_DEFAULT_MAX_PARALLEL, PG_DEFAULT_TABLE } from "../storage/postgres.js";
import { SCHEMA_NAME, TABLE_NAME } from "../storage/postgres-schema.js";

export interface ListenerConfig {
  /** `host:port`; IPv6 hosts in brackets (`[::1]:8200`). */
  address: string;
  tlsDisable: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCaFile?: string;
  /**
   * Vault's listener limits, each set only when its key is present (defaults in listen.ts and
   * app.ts): `http_read_header_timeout` (10s), `http_read_timeout` (30s), `http_write_timeout`
   * (0 = none), `http_idle_timeout` (5m), all in ms with 0 meaning none; `max_request_duration`
   * (90s; 0 = the default), `max_request_size` in bytes (32 MiB; 0 = the default; only data
   * writes to secrets engines may use more than 1 MiB).
   */
  readHeaderTimeoutMs?: number;
  readTimeoutMs?: number;
  writeTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxRequestDurationMs?: number;
  maxRequestSize?: number;
  /**
   * `cluster_address` (Vault's): where this node listens for node-to-node traffic (forwarded
   * requests, mutual TLS with the cluster certificate). Only with HA; when no listener sets it, the
   * first listener's address with its port plus one (Vault's default).
   */
  clusterAddress?: string;
}

export type LogLevel = ConfigLogLevel;

/**
 * `storage "postgresql"`: Vault's keys (`connection_url`, `table`, `max_parallel`, `ha_enabled`,
 * `ha_table`, `max_idle_connections`) plus leasehold's `schema`. `connectionUrl` falls back to
 * LEASEHOLD_PG_CONNECTION_URL, then VAULT_PG_CONNECTION_URL, when the key is absent.
 */
export interface PostgresStorageConfig {
  type: "postgresql";
  connectionUrl: string;
  table: string;
  schema?: string;
  maxParallel: number;
  /** The HA lock table (`ha_table`), one row per cluster. */
  haTable: string;
  /** `ha_enabled`: several nodes on this database, one active (the holder of the HA lock). */
  haEnabled?: boolean;
  /** `ha_lock_lifetime` (leasehold's): how long the lock stays valid without a renewal, in ms (default 15 s). */
  haLockLifetimeMs?: number;
}

export type StorageConfig = { type: "sqlite"; path: string; synchronous: "NORMAL" | "FULL" } | PostgresStorageConfig;

export interface ServerConfig {
  storage: StorageConfig;
  listeners: ListenerConfig[];
  /** Auto-unseal from a key file; without it the server starts sealed. */
  seal?: { type: "static"; keyFile: string };
  apiAddr?: string;
  /** `cluster_addr`: the URL other nodes reach this node's cluster listener at (`https://node1:8201`); sys/leader's `leader_cluster_address`. */
  clusterAddr?: string;
  /** `disable_clustering` (Vault's): no cluster listener and no request forwarding; standbys redirect (307). */
  disableClustering?: boolean;
  clusterName: string;
  /** Seconds. */
  defaultLeaseTtl: number;
  /** Seconds. */
  maxLeaseTtl: number;
  logLevel: LogLevel;
  /** `disable_revocation`: start in safety mode (set only when the key is present). */
  disableRevocation?: boolean;
  /** `lease_count_warning_threshold` (set only when the key is present; the core defaults to 500000). */
  leaseCountWarningThreshold?: number;
  /** Revocation retry policy (each set only when its key is present). */
  leaseRetry?: { baseMs?: number; capMs?: number; maxAttempts?: number };
  /** `login_rate_limit` / `login_rate_limit_burst` (set only when `login_rate_limit` is present). */
  loginRateLimit?: { rate: number; burst: number };
  /** `allow_audit_log_prefixing` (set only when the key is present; off by default). */
  allowAuditLogPrefixing?: boolean;
  /** `ui = true`: serve the operator console at `/ui/` (set only when true). */
  ui?: boolean;
}

/** Vault's system default for both lease TTLs: 768h (32 days). */
export const DEFAULT_LEASE_TTL_SECONDS = 768 * 3600;
export const DEFAULT_LISTENER_ADDRESS = "127.0.0.1:8200";
export const DEFAULT_CLUSTER_NAME = "leasehold";

const TOP_LEVEL_KEYS = ["storage", "listener", "seal", "api_addr", "cluster_addr", "cluster_name", "default_lease_ttl", "max_lease_ttl", "log_level", "disable_mlock", "ui", "disable_revocation", "lease_count_warning_threshold", "lease_revoke_retry_base", "lease_revoke_retry_cap", "lease_revoke_max_attempts", "login_rate_limit", "login_rate_limit_burst", "allow_audit_log_prefixing", "disable_clustering"];
const STORAGE_KEYS = ["path", "synchronous"];
const PG_STORAGE_KEYS = ["connection_url", "table", "schema", "max_parallel", "max_idle_connections", "ha_enabled", "ha_table", "ha_lock_lifetime"];
const LISTENER_KEYS = ["address", "tls_disable", "tls_cert_file", "tls_key_file", "tls_client_ca_file", "http_read_header_timeout", "http_read_timeout", "http_write_timeout", "http_idle_timeout", "max_request_duration", "max_request_size", "cluster_address"];
/** Listener durations (`listener "tcp"`): key → field, in ms. */
const LISTENER_DURATIONS = [
  ["http_read_header_timeout", "readHeaderTimeoutMs"],
  ["http_read_timeout", "readTimeoutMs"],
  ["http_write_timeout", "writeTimeoutMs"],
  ["http_idle_timeout", "idleTimeoutMs"],
  ["max_request_duration", "maxRequestDurationMs"],
] as const;
const SEAL_KEYS = ["key_file"];

/**
 * Parses and validates a server config. JSON when `fileName` ends in `.json` or the text starts
 * with `{`, HCL otherwise. Errors are `UserError`s such as
 * `leasehold.hcl:7: unknown key "adress" in listener "tcp" (did you mean "address"?)`.
 */
export function loadServerConfig(text: string, fileName: string): ServerConfig {
  const { reader, root } = configReader(text, fileName);
  return reader.read(root);
}

/**
 * What a config file adds to `leasehold server -dev -config=FILE`: Vault merges config files into
 * its dev config, so the top-level settings (lease TTLs, log level, revocation, quotas) apply and
 * `listener` blocks are served besides the dev listener. The dev server keeps its in-memory store
 * and its own unseal key, so `storage` and `seal` blocks are refused rather than ignored.
 */
export type DevServerConfig = Omit<ServerConfig, "storage" | "seal" | "clusterName"> & { clusterName?: string };

export function loadDevServerConfig(text: string, fileName: string): DevServerConfig {
  const { reader, root } = configReader(text, fileName);
  return reader.readDev(root);
}

/**
 * The storage blocks of a file that is not a server config: `leasehold operator migrate` reads
 * `storage_source` and `storage_destination`, each exactly once and written as a server's `storage`
 * block. Other top-level keys must be among `otherKeys`; the decoded file is returned for them.
 */
export function loadStorageBlocks<K extends string>(text: string, fileName: string, blockKeys: readonly K[], otherKeys: readonly string[]): { storage: Record<K, StorageConfig>; root: HclObject } {
  const { reader, root } = configReader(text, fileName);
  return { storage: reader.readStorageBlocks(root, blockKeys, otherKeys), root };
}

function configReader(text: string, fileName: string): { reader: ConfigReader; root: HclObject } {
  const isJson = fileName.toLowerCase().endsWith(".json") || text.trimStart().startsWith("{");
  if (isJson) return { reader: new ConfigReader(fileName, undefined), root: parseHclJson(text, fileName) };
  const doc = parseHclWithPositions(text, fileName);
  return { reader: new ConfigReader(fileName, doc), root: doc.value };
}

class ConfigReader extends HclConfigReader {
  read(root: HclObject): ServerConfig {
    this.checkKeys(root, TOP_LEVEL_KEYS, "");

    const storageBlocks = this.blocks(root, "storage");
    if (storageBlocks.length === 0) {
      this.fail(undefined, undefined, 'no storage block: add storage "sqlite" { path = "/var/lib/leasehold/leasehold.db" }');
    }
    if (storageBlocks.length > 1) this.fail(storageBlocks[1].body, undefined, `only one storage block is allowed (found ${storageBlocks.length})`);
    const storage = this.storage(storageBlocks[0]);

    const listeners = this.listeners(root, true);

    const sealBlocks = this.blocks(root, "seal");
    if (sealBlocks.length > 1) this.fail(sealBlocks[1].body, undefined, `only one seal block is allowed (found ${sealBlocks.length})`);
    const seal = sealBlocks.length ? this.seal(sealBlocks[0]) : undefined;

    const config: ServerConfig = { storage, listeners, ...this.settings(root) };
    if (seal) config.seal = seal;
    // A standby redirects clients to the active node's api_addr: without it there is nowhere to send them.
    if (storage.type === "postgresql" && storage.haEnabled && config.apiAddr === undefined) {
      this.fail(storageBlocks[0].body, "ha_enabled", 'storage "postgresql": ha_enabled = true needs api_addr (this node\'s address as clients reach it, e.g. api_addr = "https://node1.example:8200")');
    }
    return config;
  }

  readStorageBlocks<K extends string>(root: HclObject, keys: readonly K[], otherKeys: readonly string[]): Record<K, StorageConfig> {
    this.checkKeys(root, [...keys, ...otherKeys], "");
    const out = {} as Record<K, StorageConfig>;
    for (const key of keys) {
      const blocks = this.blocks(root, key);
      if (blocks.length === 0) this.fail(undefined, undefined, `no ${key} block: add ${key} "sqlite" { path = "..." } or ${key} "postgresql" { connection_url = "..." }`);
      if (blocks.length > 1) this.fail(blocks[1].body, undefined, `only one ${key} block is allowed (found ${blocks.length})`);
      out[key] = this.storage(blocks[0]);
    }
    return out;
  }

  readDev(root: HclObject): DevServerConfig {
    this.checkKeys(root, TOP_LEVEL_KEYS, "");
    if (root.storage !== undefined) this.fail(root, "storage", "-dev keeps its store in memory: remove the storage block, or start without -dev to use it");
    if (root.seal !== undefined) this.fail(root, "seal", "-dev starts unsealed with its own key: remove the seal block, or start without -dev to use it");
    const { clusterName, ...settings } = this.settings(root);
    // The dev server keeps its own cluster name unless the file names one.
    return { listeners: this.listeners(root, false), ...settings, ...(root.cluster_name === undefined ? {} : { clusterName }) };
  }

  private listeners(root: HclObject, required: boolean): ListenerConfig[] {
    const listenerBlocks = this.blocks(root, "listener");
    if (listenerBlocks.length === 0 && required) {
      this.fail(undefined, undefined, `no listener block: add listener "tcp" { address = "${DEFAULT_LISTENER_ADDRESS}" ... }`);
    }
    const listeners = listenerBlocks.map((b) => this.listener(b));
    const seen = new Map<string, HclBlock>();
    listenerBlocks.forEach((b, i) => {
      const address = listeners[i].address;
      const first = seen.get(address);
      if (first) {
        const firstLine = positionOf(this.doc, first.body)?.line;
        this.fail(b.body, undefined, `two listeners use the address ${JSON.stringify(address)}${firstLine ? ` (the first on line ${firstLine})` : ""}`);
      }
      seen.set(address, b);
    });
    return listeners;
  }

  /** The top-level settings (everything but the blocks). */
  private settings(root: HclObject): Omit<ServerConfig, "storage" | "seal" | "listeners"> {
    const apiAddr = root.api_addr === undefined ? undefined : this.url(root, "api_addr", "");
    const clusterAddr = root.cluster_addr === undefined ? undefined : this.url(root, "cluster_addr", "");
    const clusterName = root.cluster_name === undefined ? DEFAULT_CLUSTER_NAME : this.string(root, "cluster_name", "");
    const defaultLeaseTtl = root.default_lease_ttl === undefined ? DEFAULT_LEASE_TTL_SECONDS : this.duration(root, "default_lease_ttl");
    const maxLeaseTtl = root.max_lease_ttl === undefined ? DEFAULT_LEASE_TTL_SECONDS : this.duration(root, "max_lease_ttl");
    if (maxLeaseTtl < defaultLeaseTtl) {
      const at = root.max_lease_ttl !== undefined ? "max_lease_ttl" : "default_lease_ttl";
      this.fail(root, at, `max_lease_ttl (${maxLeaseTtl}s) must be at least default_lease_ttl (${defaultLeaseTtl}s)`);
    }
    const logLevel = root.log_level === undefined ? "info" : this.logLevel(root);
    // Accepted for compatibility with Vault configs and otherwise ignored (see the file comment).
    if (root.disable_mlock !== undefined) this.bool(root, "disable_mlock", "");

    const config: Omit<ServerConfig, "storage" | "seal" | "listeners"> = { clusterName, defaultLeaseTtl, maxLeaseTtl, logLevel };
    if (apiAddr !== undefined) config.apiAddr = apiAddr;
    if (clusterAddr !== undefined) config.clusterAddr = clusterAddr;
    if (root.ui !== undefined && this.bool(root, "ui", "")) config.ui = true;
    if (root.disable_clustering !== undefined) config.disableClustering = this.bool(root, "disable_clustering", "");
    if (root.disable_revocation !== undefined) config.disableRevocation = this.bool(root, "disable_revocation", "");
    if (root.allow_audit_log_prefixing !== undefined) config.allowAuditLogPrefixing = this.bool(root, "allow_audit_log_prefixing", "");
    if (root.lease_count_warning_threshold !== undefined) config.leaseCountWarningThreshold = this.positiveInt(root, "lease_count_warning_threshold");
    const retry: NonNullable<ServerConfig["leaseRetry"]> = {};
    if (root.lease_revoke_retry_base !== undefined) retry.baseMs = this.duration(root, "lease_revoke_retry_base") * 1000;
    if (root.lease_revoke_retry_cap !== undefined) retry.capMs = this.duration(root, "lease_revoke_retry_cap") * 1000;
    if (root.lease_revoke_max_attempts !== undefined) retry.maxAttempts = this.positiveInt(root, "lease_revoke_max_attempts");
    if (retry.baseMs !== undefined && retry.baseMs < 1000) this.fail(root, "lease_revoke_retry_base", "lease_revoke_retry_base must be at least 1s");
    if ((retry.capMs ?? 300_000) < (retry.baseMs ?? 1000)) this.fail(root, "lease_revoke_retry_cap", "lease_revoke_retry_cap must be at least lease_revoke_retry_base");
    if (Object.keys(retry).length) config.leaseRetry = retry;
    if (root.login_rate_limit !== undefined) {
      const v = root.login_rate_limit;
      const rate = v === 0 || v === "0" ? 0 : this.positiveInt(root, "login_rate_limit");
      const burst = root.login_rate_limit_burst === undefined ? rate * 2 : this.positiveInt(root, "login_rate_limit_burst");
      config.loginRateLimit = { rate, burst };
    } else if (root.login_rate_limit_burst !== undefined) {
      this.fail(root, "login_rate_limit_burst", "login_rate_limit_burst needs login_rate_limit");
    }
    return config;
  }

  // ---- blocks ----

  private blocks(root: HclObject, key: string): HclBlock[] {
    try {
      return hclBlocks(root[key], 1, key);
    } catch (err) {
      return this.fail(root, key, (err as Error).message);
    }
  }

  private blockType(block: HclBlock, kind: string, supported: string): void {
    const type = block.labels[0];
    if (type !== supported) {
      this.fail(block.body, undefined, `${kind} type ${JSON.stringify(type)} is not supported (supported: ${supported})`);
    }
  }

  private storage(block: HclBlock): ServerConfig["storage"] {
    if (block.labels[0] === "postgresql") return this.postgresStorage(block.body);
    if (block.labels[0] !== "sqlite") this.fail(block.body, undefined, `storage type ${JSON.stringify(block.labels[0])} is not supported (supported: sqlite, postgresql)`);
    const where = 'storage "sqlite"';
    const body = block.body;
    if (body.ha_enabled !== undefined && this.bool(body, "ha_enabled", where)) {
      this.fail(body, "ha_enabled", `${where}: ha_enabled is not available on SQLite (one file, one node): use storage "postgresql" for several nodes`);
    }
    this.checkKeys(body, STORAGE_KEYS, where);
    if (body.path === undefined) this.fail(body, undefined, `${where}: path is required (the SQLite database file)`);
    const path = this.string(body, "path", where);
    let synchronous: "NORMAL" | "FULL" = "NORMAL";
    if (body.synchronous !== undefined) {
      const value = this.string(body, "synchronous", where).toLowerCase();
      if (value !== "normal" && value !== "full") {
        this.fail(body, "synchronous", `${where}: synchronous must be "normal" or "full", got ${JSON.stringify(body.synchronous)}`);
      }
      synchronous = value === "full" ? "FULL" : "NORMAL";
    }
    return { type: "sqlite", path, synchronous };
  }

  private postgresStorage(body: HclObject): PostgresStorageConfig {
    const where = 'storage "postgresql"';
    this.checkKeys(body, PG_STORAGE_KEYS, where);
    const haEnabled = body.ha_enabled !== undefined && this.bool(body, "ha_enabled", where);
    let connectionUrl = body.connection_url === undefined ? undefined : this.string(body, "connection_url", where);
    connectionUrl ??= process.env.LEASEHOLD_PG_CONNECTION_URL || process.env.VAULT_PG_CONNECTION_URL || undefined;
    if (connectionUrl === undefined) {
      this.fail(body, undefined, `${where}: connection_url is required (or set LEASEHOLD_PG_CONNECTION_URL), e.g. "postgres://leasehold:PASSWORD@db.example:5432/leasehold?sslmode=verify-full"`);
    }
    if (!/^postgres(ql)?:\/\//i.test(connectionUrl)) {
      // Never echo the value: it may carry a password.
      this.fail(body, body.connection_url === undefined ? undefined : "connection_url", `${where}: connection_url must be a URL starting with postgres:// or postgresql://`);
    }
    const name = (key: "table" | "ha_table" | "schema", pattern: RegExp, fallback: string) => {
      if (body[key] === undefined) return fallback;
      const v = this.string(body, key, where);
      if (!pattern.test(v)) this.fail(body, key, `${where}: ${key} must be letters, digits and _, starting with a letter or _ (at most ${key === "schema" ? 63 : 40}), got ${JSON.stringify(v)}`);
      return v;
    };
    const config: PostgresStorageConfig = {
      type: "postgresql",
      connectionUrl,
      table: name("table", TABLE_NAME, PG_DEFAULT_TABLE),
      maxParallel: body.max_parallel === undefined ? PG_DEFAULT_MAX_PARALLEL : this.positiveInt(body, "max_parallel"),
      haTable: name("ha_table", TABLE_NAME, PG_DEFAULT_HA_TABLE),
    };
    if (haEnabled) config.haEnabled = true;
    if (body.ha_lock_lifetime !== undefined) {
      const ms = this.durationMs(body, "ha_lock_lifetime", where);
      // The renewal (a third of it) and the safety margin (at least 200 ms) must fit inside.
      if (ms < 1000 || ms > 600_000) this.fail(body, "ha_lock_lifetime", `${where}: ha_lock_lifetime must be between 1s and 10m`);
      config.haLockLifetimeMs = ms;
    }
    if (body.schema !== undefined) config.schema = name("schema", SCHEMA_NAME, "");
    // Vault's idle-connection cap; node-postgres closes idle connections after 10 s on its own.
    const idle = body.max_idle_connections;
    if (idle !== undefined && idle !== 0 && idle !== "0") this.positiveInt(body, "max_idle_connections");
    return config;
  }

  private listener(block: HclBlock): ListenerConfig {
    this.blockType(block, "listener", "tcp");
    const where = 'listener "tcp"';
    const body = block.body;
    this.checkKeys(body, LISTENER_KEYS, where);
    const address = body.address === undefined ? DEFAULT_LISTENER_ADDRESS : this.address(body, where);
    const tlsDisable = body.tls_disable === undefined ? false : this.bool(body, "tls_disable", where);
    const listener: ListenerConfig = { address, tlsDisable };
    if (body.tls_cert_file !== undefined) listener.tlsCertFile = this.string(body, "tls_cert_file", where);
    if (body.tls_key_file !== undefined) listener.tlsKeyFile = this.string(body, "tls_key_file", where);
    if (body.tls_client_ca_file !== undefined) listener.tlsClientCaFile = this.string(body, "tls_client_ca_file", where);
    for (const [key, field] of LISTENER_DURATIONS) if (body[key] !== undefined) listener[field] = this.durationMs(body, key, where);
    if (body.max_request_size !== undefined) listener.maxRequestSize = this.byteSize(body, "max_request_size", where);
    if (body.cluster_address !== undefined) listener.clusterAddress = this.address(body, where, "cluster_address");
    if (!tlsDisable) {
      const missing = [listener.tlsCertFile ? "" : "tls_cert_file", listener.tlsKeyFile ? "" : "tls_key_file"].filter(Boolean);
      if (missing.length) {
        this.fail(body, undefined, `${where} on ${address}: TLS is enabled, so ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} required (set tls_disable = true to serve plain HTTP)`);
      }
    }
    return listener;
  }

  private seal(block: HclBlock): NonNullable<ServerConfig["seal"]> {
    this.blockType(block, "seal", "static");
    const where = 'seal "static"';
    const body = block.body;
    this.checkKeys(body, SEAL_KEYS, where);
    if (body.key_file === undefined) this.fail(body, undefined, `${where}: key_file is required (the file holding the unseal key)`);
    return { type: "static", keyFile: this.string(body, "key_file", where) };
  }

  // ---- values ----

  private duration(body: HclObject, key: string): number {
    const v: HclValue = body[key];
    let seconds: number;
    try {
      if (typeof v !== "string" && typeof v !== "number") throw new UserError(`${key}: expected a duration such as "768h" or a number of seconds, got ${describeValue(v)}`);
      seconds = parseDuration(v, key);
    } catch (err) {
      return this.fail(body, key, (err as Error).message);
    }
    if (seconds <= 0) this.fail(body, key, `${key} must be greater than zero`);
    return seconds;
  }

  /** A duration that may be 0 and below a second ("500ms"), in whole milliseconds. */
  private durationMs(body: HclObject, key: string, where: string): number {
    const v: HclValue = body[key];
    try {
      if (typeof v !== "string" && typeof v !== "number") throw new UserError(`${where}: ${key}: expected a duration such as "30s" or a number of seconds, got ${describeValue(v)}`);
      return Math.round(parseDuration(v, `${where}: ${key}`, { fractional: true }) * 1000);
    } catch (err) {
      return this.fail(body, key, (err as Error).message);
    }
  }

  /** A size in bytes; 0 means the default. Vault reads a negative size as "no limit", which leasehold refuses. */
  private byteSize(body: HclObject, key: string, where: string): number {
    const v = body[key];
    const n = typeof v === "number" ? v : typeof v === "string" && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) this.fail(body, key, `${where}: ${key} must be a whole number of bytes, got ${describeValue(v)}`);
    if (n < 0) this.fail(body, key, `${where}: ${key} must not be negative: leasehold always limits request bodies (0 = the default, 32 MiB)`);
    return n;
  }

  private positiveInt(body: HclObject, key: string): number {
    const v = body[key];
    const n = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) this.fail(body, key, `${key} must be a positive whole number, got ${describeValue(v)}`);
    return n;
  }

  private address(body: HclObject, where: string, key = "address"): string {
    const address = this.string(body, key, where).trim();
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/.exec(address);
    if (!m || Number(m[2]) > 65535) {
      this.fail(body, key, `${where}: ${key} must be host:port, such as "127.0.0.1:8200", "0.0.0.0:8200" or "[::1]:8200", got ${JSON.stringify(address)}`);
    }
    return address;
  }
}
