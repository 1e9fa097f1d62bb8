import { z } from "zod";
import { NotFound, UserError, mergeTokenFields, tokenFieldsResponse, tokenFieldsShape, zCommaList } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition } from "../../../../src/sdk/index.js";
import { listAnswer } from "../../shared/roles.js";
import { hashPassword } from "../password-hash.js";
import { usernameOf, type LegacyAliases, type UserEntry, type UserStore } from "../store.js";

// Vault's userpass takes the `token_*` fields plus the aliases `policies`, `ttl`, `max_ttl` and
// `bound_cidrs`; not `period` (approle's alias), which is therefore an unrecognised field here.
const { period: _periodIsNotAUserpassField, ...tokenFields } = tokenFieldsShape;

const userSchema = z.object({
  password: z.string().optional(),
  // Vault 1.17+ accepts a pre-computed bcrypt hash; refused below with a clear message.
  password_hash: z.string().optional(),
  ...tokenFields,
});
type UserInput = z.infer<typeof userSchema>;

const passwordSchema = z.object({ password: z.string().optional() });
const policiesSchema = z.object({ token_policies: zCommaList.optional(), policies: zCommaList.optional() });

const NO_LEGACY: LegacyAliases = { policies: false, ttl: false, max_ttl: false, bound_cidrs: false };

/**
 * Vault's tokenutil.UpgradeValue: an alias sent alone sets its `token_*` field and stays shown on
 * read; the `token_*` name sent drops the alias unless the alias was sent as well.
 */
function legacyAfter(current: LegacyAliases, d: UserInput): LegacyAliases {
  const next = { ...current };
  const pairs: [keyof LegacyAliases, keyof UserInput][] = [
    ["policies", "token_policies"],
    ["ttl", "token_ttl"],
    ["max_ttl", "token_max_ttl"],
    ["bound_cidrs", "token_bound_cidrs"],
  ];
  for (const [alias, field] of pairs) {
    if (d[field] !== undefined) next[alias] = d[alias] !== undefined;
    else if (d[alias] !== undefined) next[alias] = true;
  }
  return next;
}

/** A user as `GET users/:username` shows it: the token fields, the aliases in use, never the password or its hash. */
export function userView(u: UserEntry): Record<string, unknown> {
  const { policies: _policies, period: _period, ...data } = tokenFieldsResponse(u);
  if (u.legacy.ttl) data.ttl = u.token_ttl;
  if (u.legacy.max_ttl) data.max_ttl = u.token_max_ttl;
  if (u.legacy.policies) data.policies = u.token_policies;
  if (u.legacy.bound_cidrs) data.bound_cidrs = u.token_bound_cidrs;
  return data;
}

function requirePassword(password: string | undefined): string {
  if (!password) throw new UserError("missing password");
  return password;
}

async function writeUser(store: UserStore, req: HandlerRequest<UserInput>): Promise<void> {
  const name = usernameOf(req.params.username);
  const d = req.data;
  if (d.password_hash !== undefined) {
    throw new UserError("password_hash is not supported: leasehold stores scrypt hashes it computes itself and cannot verify a bcrypt hash; send password instead");
  }
  if (req.op === "create") requirePassword(d.password);
  await store.users.update(name, async (cur) => {
    // Validate every field before the (deliberately slow) hash, so a bad request answers at once.
    const fields = mergeTokenFields(cur, d);
    let passwordHash = cur?.password_hash;
    // An update that finds the user gone (deleted meanwhile) is a creation and needs a password too.
    if (d.password !== undefined || !passwordHash) passwordHash = await hashPassword(requirePassword(d.password));
    const next: UserEntry = { ...fields, username: name, password_hash: passwordHash, legacy: legacyAfter(cur?.legacy ?? NO_LEGACY, d) };
    await store.users.put(name, next);
  });
}

function requireUser(user: UserEntry | undefined, name: string): UserEntry {
  // Vault answers "username does not exist" (as a 500); it is the caller's mistake, so 400 here.
  if (!user) throw new UserError(`username does not exist: create it first with a write to users/${name}`);
  return user;
}

/** `users/`, `users/:username`, `users/:username/password`, `users/:username/policies` (Vault's paths and fields). */
export function userPaths(store: UserStore): PathDefinition[] {
  return [
    {
      pattern: "users/?",
      operations: {
        list: { handler: async () => listAnswer(await store.users.names()), summary: "List the users." },
        // Vault has no write here (405); a 400 says what is missing.
        update: {
          handler: async () => {
            throw new UserError("missing username: write to users/<username>");
          },
        },
      },
    },
    {
      pattern: "users/(?<username>[^/]+)",
      existenceCheck: async (r) => (await store.users.get(usernameOf(r.params.username))) !== undefined,
      operations: {
        read: {
          handler: async (r) => {
            const user = await store.users.get(usernameOf(r.params.username));
            if (!user) throw new NotFound();
            return { data: userView(user) };
          },
          summary: "Read a user (never its password).",
        },
        create: { schema: userSchema, handler: (r) => writeUser(store, r as HandlerRequest<UserInput>), summary: "Create a user; password is required." },
        update: { schema: userSchema, handler: (r) => writeUser(store, r as HandlerRequest<UserInput>), summary: "Update a user (only the fields sent change)." },
        delete: {
          handler: async (r) => {
            const name = usernameOf(r.params.username);
            await store.users.update(name, () => store.users.delete(name));
          },
          summary: "Delete a user. Tokens it logged in with stay valid until they expire; renewal is refused.",
        },
      },
    },
    {
      pattern: "users/(?<username>[^/]+)/password",
      operations: {
        update: {
          schema: passwordSchema,
          handler: async (r) => {
            const name = usernameOf(r.params.username);
            const password = requirePassword((r.data as z.infer<typeof passwordSchema>).password);
            await store.users.update(name, async (cur) => {
              const user = requireUser(cur, name);
              await store.users.put(name, { ...user, password_hash: await hashPassword(password) });
            });
          },
          summary: "Change a user's password (nothing else).",
        },
      },
    },
    {
      pattern: "users/(?<username>[^/]+)/policies",
      operations: {
        update: {
          schema: policiesSchema,
          handler: async (r) => {
            const name = usernameOf(r.params.username);
            const d = r.data as z.infer<typeof policiesSchema>;
            await store.users.update(name, async (cur) => {
              const user = requireUser(cur, name);
              const fields = mergeTokenFields(user, { token_policies: d.token_policies, policies: d.policies });
              const legacy = legacyAfter(user.legacy, d);
              await store.users.put(name, { ...user, token_policies: fields.token_policies, legacy });
            });
          },
          summary: "Change a user's token policies (nothing else).",
        },
      },
    },
  ];
}
