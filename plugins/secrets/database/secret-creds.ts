import type { DatabasePlugin, SecretType } from "../../../src/sdk/index.js";
import { validUntil, type CredsInternal, type DatabaseEngine } from "./engine.js";
import { databaseFailure } from "./errors.js";

/**
 * Renew and revoke for `creds` leases; the core decides when (expiry, renewal, operator, retries).
 * Both work from the lease's internal data alone, so they still work after the role or the config
 * was deleted; while they exist, their current statements and connection are preferred.
 */
export function credsSecretType(engine: DatabaseEngine): SecretType {
  const statementsFor = async (i: CredsInternal, kind: "renew_statements" | "revocation_statements") => {
    const role = await engine.store.role(i.role);
    return role && role.db_name === i.db_name ? role[kind] : i[kind];
  };

  const withPlugin = async <T>(i: CredsInternal, action: string, fn: (p: DatabasePlugin) => Promise<T>): Promise<T> => {
    let conn;
    try {
      conn = await engine.connections.forLease(i.db_name, i.connection);
    } catch (err) {
      throw databaseFailure(i.db_name, action, err, engine.logger);
    }
    try {
      return await fn(conn.plugin);
    } catch (err) {
      throw databaseFailure(i.db_name, action, err, engine.logger);
    } finally {
      conn.release();
    }
  };

  return {
    renew: async ({ internal, expireTime }) => {
      const i = internal as unknown as CredsInternal;
      const statements = await statementsFor(i, "renew_statements");
      await withPlugin(i, `renewing user ${JSON.stringify(i.username)}`, (p) => p.updateUser({ username: i.username, expiration: { newExpiration: validUntil(expireTime), statements } }));
    },
    revoke: async ({ id, internal }) => {
      // The request that opened this lease failed before the user existed: nothing to drop.
      if (engine.neverCreated.delete(id)) return;
      const i = internal as unknown as CredsInternal;
      const statements = await statementsFor(i, "revocation_statements");
      await withPlugin(i, `revoking user ${JSON.stringify(i.username)}`, (p) => p.deleteUser({ username: i.username, statements }));
    },
  };
}
