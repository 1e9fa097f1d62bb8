import { z } from "zod";
import { NotFound, UserError, zBool, zInt } from "../../sdk/index.js";
import type { PathDefinition } from "../../sdk/types.js";
import type { Core } from "../core.js";

/**
 * `sys/quotas/lease-count/:name` (Vault Enterprise's API): `POST {path, max_leases, inheritable}`,
 * `GET` → `{name, path, type: "lease-count", max_leases, counts, inheritable, role}`, `DELETE`,
 * and `LIST sys/quotas/lease-count` → `{keys}` (404 when there is none). See `../quotas.ts`.
 */

const quotaBody = z.object({
  path: z.string().optional(),
  max_leases: zInt.optional(),
  inheritable: zBool.optional(),
  role: z.string().optional(),
  type: z.string().optional(),
});

/** Quota names are a single path segment. */
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function checkName(name: string): string {
  if (!NAME.test(name)) throw new UserError(`invalid quota name ${JSON.stringify(name)}: use letters, digits, '_', '-' and '.' (at most 128)`);
  return name;
}

/**
 * Normalises and checks a quota path: "" (global), a mount (`tl` or `tl/`, stored as `tl/`), a
 * path inside a mount (`tl/creds/app`), or one ending in a glob (`tl/creds/app-*`). The mount must exist.
 */
function quotaPath(core: Core, raw: string): { path: string; warnings: string[] } {
  const path = raw.trim().replace(/^\/+/, "");
  if (path === "") return { path, warnings: [] };
  if (path.includes("*") && (path.indexOf("*") !== path.length - 1 || path.length === 1)) {
    throw new UserError(`invalid path ${JSON.stringify(raw)}: a glob (*) may only end a path inside a mount, such as "database/creds/app-*"`);
  }
  const base = path.endsWith("*") ? path.slice(0, -1) : path;
  if (base.split("/").some((s, i, all) => (s === "" && i < all.length - 1) || s === "." || s === "..")) {
    throw new UserError(`invalid path ${JSON.stringify(raw)}: empty, '.' and '..' segments are not allowed`);
  }
  const mount = core.mounts.resolve(base);
  if (!mount) throw new UserError(`invalid path ${JSON.stringify(raw)}: no mount at that path (quotas apply to a mount or to paths inside one; an empty path is global)`);
  const warnings: string[] = [];
  if (mount.entry.path.startsWith("auth/")) {
    warnings.push(`${mount.entry.path} is an auth mount: leasehold does not count token leases against lease count quotas, so this quota limits nothing`);
  }
  // The mount itself is stored with its trailing slash, as Vault does.
  const exactMount = !path.endsWith("*") && `${path.replace(/\/+$/, "")}/` === mount.entry.path;
  return { path: exactMount ? mount.entry.path : path, warnings };
}

export function quotaPaths(core: Core): PathDefinition[] {
  return [
    {
      pattern: "quotas/lease-count/?",
      operations: {
        list: {
          handler: async () => {
            const keys = core.quotas.names();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "quotas/lease-count/(?<name>[^/]+)",
      existenceCheck: async (req) => core.quotas.get(req.params.name) !== undefined,
      operations: {
        read: {
          handler: async (req) => {
            const q = core.quotas.get(req.params.name);
            if (!q) throw new NotFound();
            return { data: { ...q } };
          },
        },
        create: {
          schema: quotaBody,
          handler: async (req) => {
            const name = checkName(req.params.name);
            const d = req.data as z.infer<typeof quotaBody>;
            const existing = core.quotas.get(name);
            if (d.type !== undefined && d.type !== "lease-count") throw new UserError(`type must be "lease-count", got ${JSON.stringify(d.type)}`);
            if (d.role) throw new UserError("role is not supported: leasehold does not count login (token) leases against lease count quotas");
            const { path, warnings } = d.path !== undefined ? quotaPath(core, d.path) : { path: existing?.path ?? "", warnings: [] };
            const maxLeases = d.max_leases ?? existing?.max_leases;
            if (maxLeases === undefined) throw new UserError("max_leases is required");
            if (maxLeases < 1) throw new UserError(`max_leases must be a positive integer, got ${maxLeases}`);
            const inheritable = d.inheritable ?? (path === "" ? (existing?.path === "" ? existing.inheritable : true) : false);
            if (inheritable && path !== "") {
              throw new UserError("inheritable can only be set on a global quota (empty path): leasehold has no namespaces");
            }
            const q = await core.quotas.put({ name, path, maxLeases, inheritable });
            if (q.counts > q.max_leases) warnings.push(`${q.counts} leases already exist under this quota's path, more than max_leases (${q.max_leases}): new leases are refused until enough of them are revoked`);
            core.logger.info({ quota: name, path, max_leases: maxLeases, counts: q.counts }, existing ? "lease count quota updated" : "lease count quota created");
            return warnings.length ? { warnings } : {};
          },
        },
        delete: {
          handler: async (req) => {
            if (await core.quotas.delete(req.params.name)) core.logger.info({ quota: req.params.name }, "lease count quota deleted");
            return {};
          },
        },
      },
    },
  ];
}
