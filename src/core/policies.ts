import { NotFound, UserError } from "../sdk/errors.js";
import type { StorageView } from "../sdk/types.js";
import { ACL } from "./acl/acl.js";
import { DEFAULT_POLICY_TEXT, parsePolicy, type Policy } from "./acl/policy.js";

/** Stores ACL policies (text as written, parsed on load) and builds ACLs for sets of policy names. */
export class PolicyStore {
  private cache = new Map<string, Policy>();
  private aclCache = new Map<string, ACL>();

  constructor(private readonly storage: StorageView) {}

  /** Writes the built-in `default` policy on first unseal. */
  async ensureDefault(): Promise<void> {
    if (!(await this.storage.get("default"))) await this.storage.putJSON("default", { name: "default", policy: DEFAULT_POLICY_TEXT });
  }

  static normaliseName(name: string): string {
    const n = name.trim().toLowerCase();
    if (!/^[a-z0-9_.-]{1,128}$/.test(n)) throw new UserError(`invalid policy name ${JSON.stringify(name)}: use letters, digits, '_', '-', '.' (at most 128)`);
    return n;
  }

  async get(name: string): Promise<Policy | undefined> {
    const n = name.toLowerCase();
    if (n === "root") return undefined;
    const hit = this.cache.get(n);
    if (hit) return hit;
    const rec = await this.storage.getJSON<{ name: string; policy: string }>(n);
    if (!rec) return undefined;
    const p = parsePolicy(rec.name, rec.policy);
    this.cache.set(n, p);
    return p;
  }

  /** The stored text of a policy, for `sys/policies/acl/:name`. */
  async text(name: string): Promise<string | undefined> {
    return (await this.get(name))?.raw;
  }

  async put(name: string, text: string): Promise<Policy> {
    const n = PolicyStore.normaliseName(name);
    if (n === "root") throw new UserError("cannot update the root policy");
    const policy = parsePolicy(n, text);
    await this.storage.putJSON(n, { name: n, policy: text });
    this.cache.set(n, policy);
    this.aclCache.clear();
    return policy;
  }

  async delete(name: string): Promise<void> {
    const n = name.toLowerCase();
    if (n === "root") throw new UserError("cannot delete the root policy");
    if (n === "default") throw new UserError("cannot delete the default policy");
    await this.storage.delete(n);
    this.cache.delete(n);
    this.aclCache.clear();
  }

  /** Names of stored policies (includes `default`, never `root`). */
  async list(): Promise<string[]> {
    return (await this.storage.list("")).filter((k) => !k.endsWith("/")).sort();
  }

  /** The ACL for a token's policies; unknown names contribute nothing (deny by default). */
  async aclFor(names: string[]): Promise<ACL> {
    const key = [...new Set(names)].sort().join("\n");
    const hit = this.aclCache.get(key);
    if (hit) return hit;
    const policies: Policy[] = [];
    for (const n of new Set(names)) {
      const p = await this.get(n);
      if (p) policies.push(p);
    }
    const acl = new ACL(policies);
    this.aclCache.set(key, acl);
    return acl;
  }

  async require(name: string): Promise<Policy> {
    const p = await this.get(name);
    if (!p) throw new NotFound();
    return p;
  }

  reset(): void {
    this.cache.clear();
    this.aclCache.clear();
  }
}
