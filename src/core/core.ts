import { randomUUID } from "node:crypto";
import { Gauge } from "prom-client";
import type { Logger } from "pino";
import { InternalError, NotFound, PermissionDenied, SealedError, StandbyError, UserError, isLeaseholdError } from "../sdk/errors.js";
import { addressAllowed } from "../sdk/cidr.js";
import type { AuthResult, Backend, ConnectionInfo, HandlerRequest, HandlerResponse, LeaseHelper, Operation, PluginFactory, SecretLease } from "../sdk/types.js";
import type { PhysicalStorage } from "../storage/types.js";
import { Barrier } from "./barrier.js";
import { invokeHandler, requireRoute, resolveWriteOperation, type RouteMatch } from "./dispatch.js";
import { globMatch } from "./glob.js";
import { LoginLimiter } from "./login-limiter.js";
import { Metrics } from "./metrics.js";
import { MountTable, type LiveMount, type MountEntry } from "./mounts.js";
import { PolicyStore } from "./policies.js";
import { LeaseQuotas } from "./quotas.js";
import type { RequestContext } from "./request-context.js";
import { SealManager } from "./seal.js";
import { TokenStore, type TokenEntry } from "./tokens.js";
import { AuditBroker } from "./audit/broker.js";
import { ExpirationManager, type LeaseCreator, type RetryPolicy } from "./leases/manager.js";
import type { AuditIssuedAuth, AuditRequestInput } from "./audit/format.js";
import { systemBackend } from "./sys/index.js";
import { tokenBackend } from "./token-backend.js";

export { VERSION } from "./version.js";

/** What the HTTP layer hands the core: one logical request. */
export interface CoreRequest {
  id?: string;
  /** `write` is POST/PUT: the core decides create vs update. */
  op: "read" | "list" | "write" | "delete" | "patch";
  /** Without `/v1/` and without a leading slash. */
  path: string;
  data: Record<string, unknown>;
  token?: string;
  connection: ConnectionInfo;
}

/** What the core answers: a Vault envelope (or nothing, for 204) or a raw body. */
export interface CoreResponse {
  status: number;
  body?: Record<string, unknown>;
  raw?: { contentType: string; body: Buffer | string };
}

export interface CoreOptions {
  physical: PhysicalStorage;
  plugins: PluginFactory[];
  logger: Logger;
  staticSealKey?: Buffer;
  defaultLeaseTtl: number;
  maxLeaseTtl: number;
  clusterName?: string;
  metrics?: Metrics;
  leaseRetry?: Partial<RetryPolicy>;
  /** Revocations running at once per mount (default 64; tests lower it to observe the limit). */
  leaseRevocationConcurrency?: number;
  /** Logins per second per client address (0 = unlimited) and the burst allowed; default 20/s, burst 40. */
  loginRateLimit?: { rate: number; burst: number };
  /** Safety mode (`--no-revoke`, `disable_revocation`): start without revoking anything by time. */
  disableRevocation?: boolean;
  /** Total leases above which a warning is logged (default 500000). */
  leaseCountWarningThreshold?: number;
  /** `allow_audit_log_prefixing`: file audit devices may use the `prefix` option (default false, as in Vault). */
  allowAuditLogPrefixing?: boolean;
  /** High availability (`ha_enabled`): the node starts as a standby and loads nothing until it holds the lock. */
  ha?: HaController;
}

/** The credentials a request's leases guard, by lease id (kept in memory for the request's life). */
type HeldCredentials = Map<string, { mount: LiveMount; type: string; internal: Record<string, unknown> }>;

/** Who is active, as sys/leader reports it. */
export interface HaLeader {
  isSelf: boolean;
  apiAddr: string;
  clusterAddr: string;
  /** When the active node took the lock. */
  activeTime?: Date;
}

/**
 * The HA coordinator as the core sees it (src/cluster/ha.ts). The core only calls it; the
 * coordinator calls `becomeActive`/`becomeStandby` when it takes or loses the lock.
 */
export interface HaController {
  /** `sys/init`: the node must hold the lock before it writes anything (or throw). */
  beforeInitialize(): Promise<void>;
  /** The barrier was unsealed (nothing loaded while standby): start campaigning for the lock. */
  unsealed(): void;
  /** The node was sealed: stop campaigning and give the lock up. */
  sealed(): Promise<void>;
  /** The current active node, or undefined when none holds the lock. */
  leader(): Promise<HaLeader | undefined>;
  /** `sys/step-down`: give the lock up and let another node take it. */
  stepDown(): Promise<void>;
  /**
   * `sys/ha-status`: the unsealed nodes heard from lately (src/cluster/members.ts), the active
   * first. Times by PostgreSQL's clock; skew and echo measured against PostgreSQL (ms).
   */
  members(): Promise<
    { nodeId: string; hostname: string; apiAddr: string; clusterAddr: string; version: string; activeNode: boolean; lastEcho: Date; startedAt: Date; clockSkewMs: number; echoDurationMs: number }[]
  >;
}

