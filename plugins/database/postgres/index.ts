import type { DatabasePluginFactory } from "../../../src/sdk/index.js";
import { connectionSchema, redactDetails } from "./connection.js";
import { PostgresPlugin } from "./plugin.js";

/**
 * `postgresql-database-plugin`: dynamic and static PostgreSQL roles for the `database` engine.
 * Passwords reach PostgreSQL only as SCRAM-SHA-256 verifiers; statement templates are rendered
 * with identifier/literal quoting; revocation ends sessions and cleans up what a role owns.
 */
export const postgresDatabasePlugin: DatabasePluginFactory = {
  name: "postgresql-database-plugin",
  description: "PostgreSQL roles: CREATE ROLE with a broker-computed SCRAM verifier, VALID UNTIL renewals, thorough revocation",
  connectionSchema,
  // Vault's default for PostgreSQL; NAMEDATALEN - 1 = 63 bytes.
  usernames: {
    defaultTemplate: '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}',
    maxBytes: 63,
  },
  redact: redactDetails,
  create: (ctx) => new PostgresPlugin(ctx),
};
