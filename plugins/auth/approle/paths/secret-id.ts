import { randomUUID } from "node:crypto";
import { z } from "zod";
import { NotFound, UserError, parseCidrs, zCommaList, zDuration, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { listAnswer } from "../../shared/roles.js";
import { cidrsWithin } from "../cidr.js";
import { expired, type AppRole, type AppRoleStore, type SecretIdEntry } from "../store.js";
import { approleName, requireRole } from "./role.js";

/** Vault takes secret ID metadata as a JSON-encoded string of string values; an object is accepted too. */
const zMetadata = z.union([z.string(), z.record(z.string(), z.unknown())]).transform((v, ctx) => {
  let obj: unknown = v;
  if (typeof v === "string") {
    if (v.trim() === "") return {};
    try {
      obj = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: "custom", message: "failed to parse metadata: expected a JSON object of string values" });
      return z.NEVER;
    }
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj) || Object.values(obj).some((x) => typeof x !== "string")) {
    ctx.addIssue({ code: "custom", message: "failed to parse metadata: expected a JSON object of string values" });
    return z.NEVER;
  }
  return obj as Record<string, string>;
});

const generateSchema = z.object({
  metadata: zMetadata.optional(),
  cidr_list: zCommaList.optional(),
  token_bound_cidrs: zCommaList.optional(),
  num_uses: zInt.optional(),
  ttl: zDuration.optional(),
});
const customSchema = generateSchema.extend({ secret_id: z.string().min(1, "missing secret_id") });
const secretIdField = z.object({ secret_id: z.string().min(1, "missing secret_id") });
const accessorField = z.object({ secret_id_accessor: z.string().min(1, "missing secret_id_accessor") });

/** Secret ID lookups show what Vault shows (never the secret ID). Time `0001-01-01T00:00:00Z` means "never". */
function entryView(e: SecretIdEntry): Record<string, unknown> {
  return {
    secret_id_accessor: e.secret_id_accessor,
    secret_id_num_uses: e.secret_id_num_uses,
    secret_id_ttl: e.secret_id_ttl,
    creation_time: e.creation_time,
    expiration_time: e.expiration_time ?? "0001-01-01T00:00:00Z",
    last_updated_time: e.last_updated_time,
    metadata: e.metadata,
    cidr_list: e.cidr_list,
    token_bound_cidrs: e.token_bound_cidrs,
  };
}

async function issue(store: AppRoleStore, role: AppRole, secretId: string, d: z.infer<typeof generateSchema>): Promise<HandlerResponse> {
  if (!role.bind_secret_id) throw new UserError("bind_secret_id is not set on the role");
  const numUses = d.num_uses ?? role.secret_id_num_uses;
  if (numUses < 0) throw new UserError("num_uses cannot be negative");
  if (role.secret_id_num_uses > 0 && (numUses === 0 || numUses > role.secret_id_num_uses)) throw new UserError("num_uses cannot be higher than the role's secret_id_num_uses");
  const ttl = d.ttl ?? role.secret_id_ttl;
  if (role.secret_id_ttl > 0 && (ttl === 0 || ttl > role.secret_id_ttl)) throw new UserError("ttl cannot be longer than the role's secret_id_ttl");
  const cidrs = d.cidr_list ?? [];
  if (!cidrsWithin(cidrs, role.secret_id_bound_cidrs, "cidr_list")) throw new UserError("failed to verify the CIDR restrictions set on the secret ID: cidr_list must be a subset of the role's secret_id_bound_cidrs");
  const tokenCidrs = d.token_bound_cidrs ?? [];
  parseCidrs(tokenCidrs, "token_bound_cidrs");
  if (!cidrsWithin(tokenCidrs, role.token_bound_cidrs, "token_bound_cidrs")) throw new UserError("failed to verify the CIDR restrictions set on the secret ID: token_bound_cidrs must be a subset of the role's token_bound_cidrs");

  const h = await store.hash(secretId);
  const now = new Date();
  const entry: SecretIdEntry = {
    secret_id_accessor: randomUUID(),
    secret_id_num_uses: numUses,
    secret_id_ttl: ttl,
    creation_time: now.toISOString(),
    expiration_time: ttl > 0 ? new Date(now.getTime() + ttl * 1000).toISOString() : null,
    last_updated_time: now.toISOString(),
    metadata: d.metadata ?? {},
    cidr_list: cidrs,
    token_bound_cidrs: tokenCidrs,
  };
  await store.withSecretIdLock(role.name, h, async () => {
    if (await store.getSecretId(role.name, h)) throw new UserError("SecretID is already registered");
    await store.putSecretId(role.name, h, entry);
  });
  return { data: { secret_id: secretId, secret_id_accessor: entry.secret_id_accessor, secret_id_ttl: ttl, secret_id_num_uses: numUses } };
}

/** Finds a live secret ID entry by secret ID; an expired one is removed on sight. */
async function lookupBySecret(store: AppRoleStore, role: string, secretId: string): Promise<{ h: string; entry: SecretIdEntry } | undefined> {
  const h = await store.hash(secretId);
  const entry = await store.getSecretId(role, h);
  if (!entry) return undefined;
  if (expired(entry)) {
    await store.deleteSecretId(role, h, entry.secret_id_accessor);
    return undefined;
  }
  return { h, entry };
}

