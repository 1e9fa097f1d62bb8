/**
 * The agent config file: Vault Agent's HCL shape (or its JSON form), e.g.
 *
 *   vault { address = "https://leasehold.example:8200"  ca_cert = "/etc/leasehold/ca.pem" }
 *   auto_auth {
 *     method "approle" {
 *       config = { role_id_file_path = "/etc/agent/role-id"  secret_id_file_path = "/etc/agent/secret-id" }
 *     }
 *     sink "file" { config = { path = "/run/agent/token"  mode = "0640" } }
 *   }
 *   template {
 *     source      = "/etc/agent/db.ctmpl"
 *     destination = "/run/secrets/db.env"
 *     perms       = "0600"
 *     exec { command = ["systemctl", "reload", "app"] }
 *   }
 *
 * Every key is checked: an unknown or misspelt key, or a bad value, is a `UserError` naming the
 * file, line and key (`agent.hcl:7: unknown key "destinaton" in template (did you mean
 * "destination"?)`). Templates are parsed while loading, so a template error fails at startup
 * with the template's own position (`web.ctmpl:3:17: ...`, or the config file's line for inline
 * `contents`).
 *
 * Accepted forms, as Vault accepts them: `method "approle" { ... }` or `method { type = "approle" ... }`
 * (likewise `sink`); `config = { ... }` or `config { ... }`; a `leasehold { ... }` block in place
 * of `vault { ... }` (not both); on a template, the older `command` / `command_timeout` in place
 * of `exec { command, timeout }`.
 *
 * Values:
 * - `vault.addresses` (leasehold's extension; Vault Agent has only `address`): a list of URLs of
 *   the cluster's nodes, tried after `address` when a node cannot be reached or is sealed.
 * - `perms` and sink `mode`: a string such as "0640" or "640", or a number, whose digits are read
 *   as octal as written (HCL `0640` and `640` both mean rw-r-----); at most 0777.
 * - `exec.command`: a list is run as is (argv); a string is a shell command line (`/bin/sh -c`).
 * - durations: Go durations ("30s", "5m") or seconds.
 *
 * Defaults: sink mode 0640; template `create_dest_dirs` true; template exec timeout 30s;
 * `static_secret_render_interval` 5m; `lease_renewal_threshold` 0.9; method `mount_path`
 * `auth/<type>`, `min_backoff` 1s, `max_backoff` 5m; `vault.retry.num_retries` 12 (0 means 12,
 * -1 none); approle `remove_secret_id_file_after_reading` and jwt `remove_jwt_after_reading`
 * true (as in Vault); kubernetes `token_path` the in-pod service account token.
 * Template `perms` is left unset when not given (the runtime keeps the existing file's mode, or
 * uses 0644, as Vault does).
 */
import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { describeValue, hclBlocks, parseHclJson, parseHclWithPositions, positionOf, type HclDocument, type HclObject, type HclValue } from "../hcl/parser.js";
import { HclConfigReader, type ConfigLogLevel } from "../hcl/reader.js";
import { parseDuration } from "../sdk/durations.js";
import { UserError } from "../sdk/errors.js";
import { closest } from "../hcl/suggest.js";
import { parseTemplate, textLocator, type Locate, type Template } from "./template/index.js";

export type AgentLogLevel = ConfigLogLevel;

/** How to reach the broker (`vault { ... }` or `leasehold { ... }`); the CLI and environment fill the gaps. */
export interface AgentServerConfig {
  /** Which block it came from; undefined when the file has neither. */
  block?: "vault" | "leasehold";
  address?: string;
  /** `addresses = [...]`, leasehold's extension (Vault Agent has only `address`): more nodes, tried after `address`. */
  addresses?: string[];
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  tlsSkipVerify: boolean;
  /** How many times a failed request is retried (`retry { num_retries }`: 0 means 12, -1 none). */
  numRetries: number;
}

interface MethodCommon {
  /** Without leading or trailing slashes; `auth/<type>` by default. */
  mountPath: string;
  namespace?: string;
  /** Seconds: first delay after a failed login (doubles, with jitter, up to `maxBackoffSeconds`). */
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  /** `exit_on_err`: exit instead of retrying when login fails. */
  exitOnError: boolean;
}

export interface AppRoleMethodConfig extends MethodCommon {
  type: "approle";
  config: { roleIdFilePath: string; secretIdFilePath?: string; removeSecretIdFileAfterReading: boolean };
}

export interface KubernetesMethodConfig extends MethodCommon {
  type: "kubernetes";
  config: { role: string; tokenPath: string };
}

export interface JwtMethodConfig extends MethodCommon {
  type: "jwt";
  config: { role: string; path: string; removeJwtAfterReading: boolean };
}

export interface CertMethodConfig extends MethodCommon {
  type: "cert";
  /** Without client_cert/client_key the certificate of the vault block is used (checked at load). */
  config: { name?: string; caCert?: string; clientCert?: string; clientKey?: string };
}

export type AutoAuthMethodConfig = AppRoleMethodConfig | KubernetesMethodConfig | JwtMethodConfig | CertMethodConfig;

export interface FileSinkConfig {
  type: "file";
  path: string;
  /** File mode, 0640 unless set. */
  mode: number;
}

