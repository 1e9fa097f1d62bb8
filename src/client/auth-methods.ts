/**
 * How a client proves who it is: one `AuthMethod` per auth method leasehold serves. Each reads
 * its credential when it logs in (files are re-read, so a rotated service-account token or a new
 * SecretID is picked up), and answers the `auth` block of the login.
 */
import { readFileSync, rmSync } from "node:fs";
import type { LeaseholdClient } from "./client.js";
import { ClientConfigError } from "./errors.js";
import type { VaultAuth, VaultResponse } from "./types.js";

/** Where Kubernetes mounts a pod's service-account token. */
export const KUBERNETES_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** A way to obtain a token. `login` never sends the client's current token. */
export interface AuthMethod {
  /** `approle`, `kubernetes`, `jwt`, `userpass`, `cert` or `token`. */
  readonly type: string;
  /** Mount path without slashes, e.g. `auth/approle` (`auth/token` for the token method). */
  readonly mountPath: string;
  login(client: LeaseholdClient, signal?: AbortSignal): Promise<VaultAuth>;
}

interface MountOption {
  /** Mount path of the auth method: `approle` or `auth/approle` (default `auth/<type>`). */
  mountPath?: string;
}

/** A value given directly, or the path of a file holding it (read at each login, trimmed). */
export type Credential = { value: string } | { file: string };

export interface AppRoleOptions extends MountOption {
  roleId: string | Credential;
  /** Omit for a role with `bind_secret_id=false`. */
  secretId?: string | Credential;
  /**
   * Delete the SecretID file once read (Vault Agent's `remove_secret_id_file_after_reading`): the
   * SecretID is kept in memory for later logins until a new file appears.
   */
  removeSecretIdFileAfterReading?: boolean;
}

export interface KubernetesOptions extends MountOption {
  role: string;
  /** The service-account token file; the in-pod path by default. Re-read at each login (projected tokens rotate). */
  tokenPath?: string;
}

export interface JwtOptions extends MountOption {
  role?: string;
  /** The JWT itself, or the file holding it (re-read at each login). */
  jwt: string | Credential;
  /** Delete the JWT file once read, keeping the token in memory until a new file appears. */
  removeJwtAfterReading?: boolean;
}

export interface UserpassOptions extends MountOption {
  username: string;
  /** The password itself, or the file holding it (re-read at each login). */
  password: string | Credential;
}

export interface CertOptions extends MountOption {
  /** The `cert` role to log in with; every matching role when omitted. The client must be built with `clientCert`/`clientKey`. */
  name?: string;
}

/** `auth/approle/login` with a RoleID and SecretID. */
export function appRoleAuth(options: AppRoleOptions): AuthMethod {
  const secret = options.secretId === undefined ? undefined : new CredentialReader("SecretID", options.secretId, options.removeSecretIdFileAfterReading ?? false);
  const roleId = new CredentialReader("RoleID", options.roleId, false);
  return loginMethod("approle", options.mountPath, () => {
    const body: Record<string, unknown> = { role_id: roleId.read() };
    if (secret) body.secret_id = secret.read();
    return body;
  });
}

/** `auth/kubernetes/login` with the pod's service-account token. */
export function kubernetesAuth(options: KubernetesOptions): AuthMethod {
  const jwt = new CredentialReader("service-account token", { file: options.tokenPath ?? KUBERNETES_TOKEN_PATH }, false);
  return loginMethod("kubernetes", options.mountPath, () => ({ role: options.role, jwt: jwt.read() }));
}

/** `auth/jwt/login` with a JWT (OIDC ID token, CI job token, ...). */
export function jwtAuth(options: JwtOptions): AuthMethod {
  const jwt = new CredentialReader("JWT", options.jwt, options.removeJwtAfterReading ?? false);
  return loginMethod("jwt", options.mountPath, () => {
    const body: Record<string, unknown> = { jwt: jwt.read() };
    if (options.role) body.role = options.role;
    return body;
  });
}

/** `auth/userpass/login/<username>` with the password in the body (Vault's path: the username is part of it). */
export function userpassAuth(options: UserpassOptions): AuthMethod {
  if (!options.username) throw new ClientConfigError("userpass: a username is required");
  const password = new CredentialReader("password", options.password, false);
  const mount = authMountPath("userpass", options.mountPath);
  return {
    type: "userpass",
    mountPath: mount,
    async login(client, signal) {
      return (await loginRequest(client, mount, { password: password.read() }, signal, userpassLoginPath(options.username))).auth;
    },
  };
}

