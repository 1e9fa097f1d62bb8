/** A typed client for the `/v1/` API, shared by the CLI, the agent and the application library. */
export { LeaseholdClient, isRetryable, shouldFailOver } from "./client.js";
export type { ClientOptions, ClientResponse, QueryValue, RequestOptions } from "./client.js";
export {
  BadRequestError,
  ClientConfigError,
  ConnectionError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  SealedError,
  ServerError,
  VaultHttpError,
} from "./errors.js";
export {
  DEFAULT_ADDRESS,
  DEFAULT_MAX_RETRIES,
  clientOptionsFromSettings,
  parseBool,
  readPem,
  resolveClientSettings,
} from "./settings.js";
export type { ClientSettings, ClientSettingsFlags, TokenSource } from "./settings.js";
export { TOKEN_FILE_NAME, readTokenFile, tokenFilePath, writeTokenFile } from "./token-file.js";
export { AbortError, Backoff, backoffDelay, sleep } from "./backoff.js";
export { KUBERNETES_TOKEN_PATH, appRoleAuth, authFromLookup, authMountPath, certAuth, jwtAuth, kubernetesAuth, loginRequest, tokenAuth, userpassAuth, userpassLoginPath } from "./auth-methods.js";
export type { AppRoleOptions, AuthMethod, CertOptions, Credential, JwtOptions, KubernetesOptions, UserpassOptions } from "./auth-methods.js";
export { LeaseKeeper, certificateLifetime, renewalDelayMs, replacementTime, secretLifetime } from "./lease-keeper.js";
export type { LeaseInfo, LeaseKeeperEvents, LeaseKeeperOptions, Renewal } from "./lease-keeper.js";
export { TokenKeeper } from "./token-keeper.js";
export { renewLease, revokeObtained } from "./leases.js";
export type { TokenKeeperOptions } from "./token-keeper.js";
export type * from "./types.js";