export interface AutoAuthConfig {
  method: AutoAuthMethodConfig;
  sinks: FileSinkConfig[];
}

/** A command to run: a list runs as is; a string is a shell command line. */
export type ExecCommand = { type: "argv"; argv: string[] } | { type: "shell"; script: string };

export interface FileTemplateConfig {
  /** The template file (exactly one of `source` and `contents`). */
  source?: string;
  contents?: string;
  /** Parsed at load. */
  template: Template;
  destination: string;
  /** File mode; unset means keep the existing file's mode, or 0644. */
  perms?: number;
  createDestDirs: boolean;
  errorOnMissingKey: boolean;
  /** Keep the previous file as `<destination>.bak` before replacing it. */
  backup: boolean;
  /** Run after the rendered content changed. */
  exec?: { command: ExecCommand; timeoutSeconds: number };
}

export interface EnvTemplateConfig {
  /** The environment variable. */
  name: string;
  source?: string;
  contents?: string;
  template: Template;
  errorOnMissingKey: boolean;
}

/** Process supervisor mode: run a child with the `env_template` variables. */
export interface AgentExecConfig {
  command: ExecCommand;
  restartOnSecretChanges: "always" | "never";
  /** A Node signal name, `SIGTERM` unless set. */
  restartStopSignal: NodeJS.Signals;
}

export interface TemplateGlobalConfig {
  exitOnRetryFailure: boolean;
  /** Seconds between re-reads of secrets without a lease (KV); 300 unless set. */
  staticSecretRenderIntervalSeconds: number;
  /** Fraction of a non-renewable lease after which the secret is fetched again; 0.9 unless set. */
  leaseRenewalThreshold: number;
  maxConnectionsPerHost?: number;
}

export interface AgentConfig {
  server: AgentServerConfig;
  autoAuth: AutoAuthConfig;
  templates: FileTemplateConfig[];
  envTemplates: EnvTemplateConfig[];
  exec?: AgentExecConfig;
  templateConfig: TemplateGlobalConfig;
  exitAfterAuth: boolean;
  pidFile?: string;
  revokeOnShutdown: boolean;
  logLevel?: AgentLogLevel;
}

export interface LoadAgentConfigOptions {
  /** Reads template `source` files; `fs.readFileSync(path, "utf8")` (relative to the working directory) by default. */
  readFile?: (path: string) => string;
}

export const DEFAULT_KUBERNETES_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";
export const DEFAULT_SINK_MODE = 0o640;
export const DEFAULT_STATIC_SECRET_RENDER_INTERVAL_SECONDS = 300;
export const DEFAULT_NUM_RETRIES = 12;

const TOP_LEVEL_KEYS = ["vault", "leasehold", "auto_auth", "template", "template_config", "env_template", "exec", "exit_after_auth", "pid_file", "revoke_on_shutdown", "log_level"];
const NOT_SUPPORTED: Record<string, string> = {
  cache: "leasehold agent has no caching proxy: remove the cache block",
  listener: "leasehold agent has no API proxy, so no listener: remove the listener block",
  api_proxy: "leasehold agent has no API proxy: remove the api_proxy block",
  telemetry: "leasehold agent has no telemetry block",
};
const SERVER_KEYS = ["address", "addresses", "ca_cert", "client_cert", "client_key", "tls_skip_verify", "retry"];
const RETRY_KEYS = ["num_retries"];
const AUTO_AUTH_KEYS = ["method", "sink"];
const METHOD_KEYS = ["type", "mount_path", "namespace", "config", "min_backoff", "max_backoff", "exit_on_err"];
const METHOD_CONFIG_KEYS: Record<AutoAuthMethodConfig["type"], string[]> = {
  approle: ["role_id_file_path", "secret_id_file_path", "remove_secret_id_file_after_reading"],
  kubernetes: ["role", "token_path"],
  jwt: ["role", "path", "remove_jwt_after_reading"],
  cert: ["name", "ca_cert", "client_cert", "client_key"],
};
const METHOD_TYPES = Object.keys(METHOD_CONFIG_KEYS) as AutoAuthMethodConfig["type"][];
const SINK_KEYS = ["type", "config"];
const SINK_CONFIG_KEYS = ["path", "mode"];
const TEMPLATE_KEYS = ["source", "contents", "destination", "perms", "create_dest_dirs", "error_on_missing_key", "backup", "exec", "command", "command_timeout", "left_delimiter", "right_delimiter"];
const TEMPLATE_EXEC_KEYS = ["command", "timeout"];
const ENV_TEMPLATE_KEYS = ["source", "contents", "error_on_missing_key", "left_delimiter", "right_delimiter"];
const EXEC_KEYS = ["command", "restart_on_secret_changes", "restart_stop_signal"];
const TEMPLATE_CONFIG_KEYS = ["exit_on_retry_failure", "static_secret_render_interval", "lease_renewal_threshold", "max_connections_per_host"];

/**
 * Parses and validates an agent config. JSON when `fileName` ends in `.json` or the text starts
 * with `{`, HCL otherwise. Errors are `UserError`s (`TemplateError`s for templates).
 */
