import { z } from "zod";
import { UserError, authResultFromTokenFields, checkLoginAddress } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { hashPassword, needsRehash, verifyPassword } from "../password-hash.js";
import { usernameOf, type UserStore } from "../store.js";

const loginSchema = z.object({ password: z.string().optional() });
type LoginInput = z.infer<typeof loginSchema>;
type Logger = HandlerRequest["logger"];

/**
 * Vault's wording and status for an unknown user and a wrong password alike: `logical.ErrorResponse`
 * "invalid username or password", which its HTTP layer answers with 400. Only `token_bound_cidrs`
 * refuse with 403 `permission denied`, and only once the password was right (as in Vault).
 */
export const INVALID_CREDENTIALS = "invalid username or password";

async function login(store: UserStore, req: HandlerRequest<LoginInput>, logger: Logger): Promise<HandlerResponse> {
  const name = usernameOf(req.params.username);
  // Checked before the user is looked up, so the answer says nothing about whether it exists.
  // (Vault returns this as a 500; it is the caller's mistake.)
  const password = req.data.password;
  if (!password) throw new UserError("missing password");

  const user = await store.users.get(name);
  // Always one full scrypt derivation: against a dummy hash when there is no such user.
  const valid = await verifyPassword(password, user?.password_hash);
  if (!valid || !user) throw new UserError(INVALID_CREDENTIALS);
  checkLoginAddress(user, req.connection.remoteAddress);

  if (needsRehash(user.password_hash)) await rehash(store, name, user.password_hash, password, logger);
  return {
    auth: authResultFromTokenFields(user, { metadata: { username: name }, displayName: name, aliasName: name }),
  };
}

/** Moves a hash made at a lower cost to the current one, now that the password is known; a failure only delays it. */
async function rehash(store: UserStore, name: string, verifiedHash: string, password: string, logger: Logger): Promise<void> {
  try {
    await store.users.update(name, async (cur) => {
      // Changed meanwhile (new password, deleted): that write wins.
      if (!cur || cur.password_hash !== verifiedHash) return;
      await store.users.put(name, { ...cur, password_hash: await hashPassword(password) });
    });
  } catch (err) {
    logger.warn({ err, username: name }, "userpass: could not re-hash a password at the current cost; retried at the next login");
  }
}

/** `login/:username` (and a clear 400 for `login` without one). */
export function loginPaths(store: UserStore): PathDefinition[] {
  return [
    {
      pattern: "login/?",
      operations: {
        update: {
          handler: async () => {
            throw new UserError("missing username: log in at login/<username> with the password in the body");
          },
        },
      },
    },
    {
      pattern: "login/(?<username>[^/]+)",
      operations: {
        update: {
          schema: loginSchema,
          handler: (r) => login(store, r as HandlerRequest<LoginInput>, r.logger),
          summary: "Log in with a username and password.",
        },
      },
    },
  ];
}
