import { z } from "zod";
import { NotFound, PermissionDenied, UserError, parseDuration, zBool, zStringMap } from "../../sdk/index.js";
import type { HandlerRequest, PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";
import { normaliseMountPath, type LiveMount, type MountEntry } from "../mounts.js";
import { currentRequest } from "../request-context.js";
import type { TokenEntry } from "../tokens.js";

/**
 * A mount TTL as Vault takes it: a duration, or `"system"` for the system's (stored as 0). Kept
 * raw here: an empty value means "unset" at enable and "unchanged" at tune.
 */
const ttlInput = z.union([z.number(), z.string()]);

/** `undefined` for an empty value, 0 for "system", else seconds; `what` names it in errors. */
function parseTtl(raw: number | string | null | undefined, what: (message: string) => string): number | undefined {
  if (raw === undefined || raw === null || raw === "") return undefined;
  if (typeof raw === "string" && raw.trim() === "system") return 0;
  try {
    return parseDuration(raw, "ttl");
  } catch (e) {
    throw new UserError(what((e as Error).message.replace(/^ttl: /, "")));
  }
}

/** Vault's aliases: `kv-v1` and `kv-v2` are `kv` with the version option set. */
const KV_ALIASES = new Map([
  ["kv-v1", "1"],
  ["kv-v2", "2"],
]);

const mountConfigSchema = z
  .object({
    default_lease_ttl: ttlInput.nullish(),
    max_lease_ttl: ttlInput.nullish(),
    force_no_cache: zBool.nullish(),
    audit_non_hmac_request_keys: z.unknown().nullish(),
    audit_non_hmac_response_keys: z.unknown().nullish(),
    listing_visibility: z.string().nullish(),
    passthrough_request_headers: z.unknown().nullish(),
  })
  .nullish();

// JSON null is "not given" throughout, as Vault reads it (Terraform and some SDKs send nulls).
const enableSchema = z.object({
  type: z.string().min(1, "type is required (e.g. kv, database, pki, approle)"),
  description: z.string().nullish(),
  config: mountConfigSchema,
  options: zStringMap.nullish(),
  local: zBool.nullish(),
  seal_wrap: zBool.nullish(),
  external_entropy_access: zBool.nullish(),
  plugin_name: z.string().nullish(),
  plugin_version: z.string().nullish(),
});

const tuneSchema = z.object({
  default_lease_ttl: ttlInput.nullish(),
  max_lease_ttl: ttlInput.nullish(),
  description: z.string().nullish(),
  options: zStringMap.nullish(),
  listing_visibility: z.string().nullish(),
  audit_non_hmac_request_keys: z.unknown().nullish(),
  audit_non_hmac_response_keys: z.unknown().nullish(),
  passthrough_request_headers: z.unknown().nullish(),
});

/** Vault's representation of a mount in `sys/mounts` and `sys/auth`. */
export function describeMount(e: MountEntry): Record<string, unknown> {
  return {
    type: e.type,
    description: e.description,
    accessor: e.accessor,
    uuid: e.uuid,
    config: { default_lease_ttl: e.config.default_lease_ttl, max_lease_ttl: e.config.max_lease_ttl, force_no_cache: false },
    options: Object.keys(e.options).length ? e.options : null,
    local: e.local,
    seal_wrap: e.seal_wrap,
    external_entropy_access: false,
    plugin_version: "",
    running_plugin_version: "",
    running_sha256: "",
  };
}

function mountPaths(core: Core, kind: "secrets" | "auth", base: string): PathDefinition[] {
  const full = (p: string) => (kind === "auth" ? "auth/" : "") + normaliseMountPath(p);
  /**
   * `sys/mounts/auth/<name>/tune` reaches an auth method, as in Vault (kept for compatibility).
   * It then needs what `sys/auth/<name>/tune` needs: sudo (`sys/auth/*` is a root path), here on
   * the path requested. Vault itself asks no sudo on this alias; leasehold closes that way round.
   */
  const checkTuneReach = (req: HandlerRequest, m: LiveMount | undefined): void => {
    if (kind === "secrets" && m?.kind === "auth" && !currentRequest(req).sudo) {
      throw new PermissionDenied();
    }
  };
  const shown = (e: MountEntry) => (kind === "auth" ? e.path.slice("auth/".length) : e.path);
  const tuneView = (e: MountEntry) => {
    const ttls = core.mounts.effectiveTtls(e);
    return {
      default_lease_ttl: ttls.defaultLeaseTtl,
      max_lease_ttl: ttls.maxLeaseTtl,
      force_no_cache: false,
      description: e.description,
      // As Vault: present once the mount has options.
      ...(Object.keys(e.options).length ? { options: e.options } : {}),
    };
  };
  return [
    {
      pattern: base,
      operations: {
        read: {
          handler: async () => ({
            data: Object.fromEntries(core.mounts.list(kind).map((e) => [shown(e), describeMount(e)])),
            copyDataToTopLevel: true,
          }),
        },
      },
    },
    {
      pattern: `${base}/(?<path>.+)/tune`,
      operations: {
        read: {
          handler: async (req) => {
            const m = core.mounts.get(full(req.params.path));
            if (!m) throw new UserError(`cannot fetch sysview for path "${req.params.path}"`);
            checkTuneReach(req, m);
            return { data: tuneView(m.entry), copyDataToTopLevel: true };
          },
        },
        update: {
          schema: tuneSchema,
          handler: async (req) => {
            const d = req.data as z.infer<typeof tuneSchema>;
            checkTuneReach(req, core.mounts.get(full(req.params.path)));
            const warnings = await core.mounts.tune(full(req.params.path), {
              default_lease_ttl: parseTtl(d.default_lease_ttl, (m) => `unable to parse default_lease_ttl: ${m}`),
              max_lease_ttl: parseTtl(d.max_lease_ttl, (m) => `unable to parse max_lease_ttl: ${m}`),
              description: d.description ?? undefined,
              options: d.options ?? undefined,
            });
            if (warnings.length) return { data: null, warnings };
          },
        },
      },
    },
    {
      pattern: `${base}/(?<path>.+)`,
      operations: {
        read: {
          handler: async (req) => {
            const m = core.mounts.get(full(req.params.path));
            if (!m || m.kind !== kind) throw new NotFound(`no mount at ${req.params.path}`);
            return { data: describeMount(m.entry), copyDataToTopLevel: true };
          },
        },
        update: {
          schema: enableSchema,
          handler: async (req) => {
            const d = req.data as z.infer<typeof enableSchema>;
            const options = { ...(d.options ?? {}) };
            let type = d.type === "plugin" && d.plugin_name ? d.plugin_name : d.type;
            const aliasedVersion = kind === "secrets" ? KV_ALIASES.get(type) : undefined;
            if (aliasedVersion) {
              options.version = aliasedVersion;
              type = "kv";
            } else if (type !== "kv" && (options.version ?? "") !== "") {
              throw new UserError(kind === "secrets" ? `secrets engine ${JSON.stringify(type)} does not allow setting a version` : `auth method ${JSON.stringify(type)} does not allow setting a version`);
            }
            await core.mounts.enable(kind, full(req.params.path), {
              type,
              description: d.description ?? undefined,
              config: {
                default_lease_ttl: parseTtl(d.config?.default_lease_ttl, (m) => `unable to parse default TTL of ${String(d.config?.default_lease_ttl)}: ${m}`),
                max_lease_ttl: parseTtl(d.config?.max_lease_ttl, (m) => `unable to parse max TTL of ${String(d.config?.max_lease_ttl)}: ${m}`),
              },
              options,
              local: d.local ?? undefined,
              seal_wrap: d.seal_wrap ?? undefined,
            });
          },
        },
        delete: {
          handler: async (req) => {
            const path = full(req.params.path);
            const m = core.mounts.get(path);
            if (!m) return; // Vault answers 204 for a path that is not mounted
            // sys/mounts only reaches secrets engines (Vault: "cannot unmount" under auth/): an auth
            // method is disabled at sys/auth/<name>, which needs sudo and revokes the tokens it issued.
            if (m.kind !== kind) throw new UserError(`cannot unmount ${JSON.stringify(path)}: auth methods are disabled with DELETE sys/auth/${path.slice("auth/".length, -1)}`);
            // Checked before anything is revoked: refusing after revoking would still have revoked.
            if (m.entry.builtin) throw new UserError(`cannot disable the built-in mount ${path}`);
            // Leases first (tokens of an auth mount are leases too); if any fails the mount stays.
            await core.revokeMountLeases(path);
            if (kind === "auth") await core.revokeTokensOfAuthMount(path);
            await core.mounts.disable(path);
          },
        },
      },
    },
  ];
}

export function mountsPaths(core: Core): PathDefinition[] {
  return [
    ...mountPaths(core, "secrets", "mounts"),
    ...mountPaths(core, "auth", "auth"),
    {
      pattern: "internal/ui/mounts",
      operations: {
        read: {
          // As Vault: a token sees the mounts it can do something under (root sees all).
          handler: async (req) => {
            const visible = await mountVisibility(core, currentRequest(req).tokenEntry);
            return {
              data: {
                secret: Object.fromEntries(core.mounts.list("secrets").filter((e) => visible(e.path)).map((e) => [e.path, describeMount(e)])),
                auth: Object.fromEntries(core.mounts.list("auth").filter((e) => visible(e.path)).map((e) => [e.path.slice(5), describeMount(e)])),
              },
            };
          },
        },
      },
    },
    {
      pattern: "internal/ui/mounts/(?<path>.+)",
      operations: {
        read: {
          handler: async (req) => {
            const target = req.params.path.replace(/^\/+/, "");
            const m = core.mounts.resolve(target.endsWith("/") ? target : target + "/") ?? core.mounts.resolve(target);
            const visible = await mountVisibility(core, currentRequest(req).tokenEntry);
            if (!m || m.entry.builtin || !visible(m.entry.path)) {
              throw new PermissionDenied(`preflight capability check returned 403, please ensure client's policies grant access to path "${target}"`);
            }
            return { data: { ...describeMount(m.entry), path: m.entry.path.replace(/^auth\//, "") } };
          },
        },
      },
    },
  ];
}

/** Which mount paths a token may learn about: root all; others those it can do something under. */
async function mountVisibility(core: Core, entry: TokenEntry | undefined): Promise<(mountPath: string) => boolean> {
  if (!entry) return () => false;
  if (entry.policies.includes("root")) return () => true;
  const acl = await core.policies.aclFor(entry.policies);
  return (mountPath) => acl.hasAccessUnder(mountPath);
}