export function loadAgentConfig(text: string, fileName: string, options: LoadAgentConfigOptions = {}): AgentConfig {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, "utf8"));
  const isJson = fileName.toLowerCase().endsWith(".json") || text.trimStart().startsWith("{");
  if (isJson) return new AgentConfigReader(fileName, text, undefined, readFile).read(parseHclJson(text, fileName));
  const doc = parseHclWithPositions(text, fileName);
  return new AgentConfigReader(fileName, text, doc, readFile).read(doc.value);
}

/** A block read back from the document: its type label (if it has one) and body. */
interface Block {
  label?: string;
  body: HclObject;
}

class AgentConfigReader extends HclConfigReader {
  private readonly configLocate: Locate;

  constructor(
    fileName: string,
    private readonly text: string,
    doc: HclDocument | undefined,
    private readonly readFile: (path: string) => string,
  ) {
    super(fileName, doc);
    this.configLocate = textLocator(text);
  }

  read(root: HclObject): AgentConfig {
    this.checkTopLevelKeys(root);

    const server = this.server(root);
    const autoAuthBlocks = this.blocks(root, "auto_auth");
    if (autoAuthBlocks.length === 0) this.fail(undefined, undefined, 'no auto_auth block: add auto_auth { method "approle" { config = { ... } } } so the agent can log in');
    if (autoAuthBlocks.length > 1) this.fail(autoAuthBlocks[1].body, undefined, `only one auto_auth block is allowed (found ${autoAuthBlocks.length})`);
    const autoAuth = this.autoAuth(autoAuthBlocks[0].body, server);

    const templates = this.blocks(root, "template").map((b, i) => this.fileTemplate(b.body, i));
    const seen = new Map<string, HclObject>();
    this.blocks(root, "template").forEach((b, i) => {
      const dest = templates[i].destination;
      const first = seen.get(dest);
      if (first) {
        const line = positionOf(this.doc, first)?.line;
        this.fail(b.body, "destination", `two templates render to ${JSON.stringify(dest)}${line ? ` (the first on line ${line})` : ""}`);
      }
      seen.set(dest, b.body);
    });

    const envTemplates = this.envTemplates(root);

    const execBlocks = this.blocks(root, "exec");
    if (execBlocks.length > 1) this.fail(execBlocks[1].body, undefined, `only one exec block is allowed (found ${execBlocks.length})`);
    const exec = execBlocks.length ? this.exec(execBlocks[0].body) : undefined;

    const tcBlocks = this.blocks(root, "template_config");
    if (tcBlocks.length > 1) this.fail(tcBlocks[1].body, undefined, `only one template_config block is allowed (found ${tcBlocks.length})`);
    const templateConfig = this.templateConfig(tcBlocks[0]?.body);

    const exitAfterAuth = root.exit_after_auth === undefined ? false : this.bool(root, "exit_after_auth", "");
    if (envTemplates.length && !exec) {
      this.fail(root, "env_template", "env_template needs an exec block: the variables are given to the process the agent runs (add exec { command = [...] })");
    }
    if (exitAfterAuth && exec) this.fail(root, "exec", "exit_after_auth = true stops the agent after logging in, so it cannot run exec");

    const config: AgentConfig = {
      server,
      autoAuth,
      templates,
      envTemplates,
      templateConfig,
      exitAfterAuth,
      revokeOnShutdown: root.revoke_on_shutdown === undefined ? false : this.bool(root, "revoke_on_shutdown", ""),
    };
    if (exec) config.exec = exec;
    if (root.pid_file !== undefined) config.pidFile = this.string(root, "pid_file", "");
    if (root.log_level !== undefined) config.logLevel = this.logLevel(root);
    return config;
  }

  // ---- blocks ----

  /** Blocks without labels (`vault { ... }`), in any of the shapes HCL and JSON give them. */
  private blocks(parent: HclObject, key: string): Block[] {
    try {
      return hclBlocks(parent[key], 0, key).map((b) => ({ body: b.body }));
    } catch (err) {
      return this.fail(parent, key, (err as Error).message);
    }
  }

  /**
   * Blocks typed by a label or a `type` attribute: `method "approle" { ... }`, `method { type =
   * "approle" ... }`, and the JSON forms of both.
   */
  private typedBlocks(parent: HclObject, key: string): Block[] {
    const out: Block[] = [];
    const shape = `${key} "<type>" { ... }`;
    const bodies = (label: string, v: HclValue): void => {
      const list = Array.isArray(v) ? v : [v];
      for (const body of list) {
        if (typeof body !== "object" || body === null || Array.isArray(body)) this.fail(parent, key, `${key} ${JSON.stringify(label)}: expected a block such as ${shape}, got ${describeValue(body)}`);
        out.push({ label, body });
      }
    };
    const walk = (v: HclValue): void => {
      if (typeof v !== "object" || v === null) this.fail(parent, key, `expected a block such as ${shape}, got ${describeValue(v)}`);
      if (Array.isArray(v)) {
        for (const el of v) walk(el);
        return;
      }
      if (Object.hasOwn(v, "type")) {
        if (typeof v.type !== "string") this.fail(v, "type", `${key} type must be a string, got ${describeValue(v.type)}`);
        out.push({ label: v.type, body: v });
        return;
      }
      // Labels map to block bodies; a body with plain attributes and no type is an untyped block.
      if (Object.values(v).some((inner) => typeof inner !== "object")) {
        this.fail(v, undefined, `${key} needs a type: write ${key} "<type>" { ... } or ${key} { type = "<type>" ... }`);
      }
      for (const [label, inner] of Object.entries(v)) bodies(label, inner);
    };
    if (parent[key] !== undefined) walk(parent[key]);
    for (const b of out) {
      if (Object.hasOwn(b.body, "type") && b.body.type !== b.label) {
        this.fail(b.body, "type", `${key} ${JSON.stringify(b.label)}: type = ${JSON.stringify(b.body.type)} contradicts the label`);
      }
    }
    return out;
  }

