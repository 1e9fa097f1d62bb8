import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { VaultResponse } from "../../client/index.js";
import { CliExit, UsageError, type CommandContext } from "../context.js";

/** Vault's CLI waits this long for the provider to send the browser back. */
const CALLBACK_TIMEOUT_MS = 2 * 60_000;
const CALLBACK_PATH = "/oidc/callback";

/** `leasehold login -method=oidc` settings, with the names and defaults of `vault login -method=oidc`. */
export interface OidcLoginSettings {
  role: string;
  listenAddress: string;
  port: number;
  callbackMethod: string;
  callbackHost: string;
  callbackPort: number;
  skipBrowser: boolean;
}

/** Reads the K=V login arguments (`role`, `port`, `callbackhost`, `skip_browser`...). */
export function oidcLoginSettings(data: Record<string, unknown>): OidcLoginSettings {
  const str = (k: string, dflt: string) => (data[k] === undefined ? dflt : String(data[k]));
  const port = (k: string, dflt: string) => {
    const v = str(k, dflt);
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new UsageError(`${k} must be a TCP port number, not ${JSON.stringify(v)}`);
    return Number(v);
  };
  const listenPort = port("port", "8250");
  const skip = str("skip_browser", "false").toLowerCase();
  if (!["true", "false", "1", "0", "t", "f"].includes(skip)) throw new UsageError(`skip_browser must be true or false, not ${JSON.stringify(skip)}`);
  return {
    role: str("role", ""),
    listenAddress: str("listenaddress", "127.0.0.1"),
    port: listenPort,
    callbackMethod: str("callbackmethod", "http"),
    callbackHost: str("callbackhost", "localhost"),
    callbackPort: port("callbackport", String(listenPort)),
    skipBrowser: ["true", "1", "t"].includes(skip),
  };
}

/**
 * The OIDC login of a person at a terminal, as `vault login -method=oidc` runs it: listen on the
 * loopback for the provider's redirect, ask the server for an authorization URL (with a client
 * nonce that only this process knows), open the browser (or just print the URL), then hand the
 * redirect's `state` and `code` to `<mount>/oidc/callback`, which answers the token.
 */
export async function loginOidc(ctx: CommandContext, mount: string, data: Record<string, unknown>): Promise<VaultResponse<unknown>> {
  const s = oidcLoginSettings(data);
  const clientNonce = randomBytes(20).toString("base64url");
  const redirectUri = `${s.callbackMethod}://${s.callbackHost}:${s.callbackPort}${CALLBACK_PATH}`;

  /** The state of the login this process started; a redirect carrying another is not ours. */
  let expectedState: string | undefined;
  let finish!: (r: { resp?: VaultResponse<unknown>; err?: CliExit }) => void;
  const done = new Promise<{ resp?: VaultResponse<unknown>; err?: CliExit }>((r) => (finish = r));
  const server = createServer((req, res) => void handleRedirect(req, res));
  async function handleRedirect(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://callback");
    if (url.pathname !== CALLBACK_PATH) {
      res.writeHead(404).end();
      return;
    }
    // response_mode=form_post: the provider makes the browser POST the same fields as a form.
    const params = req.method === "POST" ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const providerError = params.get("error");
    if (providerError) {
      const detail = params.get("error_description");
      const message = `the provider refused the login: ${providerError}${detail ? ` (${detail})` : ""}`;
      sendPage(res, 400, "Login failed", message);
      finish({ err: new CliExit(1, `Error authenticating: ${message}`) });
      return;
    }
    if (expectedState === undefined || params.get("state") !== expectedState) {
      // Another login's redirect (or a forged one from a local process): refuse it, keep waiting.
      sendPage(res, 400, "Login failed", "This redirect does not belong to the login this terminal started.");
      return;
    }
    try {
      const query: Record<string, string> = { state: params.get("state") ?? "", code: params.get("code") ?? "", client_nonce: clientNonce };
      if (params.get("id_token")) query.id_token = params.get("id_token")!;
      // No retry: the state is single-use, a second try could only fail.
      const answer = await ctx.call("authenticating", (c) => c.request<VaultResponse<unknown>>("GET", `${mount}/oidc/callback`, { query, token: null, retries: 0 }));
      if (!answer.body?.auth?.client_token) throw new CliExit(1, `Error authenticating: ${mount}/oidc/callback answered without a token`);
      sendPage(res, 200, "Authentication succeeded", "You are logged in to leasehold. You may close this window and return to the terminal.");
      finish({ resp: answer.body });
    } catch (err) {
      const exit = err instanceof CliExit ? err : new CliExit(1, `Error authenticating: ${(err as Error).message}`);
      sendPage(res, 400, "Login failed", exit.message);
      finish({ err: exit });
    }
  }

  await listen(server, s.listenAddress, s.port);
  const timer = setTimeout(() => finish({ err: new CliExit(1, "Error authenticating: timed out waiting for response from provider") }), CALLBACK_TIMEOUT_MS);
  try {
    const started = await ctx.call("requesting the authorization URL", (c) =>
      c.request<VaultResponse<{ auth_url?: string }>>("PUT", `${mount}/oidc/auth_url`, { body: { role: s.role, redirect_uri: redirectUri, client_nonce: clientNonce }, token: null }),
    );
    const authUrl = started.body?.data?.auth_url ?? "";
    if (!authUrl) {
      throw new CliExit(
        1,
        `Error authenticating: Unable to authorize role ${JSON.stringify(s.role)} with redirect_uri ${JSON.stringify(redirectUri)}. ` +
          "Check that the role's allowed_redirect_uris lists it, and the server's log for more information.",
      );
    }
    expectedState = new URL(authUrl).searchParams.get("state") ?? "";
    if (s.skipBrowser) {
      ctx.warn(`Complete the login via your OIDC provider. Open the following link in your browser:\n\n    ${authUrl}\n\n`);
    } else {
      ctx.warn(`Complete the login via your OIDC provider. Launching browser to:\n\n    ${authUrl}\n\n`);
      openBrowser(authUrl, (message) => ctx.warn(`Error attempting to automatically open browser: '${message}'.\nPlease visit the authorization URL manually.`));
    }
    ctx.warn("Waiting for OIDC authentication to complete...");
    const outcome = await done;
    if (outcome.err) throw outcome.err;
    return outcome.resp!;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new CliExit(1, `Error authenticating: cannot listen on ${host}:${port} for the provider's redirect (${err.code ?? err.message}); pass port=<another port> (listed in the role's allowed_redirect_uris, and at the provider)`)),
    );
    server.listen(port, host, () => resolve());
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) req.destroy(new Error("form too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sendPage(res: ServerResponse, status: number, title: string, message: string): void {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>leasehold: ${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" }).end(body);
}

/** Opens the URL in the desktop's browser (xdg-open, open, or start); failures only print a hint. */
function openBrowser(url: string, onError: (message: string) => void): void {
  const [cmd, args] =
    process.platform === "darwin" ? ["open", [url]] : process.platform === "win32" ? ["rundll32", ["url.dll,FileProtocolHandler", url]] : ["xdg-open", [url]];
  try {
    const child = spawn(cmd, args as string[], { detached: true, stdio: "ignore" });
    child.on("error", (err) => onError(err.message));
    child.unref();
  } catch (err) {
    onError((err as Error).message);
  }
}
