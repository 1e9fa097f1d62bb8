import { z } from "zod";
import { NotFound, PermissionDenied, UserError, formatDuration, parseCidrs, zBool, zCommaList, zDuration, zInt, zName, zStringMap } from "../sdk/index.js";
import type { Backend, ConnectionInfo, HandlerRequest, HandlerResponse, PathDefinition } from "../sdk/types.js";
import type { Core } from "./core.js";
import { authBlock } from "./core.js";
import { currentRequest } from "./request-context.js";
import { TokenStore, type TokenEntry } from "./tokens.js";

/** A token role (`auth/token/roles/:name`), Vault's fields. */
interface TokenRole {
  name: string;
  allowed_policies: string[];
  disallowed_policies: string[];
  orphan: boolean;
  renewable: boolean;
  path_suffix: string;
  token_explicit_max_ttl: number;
  token_period: number;
  token_no_default_policy: boolean;
  token_num_uses: number;
  token_bound_cidrs: string[];
  token_type: string;
}

const createSchema = z.object({
  id: z.string().optional(),
  role_name: z.string().optional(),
  policies: zCommaList.optional(),
  meta: zStringMap.optional(),
  no_parent: zBool.optional(),
  no_default_policy: zBool.optional(),
  renewable: zBool.optional(),
  ttl: zDuration.optional(),
  lease: zDuration.optional(),
  explicit_max_ttl: zDuration.optional(),
  display_name: z.string().max(256).optional(),
  num_uses: zInt.refine((n) => n >= 0, "num_uses must be zero or positive").optional(),
  period: zDuration.optional(),
  type: z.enum(["service", "default"], { message: "only service tokens are supported" }).optional(),
  entity_alias: z.string().optional(),
});
type CreateData = z.infer<typeof createSchema>;

const roleSchema = z.object({
  allowed_policies: zCommaList.optional(),
  disallowed_policies: zCommaList.optional(),
  orphan: zBool.optional(),
  renewable: zBool.optional(),
  path_suffix: z.string().regex(/^[A-Za-z0-9_.-]*$/, "path_suffix may contain only letters, digits, '_', '-', '.'").optional(),
  token_explicit_max_ttl: zDuration.optional(),
  explicit_max_ttl: zDuration.optional(),
  token_period: zDuration.optional(),
  period: zDuration.optional(),
  token_no_default_policy: zBool.optional(),
  token_num_uses: zInt.optional(),
  token_bound_cidrs: zCommaList.optional(),
  token_type: z.enum(["service", "default", "default-service"]).optional(),
});

/** Vault sanitises display names: `token-` + the name with unsafe characters replaced by `-`. */
function displayNameOf(name: string | undefined): string {
  if (!name) return "token";
  return `token-${name.replace(/[^A-Za-z0-9_-]/g, "-")}`.slice(0, 256);
}

/** Vault's policy sanitising: dedupe, add `default` unless told not to; `root` stands alone. */
function sanitisePolicies(policies: string[], addDefault: boolean): string[] {
  const set = new Set(policies.map((p) => p.trim().toLowerCase()).filter(Boolean));
  if (set.has("root")) return ["root"];
  if (addDefault) set.add("default");
  return [...set].sort();
}

function requireCaller(req: HandlerRequest): { token: string; entry: TokenEntry; sudo: boolean } {
  const ctx = currentRequest(req);
  if (!ctx.tokenEntry || !ctx.token) throw new PermissionDenied();
  return { token: ctx.token, entry: ctx.tokenEntry, sudo: ctx.sudo };
}