  /** `config = { ... }` or `config { ... }`: one object. */
  private configObject(body: HclObject, where: string, required: boolean): HclObject {
    if (body.config === undefined) {
      if (required) this.fail(body, undefined, `${where}: config is required`);
      return {};
    }
    let list: { body: HclObject }[];
    try {
      list = hclBlocks(body.config, 0, "config");
    } catch {
      return this.fail(body, "config", `${where}: config must be an object such as config = { ... }, got ${describeValue(body.config)}`);
    }
    if (list.length !== 1) this.fail(body, "config", `${where}: config must be one object (found ${list.length})`);
    return list[0].body;
  }

  private server(root: HclObject): AgentServerConfig {
    const vault = this.blocks(root, "vault");
    const leasehold = this.blocks(root, "leasehold");
    if (vault.length && leasehold.length) {
      this.fail(root, "leasehold", "use either a vault block or a leasehold block, not both (they configure the same connection)");
    }
    const blocks = vault.length ? vault : leasehold;
    const name = vault.length ? "vault" : "leasehold";
    if (blocks.length > 1) this.fail(blocks[1].body, undefined, `only one ${name} block is allowed (found ${blocks.length})`);
    const server: AgentServerConfig = { tlsSkipVerify: false, numRetries: DEFAULT_NUM_RETRIES };
    if (!blocks.length) return server;
    server.block = name;
    const body = blocks[0].body;
    this.checkKeys(body, SERVER_KEYS, name);
    if (body.address !== undefined) server.address = this.url(body, "address", name);
    if (body.addresses !== undefined) server.addresses = this.urlList(body, "addresses", name);
    const all = [...(server.address ? [server.address] : []), ...(server.addresses ?? [])];
    if (new Set(all.map((a) => new URL(a).protocol)).size > 1) {
      this.fail(body, server.addresses ? "addresses" : "address", `${name}: address and addresses mix http and https: use https for every server, so a failover never sends the token over plain http`);
    }
    if (body.ca_cert !== undefined) server.caCert = this.string(body, "ca_cert", name);
    if (body.client_cert !== undefined) server.clientCert = this.string(body, "client_cert", name);
    if (body.client_key !== undefined) server.clientKey = this.string(body, "client_key", name);
    if ((server.clientCert === undefined) !== (server.clientKey === undefined)) {
      const missing = server.clientCert === undefined ? "client_cert" : "client_key";
      this.fail(body, server.clientCert === undefined ? "client_key" : "client_cert", `${name}: ${missing} is required with ${missing === "client_cert" ? "client_key" : "client_cert"}`);
    }
    if (body.tls_skip_verify !== undefined) server.tlsSkipVerify = this.bool(body, "tls_skip_verify", name);
    const retry = this.blocks(body, "retry");
    if (retry.length > 1) this.fail(retry[1].body, undefined, `${name}: only one retry block is allowed`);
    if (retry.length) {
      const r = retry[0].body;
      this.checkKeys(r, RETRY_KEYS, `${name} retry`);
      if (r.num_retries !== undefined) {
        const n = this.integer(r, "num_retries", `${name} retry`);
        if (n < -1) this.fail(r, "num_retries", `${name} retry: num_retries must be -1 (no retries), 0 (the default, 12) or more, got ${n}`);
        server.numRetries = n === 0 ? DEFAULT_NUM_RETRIES : n === -1 ? 0 : n;
      }
    }
    return server;
  }

  /** A non-empty list of http(s) URLs (`addresses = ["https://a:8200", "https://b:8200"]`). */
  private urlList(body: HclObject, key: string, where: string): string[] {
    const v = body[key];
    if (!Array.isArray(v) || v.length === 0) {
      const got = Array.isArray(v) ? "an empty list" : describeValue(v);
      this.fail(body, key, `${where}: ${key} must be a list of URLs such as ["https://a.example:8200", "https://b.example:8200"], got ${got}`);
    }
    return v.map((entry, i) => {
      if (typeof entry !== "string") this.fail(body, key, `${where}: ${key}[${i}] must be a string, got ${describeValue(entry)}`);
      let url: URL | undefined;
      try {
        url = new URL(entry.trim());
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || !url.host) {
        this.fail(body, key, `${where}: ${key}[${i}] must be a URL such as "https://leasehold.example:8200", got ${JSON.stringify(entry)}`);
      }
      return entry.trim();
    });
  }

