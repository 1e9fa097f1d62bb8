/**
 * Errors raised by the client. A server that answered with an error status gives a
 * `VaultHttpError`; a server that could not be reached (or spoke something other than HTTP)
 * gives a `ConnectionError` whose message says what to check.
 */

/** The server answered 4xx or 5xx; `errors` is the `{"errors": [...]}` array of the body. */
export class VaultHttpError extends Error {
  readonly status: number;
  readonly errors: string[];
  readonly method: string;
  readonly url: string;
  /** The parsed body (or its text when it was not JSON). */
  readonly body: unknown;

  constructor(init: { status: number; errors: string[]; method: string; url: string; body?: unknown }) {
    super(init.errors.length > 0 ? init.errors.join("; ") : `server answered HTTP ${init.status}`);
    this.name = "VaultHttpError";
    this.status = init.status;
    this.errors = init.errors;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
  }
}

/**
 * 400: the request was malformed or refused (a bad field, a lease that no longer exists), including
 * a login whose credential was refused by AppRole, JWT or cert (Vault's codes).
 */
export class BadRequestError extends VaultHttpError {}
/** 403: the token may not do this, or a Kubernetes login (or one outside `token_bound_cidrs`) was refused. */
export class PermissionDeniedError extends VaultHttpError {}
/** 404: nothing at that path. */
export class NotFoundError extends VaultHttpError {}
/** 429: a rate limit or a lease-count quota. */
export class RateLimitedError extends VaultHttpError {}
/** 503: the server is sealed or in standby. */
export class SealedError extends VaultHttpError {}
/** Any other 5xx: the server (or a database behind it) failed; worth retrying later. */
export class ServerError extends VaultHttpError {}

/** The VaultHttpError subclass for a status, so callers can `instanceof` the case they handle. */
export function httpErrorFor(init: ConstructorParameters<typeof VaultHttpError>[0]): VaultHttpError {
  const Kind =
    init.status === 400
      ? BadRequestError
      : init.status === 403
        ? PermissionDeniedError
        : init.status === 404
          ? NotFoundError
          : init.status === 429
            ? RateLimitedError
            : init.status === 503
              ? SealedError
              : init.status >= 500
                ? ServerError
                : VaultHttpError;
  const err = new Kind(init);
  err.name = Kind.name;
  return err;
}

/** The request never got an HTTP answer: refused, unresolvable host, TLS failure, timeout, reset. */
export class ConnectionError extends Error {
  readonly address: string;
  /** Node's error code (`ECONNREFUSED`, `ENOTFOUND`, `DEPTH_ZERO_SELF_SIGNED_CERT`, ...) or `ETIMEDOUT`. */
  readonly code: string | undefined;
  /**
   * The server's certificate failed verification, or the TLS handshake failed (wrong scheme):
   * a configuration mistake or an interception, never a node that is down, so no failover.
   */
  readonly tlsFailure: boolean;

  constructor(message: string, init: { address: string; code?: string; cause?: unknown; tlsFailure?: boolean }) {
    super(message, { cause: init.cause });
    this.name = "ConnectionError";
    this.address = init.address;
    this.code = init.code;
    this.tlsFailure = init.tlsFailure ?? false;
  }
}

/** The client's settings are unusable (bad address, unreadable certificate file, bad boolean). */
export class ClientConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ClientConfigError";
  }
}

const TLS_VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Turns a socket-level failure into a ConnectionError that tells the user what to check. */
export function connectionErrorFrom(err: unknown, address: string): ConnectionError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const detail = e?.message ?? String(err);
  const running = `is the server running at ${address}? set LEASEHOLD_ADDR (or -address) to the server's address`;
  let message: string;
  let tlsFailure = false;
  if (code === "ECONNREFUSED") {
    message = `connection refused: ${running}`;
  } else if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    message = `cannot resolve the host of ${address} (${detail}): check LEASEHOLD_ADDR`;
  } else if (code === "ETIMEDOUT") {
    message = `no answer from ${address} in time: ${running}`;
  } else if (code !== undefined && TLS_VERIFY_CODES.has(code)) {
    tlsFailure = true;
    message =
      `TLS verification of ${address} failed (${detail}): set LEASEHOLD_CACERT to the CA certificate ` +
      `that signed the server's certificate (LEASEHOLD_SKIP_VERIFY=true disables verification, for testing only)`;
  } else if (code === "EPROTO" || /wrong version number|packet length too long/i.test(detail)) {
    // OpenSSL's message spans lines and names its source files; the reason is what matters.
    const reason = /wrong version number/i.test(detail) ? "wrong version number" : detail.split("\n")[0];
    tlsFailure = true;
    message = `TLS handshake with ${address} failed (${reason}): does the server speak plain http? check the scheme in LEASEHOLD_ADDR`;
  } else if (code === "ECONNRESET" || /socket hang up/i.test(detail)) {
    message =
      `connection to ${address} was closed without an answer (${detail}): ` +
      `does the scheme (http/https) match the server's listener? ${running}`;
  } else {
    message = `cannot reach ${address} (${detail}): ${running}`;
  }
  return new ConnectionError(message, { address, code, cause: err, tlsFailure });
}
