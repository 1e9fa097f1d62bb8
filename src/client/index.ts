/** A typed client for the `/v1/` API, shared by the CLI, the agent and the application library. */
export { LeaseholdClient } from "./client.js";
export type { ClientOptions, ClientResponse, QueryValue, RequestOptions } from "./client.js";
export { ClientConfigError, ConnectionError, VaultHttpError } from "./errors.js";
export {
  DEFAULT_ADDRESS,
  clientOptionsFromSettings,
  parseBool,
  readPem,
  resolveClientSettings,
} from "./settings.js";
export type { ClientSettings, ClientSettingsFlags, TokenSource } from "./settings.js";
export { TOKEN_FILE_NAME, readTokenFile, tokenFilePath, writeTokenFile } from "./token-file.js";
export type * from "./types.js";
