import { z } from "zod";
import { UserError, zBool, zInt } from "../../sdk/index.js";
import type { HandlerResponse, PathDefinition } from "../../sdk/types.js";
import type { LeaseFilter, LeaseRow, LeaseState } from "../../storage/types.js";
import type { Core } from "../core.js";
import { describeIssues } from "../dispatch.js";

/**
 * leasehold's own lease endpoints (beyond Vault), all under `sys/leasehold/`:
 * - `POST sys/leasehold/leases/revoke {selector, dry_run}`: revoke every lease matching a selector.
 * - `GET sys/leasehold/leases?<filters>&after=&limit=`: list leases with the same filters, paginated.
 */

/** Selector fields, as the API (and the CLI's `--selector`) spell them. */
export const SELECTOR_FIELDS = ["mount", "role", "path_prefix", "token_accessor", "auth_mount", "display_name", "metadata", "issued_after", "issued_before", "kind"] as const;

/** Extra filters of the listing (not of revocation). */
const LIST_ONLY_FIELDS = ["state"] as const;
/** Pagination parameters of the listing. */
const PAGE_FIELDS = ["after", "limit"] as const;

/** How many lease ids an answer names. */
const ID_SAMPLE = 100;
/** How many failures' errors a revocation answer quotes. */
const ERROR_SAMPLE = 5;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** A time as RFC 3339 (`2024-05-01T12:00:00Z`) or unix seconds (`1714564800`, fractions allowed) → unix ms. */
export function parseInstant(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== "string") return undefined;
  const s = v.trim();
  if (/^\d+(?:\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  // Date.parse is only specified for up to millisecond precision: cut longer fractions (RFC 3339 allows nanoseconds).
  const frac = m[3] ? `.${m[3].slice(0, 3).padEnd(3, "0")}` : "";
  const ms = Date.parse(`${m[1]}T${m[2]}${frac}${m[4].toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : ms;
}

const zInstant = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseInstant(v);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `expected an RFC 3339 time (2024-05-01T12:00:00Z) or unix seconds, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return ms;
});

const zNonEmpty = z.string().trim().min(1, "must not be empty");

/** Mount paths are stored with a trailing slash (`database/`, `auth/approle/`); accept them with or without. */
function mountPath(v: string): string {
  return `${v.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
}

const zMount = zNonEmpty.transform(mountPath).refine((v) => v !== "/", "must name a mount");
/** `approle`, `auth/approle` and `auth/approle/` all name the auth mount `auth/approle/`. */
const zAuthMount = zMount.transform((v) => (v.startsWith("auth/") ? v : `auth/${v}`));

const zMetadata = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), { message: "must be an object of key: value" }).transform((v, ctx) => {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "") {
      ctx.addIssue({ code: "custom", message: "metadata keys must not be empty" });
      return z.NEVER;
    }
    out[k] = String(x);
  }
  return out;
});

const selectorSchema = z.object({
  mount: zMount.optional(),
  role: zNonEmpty.optional(),
  path_prefix: zNonEmpty.transform((v) => v.replace(/^\/+/, "")).optional(),
  token_accessor: zNonEmpty.optional(),
  auth_mount: zAuthMount.optional(),
  display_name: zNonEmpty.optional(),
  metadata: zMetadata.optional(),
  issued_after: zInstant.optional(),
  issued_before: zInstant.optional(),
  kind: z.enum(["secret", "token"], { message: 'must be "secret" or "token"' }).optional(),
  state: z.enum(["pending", "active", "revoking", "irrevocable"], { message: 'must be one of "pending", "active", "revoking", "irrevocable"' }).optional(),
});
type SelectorInput = z.infer<typeof selectorSchema>;

/** Validates selector fields (`allowed` names the keys this endpoint takes) into a store filter. */
export function parseSelector(raw: Record<string, unknown>, allowed: readonly string[], where: string): LeaseFilter {
  const unknown = Object.keys(raw).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new UserError(`unknown ${where} field${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")} (valid: ${allowed.join(", ")})`);
  const r = selectorSchema.safeParse(raw);
  if (!r.success) {
    // Name the field as the caller wrote it: `selector.role: ...` in a body, `role: ...` in a query.
    const msgs = describeIssues(r.error.issues.map((i) => ({ message: i.message, path: where === "selector" ? ["selector", ...i.path] : i.path })));
    throw new UserError(msgs[0] ?? `invalid ${where}`, msgs.slice(1));
  }
  return toFilter(r.data);
}

function toFilter(s: SelectorInput): LeaseFilter {
  const f: LeaseFilter = {};
  if (s.mount !== undefined) f.mount = s.mount;
  if (s.role !== undefined) f.role = s.role;
  if (s.path_prefix !== undefined) f.pathPrefix = s.path_prefix;
  if (s.token_accessor !== undefined) f.tokenAccessor = s.token_accessor;
  if (s.auth_mount !== undefined) f.authMount = s.auth_mount;
  if (s.display_name !== undefined) f.displayName = s.display_name;
  if (s.metadata !== undefined && Object.keys(s.metadata).length) f.metadata = s.metadata;
  if (s.issued_after !== undefined) f.issuedAfter = s.issued_after;
  if (s.issued_before !== undefined) f.issuedBefore = s.issued_before;
  if (s.kind !== undefined) f.kind = s.kind;
  if (s.state !== undefined) f.state = s.state as LeaseState;
  if (f.issuedAfter !== undefined && f.issuedBefore !== undefined && f.issuedAfter >= f.issuedBefore) {
    throw new UserError("issued_after must be earlier than issued_before");
  }
  return f;
}

/** A filter that constrains nothing would match every lease. */
function isEmpty(f: LeaseFilter): boolean {
  return Object.keys(f).length === 0;
}

/** One row of the listing: the lease's public fields (never its encrypted internal data). */
export function describeRow(row: LeaseRow): Record<string, unknown> {
  let metadata: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(row.metadata) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) metadata = parsed as Record<string, unknown>;
  } catch {
    // A row written before metadata was recorded: show none.
  }
  return {
    lease_id: row.id,
    kind: row.kind,
    mount: row.mount,
    role: row.role,
    path: row.path,
    state: row.state,
    issue_time: new Date(row.issue_time).toISOString(),
    expire_time: new Date(row.expire_time).toISOString(),
    display_name: row.display_name,
    auth_mount: row.auth_mount,
    token_accessor: row.token_accessor,
    metadata,
    revoke_attempts: row.revoke_attempts,
    revoke_error: row.revoke_error ?? "",
  };
}

