import { useEffect, useRef, useState } from "preact/hooks";
import type { TargetedKeyboardEvent } from "preact";
import { ApiError, call, type VaultResponse } from "../api";

type Method = "token" | "userpass" | "oidc";

const METHODS: { id: Method; label: string; disabled?: string }[] = [
  { id: "token", label: "Token" },
  { id: "userpass", label: "Userpass" },
  { id: "oidc", label: "OIDC" },
];

/** What a failed login says, with what to do next. */
function loginError(err: unknown, method: Method, mount: string): string {
  if (err instanceof ApiError) {
    const said = err.message;
    if (method === "token" && err.status === 403) return `The server refused this token (${said}): it may be mistyped, expired or revoked. Paste a valid token and try again.`;
    if (err.status === 429) return `${said}: too many logins from this address. Wait a few seconds and try again.`;
    if (method === "userpass" && err.status === 404) return `No login method is mounted at auth/${mount}/: check the mount path (under "More options") with your operator. The server said: ${said}`;
    if (method === "userpass" && err.status === 400) return `${said}: check the username and the password, then try again.`;
    if (err.status === 503) return `${said}: the server is sealed or in standby. Unseal it (leasehold operator unseal) or use the active node.`;
    return said;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The login page: a token, or a username and password (userpass). */
export function LoginPage(props: { onLoggedIn(token: string): void; notice?: string }) {
  const [method, setMethod] = useState<Method>("userpass");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);

  const submit = async (work: () => Promise<string>, mount = "") => {
    setBusy(true);
    setError(undefined);
    try {
      const token = await work();
      // Whatever the method, the token must be usable: lookup-self is in the default policy.
      await call("GET", "auth/token/lookup-self", { token });
      props.onLoggedIn(token);
    } catch (err) {
      setError(loginError(err, method, mount));
    } finally {
      setBusy(false);
    }
  };

  const onTabKey = (e: TargetedKeyboardEvent<HTMLButtonElement>, index: number) => {
    const enabled = METHODS.map((m, i) => (m.disabled ? -1 : i)).filter((i) => i >= 0);
    const at = enabled.indexOf(index);
    let next: number | undefined;
    if (e.key === "ArrowRight") next = enabled[(at + 1) % enabled.length];
    if (e.key === "ArrowLeft") next = enabled[(at - 1 + enabled.length) % enabled.length];
    if (e.key === "Home") next = enabled[0];
    if (e.key === "End") next = enabled[enabled.length - 1];
    if (next === undefined) return;
    e.preventDefault();
    setMethod(METHODS[next].id);
    setError(undefined);
    tabs.current[next]?.focus();
  };

  return (
    <main class="page narrow login">
      <h1>Log in to leasehold</h1>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <div role="tablist" aria-label="Login method" class="tabs">
        {METHODS.map((m, i) => (
          <button
            key={m.id}
            ref={(el) => {
              tabs.current[i] = el;
            }}
            type="button"
            role="tab"
            id={`tab-${m.id}`}
            aria-selected={method === m.id}
            aria-controls={method === m.id ? `panel-${m.id}` : undefined}
            tabIndex={method === m.id ? 0 : -1}
            disabled={m.disabled !== undefined}
            title={m.disabled}
            onClick={() => {
              setMethod(m.id);
              setError(undefined);
            }}
            onKeyDown={(e) => onTabKey(e, i)}
          >
            {m.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${method}`} aria-labelledby={`tab-${method}`} class="panel">
        {method === "token" && <TokenForm busy={busy} error={error} onSubmit={(token) => submit(async () => token)} />}
        {method === "oidc" && <OidcForm />}
        {method === "userpass" && (
          <UserpassForm
            busy={busy}
            error={error}
            onSubmit={(mount, username, password) =>
              submit(async () => {
                const answer = await call<VaultResponse<unknown>>("POST", `auth/${mount}/login/${encodeURIComponent(username)}`, { body: { password } });
                if (!answer.auth?.client_token) throw new Error("The server answered without a token: check that this mount is a userpass method.");
                return answer.auth.client_token;
              }, mount)
            }
          />
        )}
      </div>
      <p class="hint">The token stays in this browser tab only (session storage) and is forgotten when you log out or close the tab.</p>
    </main>
  );
}

/** The error next to a form, announced to screen readers. */
function FormError(props: { id: string; error?: string }) {
  return (
    <p id={props.id} class="error" role="alert" hidden={!props.error}>
      {props.error}
    </p>
  );
}

function TokenForm(props: { busy: boolean; error?: string; onSubmit(token: string): void }) {
  const [token, setToken] = useState("");
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (token.trim()) props.onSubmit(token.trim());
      }}
      aria-describedby="token-error"
    >
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required value={token} onInput={(e) => setToken(e.currentTarget.value)} aria-invalid={props.error ? true : undefined} aria-describedby="token-error" />
      <FormError id="token-error" error={props.error} />
      <button type="submit" disabled={props.busy}>
        {props.busy ? "Logging in…" : "Log in"}
      </button>
    </form>
  );
}

function UserpassForm(props: { busy: boolean; error?: string; onSubmit(mount: string, username: string, password: string): void }) {
  const [mount, setMount] = useState("userpass");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        const path = mount.trim().replace(/^\/+|\/+$/g, "").replace(/^auth\//, "") || "userpass";
        props.onSubmit(path, username.trim(), password);
      }}
    >
      <label for="username">Username</label>
      <input id="username" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} aria-describedby="userpass-error" />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} aria-invalid={props.error ? true : undefined} aria-describedby="userpass-error" />
      <details class="more">
        <summary>More options</summary>
        <label for="mount">Mount path</label>
        <div class="prefixed">
          <span aria-hidden="true">auth/</span>
          <input id="mount" name="mount" value={mount} onInput={(e) => setMount(e.currentTarget.value)} aria-describedby="mount-hint" />
        </div>
        <p id="mount-hint" class="hint">Where the userpass method is enabled (default: userpass).</p>
      </details>
      <FormError id="userpass-error" error={props.error} />
      <button type="submit" disabled={props.busy}>
        {props.busy ? "Logging in…" : "Log in"}
      </button>
    </form>
  );
}

/**
 * Where the provider sends the browser back: Vault's UI path, so a role whose
 * allowed_redirect_uris were written for Vault's UI works unchanged (and the server's form_post
 * rewrite of `ui/vault` to `v1` applies to it).
 */
export function oidcRedirectUri(mount: string): string {
  return `${location.origin}/ui/vault/auth/${mount.split("/").map(encodeURIComponent).join("/")}/oidc/callback`;
}

/** Single sign-on: asks the jwt mount for the provider's sign-in address and goes there. */
function OidcForm() {
  const [mount, setMount] = useState("oidc");
  const [role, setRole] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const start = async () => {
    const path = mount.trim().replace(/^\/+|\/+$/g, "").replace(/^auth\//, "") || "oidc";
    const redirectUri = oidcRedirectUri(path);
    setBusy(true);
    setError(undefined);
    try {
      const answer = await call<VaultResponse<{ auth_url?: string }>>("POST", `auth/${path}/oidc/auth_url`, { body: { role: role.trim() || undefined, redirect_uri: redirectUri } });
      const url = answer.data?.auth_url;
      if (!url) {
        setError(`The server gave no sign-in address. The role must be an OIDC role (role_type=oidc) whose allowed_redirect_uris include ${redirectUri}; the server's log says which.`);
        setBusy(false);
        return;
      }
      location.assign(url);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setError(`No login method is mounted at auth/${path}/: check the mount path with your operator. The server said: ${err.message}`);
      else if (err instanceof ApiError && err.status === 400) setError(`${err.message}: check the role name (empty means the mount's default_role) and the mount path.`);
      else setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void start();
      }}
    >
      <label for="oidc-role">Role</label>
      <input id="oidc-role" name="role" autocomplete="off" value={role} onInput={(e) => setRole(e.currentTarget.value)} aria-describedby="oidc-role-hint oidc-error" />
      <p id="oidc-role-hint" class="hint small">
        Empty: the mount's default role.
      </p>
      <label for="oidc-mount">Mount path</label>
      <div class="prefixed">
        <span aria-hidden="true">auth/</span>
        <input id="oidc-mount" name="mount" value={mount} onInput={(e) => setMount(e.currentTarget.value)} />
      </div>
      <FormError id="oidc-error" error={error} />
      <button type="submit" disabled={busy}>
        {busy ? "Going to the provider…" : "Sign in with OIDC"}
      </button>
    </form>
  );
}

/**
 * The provider's redirect back to the console: `state` and `code` go to `auth/<mount>/oidc/callback`
 * (the server checks the state, exchanges the code with its PKCE verifier and verifies the nonce),
 * which answers the token. The state works once, so this runs once per page load.
 */
export function OidcCallbackPage(props: { mount: string; onLoggedIn(token: string): void }) {
  const [error, setError] = useState<string | undefined>();
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const query = new URLSearchParams(location.search);
    const providerError = query.get("error");
    if (providerError) {
      setError(`The identity provider refused the sign-in: ${query.get("error_description") || providerError}. Try again, or ask your operator.`);
      return;
    }
    const state = query.get("state") ?? "";
    const code = query.get("code") ?? "";
    if (!state || !code) {
      setError("This address lacks the provider's state and code: start the sign-in again from the login page.");
      return;
    }
    const finish = async () => {
      const answer = await call<VaultResponse<unknown>>("GET", `auth/${props.mount}/oidc/callback?${new URLSearchParams({ state, code })}`);
      const token = answer.auth?.client_token;
      if (!token) throw new Error("The server answered without a token: check that this mount is a jwt method in OIDC mode.");
      await call("GET", "auth/token/lookup-self", { token });
      props.onLoggedIn(token);
    };
    finish().catch((err: unknown) => {
      const said = err instanceof Error ? err.message : String(err);
      setError(`${said}${/state/i.test(said) ? " The sign-in took too long or this page was reloaded: start again." : ""}`);
    });
  }, [props]);

  return (
    <main class="page narrow login">
      <h1>Signing in…</h1>
      {!error && <p role="status">Completing the sign-in with auth/{props.mount}/…</p>}
      <FormError id="oidc-callback-error" error={error} />
      {error && (
        <p>
          <a href="/ui/login">Back to the login page</a>
        </p>
      )}
    </main>
  );
}