/** A standby answers these itself (every other path: a redirect to the active node or 503). */
export const STANDBY_PATHS = new Set(["sys/health", "sys/seal-status", "sys/leader", "sys/init", "sys/unseal"]);

/** Paths answered while sealed (everything else is 503). */
const SEALED_PATHS = new Set(["sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader"]);

/**
 * The broker core: seal state, the mount table, tokens, policies and audit, and the request
 * pipeline (resolve mount → token → ACL → audit → handler → audit).
 */
export class Core {
  readonly barrier: Barrier;
  readonly seal: SealManager;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  readonly audit: AuditBroker;
  readonly metrics: Metrics;
  readonly mounts: MountTable;
  readonly leases: ExpirationManager;
  /** Lease-count quotas (`sys/quotas/lease-count`) and the total-lease warning. */
  readonly quotas: LeaseQuotas;
  /** Per-client-address login rate limit (429 past it). */
  readonly loginLimiter: LoginLimiter;
  readonly logger: Logger;
  readonly clusterName: string;
  readonly clusterId = randomUUID();
  readonly plugins: Map<string, PluginFactory>;
  readonly systemTtl: { defaultLeaseTtl: number; maxLeaseTtl: number };
  private unsealed = false;
  /** Without HA always true; with HA: this node holds the lock and has loaded its state. */
  private active: boolean;
  /** HA: handing over; new requests are refused while those in flight finish. */
  private draining = false;
  /** `shutdown` was called. */
  private stopped = false;
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly opts: CoreOptions) {
    this.logger = opts.logger;
    this.active = !opts.ha;
    this.barrier = new Barrier(opts.physical);
    this.seal = new SealManager(this.barrier, opts.staticSealKey);
    this.tokens = new TokenStore(this.barrier.view("sys/token/"));
    this.policies = new PolicyStore(this.barrier.view("sys/policy/"));
    this.audit = new AuditBroker(this.barrier.view("sys/audit/"), { logger: opts.logger, allowPrefix: opts.allowAuditLogPrefixing });
    this.metrics = opts.metrics ?? new Metrics();
    this.clusterName = opts.clusterName ?? "leasehold-cluster";
    this.systemTtl = { defaultLeaseTtl: opts.defaultLeaseTtl, maxLeaseTtl: opts.maxLeaseTtl };
    this.plugins = new Map(opts.plugins.map((p) => [p.type, p]));
    this.loginLimiter = new LoginLimiter(opts.loginRateLimit?.rate ?? 20, opts.loginRateLimit?.burst ?? 40);
    this.quotas = new LeaseQuotas({ storage: this.barrier.view("sys/quotas/"), store: opts.physical.leases, logger: this.logger.child({ component: "quotas" }), warningThreshold: opts.leaseCountWarningThreshold });
    this.leases = new ExpirationManager({
      store: opts.physical.leases,
      cipher: { encrypt: (p, b) => this.barrier.encrypt(p, b), decrypt: (p, b) => this.barrier.decrypt(p, b) },
      indexKeys: this.barrier.view("sys/lease-index/"),
      logger: this.logger.child({ component: "expiration" }),
      backendOf: (m) => this.mounts.get(m)?.backend,
      revokeToken: async (internal) => {
        const entry = await this.tokens.getByHmac(String(internal.hmac));
        if (entry) await this.tokens.revokeTree(entry);
      },
      ttlsOf: (m) => {
        const live = this.mounts.get(m);
        return live ? this.mounts.effectiveTtls(live.entry) : this.systemTtl;
      },
      retry: opts.leaseRetry,
      perMountConcurrency: opts.leaseRevocationConcurrency,
      events: this.metrics.leaseEvents(),
      counts: this.quotas,
      revocationEnabled: !opts.disableRevocation,
    });
    this.metrics.watchLeases(this.leases, opts.physical.leases);
    this.quotas.registerMetrics(this.metrics.registry);
    const leases = this.leases;
    new Gauge({ name: "leasehold_lease_revocation_enabled", help: "0 while lease revocation by time is disabled (safety mode, --no-revoke)", registers: [this.metrics.registry], collect() { this.set(leases.expiryEnabled ? 1 : 0); } });
    this.tokens.leaseHooks = {
      created: (e) => this.leases.openTokenLease({ hmac: e.hmac, path: e.path, authMount: e.authMount, creationTime: e.creationTime, expireTime: e.expireTime!, renewable: e.renewable, creator: creatorOf(e) }),
      renewed: async (e) => {
        if (e.leaseId && e.expireTime !== null) await this.leases.extendTokenLease(e.leaseId, e.expireTime);
      },
      revoked: async (e) => {
        this.metrics.tokensRevoked.inc();
        await this.leases.revokeByToken(e.accessor);
        if (e.leaseId) await this.leases.dropTokenLease(e.leaseId);
      },
      sweep: (accessor) => this.leases.revokeByToken(accessor),
    };
    const builtins: { entry: MountEntry; kind: "secrets" | "auth"; backend: Backend }[] = [
      { entry: builtinEntry("sys/", "system", "system endpoints used for control, policy and debugging"), kind: "secrets", backend: systemBackend(this) },
      { entry: builtinEntry("auth/token/", "token", "token based credentials"), kind: "auth", backend: tokenBackend(this) },
    ];
    this.mounts = new MountTable(this.barrier, this.plugins, builtins, this.logger, this.systemTtl);
    this.metrics.sealed.set(1);
  }

  get sealed(): boolean {
    return !this.unsealed;
  }

  get ha(): HaController | undefined {
    return this.opts.ha;
  }

  /** HA: unsealed but not the active node (it serves only STANDBY_PATHS). */
  get standby(): boolean {
    return this.opts.ha !== undefined && this.unsealed && (!this.active || this.draining);
  }

  /**
   * HA: this node now holds the lock. Loads what a standby never holds (mounts, audit devices,
   * quotas) and starts the lease manager, which reconciles the leases left `pending` by the previous
   * active (its writes are fenced, so it can no longer activate them). Sealed: only remembered, the
   * unseal loads. Throws when loading fails (a fenced write): the caller steps down.
   */
  async becomeActive(): Promise<void> {
    if (this.active) return;
    if (!this.unsealed) {
      this.active = true;
      return;
    }
    // Still standby while loading: requests get 503 "standby" rather than a half-loaded mount table.
    try {
      await this.loadState();
      await this.leases.start();
    } catch (err) {
      await this.unloadActive().catch(() => undefined);
      throw err;
    }
    this.active = true;
    this.logger.info("active: holds the HA lock");
  }

  /**
   * HA: this node lost (or gave up) the lock. Stops the lease manager and its cron, closes mounts and
   * audit devices, drops every cache (tokens, policies, quotas), and keeps the barrier's keyring, so
   * it can become active again without an unseal.
   */
  async becomeStandby(): Promise<void> {
    this.draining = false;
    if (!this.active) return;
    this.active = false;
    if (!this.unsealed) return;
    await this.unloadActive();
    this.logger.info("standby: does not hold the HA lock");
  }

  /** Start-up: auto-unseal with a static seal key when the store is initialised. */
  async start(): Promise<void> {
    if (await this.seal.autoUnseal()) {
      await this.postUnseal();
      return;
    }
    // HA with a static seal, started before the cluster was initialised (through another node):
    // unseals itself as soon as the store is initialised, instead of waiting for a restart.
    if (this.opts.ha && this.opts.staticSealKey && !(await this.seal.isInitialized())) this.watchForInitialization();
  }

  /** How often an uninitialised HA node with a static seal looks whether another node initialised the store. */
  private static readonly INIT_WATCH_MS = 1_000;
  private initWatch?: NodeJS.Timeout;
  private initializing = false;

  private watchForInitialization(): void {
    const tick = async () => {
      this.initWatch = undefined;
      if (this.stopped || this.unsealed) return;
      try {
        if (!this.initializing && (await this.seal.autoUnseal()) && !this.unsealed && !this.initializing) {
          this.logger.info("the store was initialised through another node: unsealed with the static seal");
          await this.postUnseal();
          return;
        }
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, "waiting for the store to be initialised: the static seal could not unseal it");
      }
      if (!this.stopped && !this.unsealed) this.initWatch = setTimeout(() => void tick(), Core.INIT_WATCH_MS).unref();
    };
    this.initWatch = setTimeout(() => void tick(), Core.INIT_WATCH_MS).unref();
  }

  /** `sys/init`: creates the root key and the first root token. */
  async initialize(shares: number, threshold: number, rootTokenId?: string): Promise<{ keys: Buffer[]; rootToken: string }> {
    // HA: the writes of init are fenced like any other: this node takes the lock first.
    if (this.opts.ha && !this.active) await this.opts.ha.beforeInitialize();
    this.initializing = true;
    clearTimeout(this.initWatch);
    let keys: Buffer[];
    try {
      keys = await this.seal.initialize(shares, threshold);
    } finally {
      this.initializing = false;
    }
    await this.postUnseal();
    const { token } = await this.createRootToken(rootTokenId);
    // Vault leaves a Shamir-sealed server sealed after init; a static seal stays unsealed.
    if (this.seal.sealType === "shamir") await this.sealNow();
    return { keys, rootToken: token };
  }

  async createRootToken(id?: string): Promise<{ token: string; entry: TokenEntry }> {
    const r = await this.tokens.create({
      id,
      policies: ["root"],
      displayName: "root",
      ttl: 0,
      renewable: false,
      path: "auth/token/root",
      authMount: "auth/token/",
      parent: null,
      mountMaxTtl: 0,
    });
    this.metrics.tokensCreated.inc({ auth_mount: "auth/token/" });
    return r;
  }

  /** `sys/unseal`: adds a share; unseals when the threshold is reached. */
  async submitUnsealKey(key: string): Promise<void> {
    await this.seal.submitShare(key);
    if (!this.barrier.sealed && !this.unsealed) await this.postUnseal();
  }

  private async postUnseal(): Promise<void> {
    if (!this.active) {
      // A standby holds the keyring only: it loads (and writes) nothing until it holds the lock.
      this.unsealed = true;
      this.metrics.sealed.set(0);
      this.logger.info("unsealed (standby)");
      this.opts.ha?.unsealed();
      return;
    }
    await this.loadState();
    this.unsealed = true;
    await this.leases.start();
    this.metrics.sealed.set(0);
    this.logger.info("unsealed");
    this.opts.ha?.unsealed();
  }

  /** What only the active node holds, loaded from storage (the lease manager is started after it). */
  private async loadState(): Promise<void> {
    await this.policies.ensureDefault();
    await this.mounts.load();
    await this.audit.load();
    await this.quotas.load();
    const moved = await this.tokens.migrateAccessorIndex();
    if (moved) this.logger.info({ moved }, "token accessor index moved to HMAC keys");
  }

  private async unloadActive(): Promise<void> {
    await this.leases.stop();
    this.quotas.reset();
    await this.mounts.unload();
    await this.audit.close();
    this.tokens.reset();
    this.policies.reset();
  }

  /** Seals: forgets keys, unloads mounts and closes audit devices. */
  async sealNow(): Promise<void> {
    const wasUnsealed = this.unsealed;
    this.unsealed = false;
    await this.unloadActive();
    if (this.opts.ha) {
      this.active = false;
      if (wasUnsealed) await this.opts.ha.sealed();
    }
    this.seal.resetProgress();
    this.barrier.seal();
    this.metrics.sealed.set(1);
    this.logger.info("sealed");
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.initWatch);
    if (this.unsealed) await this.sealNow();
    await this.opts.physical.close();
  }

  /** Revokes every token an auth mount issued (when it is disabled). */
  async revokeTokensOfAuthMount(mountPath: string): Promise<number> {
    let n = 0;
    for (const ref of await this.tokens.accessorIndex()) {
      const e = ref.hmac ? await this.tokens.getByHmac(ref.hmac) : undefined;
      if (e && e.authMount === mountPath) n += await this.tokens.revokeTree(e);
    }
    return n;
  }

  /** Capabilities a token has on a path (`sys/capabilities*`). */
  async capabilitiesOf(entry: TokenEntry | undefined, path: string): Promise<string[]> {
    if (!entry) return ["deny"];
    if (entry.policies.includes("root")) return ["root"];
    return (await this.policies.aclFor(entry.policies)).capabilities(path);
  }

  /** Validates a request path: no empty, `.` or `..` segments (a trailing `/` is allowed for lists). */
  static normalisePath(path: string): string {
    const p = path.replace(/^\/+/, "");
    const segs = p.split("/");
    if (segs[segs.length - 1] === "") segs.pop();
    if (p === "" || segs.some((s) => s === "" || s === "." || s === "..")) throw new UserError(`invalid request path ${JSON.stringify(path)}: empty, '.' and '..' segments are not allowed`);
    // A NUL can name nothing: PostgreSQL text cannot hold it, and C-string consumers would cut there.
    if (p.includes("\u0000")) throw new UserError(`invalid request path ${JSON.stringify(path)}: NUL characters are not allowed`);
    return p;
  }

  /**
   * The first stage of every request: the path checked, the seal, the mount (longest prefix), the
   * engine's route, and whether the route is one of the engine's unauthenticated paths.
   */
  private route(rawPath: string): { path: string; mount: LiveMount; rel: string; match: RouteMatch; unauthenticated: boolean } {
    const path = Core.normalisePath(rawPath);
    if (this.sealed && !SEALED_PATHS.has(path.replace(/\/$/, ""))) throw new SealedError();
    // The HTTP layer redirects a standby's requests; this keeps anything else from reaching state it never loaded.
    if (this.standby && !STANDBY_PATHS.has(path.replace(/\/$/, ""))) throw new StandbyError();
    const mount = this.mounts.resolve(path);
    if (!mount) throw new NotFound(`no handler for route "${path}". route entry not found.`);
    const rel = path.length < mount.entry.path.length ? "" : path.slice(mount.entry.path.length);
    const match = requireRoute(mount.backend, rel, path);
    return { path, mount, rel, match, unauthenticated: matchesAny(mount.backend.unauthenticatedPaths, rel) };
  }

  /** The request pipeline. Throws typed errors; the server maps them to HTTP. */
  async handle(req: CoreRequest): Promise<CoreResponse> {
    this.inFlight++;
    try {
      return await this.handleRequest(req);
    } finally {
      if (--this.inFlight === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
  }

  /**
   * HA hand-over (step-down, SIGTERM): new requests are refused as on a standby (503 "standby":
   * clients retry elsewhere) while those already running finish under the lock, at most `timeoutMs`.
   * `becomeStandby` ends the drain.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (!this.active) return;
    this.draining = true;
    if (this.inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.drainWaiters.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async handleRequest(req: CoreRequest): Promise<CoreResponse> {
    const requestId = req.id ?? randomUUID();
    const { path, mount, rel, match, unauthenticated } = this.route(req.path);
    // A login: a write to an unauthenticated path of an auth method. Rate-limited per client address.
    const isLogin = mount.kind === "auth" && unauthenticated && req.op === "write";
    if (isLogin) this.loginLimiter.take(req.connection.remoteAddress);

    const ctx: RequestContext = { sudo: false };
    /** Leases opened by this request: activated with the answer, revoked if it fails. */
    const opened: string[] = [];
    /** What each opened lease guards, as the engine last gave it (see `abandonLeases`). */
    const held: HeldCredentials = new Map();
    let entry: TokenEntry | undefined;
    if (!unauthenticated) {
      entry = req.token ? await this.tokens.lookup(req.token) : undefined;
      const refused = { requestId, op: (req.op === "write" ? "update" : req.op) as Operation, path, mount: mount.info, data: req.data, remoteAddress: req.connection.remoteAddress };
      if (!entry) return await this.auditRefusal(refused, new PermissionDenied());
      ctx.token = req.token;
      ctx.tokenEntry = entry;
      try {
        checkBoundCidrs(entry, req.connection.remoteAddress);
      } catch (err) {
        return await this.auditRefusal({ ...refused, token: req.token, entry }, err as Error);
      }
    }
    const handlerReq: HandlerRequest = {
      id: requestId,
      op: "read",
      path: rel,
      params: match.params,
      data: req.data,
      identity: entry ? TokenStore.identityOf(entry) : null,
      mount: mount.info,
      storage: mount.storage,
      connection: req.connection,
      logger: this.logger,
      leases: this.remembering(this.leases.helperFor(mount.entry.path, path, entry ? creatorOf(entry) : null, opened), mount, held),
    };
    const op: Operation = req.op === "write" ? await resolveWriteOperation(match, handlerReq) : req.op;
    handlerReq.op = op;

    const auditBase = { requestId, op, path, mount: mount.info, token: req.token, entry, data: req.data, remoteAddress: req.connection.remoteAddress };
    if (entry) {
      const isRoot = entry.policies.includes("root");
      const acl = isRoot ? undefined : await this.policies.aclFor(entry.policies);
      const needsSudo = matchesAny(mount.backend.rootPaths, rel);
      ctx.sudo = isRoot || !!acl?.capabilities(path).includes("sudo");
      if (!isRoot && !acl!.allows(path, op, { sudo: needsSudo, data: req.data })) return await this.auditRefusal(auditBase, new PermissionDenied());
    }
    const lastUse = entry ? await this.tokens.consumeUse(entry) : false;

    // Status and seal endpoints are answered outside the audit trail, as in Vault (health probes would flood it).
    const audit = SEALED_PATHS.has(path.replace(/\/$/, "")) ? async () => undefined : (fn: () => Promise<void> | void) => this.auditOrFail(fn);
    await audit(() => this.audit.logRequest(this.auditRequestInput(auditBase)));

    let resp: HandlerResponse;
    try {
      resp = await invokeHandler(match, op, handlerReq, ctx);
    } catch (err) {
      if (isLogin) this.metrics.loginFailures.inc({ auth_mount: mount.entry.path });
      await this.abandonLeases(opened, held);
      await audit(() => this.audit.logResponse({ ...this.auditRequestInput(auditBase), error: errorMessage(err) }));
      if (lastUse && entry) await this.tokens.revokeTree(entry);
      throw err;
    }
    let lease = resp.lease;
    try {
      if (resp.secret) {
        lease = await this.leases.open(mount.entry.path, path, { ...resp.secret, type: resp.secret.type }, entry ? creatorOf(entry) : null);
        opened.push(lease.id);
      }
    } catch (err) {
      if (isLogin) this.metrics.loginFailures.inc({ auth_mount: mount.entry.path });
      await this.abandonLeases(opened, held);
      if (resp.secret) await this.revokeUnleased(mount, resp.secret);
      throw err;
    }
    // A lease opened but not returned guards nothing the caller will see: revoke it.
    await this.abandonLeases(opened.filter((id) => id !== lease?.id), held);

    let auth: Record<string, unknown> | null = resp.issuedAuth ?? null;
    let minted: TokenEntry | undefined;
    if (resp.auth) {
      const r = await this.mintLoginToken(mount, resp.auth, path);
      auth = r.auth;
      minted = r.entry;
    }
    try {
      // The fence of token revocation: a credential or token granted by a token that was revoked
      // (or marked for revocation) while this request ran is never handed out.
      if (entry && !lastUse && (lease || minted) && !(await this.tokens.stillUsable(entry.hmac))) throw new PermissionDenied();
      await audit(() =>
        this.audit.logResponse({ ...this.auditRequestInput(auditBase), response: { data: resp.data ?? undefined, auth: auditAuth(auth), warnings: resp.warnings, leaseId: lease?.id } }),
      );
      if (lease) await this.leases.activate(lease.id, mount.entry.path);
    } catch (err) {
      // The answer cannot be delivered: nothing it granted may survive.
      if (minted) await this.tokens.revokeTree(minted);
      if (lease) await this.abandonLeases([lease.id], held);
      throw err;
    } finally {
      if (lastUse && entry) await this.tokens.revokeTree(entry);
    }
    for (const task of ctx.afterResponse ?? []) await task();
    const leaseInfo = lease ? { id: lease.id, ttl: lease.ttl, renewable: lease.renewable } : resp.leaseInfo;
    return renderResponse(requestId, resp, auth, mount.entry.type, leaseInfo);
  }

  /**
   * The checks `handle` makes before it needs the request body, for the HTTP layer to run before it
   * reads one: a request that needs a token and has none, an unknown one, one bound to other
   * addresses, or one whose policies grant no capability the operation could need is refused (and audited, without its body, which was never read) at the cost of a
   * token lookup, instead of after its body was read, parsed and walked. It shares `route` with
   * `handle` and refuses nothing `handle` would accept; `handle` still makes every check itself.
   * Returns what the body size limit depends on.
   */
  async admitBeforeBody(req: Omit<CoreRequest, "data">): Promise<{ authenticated: boolean; kind: "secrets" | "auth"; builtin: boolean }> {
    const { path, mount, unauthenticated } = this.route(req.path);
    const shape = { kind: mount.kind, builtin: !!mount.entry.builtin };
    if (unauthenticated) return { authenticated: false, ...shape };
    const entry = req.token ? await this.tokens.lookup(req.token) : undefined;
    const refused = { requestId: req.id ?? randomUUID(), op: (req.op === "write" ? "update" : req.op) as Operation, path, mount: mount.info, data: {}, remoteAddress: req.connection.remoteAddress };
    if (!entry) return await this.auditRefusal(refused, new PermissionDenied());
    try {
      checkBoundCidrs(entry, req.connection.remoteAddress);
    } catch (err) {
      return await this.auditRefusal({ ...refused, token: req.token, entry }, err as Error);
    }
    // A write, patch or delete its policies can never allow here is refused before its body is read.
    const ops: Operation[] = req.op === "write" ? ["create", "update"] : req.op === "patch" ? ["patch"] : req.op === "delete" ? ["delete"] : [];
    if (ops.length && !entry.policies.includes("root") && !(await this.policies.aclFor(entry.policies)).grantsAny(path, ops)) {
      return await this.auditRefusal({ ...refused, token: req.token, entry }, new PermissionDenied());
    }
    return { authenticated: true, ...shape };
  }

  /** The engine's lease helper, keeping in memory what each opened lease guards (its secret type and internal data, with updates). */
  private remembering(helper: LeaseHelper, mount: LiveMount, held: HeldCredentials): LeaseHelper {
    return {
      open: async (spec) => {
        const lease = await helper.open(spec);
        held.set(lease.id, { mount, type: spec.type, internal: spec.internal });
        return {
          ...lease,
          update: async (internal) => {
            await lease.update(internal);
            held.set(lease.id, { mount, type: spec.type, internal });
          },
        };
      },
    };
  }

  /**
   * Revokes leases a failed request opened (the engine's revoke is idempotent). When that found no
   * row or failed, the credential is revoked again from what this request holds in memory: after
   * an HA take-over the new active may already have revoked the pending lease (and removed its row)
   * before this deposed node created the credential, and this node can no longer write the row.
   */
  private async abandonLeases(ids: string[], held?: HeldCredentials): Promise<void> {
    for (const id of ids) {
      const outcome = await this.leases.revoke(id);
      if (!outcome.ok) this.logger.error({ lease_id: id, err: outcome.error }, "could not revoke the lease of a failed request; it stays scheduled for retry");
      const credential = held?.get(id);
      if (!credential || (outcome.ok && !outcome.missing)) continue;
      try {
        await credential.mount.backend.secretTypes?.[credential.type]?.revoke({ id, internal: credential.internal });
      } catch (err) {
        this.logger.error({ lease_id: id, err: errorMessage(err) }, "could not revoke the credential of a failed request from memory; its lease row, if any, stays scheduled for retry");
      }
    }
  }

  /**
   * The simple form (`resp.secret`) creates the credential before its lease: when the lease cannot
   * be opened (a full lease count quota), the engine revokes the credential at once.
   */
  private async revokeUnleased(mount: LiveMount, secret: SecretLease): Promise<void> {
    try {
      await mount.backend.secretTypes?.[secret.type]?.revoke({ id: "", internal: secret.internal });
    } catch (err) {
      this.logger.error({ err, mount: mount.entry.path }, "could not revoke a credential whose lease was refused; it may outlive the request");
    }
  }

  /** `sys/leases/tidy`: drops token leases whose token is already gone. Returns how many. */
  async tidyTokenLeases(): Promise<number> {
    let removed = 0;
    let after = "";
    for (;;) {
      const ids = await this.leases.store.select({ kind: "token" }, after, 1000);
      if (!ids.length) return removed;
      after = ids[ids.length - 1];
      for (const id of ids) {
        const row = await this.leases.store.get(id);
        if (!row) continue;
        const { hmac } = JSON.parse(this.barrier.decrypt(`lease/${id}`, row.internal).toString("utf8")) as { hmac: string };
        if (!(await this.tokens.getByHmac(hmac))) {
          await this.leases.dropTokenLease(id);
          removed++;
        }
      }
    }
  }

  /** Revokes every lease of a mount (before disabling it). Throws if any fails: the mount stays. */
  async revokeMountLeases(mountPath: string): Promise<void> {
    const result = await this.leases.revokeMatching({ mount: mountPath });
    if (result.failed.length) {
      throw new UserError(
        `failed to revoke ${result.failed.length} of ${result.matched} leases under ${mountPath}; the mount stays enabled until they are revoked (first error: ${result.failed[0].error}). Retry later, or use sys/leases/revoke-force/${mountPath}`,
      );
    }
  }

  private auditRequestInput(b: { requestId: string; op: Operation; path: string; mount: { type: string; accessor: string; path: string }; token?: string; entry?: TokenEntry; data: Record<string, unknown>; remoteAddress: string }): AuditRequestInput {
    return {
      id: b.requestId,
      operation: b.op,
      path: b.path,
      mount: { type: b.mount.type, accessor: b.mount.accessor, path: b.mount.path },
      clientToken: b.entry ? b.token : undefined,
      clientTokenAccessor: b.entry?.accessor,
      caller: b.entry
        ? {
            displayName: b.entry.displayName,
            policies: b.entry.policies,
            metadata: b.entry.meta,
            entityId: b.entry.entityId,
            ttl: b.entry.creationTtl,
            issueTime: b.entry.creationTime,
            remainingUses: b.entry.numUses || undefined,
          }
        : undefined,
      data: b.data,
      remoteAddress: b.remoteAddress,
    };
  }

  /**
   * A request refused before its handler ran (permission denied): like Vault, it is audited (a
   * request and a response entry carrying the error) and then refused. Fail-closed as well: if no
   * device can record the refusal, the answer is a 500.
   */
  private async auditRefusal(b: Parameters<Core["auditRequestInput"]>[0], err: Error): Promise<never> {
    const input = { ...this.auditRequestInput(b), error: err.message };
    await this.auditOrFail(() => this.audit.logRequest(input));
    await this.auditOrFail(() => this.audit.logResponse(input));
    throw err;
  }

  private async auditOrFail(fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.metrics.auditFailures.inc();
      this.logger.error({ err }, "audit: no device could write the entry; refusing the request");
      throw isLeaseholdError(err) && err.status === 500 ? err : new InternalError("internal error: audit logging failed");
    }
  }

  /** Mints the orphan token an auth method's login asked for. */
  async mintLoginToken(mount: LiveMount, a: AuthResult, path: string): Promise<{ auth: Record<string, unknown>; entry: TokenEntry }> {
    const policies = [...new Set([...a.policies, ...(a.noDefaultPolicy ? [] : ["default"])])].sort();
    // Only a root parent mints root, and a login has no parent (Vault refuses the same).
    if (policies.some((p) => p.trim().toLowerCase() === "root")) throw new UserError("auth methods cannot create root tokens");
    const ttls = mount.info.config;
    const prefix = mount.entry.path.replace(/^auth\//, "").replace(/\/$/, "").replace(/\//g, "-");
    const { token, entry } = await this.tokens.create({
      policies,
      meta: a.metadata,
      displayName: a.displayName ? `${prefix}-${a.displayName}` : prefix,
      numUses: a.numUses,
      ttl: a.ttl || ttls.defaultLeaseTtl,
      explicitMaxTtl: a.explicitMaxTtl,
      period: a.period,
      renewable: a.renewable ?? true,
      path,
      authMount: mount.entry.path,
      parent: null,
      mountMaxTtl: Math.min(a.maxTtl || ttls.maxLeaseTtl, ttls.maxLeaseTtl),
      boundCidrs: a.boundCidrs,
    });
    this.metrics.tokensCreated.inc({ auth_mount: mount.entry.path });
    return { auth: authBlock(token, entry), entry };
  }
}