const revokeSchema = z.object({
  selector: z.record(z.string(), z.unknown(), { message: "selector must be an object, e.g. {\"role\": \"ro\", \"metadata\": {\"app\": \"web\"}}" }).optional(),
  dry_run: zBool.optional(),
});

/**
 * The listing's query string arrives flat (`metadata.app=web`), and its unknown parameters are
 * refused rather than ignored: a misspelt filter must not silently widen the answer. A ZodObject
 * would make the dispatcher warn about the `metadata.*` keys, so this schema is a plain record and
 * the handler validates the names itself.
 */
const listSchema = z.record(z.string(), z.unknown());

export function leaseholdLeasePaths(core: Core): PathDefinition[] {
  /**
   * `path_prefix` follows `sys/leases/revoke-prefix`'s rule (whole path segments: `db/creds/ro`
   * never reaches `db/creds/ro2/...`; exactly a lease id names that lease).
   */
  const segmentPrefix = async (f: LeaseFilter): Promise<LeaseFilter> => {
    if (f.pathPrefix === undefined) return f;
    const r = await core.leases.resolvePrefix(f.pathPrefix);
    const out: LeaseFilter = { ...f };
    if (r.exact === undefined) out.pathPrefix = r.prefix;
    else {
      delete out.pathPrefix;
      out.id = r.exact;
    }
    return out;
  };

  const revokeBySelector = async (body: z.infer<typeof revokeSchema>): Promise<HandlerResponse> => {
    const filter = await segmentPrefix(parseSelector(body.selector ?? {}, SELECTOR_FIELDS, "selector"));
    if (isEmpty(filter)) throw new UserError("refusing to revoke every lease: give at least one selector field");
    const first = await core.leases.store.select(filter, "", ID_SAMPLE);
    if (body.dry_run) {
      const matched = await core.leases.store.count(filter);
      return { data: { dry_run: true, matched, revoked: 0, failed: 0, leases: first } };
    }
    const r = await core.leases.revokeMatching(filter);
    const data: Record<string, unknown> = { dry_run: false, matched: r.matched, revoked: r.revoked, failed: r.failed.length, leases: first };
    const warnings: string[] = [];
    if (r.failed.length) {
      data.errors_sample = r.failed.slice(0, ERROR_SAMPLE).map((f) => ({ lease_id: f.id, error: f.error ?? "" }));
      warnings.push(
        `${r.failed.length} of ${r.matched} matched leases could not be revoked; they stay scheduled and will be retried with backoff (see errors_sample; GET sys/leasehold/leases?state=revoking lists them)`,
      );
    }
    return warnings.length ? { data, warnings } : { data };
  };

  const list = async (query: Record<string, unknown>): Promise<HandlerResponse> => {
    const selector: Record<string, unknown> = {};
    const metadata: Record<string, string> = {};
    const page: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(query)) {
      if (k.startsWith("metadata.")) {
        const key = k.slice("metadata.".length);
        if (key === "") throw new UserError("metadata.<key>: the key must not be empty");
        metadata[key] = String(v);
      } else if ((PAGE_FIELDS as readonly string[]).includes(k)) page[k] = v;
      else selector[k] = v;
    }
    if (Object.keys(metadata).length) {
      if ("metadata" in selector) throw new UserError("give metadata as metadata.<key>=value query parameters");
      selector.metadata = metadata;
    } else if ("metadata" in selector) {
      throw new UserError("give metadata as metadata.<key>=value query parameters");
    }
    const allowed = [...SELECTOR_FIELDS.filter((f) => f !== "metadata"), ...LIST_ONLY_FIELDS, ...PAGE_FIELDS, "metadata.<key>"];
    const filterFields = [...SELECTOR_FIELDS, ...LIST_ONLY_FIELDS];
    const unknown = Object.keys(selector).filter((k) => !(filterFields as readonly string[]).includes(k));
    if (unknown.length) throw new UserError(`unknown query parameter${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")} (valid: ${allowed.join(", ")})`);
    const filter = await segmentPrefix(parseSelector(selector, filterFields, "query"));

    const p = z
      .object({
        after: z.string().optional(),
        limit: zInt.pipe(z.number().int().min(1, "limit must be at least 1").max(MAX_LIMIT, `limit must be at most ${MAX_LIMIT}`)).optional(),
      })
      .safeParse(page);
    if (!p.success) {
      const msgs = describeIssues(p.error.issues);
      throw new UserError(msgs[0] ?? "invalid pagination", msgs.slice(1));
    }
    const limit = p.data.limit ?? DEFAULT_LIMIT;
    const after = p.data.after ?? "";

    // One more than asked tells whether another page follows.
    const ids = await core.leases.store.select(filter, after, limit + 1);
    const pageIds = ids.slice(0, limit);
    const leases: Record<string, unknown>[] = [];
    for (const id of pageIds) {
      const row = await core.leases.store.get(id);
      if (row) leases.push(describeRow(row)); // revoked between the select and now: skip it
    }
    const total = await core.leases.store.count(filter);
    return { data: { leases, next_after: ids.length > limit ? pageIds[pageIds.length - 1] : null, total } };
  };

  return [
    {
      pattern: "leasehold/leases/revoke",
      operations: {
        update: {
          summary: "Revoke every lease matching a selector (dry_run: only count them)",
          schema: revokeSchema,
          handler: (r) => revokeBySelector(r.data as z.infer<typeof revokeSchema>),
        },
      },
    },
    {
      pattern: "leasehold/leases",
      operations: {
        read: {
          summary: "List leases matching filters, paginated by lease id",
          schema: listSchema,
          handler: (r) => list(r.data as Record<string, unknown>),
        },
      },
    },
  ];
}
