import { createHmac, randomBytes } from "node:crypto";
import type { StorageView, TokenFields } from "../../../src/sdk/index.js";
import { NamedRecords } from "../shared/roles.js";

/** An AppRole as stored (Vault's field names). */
export interface AppRole extends TokenFields {
  name: string;
  role_id: string;
  bind_secret_id: boolean;
  secret_id_bound_cidrs: string[];
  secret_id_num_uses: number;
  /** Seconds; 0 = secret IDs never expire. */
  secret_id_ttl: number;
  local_secret_ids: boolean;
}

/** A secret ID as stored: never the secret ID itself, only its HMAC (the storage key). */
export interface SecretIdEntry {
  secret_id_accessor: string;
  /** Remaining uses; 0 = unlimited. */
  secret_id_num_uses: number;
  secret_id_ttl: number;
  creation_time: string;
  /** ISO time, or null when it never expires. */
  expiration_time: string | null;
  last_updated_time: string;
  metadata: Record<string, string>;
  cidr_list: string[];
  token_bound_cidrs: string[];
}

/** Points an accessor at its secret ID's storage key. */
interface AccessorEntry {
  role: string;
  secretIdHmac: string;
}

/**
 * Storage of one approle mount:
 * `role/<name>`, `role-id/<hmac(role_id)>` → name, `secret-id/<name>/<hmac(secret_id)>`,
 * `accessor/<hmac(accessor)>` → where its secret ID lives, `hmac-key` (32 random bytes).
 * Lookups go through the keyed hash, so a presented secret ID is never compared in clear and a
 * copy of the storage does not reveal any secret ID.
 */
export class AppRoleStore {
  readonly roles: NamedRecords<AppRole>;
  private key?: Buffer;

  constructor(readonly storage: StorageView) {
    this.roles = new NamedRecords<AppRole>(storage, "role/");
  }

  async hash(value: string): Promise<string> {
    if (!this.key) {
      this.key = await this.storage.withLock("hmac-key", async () => {
        let k = await this.storage.get("hmac-key");
        if (!k) {
          k = randomBytes(32);
          await this.storage.put("hmac-key", k);
        }
        return k;
      });
    }
    return createHmac("sha256", this.key).update(value, "utf8").digest("hex");
  }

  async roleNameById(roleId: string): Promise<string | undefined> {
    return (await this.storage.getJSON<{ name: string }>(`role-id/${await this.hash(roleId)}`))?.name;
  }

  async putRoleId(roleId: string, name: string): Promise<void> {
    await this.storage.putJSON(`role-id/${await this.hash(roleId)}`, { name });
  }

  async deleteRoleId(roleId: string): Promise<void> {
    await this.storage.delete(`role-id/${await this.hash(roleId)}`);
  }

  secretIdKey(role: string, secretIdHmac: string): string {
    return `secret-id/${role}/${secretIdHmac}`;
  }

  async secretIdHmacs(role: string): Promise<string[]> {
    return (await this.storage.list(`secret-id/${role}/`)).filter((k) => !k.endsWith("/"));
  }

  getSecretId(role: string, secretIdHmac: string): Promise<SecretIdEntry | undefined> {
    return this.storage.getJSON<SecretIdEntry>(this.secretIdKey(role, secretIdHmac));
  }

  async putSecretId(role: string, secretIdHmac: string, entry: SecretIdEntry): Promise<void> {
    await this.storage.putJSON(this.secretIdKey(role, secretIdHmac), entry);
    await this.storage.putJSON(`accessor/${await this.hash(entry.secret_id_accessor)}`, { role, secretIdHmac } satisfies AccessorEntry);
  }

  async deleteSecretId(role: string, secretIdHmac: string, accessor: string | undefined): Promise<void> {
    await this.storage.delete(this.secretIdKey(role, secretIdHmac));
    if (accessor) await this.storage.delete(`accessor/${await this.hash(accessor)}`);
  }

  async byAccessor(accessor: string): Promise<AccessorEntry | undefined> {
    return this.storage.getJSON<AccessorEntry>(`accessor/${await this.hash(accessor)}`);
  }

  /** Runs `fn` holding the lock of one secret ID: use counting that holds under concurrent logins. */
  withSecretIdLock<T>(role: string, secretIdHmac: string, fn: () => Promise<T>): Promise<T> {
    return this.storage.withLock(this.secretIdKey(role, secretIdHmac), fn);
  }
}

export function expired(entry: SecretIdEntry, now = Date.now()): boolean {
  return entry.expiration_time !== null && Date.parse(entry.expiration_time) <= now;
}
