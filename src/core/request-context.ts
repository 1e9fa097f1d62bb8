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

/**
 * The context of each request object handed to a handler. A WeakMap rather than an
 * AsyncLocalStorage: in Node 20 an AsyncLocalStorage turns on async hooks for every promise in
 * the process, which cost about 30 µs per request here. Being off the request object, it is not
 * reachable by plugins that enumerate what they are handed (it carries the caller's raw token).
 */
const contexts = new WeakMap<object, RequestContext>();

/** Binds `ctx` to the request object a handler receives (done by the dispatcher). */
export function bindRequestContext(req: object, ctx: RequestContext): void {
  contexts.set(req, ctx);
}

/** The context of the request a core-internal handler is serving. */
export function currentRequest(req: object): RequestContext {
  return contexts.get(req) ?? { sudo: false };
}
