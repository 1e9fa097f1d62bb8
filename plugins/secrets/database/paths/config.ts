import { z } from "zod";
import { DatabasePluginError, NotFound, UserError, zBool, zCommaList } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { checkName, templateOf, type DatabaseEngine } from "../engine.js";
import { databaseFailure, verificationFailure } from "../errors.js";
import { generatePassword } from "../password.js";
import { zStatements } from "../statements.js";
import { NAME_RE, type ConnectionConfig } from "../store.js";
import { hasLiteralPassword, redactConnectionUrl } from "../connection-url.js";
import { makeUsername } from "../username-template.js";

const commonFields = {
  plugin_name: z.string().optional(),
  plugin_version: z.string().optional(),
  verify_connection: zBool.optional(),
  allowed_roles: zCommaList.optional(),
  root_rotation_statements: zStatements.optional(),
  password_policy: z.string().optional(),
  username_template: z.string().optional(),
};

function configExists(engine: DatabaseEngine) {
  return async (req: HandlerRequest) => NAME_RE.test(req.params.name ?? "") && (await engine.store.config(req.params.name)) !== undefined;
}

/** `database/config/:name` (plus list), `database/reset/:name`, `database/rotate-root/:name`. */
export function configPaths(engine: DatabaseEngine): PathDefinition[] {
  // The plugins' own connection fields are accepted here and validated by the chosen plugin.
  const pluginFields: Record<string, z.ZodOptional<z.ZodUnknown>> = {};
  for (const f of engine.plugins.values()) for (const key of Object.keys(f.connectionSchema.shape)) pluginFields[key] = z.unknown().optional();
  const writeSchema = z.object({ ...pluginFields, ...commonFields });
  type WriteData = z.infer<typeof writeSchema> & Record<string, unknown>;

  return [
    {
      pattern: "config/?",
      operations: {
        list: {
          summary: "List the configured connections.",
          handler: async () => {
            const keys = await engine.store.listConfigs();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "config/(?<name>[^/]+)",
      existenceCheck: configExists(engine),
      operations: {
        read: { summary: "Read a connection (never its password).", handler: (req) => readConfig(engine, req) },
        create: { schema: writeSchema, summary: "Configure a connection.", handler: (req: HandlerRequest<WriteData>) => writeConfig(engine, req) },
        update: { schema: writeSchema, summary: "Change a connection (fields not sent keep their value).", handler: (req: HandlerRequest<WriteData>) => writeConfig(engine, req) },
        delete: { summary: "Delete a connection and close its pool.", handler: (req) => deleteConfig(engine, req) },
      },
    },
    {
      pattern: "reset/(?<name>[^/]+)",
      operations: {
        update: {
          summary: "Close the connection's pool and start it again from the stored config.",
          handler: async (req) => {
            const name = checkName(req.params.name, "config");
            await engine.store.lock(`config/${name}`, async () => {
              if (!(await engine.store.config(name))) throw new NotFound(`no database config named "${name}"`);
              await engine.connections.drop(name);
              try {
                await engine.connections.get(name);
              } catch (err) {
                throw databaseFailure(name, "restarting the connection", err, engine.logger);
              }
            });
          },
        },
      },
    },
    {
      pattern: "rotate-root/(?<name>[^/]+)",
      operations: {
        update: { summary: "Rotate the root password; the new one is never shown.", handler: (req) => rotateRoot(engine, req) },
      },
    },
  ];
}

async function readConfig(engine: DatabaseEngine, req: HandlerRequest): Promise<HandlerResponse> {
  const name = checkName(req.params.name, "config");
  const config = await engine.store.config(name);
  if (!config) throw new NotFound();
  const factory = engine.plugins.get(config.plugin_name);
  const details = factory ? factory.redact(config.connection_details) : {};
  // Whatever the plugin's own redaction did, the URL shown is masked here from the stored one, as
  // Vault's engine does: a password holding `@`, `:` or `%40` is masked whole.
  const url = config.connection_details.connection_url;
  if (typeof url === "string" && "connection_url" in details) details.connection_url = redactConnectionUrl(url);
  if (config.username_template) details.username_template = config.username_template;
  return {
    data: {
      allowed_roles: config.allowed_roles,
      connection_details: details,
      password_policy: config.password_policy,
      plugin_name: config.plugin_name,
      plugin_version: config.plugin_version,
      root_credentials_rotate_statements: config.root_rotation_statements,
      verify_connection: config.verify_connection,
    },
  };
}

async function writeConfig(engine: DatabaseEngine, req: HandlerRequest<Record<string, unknown> & { plugin_name?: string; plugin_version?: string; verify_connection?: boolean; allowed_roles?: string[]; root_rotation_statements?: string[]; password_policy?: string; username_template?: string }>): Promise<HandlerResponse | void> {
  const name = checkName(req.params.name, "config");
  const d = req.data;
  return engine.store.lock(`config/${name}`, async () => {
    const existing = await engine.store.config(name);
    const pluginName = d.plugin_name ?? existing?.plugin_name;
    if (!pluginName) throw new UserError("plugin_name is required");
    const factory = engine.connections.factory(pluginName);
    const same = existing?.plugin_name === pluginName ? existing : undefined;
    // Fields not sent keep their stored value (so changing allowed_roles does not need the password again).
    const details: Record<string, unknown> = { ...(same?.connection_details ?? {}) };
    for (const key of Object.keys(factory.connectionSchema.shape)) if (d[key] !== undefined) details[key] = d[key];

    const passwordPolicy = d.password_policy ?? same?.password_policy ?? "";
    if (passwordPolicy) throw new UserError("password_policy: named password policies are not supported yet; leave it empty for the default policy (24 characters with upper- and lower-case letters, digits and '-')");
    const usernameTemplate = d.username_template ?? same?.username_template ?? "";
    if (usernameTemplate) makeUsername(templateOf(engine, usernameTemplate), { DisplayName: "token", RoleName: "role" }, factory.usernames.maxBytes);

    const verify = d.verify_connection ?? true;
    let inst;
    try {
      inst = await engine.connections.instance(name, factory, details, verify);
    } catch (err) {
      throw verificationFailure(name, err);
    }
    const config: ConnectionConfig = {
      plugin_name: pluginName,
      plugin_version: d.plugin_version ?? same?.plugin_version ?? "",
      verify_connection: verify,
      allowed_roles: d.allowed_roles ?? same?.allowed_roles ?? [],
      root_rotation_statements: d.root_rotation_statements ?? same?.root_rotation_statements ?? [],
      password_policy: passwordPolicy,
      username_template: usernameTemplate,
      connection_details: inst.details,
    };
    // An unfinished rotate-root stays pending unless this write proved (or set) the root password.
    const unresolved = same?.pending_root_password !== undefined && !verify && d.password === undefined;
    if (unresolved) config.pending_root_password = same!.pending_root_password;
    await engine.store.putConfig(name, config);
    await engine.store.deleteTombstone(name);
    if (unresolved) {
      await inst.plugin.close();
      await engine.connections.drop(name);
    } else {
      await engine.connections.replace({ name, config, factory, plugin: inst.plugin, rootUsername: inst.rootUsername });
    }
    const warnings: string[] = [];
    if (typeof config.connection_details.connection_url === "string" && hasLiteralPassword(config.connection_details.connection_url)) {
      // Vault's warning: reads mask it, but the password still sits in the stored URL, and rotate-root cannot change it.
      warnings.push("Password found in connection_url, use a templated URL to avoid password leak.");
    }
    if (!config.allowed_roles.length) warnings.push('allowed_roles is empty: no role can use this connection until it lists them (or "*")');
    return warnings.length ? { warnings } : undefined;
  });
}

async function deleteConfig(engine: DatabaseEngine, req: HandlerRequest): Promise<void> {
  const name = checkName(req.params.name, "config");
  await engine.store.lock(`config/${name}`, async () => {
    const existing = await engine.store.config(name);
    if (!existing) return;
    // Leases this config issued must stay revocable with the newest root password.
    await engine.store.putTombstone(name, { plugin_name: existing.plugin_name, connection_details: existing.connection_details });
    await engine.store.deleteConfig(name);
    await engine.connections.drop(name);
  });
}

/**
 * rotate-root, safe against a crash at any step: the new password is stored as pending beside the
 * old one before PostgreSQL changes, confirmed by logging in with it on a fresh connection, and only
 * then made the root password. If the new one cannot log in, the old one is put back through the
 * still-authenticated pool. A restart in between lets the registry try both.
 */
async function rotateRoot(engine: DatabaseEngine, req: HandlerRequest): Promise<void> {
  const name = checkName(req.params.name, "config");
  await engine.store.lock(`config/${name}`, async () => {
    let live;
    try {
      live = await engine.connections.get(name);
    } catch (err) {
      throw databaseFailure(name, "connecting", err, engine.logger);
    }
    if (!live) throw new NotFound(`no database config named "${name}"`);
    const { config, factory } = live;
    const oldPassword = config.connection_details.password;
    if (!live.rootUsername || typeof oldPassword !== "string" || oldPassword === "") {
      throw new UserError(`config "${name}" has no root username and password fields to rotate: set username and password, and use {{username}} and {{password}} in connection_url`);
    }
    // A password of the URL's own is the one the pool logs in with: rotating the `password` field
    // would change the root user's password in the database to one the config never sends.
    const connectionUrl = config.connection_details.connection_url;
    if (typeof connectionUrl === "string" && hasLiteralPassword(connectionUrl)) {
      throw new UserError(`config "${name}" has the root password written into connection_url: use {{password}} in connection_url and the password field to rotate it`);
    }
    const newPassword = generatePassword();
    await engine.store.putConfig(name, { ...config, pending_root_password: newPassword });
    try {
      await live.plugin.updateUser({ username: live.rootUsername, password: { newPassword, statements: config.root_rotation_statements } });
    } catch (err) {
      // Refused outright: nothing changed. Otherwise the outcome is unknown and the pending password stays for recovery.
      if (!(err instanceof DatabasePluginError && err.outcome === "unknown")) await engine.store.putConfig(name, config);
      else await engine.connections.drop(name);
      throw databaseFailure(name, "rotating the root password", err, engine.logger);
    }
    const rotated: ConnectionConfig = { ...config, connection_details: { ...config.connection_details, password: newPassword } };
    let inst;
    try {
      inst = await engine.connections.instance(name, factory, rotated.connection_details, true);
    } catch (err) {
      try {
        await live.plugin.updateUser({ username: live.rootUsername, password: { newPassword: oldPassword, statements: config.root_rotation_statements } });
        await engine.store.putConfig(name, config);
      } catch {
        // Leave the pending password: the next start of this connection tries both.
        await engine.connections.drop(name);
      }
      throw databaseFailure(name, "logging in with the rotated root password (the old one was kept)", err, engine.logger);
    }
    await engine.store.putConfig(name, rotated);
    await engine.connections.replace({ name, config: rotated, factory, plugin: inst.plugin, rootUsername: inst.rootUsername });
  });
}
