import type { ZodType } from "zod";
import type { Logger } from "pino";

/** Logical operations, as in Vault. HTTP GET → read (or list), POST/PUT → create/update, DELETE → delete. */
export type Operation = "read" | "create" | "update" | "delete" | "list" | "patch";

/** Policy capabilities: the operations plus `sudo` (root-protected paths) and `deny`. */
export type Capability = Operation | "sudo" | "deny";

/**
 * Key/value storage scoped to one mount, encrypted by the barrier. Keys are `/`-separated;
 * `list(prefix)` returns the immediate children of `prefix` (folders end with `/`), as Vault does.
 */
export interface StorageView {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, value: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
  getJSON<T>(key: string): Promise<T | undefined>;
  putJSON(key: string, value: unknown): Promise<void>;
  /** Runs `fn` while holding an in-process lock on `key`: read-modify-write without lost updates. */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** Who is calling: what the token carries. Travels into leases and audit entries. */
export interface CallerIdentity {
  accessor: string;
  displayName: string;
  policies: string[];
  metadata: Record<string, string>;
  entityId: string;
  /** Mount path of the auth method that issued the token (`auth/approle/`, `auth/token/`). */
  authMount: string;
  isRoot: boolean;
}

/** The mount a request is served by. */
export interface MountInfo {
  /** With trailing slash, e.g. `secret/` or `auth/approle/`. */
  path: string;
  type: string;
  accessor: string;
  uuid: string;
  description: string;
  config: { defaultLeaseTtl: number; maxLeaseTtl: number };
  options: Record<string, string>;
}

/** Facts about the network connection, for auth methods (CIDR binding, mTLS). */
export interface ConnectionInfo {
  remoteAddress: string;
  /** DER of the client certificate presented over TLS, when one was. */
  peerCertificate?: Buffer;
  peerCertificateChain?: Buffer[];
  tlsAuthorized?: boolean;
}

/** What a path handler receives. `data` has been validated by the operation's schema. */
export interface HandlerRequest<D = Record<string, unknown>> {
  id: string;
  op: Operation;
  /** Path relative to the mount. */
  path: string;
  /** Named groups captured by the path pattern. */
  params: Record<string, string>;
  data: D;
  identity: CallerIdentity | null;
  mount: MountInfo;
  storage: StorageView;
  connection: ConnectionInfo;
  logger: Logger;
  /** Opens leases before creating credentials (persist before hand-out). */
  leases: LeaseHelper;
}

/**
 * Persist before hand-out: an engine opens a `pending` lease carrying everything revocation needs
 * BEFORE it creates the credential, then returns it as `HandlerResponse.lease`. The core activates
 * it once the answer is audited; if the handler fails, or the server dies first, the lease is
 * revoked through the engine's (idempotent) revoke callback.
 */
export interface LeaseHelper {
  open(spec: LeaseSpec): Promise<OpenedLease>;
}

export interface LeaseSpec {
  /** Engine secret type name: selects the renew/revoke callbacks in `Backend.secretTypes`. */
  type: string;
  /** Requested TTL in seconds; 0 or absent = the mount's default. Capped by the max TTL. */
  ttl?: number;
  /** Role max TTL in seconds, measured from issue time; the mount's max also applies. */
  maxTtl?: number;
  renewable: boolean;
  internal: Record<string, unknown>;
  /** Role name, for selectors (`role=ro`) and listings. */
  role?: string;
}

export interface OpenedLease {
  id: string;
  /** Granted TTL in seconds (after caps). */
  ttl: number;
  renewable: boolean;
  expireTime: Date;
  /** Replaces the internal data while still pending (e.g. once the username is known). */
  update(internal: Record<string, unknown>): Promise<void>;
}

/** A lease request attached to a response: the core persists it and fills `lease_id`. */
export interface SecretLease {
  /** Engine secret type name (e.g. `creds`), selects the renew/revoke callbacks. */
  type: string;
  ttl: number;
  maxTtl?: number;
  renewable: boolean;
  /** Everything the engine needs to renew or revoke; encrypted at rest. */
  internal: Record<string, unknown>;
}

/** What an auth method's login returns; the core mints the token. */
export interface AuthResult {
  policies: string[];
  metadata: Record<string, string>;
  displayName: string;
  ttl?: number;
  maxTtl?: number;
  explicitMaxTtl?: number;
  period?: number;
  numUses?: number;
  renewable?: boolean;
  noDefaultPolicy?: boolean;
  boundCidrs?: string[];
  /** Stable identifier of the workload within the method (service account uid, role id, SPIFFE ID). */
  aliasName?: string;
}

/** What a path handler returns. Omit everything for 204. */
export interface HandlerResponse {
  data?: Record<string, unknown> | null;
  warnings?: string[];
  secret?: SecretLease;
  /** A lease opened with `req.leases.open` for the credential in `data`. */
  lease?: OpenedLease;
  auth?: AuthResult;
  /** Non-JSON answers (PEM, DER, OCSP) and custom status codes. */
  raw?: { status: number; contentType: string; body: Buffer | string };
  status?: number;
  /** Also copy `data` to the top level of the body (Vault does this on several legacy sys routes). */
  copyDataToTopLevel?: boolean;
  /**
   * Lease fields for the envelope without a lease of the engine's own: a lease operation
   * (`sys/leases/renew`), or a KV v1 read's `lease_duration` hint (empty id, not renewable).
   */
  leaseInfo?: { id: string; ttl: number; renewable: boolean };
  /** Core only: a token the handler already minted (auth/token/create), sent as the `auth` block. */
  issuedAuth?: Record<string, unknown>;
}

export interface OperationHandler<D = any> { // eslint-disable-line @typescript-eslint/no-explicit-any -- each handler narrows D through its schema
  /** Validates and types `data`; fields not in the schema produce a warning, as Vault does. */
  schema?: ZodType<D>;
  handler: (req: HandlerRequest<D>) => Promise<HandlerResponse | void>;
  /** Short description, for `help`-style introspection and docs. */
  summary?: string;
}

/** One path (or family of paths) of an engine. `pattern` is a regex source matched against the whole relative path. */
export interface PathDefinition {
  pattern: string;
  operations: Partial<Record<Operation, OperationHandler>>;
  /** Decides create vs update for writes; without it every write is an update (Vault's rule). */
  existenceCheck?: (req: HandlerRequest) => Promise<boolean>;
}

/** Renew/revoke callbacks for one kind of leased secret. Both must be idempotent. */
export interface SecretType {
  /** Extends the credential to `expireTime` (e.g. `ALTER ROLE ... VALID UNTIL`). Without it, renewals only move the lease. */
  renew?: (lease: { id: string; internal: Record<string, unknown>; ttl: number; expireTime: Date }) => Promise<void>;
  /** Destroys the credential. Called again after a crash or a failure: must succeed if already gone. */
  revoke: (lease: { id: string; internal: Record<string, unknown> }) => Promise<void>;
}

/** A mounted engine or auth method instance. */
export interface Backend {
  paths: PathDefinition[];
  /** Glob patterns (relative, trailing `*` = prefix) reachable without a token. */
  unauthenticatedPaths?: string[];
  /** Glob patterns that need `sudo` in addition to the operation's capability. */
  rootPaths?: string[];
  secretTypes?: Record<string, SecretType>;
  /**
   * Auth methods: re-checks a login when its token is renewed (the cert method checks the client
   * certificate presented on the renewing connection). Throw `PermissionDenied` to refuse.
   */
  renewAuth?: (token: { metadata: Record<string, string>; policies: string[]; displayName: string }, connection: ConnectionInfo) => Promise<void>;
  /** Called when the mount is disabled or the server stops. */
  close?(): Promise<void>;
}

/** Handed to a factory when a mount is created or loaded. */
export interface BackendContext {
  mount: MountInfo;
  storage: StorageView;
  logger: Logger;
}

/** A plugin: registers a type name and builds backends for mounts of that type. */
export interface PluginFactory {
  type: string;
  kind: "secrets" | "auth";
  description: string;
  create(ctx: BackendContext): Promise<Backend>;
  /**
   * Tune is changing the options of one of this plugin's mounts. Returns how to rewrite the stored
   * data for the new options (KV version 1 to 2), or nothing when the data stays as it is. The
   * function copies from `source` into the empty `target`; the mount switches to `target` only
   * once it resolves, so a failure leaves the mount as it was.
   */
  retune?(from: Record<string, string>, to: Record<string, string>): ((source: StorageView, target: StorageView) => Promise<void>) | undefined;
}
