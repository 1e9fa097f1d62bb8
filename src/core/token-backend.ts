import { z } from "zod";
import { NotFound, PermissionDenied, UserError, parseCidrs, zBool, zCommaList, zDuration, zInt, zName, zStringMap } from "../sdk/index.js";
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

/** Policies as sanitised, without adding `default` and without folding `root` (for subset checks). */
function policySet(policies: string[]): Set<string> {
  return new Set(policies.map((p) => p.trim().toLowerCase()).filter(Boolean));
}

/**
 * The child token's final policies (Vault's `handleCreateCommon` policy switch). The caller then
 * applies the root rule on the result.
 */
function childPolicies(d: CreateData, parentPolicies: string[], role: TokenRole | undefined, isSudo: boolean): string[] {
  const noDefault = !!d.no_default_policy || !!role?.token_no_default_policy;
  const requested = d.policies ?? [];
  let policies: string[];
  if (role && (role.allowed_policies.length || role.disallowed_policies.length)) {
    // The role decides, disjoint from the parent's policies.
    const addDefault = !noDefault && !role.disallowed_policies.includes("default");
    let final = requested.length ? sanitisePolicies(requested, addDefault) : [];
    if (role.allowed_policies.length) {
      const allowed = sanitisePolicies(role.allowed_policies, addDefault);
      if (!final.length) final = allowed;
      else {
        const bad = final.filter((p) => !allowed.includes(p));
        if (bad.length) throw new UserError(`token policies (${bad.join(", ")}) must be subset of the role's allowed policies (${allowed.join(", ")})`);
      }
    } else if (!final.length) {
      final = sanitisePolicies(parentPolicies, addDefault);
    }
    const disallowed = policySet(role.disallowed_policies);
    const refused = final.find((p) => disallowed.has(p));
    if (refused) throw new UserError(`token policy "${refused}" is disallowed by this role`);
    policies = final;
  } else if (!requested.length) {
    // Inherit the parent's policies; "default" only if the parent has it.
    policies = sanitisePolicies(parentPolicies, false);
  } else if (!isSudo) {
    const parentSet = policySet(parentPolicies);
    const notHeld = [...policySet(requested)].filter((p) => !parentSet.has(p));
    if (notHeld.length) throw new UserError(`child policies must be subset of parent (not held: ${notHeld.join(", ")})`);
    policies = sanitisePolicies(requested, !d.no_default_policy && parentSet.has("default"));
  } else {
    policies = sanitisePolicies(requested, !d.no_default_policy);
  }
  if (noDefault) policies = policies.filter((p) => p !== "default");
  return policies;
}

function requireCaller(req: HandlerRequest): { token: string; entry: TokenEntry; sudo: boolean } {
  const ctx = currentRequest(req);
  if (!ctx.tokenEntry || !ctx.token) throw new PermissionDenied();
  return { token: ctx.token, entry: ctx.tokenEntry, sudo: ctx.sudo };
}

