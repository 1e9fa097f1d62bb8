import { createHmac } from "node:crypto";

/**
 * Builds audit entries in the shape of Vault's file audit device (`audit/types.go`), so tools that
 * parse Vault audit logs (SIEM pipelines, `jq` recipes, Vault's own `sys/audit-hash` workflow) read
 * ours unchanged. Field names are Vault's; like Go's `omitempty`, empty strings, zero numbers,
 * `false`, empty lists and empty maps are left out of the metadata objects (never inside `data`).
 */

/** The mount that served a request, as Vault logs it (`mount_type`, `mount_accessor`, `mount_point`). */
export interface AuditMount {
  type: string;
  accessor: string;
  /** Mount path with trailing slash, e.g. `database/` or `auth/approle/`. */
  path: string;
  /** `secret` or `auth` (Vault's `mount_class`); optional. */
  class?: "secret" | "auth";
}

/**
 * Who the token belongs to: structurally compatible with the SDK's `CallerIdentity`, plus the token
 * facts Vault logs. The raw token and its accessor are not here but on the request input.
 */
export interface AuditCaller {
  displayName: string;
  /** Effective policies (token policies plus identity policies). */
  policies: string[];
  /** Policies attached to the token itself; defaults to `policies`. */
  tokenPolicies?: string[];
  identityPolicies?: string[];
  metadata?: Record<string, string> | null;
  entityId?: string;
  /** `service` (default) or `batch`. */
  tokenType?: string;
  /** TTL the token was issued with, seconds (0 = none). */
  ttl?: number;
  /** Token creation time: a Date or unix milliseconds. */
  issueTime?: Date | number;
  /** Uses left on a use-limited token (Vault's `remaining_uses`). */
  remainingUses?: number;
}

/** Everything the request entry records. Plain data: the formatter copies, it never mutates. */
export interface AuditRequestInput {
  /** Request id; the request and response entries share it (`request.id`). */
  id: string;
  /** Logical operation: `read`, `create`, `update`, `delete`, `list`, `patch`. */
  operation: string;
  /** Full request path without `/v1/`, e.g. `database/creds/app`. */
  path: string;
  /** The mount that served the request; omit when none matched. */
  mount?: AuditMount | null;
  /** The raw client token; hashed unless the device logs raw. */
  clientToken?: string;
  /** The token's accessor; hashed unless `hmac_accessor=false` or raw. */
  clientTokenAccessor?: string;
  /** The token's identity; omit for unauthenticated requests (logins, `sys/health`). */
  caller?: AuditCaller | null;
  /** Request body or query parameters; every string inside is hashed. */
  data?: Record<string, unknown> | null;
  remoteAddress?: string;
  remotePort?: number;
  /** Wrap TTL requested with `X-Vault-Wrap-TTL`, seconds. */
  wrapTtl?: number;
  /** Set when the request failed before its handler ran (e.g. `permission denied`). */
  error?: string;
}

/** A token issued by the response (logins, `auth/token/create`). */
export interface AuditIssuedAuth {
  /** The raw new token; hashed unless raw. */
  clientToken: string;
  accessor: string;
  displayName?: string;
  policies: string[];
  tokenPolicies?: string[];
  identityPolicies?: string[];
  metadata?: Record<string, string> | null;
  entityId?: string;
  tokenType?: string;
  ttl?: number;
  numUses?: number;
  issueTime?: Date | number;
}

/** Response wrapping info (`wrap_info`). The wrapping token is hashed like any token. */
export interface AuditWrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creationTime: Date | number;
  creationPath: string;
  wrappedAccessor?: string;
}

export interface AuditResponseBody {
  /** Response data; every string inside is hashed. */
  data?: Record<string, unknown> | null;
  auth?: AuditIssuedAuth | null;
  /** Lease id of a leased secret. Logged in clear, as Vault does: it names a lease, it grants nothing. */
  leaseId?: string;
  warnings?: string[];
  wrapInfo?: AuditWrapInfo | null;
  /** Defaults to the request's mount. */
  mount?: AuditMount | null;
}

/** The response entry records the request again, plus what was answered. */
export interface AuditResponseInput extends AuditRequestInput {
  response?: AuditResponseBody | null;
}

/** How one device renders entries. */
export interface AuditFormatOptions {
  /** Replaces a sensitive string by `hmac-sha256:<hex>`; `null` logs raw (`log_raw=true`). */
  hmac: ((value: string) => string) | null;
  /** Hash accessors too (Vault's `hmac_accessor`, default true). */
  hmacAccessor: boolean;
  /** For `list` operations, replace `keys` and `key_info` in response data by their counts. */
  elideListResponses?: boolean;
  /** Entry time; defaults to now. */
  now?: Date;
}

