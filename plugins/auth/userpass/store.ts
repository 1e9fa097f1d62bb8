import { UserError, type StorageView, type TokenFields } from "../../../src/sdk/index.js";
import { NamedRecords } from "../shared/roles.js";

/**
 * Which deprecated aliases (`policies`, `ttl`, `max_ttl`, `bound_cidrs`) set the current value of
 * their `token_*` field. Vault keeps the alias while it is in use and shows it on read; writing the
 * `token_*` name alone drops it (tokenutil.UpgradeValue).
 */
export interface LegacyAliases {
  policies: boolean;
  ttl: boolean;
  max_ttl: boolean;
  bound_cidrs: boolean;
}

/** A userpass user as stored under `user/<lower-cased username>`. Never the password: only its scrypt hash. */
export interface UserEntry extends TokenFields {
  username: string;
  /** PHC string `$scrypt$ln=..,r=..,p=..$<salt>$<hash>` (see password-hash.ts). */
  password_hash: string;
  legacy: LegacyAliases;
}

/** The users of one userpass mount. */
export class UserStore {
  readonly users: NamedRecords<UserEntry>;

  constructor(storage: StorageView) {
    this.users = new NamedRecords<UserEntry>(storage, "user/");
  }
}

/**
 * Vault's `framework.GenericNameRegex`: letters, digits and `_`, with `-` and `.` inside (not
 * first, not last). Vault answers a name outside it with 404 "unsupported path"; a 400 that names
 * the rule tells the caller what to fix.
 */
const USERNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const MAX_USERNAME = 255;

/** The storage name of a username from the path: validated, then lower-cased (userpass usernames are case-insensitive in Vault). */
export function usernameOf(raw: string | undefined): string {
  const name = raw ?? "";
  if (name === "") throw new UserError("missing username");
  if (name.length > MAX_USERNAME) throw new UserError(`invalid username: at most ${MAX_USERNAME} characters`);
  if (!USERNAME.test(name)) {
    throw new UserError(`invalid username ${JSON.stringify(name)}: use letters, digits, '_', '-' and '.', not starting with '-' or '.' nor ending with '-' or '.'`);
  }
  return name.toLowerCase();
}