  private autoAuth(body: HclObject, server: AgentServerConfig): AutoAuthConfig {
    this.checkKeys(body, AUTO_AUTH_KEYS, "auto_auth");
    const methods = this.typedBlocks(body, "method");
    if (methods.length === 0) this.fail(body, undefined, 'auto_auth: a method block is required, such as method "approle" { config = { role_id_file_path = "..." } }');
    if (methods.length > 1) this.fail(methods[1].body, undefined, `auto_auth: only one method block is allowed (found ${methods.length})`);
    const method = this.method(methods[0], server);
    const sinks = this.typedBlocks(body, "sink").map((b) => this.sink(b));
    const paths = new Map<string, FileSinkConfig>();
    sinks.forEach((s) => {
      if (paths.has(s.path)) this.fail(body, "sink", `auto_auth: two sinks write to ${JSON.stringify(s.path)}`);
      paths.set(s.path, s);
    });
    return { method, sinks };
  }

  private method(block: Block, server: AgentServerConfig): AutoAuthMethodConfig {
    const body = block.body;
    const type = block.label ?? "";
    if (!(METHOD_TYPES as string[]).includes(type)) {
      const suggestion = closest(type, METHOD_TYPES);
      this.fail(body, Object.hasOwn(body, "type") ? "type" : undefined, `auto_auth method ${JSON.stringify(type)} is not supported (supported: ${METHOD_TYPES.join(", ")})${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ""}`);
    }
    const t = type as AutoAuthMethodConfig["type"];
    const where = `method "${t}"`;
    this.checkKeys(body, METHOD_KEYS, where);
    const mountPath = body.mount_path === undefined ? `auth/${t}` : this.string(body, "mount_path", where).replace(/^\/+|\/+$/g, "");
    if (mountPath === "") this.fail(body, "mount_path", `${where}: mount_path must not be empty`);
    const common: MethodCommon = {
      mountPath,
      minBackoffSeconds: body.min_backoff === undefined ? 1 : this.duration(body, "min_backoff", where),
      maxBackoffSeconds: body.max_backoff === undefined ? 300 : this.duration(body, "max_backoff", where),
      exitOnError: body.exit_on_err === undefined ? false : this.bool(body, "exit_on_err", where),
    };
    if (common.maxBackoffSeconds < common.minBackoffSeconds) {
      this.fail(body, body.max_backoff !== undefined ? "max_backoff" : "min_backoff", `${where}: max_backoff (${common.maxBackoffSeconds}s) must be at least min_backoff (${common.minBackoffSeconds}s)`);
    }
    if (body.namespace !== undefined) common.namespace = this.string(body, "namespace", where);
    const cfg = this.configObject(body, where, t !== "cert");
    const cfgWhere = `${where} config`;
    this.checkKeys(cfg, METHOD_CONFIG_KEYS[t], cfgWhere);
    const required = (key: string, hint: string): string => {
      if (cfg[key] === undefined) this.fail(cfg, undefined, `${cfgWhere}: ${key} is required (${hint})`);
      return this.string(cfg, key, cfgWhere);
    };
    switch (t) {
      case "approle": {
        const config: AppRoleMethodConfig["config"] = {
          roleIdFilePath: required("role_id_file_path", "the file holding the role ID"),
          removeSecretIdFileAfterReading: cfg.remove_secret_id_file_after_reading === undefined ? true : this.bool(cfg, "remove_secret_id_file_after_reading", cfgWhere),
        };
        if (cfg.secret_id_file_path !== undefined) config.secretIdFilePath = this.string(cfg, "secret_id_file_path", cfgWhere);
        return { type: t, ...common, config };
      }
      case "kubernetes":
        return {
          type: t,
          ...common,
          config: {
            role: required("role", "the role to log in with"),
            tokenPath: cfg.token_path === undefined ? DEFAULT_KUBERNETES_TOKEN_PATH : this.string(cfg, "token_path", cfgWhere),
          },
        };
      case "jwt":
        return {
          type: t,
          ...common,
          config: {
            role: required("role", "the role to log in with"),
            path: required("path", "the file holding the JWT"),
            removeJwtAfterReading: cfg.remove_jwt_after_reading === undefined ? true : this.bool(cfg, "remove_jwt_after_reading", cfgWhere),
          },
        };
      case "cert": {
        const config: CertMethodConfig["config"] = {};
        if (cfg.name !== undefined) config.name = this.string(cfg, "name", cfgWhere);
        if (cfg.ca_cert !== undefined) config.caCert = this.string(cfg, "ca_cert", cfgWhere);
        if (cfg.client_cert !== undefined) config.clientCert = this.string(cfg, "client_cert", cfgWhere);
        if (cfg.client_key !== undefined) config.clientKey = this.string(cfg, "client_key", cfgWhere);
        if ((config.clientCert === undefined) !== (config.clientKey === undefined)) {
          const missing = config.clientCert === undefined ? "client_cert" : "client_key";
          this.fail(cfg, missing === "client_cert" ? "client_key" : "client_cert", `${cfgWhere}: ${missing} is required with ${missing === "client_cert" ? "client_key" : "client_cert"}`);
        }
        if (config.clientCert === undefined && server.clientCert === undefined) {
          this.fail(body, undefined, `${where}: a client certificate is required: set client_cert and client_key in its config or in the ${server.block ?? "vault"} block`);
        }
        return { type: t, ...common, config };
      }
    }
  }

