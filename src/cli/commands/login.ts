import type { Command } from "commander";
import { authFromLookup as authBlockFromLookup, authMountPath, loginRequest, userpassLoginPath, writeTokenFile, type VaultResponse } from "../../client/index.js";
import { CommandContext, UsageError, addConnectionOptions, addFormatOption, trimSlashes, type CliIo, type ConnectionFlags, type OutputFlags } from "../context.js";
import { readAll } from "../kv-args.js";
import { loginOidc } from "./login-oidc.js";
import { promptSecret } from "./operator.js";

interface LoginFlags extends ConnectionFlags, OutputFlags {
  method: string;
  path?: string;
  /** Commander's negation of `-no-store`. */
  store: boolean;
  tokenOnly?: boolean;
}

/** `lookup-self` data as the `auth` block `vault login TOKEN` prints. */
export function authFromLookup(token: string, lookup: VaultResponse<Record<string, unknown>>): VaultResponse<unknown> {
  return { ...lookup, data: null, auth: authBlockFromLookup(token, lookup.data ?? {}) };
}

export function registerLogin(program: Command, io: CliIo): void {
  addFormatOption(addConnectionOptions(program.command("login")))
    .description("authenticate and store the token in ~/.leasehold-token")
    .argument("[args...]", "TOKEN (token method) or K=V login data (other methods)")
    .option("--method <type>", "auth method type: token, approle, kubernetes, jwt, oidc, userpass, cert", "token")
    .option("--path <mount>", "mount path of the auth method (default: the method type)")
    .option("--no-store", "print the token but do not store it")
    .option("--token-only", "print only the token and do not store it (same as -field=token -no-store)")
    .action(async (args: string[], flags: LoginFlags) => {
      const ctx = new CommandContext(io, flags.tokenOnly ? { ...flags, field: "token" } : flags);
      try {
        const method = flags.method.toLowerCase();
        let resp: VaultResponse<unknown>;
        if (method === "token") {
          if (args.length > 1) throw new UsageError("Too many arguments: login with the token method takes at most one TOKEN");
          let token = args[0];
          if (token === "-") token = (await readAll(io.stdin)).trim();
          else if (token === undefined) token = await promptSecret(io, "Token (will be hidden): ");
          if (!token) throw new UsageError("no token given");
          const lookup = await ctx.call("validating token", (c) =>
            c.request<VaultResponse<Record<string, unknown>>>("GET", "auth/token/lookup-self", { token }),
          );
          resp = authFromLookup(token, lookup.body as VaultResponse<Record<string, unknown>>);
        } else if (method === "userpass") {
          // Vault's userpass CLI handler: the username goes into the path, the password (asked for
          // when not given) into the body.
          const mount = authMountPath(method, trimSlashes(flags.path ?? method));
          const { username, password, ...rest } = await ctx.keyValues(args);
          if (typeof username !== "string" || username === "") throw new UsageError("'username' must be specified");
          const secret = typeof password === "string" && password !== "" ? password : await promptSecret(io, "Password (will be hidden): ");
          resp = await ctx.call("authenticating", (c) => loginRequest(c, mount, { ...rest, password: secret }, undefined, userpassLoginPath(username)));
        } else if (method === "oidc") {
          resp = await loginOidc(ctx, authMountPath(method, trimSlashes(flags.path ?? method)), await ctx.keyValues(args));
        } else {
          const mount = authMountPath(method, trimSlashes(flags.path ?? method));
          const data = await ctx.keyValues(args);
          resp = await ctx.call("authenticating", (c) => loginRequest(c, mount, data));
        }

        const store = flags.store && !flags.tokenOnly;
        if (store) writeTokenFile(resp.auth!.client_token, io.homeDir);
        if (ctx.field === undefined && ctx.format === "table") {
          const envToken = io.env.LEASEHOLD_TOKEN ? "LEASEHOLD_TOKEN" : io.env.VAULT_TOKEN ? "VAULT_TOKEN" : undefined;
          if (envToken && store) {
            ctx.warn(
              `WARNING! The ${envToken} environment variable is set! It takes precedence over the\n` +
                `token just stored in ${ctx.settings.tokenFile}; unset it to use the new token.\n`,
            );
          }
          ctx.print(
            store
              ? `Success! You are now authenticated. The token below is stored in\n${ctx.settings.tokenFile}; later commands use it.\n`
              : "Success! You are now authenticated. The token below was not stored (-no-store).\n",
          );
        }
        ctx.outputSecret(resp);
      } finally {
        ctx.close();
      }
    });
}
