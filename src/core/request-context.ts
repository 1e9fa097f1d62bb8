import { AsyncLocalStorage } from "node:async_hooks";
import type { TokenEntry } from "./tokens.js";

/** Per-request facts that core-internal backends (sys, auth/token) need beyond the plugin contract. */
export interface RequestContext {
  /** The token presented with the request and its entry, when there was a valid one. */
  token?: string;
  tokenEntry?: TokenEntry;
  /** Set when the token's ACL grants sudo on the request path. */
  sudo: boolean;
  /** Work to run once the response has been audited (e.g. sealing after `sys/seal` answered). */
  afterResponse?: (() => Promise<void>)[];
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext {
  return requestContext.getStore() ?? { sudo: false };
}
