/**
 * Typed errors shared by the core and every plugin. Each carries a stable `code` and the HTTP
 * status it maps to; only `src/server` turns them into responses (`{"errors": [...]}`).
 */
export abstract class LeaseholdError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** Extra messages for the `errors` array (Vault sometimes returns several). */
  readonly details: string[];
  constructor(message: string, details: string[] = []) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

/** The caller sent something invalid: 400. */
export class UserError extends LeaseholdError {
  readonly status = 400;
  readonly code: string = "bad_request";
}

/** Missing, expired or revoked token, or an ACL deny: 403 `permission denied`. */
export class PermissionDenied extends LeaseholdError {
  readonly status = 403;
  readonly code = "permission_denied";
  constructor(message = "permission denied") {
    super(message);
  }
}

/** Unknown path or missing entry: 404. `message` may be empty (Vault answers `{"errors": []}`). */
export class NotFound extends LeaseholdError {
  readonly status = 404;
  readonly code = "not_found";
  constructor(message = "") {
    super(message);
  }
}

/** The path exists but does not support the operation: 405. */
export class UnsupportedOperation extends LeaseholdError {
  readonly status = 405;
  readonly code = "unsupported_operation";
  constructor(message = "unsupported operation") {
    super(message);
  }
}

/** Body larger than the configured limit: 413. */
export class PayloadTooLarge extends LeaseholdError {
  readonly status = 413;
  readonly code = "payload_too_large";
}

/** A quota or rate limit refused the request: 429. */
export class QuotaExceeded extends LeaseholdError {
  readonly status = 429;
  readonly code = "quota_exceeded";
}

/** The server is sealed or not initialised: 503. */
export class SealedError extends LeaseholdError {
  readonly status = 503;
  readonly code = "sealed";
  constructor(message = "Vault is sealed") {
    super(message);
  }
}

/** HA: this node is a standby and cannot serve the request (no active node is known to redirect to). Clients fail over on "standby". */
export class StandbyError extends LeaseholdError {
  readonly status = 503;
  readonly code = "standby";
  constructor(message = "node is in standby mode and the active node cannot be reached") {
    super(message);
  }
}

/** A dependency we need (audit device, database) failed: 500, but worded for the operator. */
export class InternalError extends LeaseholdError {
  readonly status = 500;
  readonly code = "internal";
}

/** Optimistic concurrency failure (KV `cas`): Vault answers 400. */
export class CheckAndSetMismatch extends UserError {
  override readonly code = "cas_mismatch";
}

export function isLeaseholdError(err: unknown): err is LeaseholdError {
  return err instanceof LeaseholdError;
}