/** The `auth/token/` backend: create, lookup, renew, revoke, roles, accessors. */
export function tokenBackend(core: Core): Backend {
  const rolesView = () => core.barrier.view("sys/token-roles/");

  /**
   * Vault's `handleCreateCommon` for `create`, `create-orphan` and `create/:role`. The policy rules
   * run on the final policy set: a role with `allowed_policies`/`disallowed_policies` decides alone;
   * otherwise the child's policies must be a subset of the parent's unless the caller has sudo on
   * the create path; and only a parent holding `root` may create a token holding `root`.
   */
  async function createToken(req: HandlerRequest, path: string, opts: { orphanPath: boolean; roleName?: string }): Promise<HandlerResponse> {
    const d = req.data as CreateData;
    const caller = requireCaller(req);
    const parent = caller.entry;
    // A use-limited token would escape its count through children (Vault's rule).
    if (parent.numUses !== 0) throw new UserError("restricted use token cannot generate child tokens");
    const isSudo = parent.policies.includes("root") || caller.sudo;
    const role = opts.roleName ? await rolesView().getJSON<TokenRole>(opts.roleName) : undefined;
    if (opts.roleName && !role) throw new UserError(`unknown role ${opts.roleName}`);
    if (d.id !== undefined && !isSudo) throw new UserError("root or sudo privileges required to specify token id");
    if (d.no_parent && !role && !isSudo) throw new UserError("root or sudo privileges required to create orphan token");
    if (d.period && !isSudo) throw new UserError("root or sudo privileges required to create periodic token");
    const warnings: string[] = [];

    const policies = childPolicies(d, parent.policies, role, isSudo);
    if (policies.includes("root") && !parent.policies.includes("root")) throw new UserError("root tokens may not be created without parent token being root");

    // A role's limits bind the caller: it may ask for less, never for more.
    let renewable = d.renewable ?? true;
    if (role && !role.renewable) renewable = false;
    let numUses = d.num_uses ?? 0;
    if (role && role.token_num_uses > 0 && (numUses === 0 || role.token_num_uses < numUses)) numUses = role.token_num_uses;
    let explicitMax = d.explicit_max_ttl ?? 0;
    let period = d.period ?? 0;
    if (role?.token_explicit_max_ttl) {
      if (explicitMax === 0) explicitMax = role.token_explicit_max_ttl;
      else {
        explicitMax = Math.min(explicitMax, role.token_explicit_max_ttl);
        warnings.push(`Explicit max TTL specified both during creation call and in role; using the lesser value of ${explicitMax} seconds`);
      }
    }
    if (role?.token_period) {
      if (period === 0) period = role.token_period;
      else {
        period = Math.min(period, role.token_period);
        warnings.push(`Period specified both during creation call and in role; using the lesser value of ${period} seconds`);
      }
    }
    const orphan = role ? role.orphan : opts.orphanPath || !!d.no_parent;
    // A child of a CIDR-bound parent stays bound; a role's own binding replaces it (Vault).
    const boundCidrs = role ? role.token_bound_cidrs : orphan ? [] : parent.boundCidrs;

    const mount = core.mounts.get("auth/token/")!;
    const ttls = mount.info.config;
    const requestedTtl = d.ttl ?? d.lease ?? 0;
    const { token, entry, warnings: ttlWarnings } = await core.tokens.create({
      id: d.id,
      policies,
      meta: d.meta,
      displayName: displayNameOf(d.display_name),
      numUses,
      ttl: requestedTtl,
      defaultTtl: ttls.defaultLeaseTtl,
      explicitMaxTtl: explicitMax,
      period,
      renewable,
      path: role ? `auth/token/create/${role.name}${role.path_suffix ? `/${role.path_suffix}` : ""}` : path,
      authMount: "auth/token/",
      role: role?.name,
      parent: orphan ? null : parent,
      mountMaxTtl: ttls.maxLeaseTtl,
      boundCidrs,
      creatorExpires: parent.expireTime !== null,
    });
    // An orphan is not in its creator's tree: if the creator was revoked meanwhile, take it back.
    if (orphan && !(await core.tokens.stillUsable(parent.hmac))) {
      await core.tokens.revokeTree(entry);
      throw new PermissionDenied();
    }
    core.metrics.tokensCreated.inc({ auth_mount: "auth/token/" });
    warnings.push(...ttlWarnings);
    return { issuedAuth: authBlock(token, entry), warnings };
  }

  async function renew(entry: TokenEntry, token: string, increment: number, connection: ConnectionInfo): Promise<HandlerResponse> {
    // The auth method that issued the token may re-check the login (e.g. the client certificate).
    const issuer = core.mounts.get(entry.authMount)?.backend;
    if (issuer?.renewAuth) await issuer.renewAuth({ metadata: entry.meta ?? {}, policies: entry.policies, displayName: entry.displayName }, connection);
    const { entry: renewed, ttl, warnings } = await core.tokens.renew(entry, increment);
    const auth = authBlock(token, renewed);
    auth.lease_duration = ttl;
    return { issuedAuth: auth, warnings };
  }

  const byToken = async (token: string): Promise<TokenEntry> => {
    const e = await core.tokens.lookup(token);
    if (!e) throw new PermissionDenied("bad token");
    return e;
  };
  /** Revocation reaches a token even while it is marked revocation-pending (an interrupted walk). */
  const revocableByAccessor = async (accessor: string): Promise<TokenEntry> => {
    const e = await core.tokens.getByAccessor(accessor);
    if (!e) throw new UserError("invalid accessor");
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

  /** The running `tidy`, if any. */
  let tidying: Promise<void> | undefined;
  const paths: PathDefinition[] = [
    // `role_name` is not a field of `create`: a role is reachable only through `create/:role_name`, whose ACL applies.
    { pattern: "create", operations: { update: { schema: createSchema, handler: (r) => createToken(r, "auth/token/create", { orphanPath: false }) } } },
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
    { pattern: "revoke", operations: { update: { schema: tokenField, handler: async (r) => { const e = await core.tokens.getByToken((r.data as { token: string }).token); if (e) await core.tokens.revokeTree(e); } } } },
    { pattern: "revoke-accessor", operations: { update: { schema: accessorField, handler: async (r) => { await core.tokens.revokeTree(await revocableByAccessor((r.data as { accessor: string }).accessor)); } } } },
    { pattern: "revoke-orphan", operations: { update: { schema: tokenField, handler: async (r) => { const e = await core.tokens.lookup((r.data as { token: string }).token); if (e) await core.tokens.revokeOrphan(e); } } } },
    {
      // Vault answers 202 at once and tidies in the background; a second call meanwhile only warns.
      pattern: "tidy",
      operations: {
        update: {
          handler: async () => {
            if (tidying) return { warnings: ["Tidy operation already in progress."] };
            tidying = core.tokens
              .tidy()
              .then((counts) => core.logger.info(counts, "token tidy done"))
              .then(async () => {
                const leases = await core.tidyTokenLeases();
                if (leases) core.logger.info({ leases }, "token tidy dropped leases of missing tokens");
              })
              .catch((err: unknown) => core.logger.error({ err }, "token tidy failed"))
              .finally(() => {
                tidying = undefined;
              });
            return { status: 202, warnings: ["Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."] };
          },
        },
      },
    },
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