/** The audit view of an `auth` block. */
function auditAuth(auth: Record<string, unknown> | null): AuditIssuedAuth | undefined {
  if (!auth) return undefined;
  return {
    clientToken: String(auth.client_token),
    accessor: String(auth.accessor),
    policies: auth.policies as string[],
    metadata: auth.metadata as Record<string, string> | null,
    ttl: auth.lease_duration as number,
    numUses: auth.num_uses as number,
  };
}

/** Vault's `auth` block for a newly minted token. */
export function authBlock(token: string, entry: TokenEntry): Record<string, unknown> {
  return {
    client_token: token,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    identity_policies: null,
    metadata: entry.meta,
    lease_duration: entry.creationTtl,
    renewable: entry.renewable,
    entity_id: entry.entityId,
    token_type: "service",
    orphan: entry.parent === null,
    mfa_requirement: null,
    num_uses: entry.numUses,
  };
}

/** The creator facts a lease records, from the token that made the request. */
function creatorOf(e: TokenEntry): LeaseCreator {
  return { tokenAccessor: e.accessor, authMount: e.authMount, displayName: e.displayName, metadata: e.meta ?? {}, entityId: e.entityId };
}

function builtinEntry(path: string, type: string, description: string): MountEntry {
  return {
    path,
    type,
    description,
    accessor: `${type}_${randomUUID().slice(0, 8)}`,
    uuid: randomUUID(),
    config: { default_lease_ttl: 0, max_lease_ttl: 0 },
    options: {},
    local: false,
    seal_wrap: false,
    builtin: true,
  };
}