  private sink(block: Block): FileSinkConfig {
    const body = block.body;
    if (block.label !== "file") {
      this.fail(body, Object.hasOwn(body, "type") ? "type" : undefined, `sink type ${JSON.stringify(block.label)} is not supported (supported: file)`);
    }
    const where = 'sink "file"';
    this.checkKeys(body, SINK_KEYS, where);
    const cfg = this.configObject(body, where, true);
    const cfgWhere = `${where} config`;
    this.checkKeys(cfg, SINK_CONFIG_KEYS, cfgWhere);
    if (cfg.path === undefined) this.fail(cfg, undefined, `${cfgWhere}: path is required (the file the token is written to)`);
    return { type: "file", path: this.string(cfg, "path", cfgWhere), mode: cfg.mode === undefined ? DEFAULT_SINK_MODE : this.mode(cfg, "mode", cfgWhere) };
  }

  private fileTemplate(body: HclObject, index: number): FileTemplateConfig {
    const where = "template";
    this.checkKeys(body, TEMPLATE_KEYS, where);
    if (body.destination === undefined) this.fail(body, undefined, "template: destination is required (the file to render)");
    const destination = this.string(body, "destination", where);
    const { source, contents, template } = this.templateText(body, where, `${this.fileName} template[${index}].contents`);
    const t: FileTemplateConfig = {
      template,
      destination,
      createDestDirs: body.create_dest_dirs === undefined ? true : this.bool(body, "create_dest_dirs", where),
      errorOnMissingKey: body.error_on_missing_key === undefined ? false : this.bool(body, "error_on_missing_key", where),
      backup: body.backup === undefined ? false : this.bool(body, "backup", where),
    };
    if (source !== undefined) t.source = source;
    if (contents !== undefined) t.contents = contents;
    if (body.perms !== undefined) t.perms = this.mode(body, "perms", where);

    const execBlocks = this.blocks(body, "exec");
    if (execBlocks.length > 1) this.fail(execBlocks[1].body, undefined, "template: only one exec block is allowed");
    if (execBlocks.length && body.command !== undefined) this.fail(body, "command", "template: use exec { command = [...] } or the older command, not both");
    if (body.command_timeout !== undefined && body.command === undefined) this.fail(body, "command_timeout", "template: command_timeout needs command (or use exec { command, timeout })");
    if (execBlocks.length) {
      const e = execBlocks[0].body;
      const ew = "template exec";
      this.checkKeys(e, TEMPLATE_EXEC_KEYS, ew);
      if (e.command === undefined) this.fail(e, undefined, `${ew}: command is required`);
      t.exec = { command: this.command(e, "command", ew), timeoutSeconds: e.timeout === undefined ? 30 : this.duration(e, "timeout", ew) };
    } else if (body.command !== undefined) {
      t.exec = { command: this.command(body, "command", where), timeoutSeconds: body.command_timeout === undefined ? 30 : this.duration(body, "command_timeout", where) };
    }
    return t;
  }