/** The `auth/token/` backend: create, lookup, renew, revoke, roles, accessors. */
export function tokenBackend(core: Core): Backend {
  const rolesView = () => core.barrier.view("sys/token-roles/");

  async function createToken(req: HandlerRequest, path: string, opts: { orphanPath: boolean; roleName?: string }): Promise<HandlerResponse> {
    const d = req.data as CreateData;
    const caller = requireCaller(req);
    const parent = caller.entry;
    const privileged = parent.policies.includes("root") || caller.sudo;
    const role = opts.roleName ? await rolesView().getJSON<TokenRole>(opts.roleName) : undefined;
    if (opts.roleName && !role) throw new UserError(`unknown role ${opts.roleName}`);
    if (d.id !== undefined && !privileged) throw new UserError("root or sudo privileges required to specify token id");
    if (d.no_parent && !privileged) throw new UserError("root or sudo privileges required to create orphan token");
    if (d.period && !privileged && !role) throw new UserError("root or sudo privileges required to create periodic token");

    let requested = d.policies ?? [];
    const addDefault = !(d.no_default_policy || role?.token_no_default_policy);
    if (role) {
      if (!requested.length) requested = role.allowed_policies.length ? role.allowed_policies : parent.policies.filter((p) => p !== "root");
      const allowed = new Set([...role.allowed_policies, "default"]);
      const bad = requested.filter((p) => (role.allowed_policies.length && !allowed.has(p)) || role.disallowed_policies.includes(p));
      if (bad.length) throw new UserError(`token policies (${bad.join(", ")}) must be subset of the role's allowed policies`);
    } else if (!requested.length) {
      requested = parent.policies;
    } else if (!parent.policies.includes("root")) {
      const parentSet = new Set([...parent.policies, "default"]);
      const bad = requested.filter((p) => !parentSet.has(p.toLowerCase()));
      if (bad.length) throw new UserError(`child policies must be subset of parent (not held: ${bad.join(", ")})`);
    }
    const policies = sanitisePolicies(requested, addDefault);
    const explicitMax = [d.explicit_max_ttl, role?.token_explicit_max_ttl].filter((x): x is number => !!x);
    const mount = core.mounts.get("auth/token/")!;
    const ttls = mount.info.config;
    const { token, entry } = await core.tokens.create({
      id: d.id,
      policies,
      meta: d.meta,
      displayName: displayNameOf(d.display_name),
      numUses: d.num_uses ?? role?.token_num_uses ?? 0,
      ttl: d.ttl ?? d.lease ?? ttls.defaultLeaseTtl,
      explicitMaxTtl: explicitMax.length ? Math.min(...explicitMax) : 0,
      period: d.period ?? role?.token_period ?? 0,
      renewable: d.renewable ?? role?.renewable ?? true,
      path: role ? `auth/token/create/${role.name}${role.path_suffix ? `/${role.path_suffix}` : ""}` : path,
      authMount: "auth/token/",
      role: role?.name,
      parent: opts.orphanPath || d.no_parent || role?.orphan ? null : parent,
      mountMaxTtl: ttls.maxLeaseTtl,
      boundCidrs: role?.token_bound_cidrs,
    });
    core.metrics.tokensCreated.inc({ auth_mount: "auth/token/" });
    const warnings: string[] = [];
    if ((d.ttl ?? 0) > entry.creationTtl && entry.creationTtl > 0) warnings.push(`TTL of "${formatDuration(d.ttl!)}" exceeded the effective max_ttl of "${formatDuration(entry.creationTtl)}"; TTL value is capped accordingly`);
    return { issuedAuth: authBlock(token, entry), warnings };
  }

  async function renew(entry: TokenEntry, token: string, increment: number, connection: ConnectionInfo): Promise<HandlerResponse> {
    // The auth method that issued the token may re-check the login (e.g. the client certificate).
    const issuer = core.mounts.get(entry.authMount)?.backend;
    if (issuer?.renewAuth) await issuer.renewAuth({ metadata: entry.meta ?? {}, policies: entry.policies, displayName: entry.displayName }, connection);
    const { entry: renewed, ttl, capped } = await core.tokens.renew(entry, increment);
    const auth = authBlock(token, renewed);
    auth.lease_duration = ttl;
    return { issuedAuth: auth, warnings: capped ? [`TTL of "${formatDuration(increment || renewed.creationTtl)}" exceeded the effective max_ttl of "${formatDuration(ttl)}"; TTL value is capped accordingly`] : [] };
  }

  const byToken = async (token: string): Promise<TokenEntry> => {
    const e = await core.tokens.lookup(token);
    if (!e) throw new PermissionDenied("bad token");
    return e;
  };
  const byAccessor = async (accessor: string): Promise<TokenEntry> => {
    const e = await core.tokens.lookupAccessor(accessor);
    if (!e) throw new UserError("invalid accessor");
    return e;
  };
  const tokenField = z.object({ token: z.string().min(1, "token is required") });
  const accessorField = z.object({ accessor: z.string().min(1, "accessor is required") });
  const incrementField = { increment: zDuration.optional() };

  const paths: PathDefinition[] = [
    { pattern: "create", operations: { update: { schema: createSchema, handler: (r) => createToken(r, "auth/token/create", { orphanPath: false, roleName: (r.data as CreateData).role_name }) } } },
    { pattern: "create-orphan", operations: { update: { schema: createSchema, handler: (r) => createToken(r, "auth/token/create-orphan", { orphanPath: true }) } } },
    { pattern: "create/(?<role>[^/]+)", operations: { update: { schema: createSchema, handler: (r) => createToken(r, `auth/token/create/${r.params.role}`, { orphanPath: false, roleName: r.params.role }) } } },
    {
      pattern: "lookup-self",
      operations: {
        read: { handler: async (r) => { const c = requireCaller(r); return { data: TokenStore.describe(c.entry, c.token) }; } },
        update: { handler: async (r) => { const c = requireCaller(r); return { data: TokenStore.describe(c.entry, c.token) }; } },
      },
    },
    {
      pattern: "lookup",
      operations: {
        update: { schema: tokenField, handler: async (r) => { const t = (r.data as { token: string }).token; return { data: TokenStore.describe(await byToken(t), t) }; } },
        read: { schema: z.object({ token: z.string().optional() }), handler: async (r) => { const t = (r.data as { token?: string }).token; if (!t) throw new UserError("token is required: use POST auth/token/lookup with {\"token\": ...}"); return { data: TokenStore.describe(await byToken(t), t) }; } },
      },
    },
    { pattern: "lookup-accessor", operations: { update: { schema: accessorField, handler: async (r) => ({ data: TokenStore.describe(await byAccessor((r.data as { accessor: string }).accessor)) }) } } },
    { pattern: "renew-self", operations: { update: { schema: z.object(incrementField), handler: async (r) => { const c = requireCaller(r); return renew(c.entry, c.token, (r.data as { increment?: number }).increment ?? 0, r.connection); } } } },
    { pattern: "renew", operations: { update: { schema: z.object({ token: z.string().min(1, "token is required"), ...incrementField }), handler: async (r) => { const d = r.data as { token: string; increment?: number }; return renew(await byToken(d.token), d.token, d.increment ?? 0, r.connection); } } } },
    {
      pattern: "renew-accessor",
      operations: { update: { schema: z.object({ accessor: z.string().min(1), ...incrementField }), handler: async (r) => { const d = r.data as { accessor: string; increment?: number }; const resp = await renew(await byAccessor(d.accessor), "", d.increment ?? 0, r.connection); resp.issuedAuth!.client_token = ""; return resp; } } },
    },
    { pattern: "revoke-self", operations: { update: { handler: async (r) => { await core.tokens.revokeTree(requireCaller(r).entry); } } } },
    { pattern: "revoke", operations: { update: { schema: tokenField, handler: async (r) => { const e = await core.tokens.lookup((r.data as { token: string }).token); if (e) await core.tokens.revokeTree(e); } } } },
    { pattern: "revoke-accessor", operations: { update: { schema: accessorField, handler: async (r) => { await core.tokens.revokeTree(await byAccessor((r.data as { accessor: string }).accessor)); } } } },
    { pattern: "revoke-orphan", operations: { update: { schema: tokenField, handler: async (r) => { const e = await core.tokens.lookup((r.data as { token: string }).token); if (e) await core.tokens.revokeOrphan(e); } } } },
    {
      pattern: "accessors/?",
      operations: { list: { handler: async () => { const keys = await core.tokens.listAccessors(); if (!keys.length) throw new NotFound(); return { data: { keys } }; } } },
    },
    {
      pattern: "roles/?",
      operations: { list: { handler: async () => { const keys = (await rolesView().list("")).filter((k) => !k.endsWith("/")); if (!keys.length) throw new NotFound(); return { data: { keys } }; } } },
    },
    {
      pattern: "roles/(?<name>[^/]+)",
      existenceCheck: async (r) => (await rolesView().get(r.params.name)) !== undefined,
      operations: {
        read: {
          handler: async (r) => {
            const role = await rolesView().getJSON<TokenRole>(r.params.name);
            if (!role) throw new NotFound();
            return { data: { ...role, explicit_max_ttl: role.token_explicit_max_ttl, period: role.token_period, allowed_entity_aliases: null, token_no_default_policy: role.token_no_default_policy } };
          },
        },
        update: {
          schema: roleSchema,
          handler: async (r) => {
            const checked = zName.safeParse(r.params.name);
            if (!checked.success) throw new UserError(`invalid role name ${JSON.stringify(r.params.name)}: ${checked.error.issues[0]?.message ?? "invalid"}`);
            const name = checked.data;
            const d = r.data as z.infer<typeof roleSchema>;
            const view = rolesView();
            await view.withLock(name, async () => {
              const cur = (await view.getJSON<TokenRole>(name)) ?? {
                name, allowed_policies: [], disallowed_policies: [], orphan: false, renewable: true, path_suffix: "",
                token_explicit_max_ttl: 0, token_period: 0, token_no_default_policy: false, token_num_uses: 0, token_bound_cidrs: [], token_type: "service",
              };
              const next: TokenRole = {
                ...cur,
                allowed_policies: d.allowed_policies ?? cur.allowed_policies,
                disallowed_policies: d.disallowed_policies ?? cur.disallowed_policies,
                orphan: d.orphan ?? cur.orphan,
                renewable: d.renewable ?? cur.renewable,
                path_suffix: d.path_suffix ?? cur.path_suffix,
                token_explicit_max_ttl: d.token_explicit_max_ttl ?? d.explicit_max_ttl ?? cur.token_explicit_max_ttl,
                token_period: d.token_period ?? d.period ?? cur.token_period,
                token_no_default_policy: d.token_no_default_policy ?? cur.token_no_default_policy,
                token_num_uses: d.token_num_uses ?? cur.token_num_uses,
                token_bound_cidrs: d.token_bound_cidrs ?? cur.token_bound_cidrs,
                token_type: "service",
              };
              parseCidrs(next.token_bound_cidrs, "token_bound_cidrs");
              await view.putJSON(name, next);
            });
          },
        },
        delete: { handler: async (r) => { await rolesView().delete(r.params.name); } },
      },
    },
  ];
  return { paths, rootPaths: ["revoke-orphan", "accessors*"] };
}