function matchesAny(patterns: string[] | undefined, rel: string): boolean {
  return !!patterns?.some((p) => globMatch(p, rel));
}

/** A token bound to CIDR blocks (`token_bound_cidrs`) is only good from those addresses. */
function checkBoundCidrs(entry: TokenEntry, remote: string): void {
  if (!addressAllowed(remote, entry.boundCidrs)) throw new PermissionDenied();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Builds Vault's response envelope from a handler response. */
export function renderResponse(
  requestId: string,
  resp: HandlerResponse,
  auth: Record<string, unknown> | null,
  mountType: string,
  lease?: { id: string; ttl: number; renewable: boolean },
): CoreResponse {
  if (resp.raw) return { status: resp.raw.status, raw: { contentType: resp.raw.contentType, body: resp.raw.body } };
  const hasContent = resp.data != null || auth !== null || (resp.warnings?.length ?? 0) > 0 || lease !== undefined;
  if (!hasContent) return { status: resp.status ?? 204 };
  const body: Record<string, unknown> = {
    request_id: requestId,
    lease_id: lease?.id ?? "",
    renewable: lease?.renewable ?? false,
    lease_duration: lease?.ttl ?? 0,
    data: resp.data ?? null,
    wrap_info: null,
    warnings: resp.warnings?.length ? resp.warnings : null,
    auth,
    mount_type: mountType,
  };
  if (resp.copyDataToTopLevel && resp.data) for (const [k, v] of Object.entries(resp.data)) if (!(k in body)) body[k] = v;
  return { status: resp.status ?? 200, body };
}
