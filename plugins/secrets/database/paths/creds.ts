import { DatabasePluginError, UserError, isLeaseholdError } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { checkName, templateOf, validUntil, type CredsInternal, type DatabaseEngine } from "../engine.js";
import { databaseFailure } from "../errors.js";
import { generatePassword } from "../password.js";
import { roleAllowed } from "../store.js";
import { makeUsername } from "../username-template.js";

/** `GET database/creds/:name`: a new database user under a lease. */
export function credsPath(engine: DatabaseEngine): PathDefinition {
  return {
    pattern: "creds/(?<name>[^/]+)",
    operations: {
      read: { summary: "Create a database user for a role; its lease revokes it.", handler: (req) => issueCreds(engine, req) },
    },
  };
}

async function issueCreds(engine: DatabaseEngine, req: HandlerRequest): Promise<HandlerResponse> {
  const roleName = checkName(req.params.name, "role");
  const role = await engine.store.role(roleName);
  if (!role) throw new UserError(`unknown role: ${roleName}`);
  let live;
  try {
    live = await engine.connections.get(role.db_name);
  } catch (err) {
    throw databaseFailure(role.db_name, "connecting", err, engine.logger);
  }
  if (!live) throw new UserError(`role "${roleName}" uses database config "${role.db_name}", which does not exist`);
  if (!roleAllowed(live.config.allowed_roles, roleName)) throw new UserError(`"${roleName}" is not an allowed role for database config "${role.db_name}"`);

  const template = templateOf(engine, live.config.username_template || live.factory.usernames.defaultTemplate);
  const username = makeUsername(template, { DisplayName: req.identity?.displayName || "token", RoleName: roleName }, live.factory.usernames.maxBytes);
  const password = generatePassword();
  const internal: CredsInternal = {
    username,
    db_name: role.db_name,
    role: roleName,
    revocation_statements: role.revocation_statements,
    renew_statements: role.renew_statements,
    connection: { plugin_name: live.config.plugin_name, connection_details: live.config.connection_details },
  };
  // Persist before hand-out: the lease that will drop this user exists before the user does.
  const lease = await req.leases.open({ type: "creds", ttl: role.default_ttl, maxTtl: role.max_ttl, renewable: true, internal: { ...internal }, role: roleName });
  try {
    await live.plugin.newUser({ username, password, expiration: validUntil(lease.expireTime), statements: role.creation_statements, rollbackStatements: role.rollback_statements });
  } catch (err) {
    // The core revokes the pending lease next; when the user certainly does not exist, that revocation is a no-op.
    if ((err instanceof DatabasePluginError && err.outcome === "not-applied") || isLeaseholdError(err)) engine.neverCreated.add(lease.id);
    throw databaseFailure(role.db_name, `creating a user for role "${roleName}"`, err, engine.logger);
  }
  return { data: { username, password }, lease };
}