/** The login path under a userpass mount: `login/<username>`, the username escaped as one path segment. */
export function userpassLoginPath(username: string): string {
  return `login/${encodeURIComponent(username)}`;
}

/** `auth/cert/login`: the TLS client certificate of the connection is the credential. */
export function certAuth(options: CertOptions = {}): AuthMethod {
  return loginMethod("cert", options.mountPath, () => (options.name ? { name: options.name } : {}));
}

/** An existing token (from a file, an env var, an orchestrator); "login" looks it up to learn its TTL. */
export function tokenAuth(token: string | Credential): AuthMethod {
  const reader = new CredentialReader("token", token, false);
  return {
    type: "token",
    mountPath: "auth/token",
    async login(client, signal) {
      const value = reader.read();
      const res = await client.request<VaultResponse<Record<string, unknown>>>("GET", "auth/token/lookup-self", { token: value, signal });
      return authFromLookup(value, res.body?.data ?? {});
    },
  };
}

/** The `auth` block a login would have answered, from `lookup-self` data (what `vault login TOKEN` prints). */
export function authFromLookup(token: string, d: Record<string, unknown>): VaultAuth {
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return {
    client_token: token,
    accessor: String(d.accessor ?? ""),
    policies: list(d.policies),
    token_policies: list(d.policies),
    identity_policies: list(d.identity_policies),
    metadata: (d.meta as Record<string, string> | null) ?? null,
    lease_duration: Number(d.ttl ?? 0),
    renewable: d.renewable === true,
    entity_id: String(d.entity_id ?? ""),
    token_type: String(d.type ?? "service"),
    orphan: d.orphan === true,
  };
}

/**
 * `PUT <mount>/<loginPath>` (`login` by default; `login/<username>` for userpass) with `body`,
 * without the client's token; the whole answer (the CLI prints it). Throws when the answer carries
 * no token.
 */
export async function loginRequest(client: LeaseholdClient, mountPath: string, body: Record<string, unknown>, signal?: AbortSignal, loginPath = "login"): Promise<VaultResponse<unknown> & { auth: VaultAuth }> {
  const res = await client.request<VaultResponse<unknown>>("PUT", `${mountPath}/${loginPath}`, { body, token: null, signal });
  const answer = res.body;
  if (!answer?.auth?.client_token) throw new ClientConfigError(`${mountPath}/login answered without a token: is ${mountPath} an auth method?`);
  return answer as VaultResponse<unknown> & { auth: VaultAuth };
}

/** Normalises `approle`, `/auth/approle/` and `auth/approle` to `auth/approle`. */
export function authMountPath(type: string, mountPath: string | undefined): string {
  const trimmed = (mountPath ?? type).replace(/^\/+|\/+$/g, "");
  if (trimmed === "") throw new ClientConfigError(`empty mount path for the ${type} auth method`);
  return trimmed.startsWith("auth/") ? trimmed : `auth/${trimmed}`;
}

function loginMethod(type: string, mountPath: string | undefined, body: () => Record<string, unknown>): AuthMethod {
  const mount = authMountPath(type, mountPath);
  return {
    type,
    mountPath: mount,
    async login(client, signal) {
      return (await loginRequest(client, mount, body(), signal)).auth;
    },
  };
}

/** Reads a credential given directly or from a file; optionally removes the file and remembers the value. */
class CredentialReader {
  private remembered: string | undefined;

  constructor(
    private readonly what: string,
    private readonly source: string | Credential,
    private readonly removeAfterReading: boolean,
  ) {}

  read(): string {
    if (typeof this.source === "string") return this.source;
    if ("value" in this.source) return this.source.value;
    const path = this.source.file;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && this.remembered !== undefined) return this.remembered;
      throw new ClientConfigError(`cannot read the ${this.what} file ${path}: ${(cause as Error).message}`, { cause });
    }
    const value = text.trim();
    if (value === "") {
      if (this.remembered !== undefined) return this.remembered;
      throw new ClientConfigError(`the ${this.what} file ${path} is empty`);
    }
    if (this.removeAfterReading) {
      this.remembered = value;
      rmSync(path, { force: true });
    }
    return value;
  }
}