export interface AuditAuthEntry {
  client_token?: string;
  accessor?: string;
  display_name?: string;
  policies?: string[];
  token_policies?: string[];
  identity_policies?: string[];
  metadata?: Record<string, string>;
  entity_id?: string;
  num_uses?: number;
  remaining_uses?: number;
  token_type?: string;
  token_ttl?: number;
  token_issue_time?: string;
}

export interface AuditRequestSection {
  id: string;
  operation?: string;
  mount_type?: string;
  mount_accessor?: string;
  mount_point?: string;
  mount_class?: string;
  client_token?: string;
  client_token_accessor?: string;
  namespace: { id: string };
  path?: string;
  data?: Record<string, unknown>;
  remote_address?: string;
  remote_port?: number;
  wrap_ttl?: number;
}

export interface AuditResponseSection {
  mount_type?: string;
  mount_accessor?: string;
  mount_point?: string;
  mount_class?: string;
  auth?: AuditAuthEntry;
  data?: Record<string, unknown>;
  secret?: { lease_id: string };
  warnings?: string[];
  wrap_info?: {
    token?: string;
    accessor?: string;
    ttl?: number;
    creation_time?: string;
    creation_path?: string;
    wrapped_accessor?: string;
  };
}

export interface AuditRequestEntry {
  time: string;
  type: "request";
  auth: AuditAuthEntry;
  request: AuditRequestSection;
  error?: string;
}

export interface AuditResponseEntry {
  time: string;
  type: "response";
  auth: AuditAuthEntry;
  request: AuditRequestSection;
  response: AuditResponseSection;
  error?: string;
}

/** Vault's identified HMAC: `hmac-sha256:` and the hex HMAC-SHA256 of `value` keyed by the device salt. */
export function hmacSha256(salt: Buffer, value: string): string {
  return `hmac-sha256:${createHmac("sha256", salt).update(value, "utf8").digest("hex")}`;
}

/**
 * A deep copy of `value` as JSON would render it, with every string replaced by `hash(string)`.
 * Numbers, booleans and null stay as they are (Vault hashes strings only); object keys are never
 * hashed. Byte arrays become base64 strings first (as Go's JSON encodes `[]byte`), so a secret held
 * in a Buffer is hashed rather than logged as a list of byte values.
 */
export function hashStrings(value: unknown, hash: ((s: string) => string) | null): unknown {
  return copyJson(value, hash, new Set());
}