async function lookupByAccessor(store: AppRoleStore, role: string, accessor: string): Promise<{ h: string; entry: SecretIdEntry }> {
  const where = await store.byAccessor(accessor);
  const entry = where && where.role === role ? await store.getSecretId(role, where.secretIdHmac) : undefined;
  if (!where || !entry || expired(entry)) throw new NotFound(`failed to find accessor entry for secret_id_accessor: ${JSON.stringify(accessor)}`);
  return { h: where.secretIdHmac, entry };
}

/** Deletes expired secret IDs (and accessors whose secret ID is gone). Returns how many went. */
export async function tidySecretIds(store: AppRoleStore): Promise<number> {
  let removed = 0;
  for (const role of await store.roles.names()) {
    for (const h of await store.secretIdHmacs(role)) {
      await store.withSecretIdLock(role, h, async () => {
        const e = await store.getSecretId(role, h);
        if (e && expired(e)) {
          await store.deleteSecretId(role, h, e.secret_id_accessor);
          removed++;
        }
      });
    }
  }
  for (const key of await store.storage.list("accessor/")) {
    const a = await store.storage.getJSON<{ role: string; secretIdHmac: string }>(`accessor/${key}`);
    if (a && !(await store.getSecretId(a.role, a.secretIdHmac))) await store.storage.delete(`accessor/${key}`);
  }
  return removed;
}

export function secretIdPaths(store: AppRoleStore): PathDefinition[] {
  const name = (r: HandlerRequest) => approleName(r.params.name);
  return [
    {
      pattern: "role/(?<name>[^/]+)/secret-id/?",
      operations: {
        update: {
          schema: generateSchema,
          handler: async (r) => issue(store, await requireRole(store, r.params.name), randomUUID(), r.data as z.infer<typeof generateSchema>),
          summary: "Generate a secret ID (returned once; stored only as a keyed hash).",
        },
        list: {
          handler: async (r) => {
            const role = await requireRole(store, r.params.name);
            const keys: string[] = [];
            for (const h of await store.secretIdHmacs(role.name)) {
              const e = await store.getSecretId(role.name, h);
              if (e && !expired(e)) keys.push(e.secret_id_accessor);
            }
            return listAnswer(keys.sort());
          },
          summary: "List the accessors of the role's secret IDs.",
        },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/custom-secret-id",
      operations: {
        update: {
          schema: customSchema,
          handler: async (r) => {
            const d = r.data as z.infer<typeof customSchema>;
            return issue(store, await requireRole(store, r.params.name), d.secret_id, d);
          },
          summary: "Register a secret ID chosen by the caller (push model).",
        },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/secret-id/lookup",
      operations: {
        update: {
          schema: secretIdField,
          handler: async (r) => {
            await requireRole(store, r.params.name);
            const found = await lookupBySecret(store, name(r), (r.data as z.infer<typeof secretIdField>).secret_id);
            // Vault answers an unknown secret ID with 204 and no body.
            return found ? { data: entryView(found.entry) } : {};
          },
        },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/secret-id/destroy",
      operations: {
        update: {
          schema: secretIdField,
          handler: async (r) => {
            await requireRole(store, r.params.name);
            const role = name(r);
            const h = await store.hash((r.data as z.infer<typeof secretIdField>).secret_id);
            await store.withSecretIdLock(role, h, async () => {
              const e = await store.getSecretId(role, h);
              if (e) await store.deleteSecretId(role, h, e.secret_id_accessor);
            });
          },
        },
        delete: {
          schema: secretIdField,
          handler: async (r) => {
            await requireRole(store, r.params.name);
            const role = name(r);
            const h = await store.hash((r.data as z.infer<typeof secretIdField>).secret_id);
            const e = await store.getSecretId(role, h);
            if (e) await store.deleteSecretId(role, h, e.secret_id_accessor);
          },
        },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/secret-id-accessor/lookup",
      operations: {
        update: {
          schema: accessorField,
          handler: async (r) => {
            await requireRole(store, r.params.name);
            const { entry } = await lookupByAccessor(store, name(r), (r.data as z.infer<typeof accessorField>).secret_id_accessor);
            return { data: entryView(entry) };
          },
        },
      },
    },
    {
      pattern: "role/(?<name>[^/]+)/secret-id-accessor/destroy",
      operations: {
        update: {
          schema: accessorField,
          handler: async (r) => {
            await requireRole(store, r.params.name);
            const role = name(r);
            const { h } = await lookupByAccessor(store, role, (r.data as z.infer<typeof accessorField>).secret_id_accessor);
            await store.withSecretIdLock(role, h, async () => {
              const e = await store.getSecretId(role, h);
              if (e) await store.deleteSecretId(role, h, e.secret_id_accessor);
            });
          },
        },
      },
    },
    {
      pattern: "tidy/secret-id",
      operations: {
        update: {
          handler: async (r) => {
            const removed = await tidySecretIds(store);
            r.logger.info({ mount: r.mount.path, removed }, "approle: tidied expired secret IDs");
            return { data: { removed }, warnings: [`Tidy operation finished: removed ${removed} expired secret ID(s).`] };
          },
        },
      },
    },
  ];
}