  private envTemplates(root: HclObject): EnvTemplateConfig[] {
    let blocks: { labels: string[]; body: HclObject }[];
    try {
      blocks = hclBlocks(root.env_template, 1, "env_template");
    } catch (err) {
      return this.fail(root, "env_template", (err as Error).message);
    }
    const seen = new Set<string>();
    return blocks.map(({ labels: [name], body }) => {
      const where = `env_template ${JSON.stringify(name)}`;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) this.fail(body, undefined, `${where}: not a valid environment variable name (letters, digits and _, not starting with a digit)`);
      if (seen.has(name)) this.fail(body, undefined, `${where} is defined twice`);
      seen.add(name);
      this.checkKeys(body, ENV_TEMPLATE_KEYS, where);
      const { source, contents, template } = this.templateText(body, where, `${this.fileName} ${where}.contents`);
      const e: EnvTemplateConfig = { name, template, errorOnMissingKey: body.error_on_missing_key === undefined ? false : this.bool(body, "error_on_missing_key", where) };
      if (source !== undefined) e.source = source;
      if (contents !== undefined) e.contents = contents;
      return e;
    });
  }

  /** `source` or `contents` (exactly one), parsed. */
  private templateText(body: HclObject, where: string, inlineName: string): { source?: string; contents?: string; template: Template } {
    if (body.source !== undefined && body.contents !== undefined) this.fail(body, "contents", `${where}: set source or contents, not both`);
    if (body.source === undefined && body.contents === undefined) this.fail(body, undefined, `${where}: source (a template file) or contents (the template itself) is required`);
    const delims = {
      leftDelimiter: body.left_delimiter === undefined ? undefined : this.string(body, "left_delimiter", where),
      rightDelimiter: body.right_delimiter === undefined ? undefined : this.string(body, "right_delimiter", where),
    };
    if (body.source !== undefined) {
      const source = this.string(body, "source", where);
      let text: string;
      try {
        text = this.readFile(source);
      } catch (err) {
        return this.fail(body, "source", `${where}: cannot read the template ${JSON.stringify(source)}: ${(err as Error).message}`);
      }
      return { source, template: parseTemplate(text, source, delims) };
    }
    if (typeof body.contents !== "string") this.fail(body, "contents", `${where}: contents must be a string, got ${describeValue(body.contents)}`);
    const contents = body.contents;
    const locate = this.inlineLocator(body, "contents", contents);
    const template = locate ? parseTemplate(contents, this.fileName, { ...delims, locate }) : parseTemplate(contents, inlineName, delims);
    return { contents, template };
  }

  /**
   * Maps offsets in an inline template to lines and columns of the config file, so errors in
   * `contents = <<EOT ... EOT` or `contents = "..."` point into the config. Undefined when the
   * value cannot be found in the text (JSON, or a shape this scan does not follow).
   */
  private inlineLocator(body: HclObject, key: string, value: string): Locate | undefined {
    const keyPos = positionOf(this.doc, body, key);
    if (!keyPos) return undefined;
    const s = this.text;
    let i = lineStart(s, keyPos.line) + keyPos.column - 1;
    if (s[i] === '"') i = s.indexOf('"', i + 1) + 1;
    else while (i < s.length && /[A-Za-z0-9_\-.]/.test(s[i])) i++;
    while (i < s.length && /\s/.test(s[i])) i++;
    if (s[i] !== "=") return undefined;
    i++;
    while (i < s.length && /\s/.test(s[i])) i++;
    const offsets = s[i] === '"' ? quotedOffsets(s, i) : s.startsWith("<<", i) ? heredocOffsets(s, i) : undefined;
    if (!offsets || offsets.text !== value) return undefined;
    const map = offsets.map;
    return (offset) => this.configLocate(map[Math.min(Math.max(offset, 0), map.length - 1)]);
  }

  private exec(body: HclObject): AgentExecConfig {
    const where = "exec";
    this.checkKeys(body, EXEC_KEYS, where);
    if (body.command === undefined) this.fail(body, undefined, "exec: command is required (the process to run, such as command = [\"/app/server\"])");
    const exec: AgentExecConfig = { command: this.command(body, "command", where), restartOnSecretChanges: "always", restartStopSignal: "SIGTERM" };
    if (body.restart_on_secret_changes !== undefined) {
      const v = this.string(body, "restart_on_secret_changes", where);
      if (v !== "always" && v !== "never") this.fail(body, "restart_on_secret_changes", `exec: restart_on_secret_changes must be "always" or "never", got ${JSON.stringify(v)}`);
      exec.restartOnSecretChanges = v;
    }
    if (body.restart_stop_signal !== undefined) exec.restartStopSignal = this.signal(body, "restart_stop_signal", where);
    return exec;
  }

  private templateConfig(body: HclObject | undefined): TemplateGlobalConfig {
    const tc: TemplateGlobalConfig = { exitOnRetryFailure: false, staticSecretRenderIntervalSeconds: DEFAULT_STATIC_SECRET_RENDER_INTERVAL_SECONDS, leaseRenewalThreshold: 0.9 };
    if (!body) return tc;
    const where = "template_config";
    this.checkKeys(body, TEMPLATE_CONFIG_KEYS, where);
    if (body.exit_on_retry_failure !== undefined) tc.exitOnRetryFailure = this.bool(body, "exit_on_retry_failure", where);
    if (body.static_secret_render_interval !== undefined) tc.staticSecretRenderIntervalSeconds = this.duration(body, "static_secret_render_interval", where);
    if (body.lease_renewal_threshold !== undefined) {
      const v = body.lease_renewal_threshold;
      if (typeof v !== "number" || !(v > 0 && v <= 1)) this.fail(body, "lease_renewal_threshold", `${where}: lease_renewal_threshold must be a number greater than 0 and at most 1 (a fraction of the lease), got ${describeValue(v)}`);
      tc.leaseRenewalThreshold = v;
    }
    if (body.max_connections_per_host !== undefined) {
      const n = this.integer(body, "max_connections_per_host", where);
      if (n < 1) this.fail(body, "max_connections_per_host", `${where}: max_connections_per_host must be at least 1, got ${n}`);
      tc.maxConnectionsPerHost = n;
    }
    return tc;
  }

  // ---- values ----

  /** Vault Agent blocks that leasehold lacks (`cache`, `listener`, ...) get their own message rather than "unknown key". */
  private checkTopLevelKeys(root: HclObject): void {
    const unknown = Object.keys(root).find((key) => !TOP_LEVEL_KEYS.includes(key));
    if (unknown !== undefined && Object.hasOwn(NOT_SUPPORTED, unknown)) this.fail(root, unknown, `${unknown} is not supported: ${NOT_SUPPORTED[unknown]}`);
    this.checkKeys(root, TOP_LEVEL_KEYS, "");
  }

  private integer(body: HclObject, key: string, where: string): number {
    const v = body[key];
    const n = typeof v === "number" ? v : typeof v === "string" && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) this.fail(body, key, `${this.label(key, where)} must be a whole number, got ${describeValue(v)}`);
    return n;
  }

  /** A positive duration in seconds; sub-second values (`"500ms"`, `"1.5s"`) are kept, down to 1 ms. */
  private duration(body: HclObject, key: string, where: string): number {
    const v = body[key];
    let seconds: number;
    try {
      if (typeof v !== "string" && typeof v !== "number") throw new UserError(`expected a duration such as "30s" or a number of seconds, got ${describeValue(v)}`);
      seconds = parseDuration(v, this.label(key, where), { fractional: true });
    } catch (err) {
      const msg = (err as Error).message;
      return this.fail(body, key, msg.startsWith(this.label(key, where)) ? msg : `${this.label(key, where)}: ${msg}`);
    }
    if (seconds < 0.001) this.fail(body, key, `${this.label(key, where)} must be at least 1ms, got ${describeValue(v)}`);
    return seconds;
  }

  /** A file mode: "0640", "640", 0640 or 640 (digits read as octal), at most 0777. */
  private mode(body: HclObject, key: string, where: string): number {
    const v = body[key];
    const digits = typeof v === "number" && Number.isInteger(v) && v >= 0 ? String(v) : typeof v === "string" ? v.trim().replace(/^0o/i, "") : undefined;
    if (digits === undefined || !/^[0-7]{1,4}$/.test(digits)) {
      this.fail(body, key, `${this.label(key, where)} must be an octal file mode such as "0640", got ${describeValue(v)}`);
    }
    const mode = parseInt(digits, 8);
    if (mode > 0o777) this.fail(body, key, `${this.label(key, where)} must be at most 0777 (no setuid, setgid or sticky bits), got ${describeValue(v)}`);
    return mode;
  }

  private command(body: HclObject, key: string, where: string): ExecCommand {
    const v = body[key];
    if (typeof v === "string") {
      if (v.trim() === "") this.fail(body, key, `${this.label(key, where)} must not be empty`);
      return { type: "shell", script: v };
    }
    if (Array.isArray(v) && v.length > 0 && v.every((a): a is string => typeof a === "string") && v[0].trim() !== "") return { type: "argv", argv: [...v] };
    return this.fail(body, key, `${this.label(key, where)} must be a list of strings such as ["/usr/bin/app", "--flag"] (or one shell command line), got ${describeValue(v)}`);
  }

  private signal(body: HclObject, key: string, where: string): NodeJS.Signals {
    const raw = this.string(body, key, where).trim().toUpperCase();
    const name = raw.startsWith("SIG") ? raw : `SIG${raw}`;
    if (!Object.hasOwn(osConstants.signals, name)) this.fail(body, key, `${this.label(key, where)}: unknown signal ${JSON.stringify(body[key])} (such as "SIGTERM", "SIGINT", "SIGHUP")`);
    return name as NodeJS.Signals;
  }
}