function copyJson(value: unknown, hash: ((s: string) => string) | null, ancestors: Set<object>): unknown {
  if (typeof value === "string") return hash ? hash(value) : value;
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return undefined; // undefined, functions, symbols: JSON drops them
  if (value instanceof Uint8Array) return copyJson(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"), hash, ancestors);
  if (ancestors.has(value)) throw new TypeError("audit: cannot log a cyclic structure");
  ancestors.add(value);
  try {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return copyJson(toJSON.call(value), hash, ancestors);
    if (Array.isArray(value)) return value.map((v) => copyJson(v, hash, ancestors) ?? null);
    const entries = value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const copied = copyJson(v, hash, ancestors);
      if (copied !== undefined) out[k] = copied;
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/** Go's `omitempty`: drops undefined, "", 0, false, empty arrays and empty plain objects. */
function omitEmpty<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === "" || v === 0 || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as T;
}

/** RFC 3339 without fractional seconds, as Vault formats token issue times. */
function rfc3339Seconds(t: Date | number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

interface Hashers {
  /** Tokens and every string in data. */
  secret: (s: string | undefined) => string | undefined;
  /** Accessors: hashed unless `hmac_accessor=false`. */
  accessor: (s: string | undefined) => string | undefined;
  data: (d: Record<string, unknown> | null | undefined) => Record<string, unknown> | undefined;
}

function hashersFor(opts: AuditFormatOptions): Hashers {
  const h = opts.hmac;
  const secret = (s: string | undefined) => (s && h ? h(s) : s);
  return {
    secret,
    accessor: opts.hmacAccessor ? secret : (s) => s,
    data: (d) => (d == null ? undefined : (hashStrings(d, h) as Record<string, unknown>)),
  };
}

function callerAuth(input: AuditRequestInput, hs: Hashers): AuditAuthEntry {
  const c = input.caller;
  return omitEmpty<AuditAuthEntry>({
    client_token: hs.secret(input.clientToken),
    accessor: hs.accessor(input.clientTokenAccessor),
    display_name: c?.displayName,
    policies: c?.policies ? [...c.policies] : undefined,
    token_policies: c ? [...(c.tokenPolicies ?? c.policies)] : undefined,
    identity_policies: c?.identityPolicies ? [...c.identityPolicies] : undefined,
    metadata: c?.metadata ? { ...c.metadata } : undefined,
    entity_id: c?.entityId,
    remaining_uses: c?.remainingUses,
    // Vault prints the zero TokenType as "default" for requests that carry no token.
    token_type: c || input.clientToken ? (c?.tokenType ?? "service") : "default",
    token_ttl: c?.ttl,
    token_issue_time: c?.issueTime !== undefined ? rfc3339Seconds(c.issueTime) : undefined,
  });
}

function requestSection(input: AuditRequestInput, hs: Hashers): AuditRequestSection {
  const section = omitEmpty<AuditRequestSection>({
    id: input.id,
    operation: input.operation,
    mount_type: input.mount?.type,
    mount_accessor: input.mount?.accessor,
    mount_point: input.mount?.path,
    mount_class: input.mount?.class,
    client_token: hs.secret(input.clientToken),
    client_token_accessor: hs.accessor(input.clientTokenAccessor),
    namespace: { id: "root" },
    path: input.path,
    data: hs.data(input.data),
    remote_address: input.remoteAddress,
    remote_port: input.remotePort,
    wrap_ttl: input.wrapTtl,
  });
  section.id = input.id;
  return section;
}

function issuedAuth(a: AuditIssuedAuth, hs: Hashers): AuditAuthEntry {
  return omitEmpty<AuditAuthEntry>({
    client_token: hs.secret(a.clientToken),
    accessor: hs.accessor(a.accessor),
    display_name: a.displayName,
    policies: [...a.policies],
    token_policies: [...(a.tokenPolicies ?? a.policies)],
    identity_policies: a.identityPolicies ? [...a.identityPolicies] : undefined,
    metadata: a.metadata ? { ...a.metadata } : undefined,
    entity_id: a.entityId,
    num_uses: a.numUses,
    token_type: a.tokenType ?? "service",
    token_ttl: a.ttl,
    token_issue_time: a.issueTime !== undefined ? rfc3339Seconds(a.issueTime) : undefined,
  });
}

/** Vault's `elide_list_responses`: list answers can be huge and say little; keep only the counts. */
function elideListData(data: Record<string, unknown>): Record<string, unknown> {
  const out = { ...data };
  if (Array.isArray(out.keys)) out.keys = out.keys.length;
  const info = out.key_info;
  if (info && typeof info === "object" && !Array.isArray(info)) out.key_info = Object.keys(info).length;
  return out;
}

/** The `type: "request"` entry, written before the handler runs. */
export function formatRequestEntry(input: AuditRequestInput, opts: AuditFormatOptions): AuditRequestEntry {
  const hs = hashersFor(opts);
  const entry: AuditRequestEntry = {
    time: (opts.now ?? new Date()).toISOString(),
    type: "request",
    auth: callerAuth(input, hs),
    request: requestSection(input, hs),
  };
  if (input.error) entry.error = input.error;
  return entry;
}

/** The `type: "response"` entry, written after the handler answered (or failed). */
export function formatResponseEntry(input: AuditResponseInput, opts: AuditFormatOptions): AuditResponseEntry {
  const hs = hashersFor(opts);
  const resp = input.response ?? {};
  const mount = resp.mount ?? input.mount;
  let data = resp.data ?? undefined;
  if (data && opts.elideListResponses && input.operation === "list") data = elideListData(data);
  const wrap = resp.wrapInfo;
  const entry: AuditResponseEntry = {
    time: (opts.now ?? new Date()).toISOString(),
    type: "response",
    auth: callerAuth(input, hs),
    request: requestSection(input, hs),
    response: omitEmpty<AuditResponseSection>({
      mount_type: mount?.type,
      mount_accessor: mount?.accessor,
      mount_point: mount?.path,
      mount_class: mount?.class,
      auth: resp.auth ? issuedAuth(resp.auth, hs) : undefined,
      data: hs.data(data),
      // Vault leaves lease ids unhashed: operators need them to revoke, and they grant nothing.
      secret: resp.leaseId ? { lease_id: resp.leaseId } : undefined,
      warnings: resp.warnings ? [...resp.warnings] : undefined,
      wrap_info: wrap
        ? omitEmpty({
            token: hs.secret(wrap.token),
            accessor: hs.accessor(wrap.accessor),
            ttl: wrap.ttl,
            creation_time: new Date(wrap.creationTime).toISOString(),
            creation_path: wrap.creationPath,
            wrapped_accessor: hs.accessor(wrap.wrappedAccessor),
          })
        : undefined,
    }),
  };
  if (input.error) entry.error = input.error;
  return entry;
}
