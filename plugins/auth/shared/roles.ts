import { NotFound, PermissionDenied, UserError, policiesUnchanged, zName } from "../../../src/sdk/index.js";
import type { ZodType } from "zod";
import type { HandlerRequest, HandlerResponse, PathDefinition, StorageView } from "../../../src/sdk/index.js";

/** Validates a role (or certificate) name from the path; `lowerCase` for methods whose names are case-insensitive (approle). */
export function roleNameOf(raw: string | undefined, what = "role", lowerCase = false): string {
  const checked = zName.safeParse(raw ?? "");
  if (!checked.success) throw new UserError(`invalid ${what} name ${JSON.stringify(raw ?? "")}: ${checked.error.issues[0]?.message ?? "invalid"}`);
  return lowerCase ? checked.data.toLowerCase() : checked.data;
}

/**
 * Vault's renewal rule for logins through a role: the role must still exist and a login through it
 * now must grant the token's policies ("policies have changed, not renewing").
 */
export function checkRenewalThroughRole(role: Parameters<typeof policiesUnchanged>[0] | undefined, roleName: string | undefined, tokenPolicies: string[]): void {
  if (!role) throw new PermissionDenied(`role ${JSON.stringify(roleName ?? "")} could not be found during renewal`);
  if (!policiesUnchanged(role, tokenPolicies)) throw new PermissionDenied("policies have changed, not renewing");
}

/** Named JSON records under one storage prefix (`role/`, `certs/`). */
export class NamedRecords<T> {
  constructor(private readonly storage: StorageView, private readonly prefix: string) {}

  get(name: string): Promise<T | undefined> {
    return this.storage.getJSON<T>(this.prefix + name);
  }

  put(name: string, value: T): Promise<void> {
    return this.storage.putJSON(this.prefix + name, value);
  }

  delete(name: string): Promise<void> {
    return this.storage.delete(this.prefix + name);
  }

  async names(): Promise<string[]> {
    return (await this.storage.list(this.prefix)).filter((k) => !k.endsWith("/")).sort();
  }

  /** Read-modify-write of one record without lost updates. */
  update<R>(name: string, fn: (current: T | undefined) => Promise<R>): Promise<R> {
    return this.storage.withLock(this.prefix + name, () => this.get(name).then(fn));
  }
}

/** Vault's LIST answer: `{keys}`, or `404 {"errors": []}` when there is nothing. */
export function listAnswer(keys: string[]): HandlerResponse {
  if (!keys.length) throw new NotFound();
  return { data: { keys } };
}

/**
 * The `role/` and `role/:name` paths every role-based auth method serves: LIST, read (through
 * `view`), create/update (through `write`, validated by `schema`) and delete, with an existence
 * check so that creating a role needs `create` and changing one needs `update`.
 */
export function roleCrudPaths<R>(
  roles: NamedRecords<R>,
  opts: { schema: ZodType; write: (roles: NamedRecords<R>, req: HandlerRequest) => Promise<HandlerResponse | void>; view: (role: R) => Record<string, unknown>; createSummary: string },
): PathDefinition[] {
  return [
    { pattern: "role/?", operations: { list: { handler: async () => listAnswer(await roles.names()), summary: "List the roles." } } },
    {
      pattern: "role/(?<name>[^/]+)",
      existenceCheck: async (r) => (await roles.get(roleNameOf(r.params.name))) !== undefined,
      operations: {
        read: {
          handler: async (r) => {
            const role = await roles.get(roleNameOf(r.params.name));
            if (!role) throw new NotFound();
            return { data: opts.view(role) };
          },
        },
        create: { schema: opts.schema, handler: (r) => opts.write(roles, r), summary: opts.createSummary },
        update: { schema: opts.schema, handler: (r) => opts.write(roles, r), summary: "Update a role (only the fields sent change)." },
        delete: { handler: async (r) => roles.delete(roleNameOf(r.params.name)) },
      },
    },
  ];
}
