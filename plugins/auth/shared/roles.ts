import { NotFound, UserError, zName } from "../../../src/sdk/index.js";
import type { HandlerResponse, StorageView } from "../../../src/sdk/index.js";

/** Validates a role (or certificate) name from the path; `lowerCase` for methods whose names are case-insensitive (approle). */
export function roleNameOf(raw: string | undefined, what = "role", lowerCase = false): string {
  const checked = zName.safeParse(raw ?? "");
  if (!checked.success) throw new UserError(`invalid ${what} name ${JSON.stringify(raw ?? "")}: ${checked.error.issues[0]?.message ?? "invalid"}`);
  return lowerCase ? checked.data.toLowerCase() : checked.data;
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