function lineStart(s: string, line: number): number {
  let at = 0;
  for (let l = 1; l < line; l++) at = s.indexOf("\n", at) + 1;
  return at;
}

/** The decoded text of the HCL string starting at `start` (its `"`), and each character's offset in `s`. */
function quotedOffsets(s: string, start: number): { text: string; map: number[] } | undefined {
  const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", f: "\f", v: "\v" };
  let text = "";
  const map: number[] = [];
  let i = start + 1;
  for (;;) {
    const c = s[i];
    if (c === undefined || c === "\n") return undefined;
    if (c === '"') break;
    if (c !== "\\") {
      text += c;
      map.push(i);
      i++;
      continue;
    }
    const e = s[i + 1];
    let decoded: string;
    let len: number;
    if (e !== undefined && e in simple) {
      decoded = simple[e];
      len = 2;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const cp = parseInt(s.slice(i + 2, i + 2 + n), 16);
      if (Number.isNaN(cp)) return undefined;
      decoded = e === "u" ? String.fromCharCode(cp) : String.fromCodePoint(cp);
      len = 2 + n;
    } else {
      return undefined;
    }
    text += decoded;
    for (let k = 0; k < decoded.length; k++) map.push(i);
    i += len;
  }
  map.push(i);
  return { text, map };
}

/** The same for a heredoc starting at `start` (its `<<`), following the HCL parser's rules. */
function heredocOffsets(s: string, start: number): { text: string; map: number[] } | undefined {
  const m = /<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n/y;
  m.lastIndex = start;
  const head = m.exec(s);
  if (!head) return undefined;
  const anchor = head[2];
  const lines: { start: number; raw: string }[] = [];
  let at = start + head[0].length;
  let marker: string | undefined;
  while (at <= s.length) {
    const nl = s.indexOf("\n", at);
    const end = nl === -1 ? s.length : nl;
    const raw = s.slice(at, end).replace(/\r$/, "");
    if (raw.trim() === anchor) {
      marker = raw;
      break;
    }
    lines.push({ start: at, raw });
    if (nl === -1) return undefined;
    at = nl + 1;
  }
  if (marker === undefined) return undefined;
  const indent = head[1] === "-" ? marker.slice(0, marker.length - marker.replace(/^[ \t]+/, "").length) : "";
  const cut = indent && lines.every((l) => l.raw === "" || l.raw.startsWith(indent)) ? indent.length : 0;
  let text = "";
  const map: number[] = [];
  for (const l of lines) {
    const body = l.raw.slice(Math.min(cut, l.raw.length));
    for (let k = 0; k < body.length; k++) map.push(l.start + Math.min(cut, l.raw.length) + k);
    text += body + "\n";
    map.push(l.start + l.raw.length);
  }
  map.push(lines.length ? lines[lines.length - 1].start + lines[lines.length - 1].raw.length : start);
  return { text, map };
}
