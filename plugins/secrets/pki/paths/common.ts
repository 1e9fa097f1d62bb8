import { z } from "zod";
import { formatDuration, UserError, zCommaList } from "../../../../src/sdk/index.js";
import { toPem } from "../crypto/pem.js";
import type { LoadedIssuer } from "../issuer.js";

/** The subject attributes a CA request and a role both take (comma lists or arrays). */
export const subjectAttributeFields = {
  ou: zCommaList.optional(),
  organization: zCommaList.optional(),
  country: zCommaList.optional(),
  locality: zCommaList.optional(),
  province: zCommaList.optional(),
  street_address: zCommaList.optional(),
  postal_code: zCommaList.optional(),
};

export const zFormat = z.enum(["pem", "der", "pem_bundle"]);
export type OutputFormat = z.infer<typeof zFormat>;
export const zPrivateKeyFormat = z.enum(["der", "pkcs8", ""]);

/** A certificate in the response format: PEM (no trailing newline, as Vault's JSON has it) or base64 DER. */
export function certOut(der: Buffer, format: OutputFormat): string {
  return format === "der" ? der.toString("base64") : toPem("CERTIFICATE", der).trimEnd();
}

/** An issuer's certificate in the response format (its PEM is encoded once, when the issuer loads). */
export function issuerOut(issuer: LoadedIssuer, format: OutputFormat): string {
  return format === "der" ? issuer.der.toString("base64") : issuer.pem;
}

/** Duration fields are read back the way Vault's config endpoints print them (`72h0m0s`). */
export function durationOut(seconds: number): string {
  return formatDuration(seconds);
}

/** `not_after` requests: Vault's `YYYY-MM-ddTHH:MM:SSZ`. */
export function parseNotAfter(value: string): Date {
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new UserError(`not_after: expected a UTC time such as 2030-01-31T23:59:59Z, got ${JSON.stringify(value)}`);
  return new Date(ms);
}

/**
 * Validity for a new certificate, with Vault's rules: the requested TTL (or the role's, or the
 * mount's default) is capped by the maximum with a warning; NotAfter never passes the issuer's
 * (capped with a warning, unless the issuer says `err`); NotBefore is backdated by
 * `not_before_duration` to absorb clock skew.
 */
export function validity(opts: {
  now: number;
  requestedTtl?: number;
  notAfter?: string;
  defaultTtl: number;
  maxTtl: number;
  notBeforeDuration: number;
  issuer?: LoadedIssuer;
  warnings: string[];
}): { notBefore: Date; notAfter: Date } {
  const now = Math.floor(opts.now / 1000) * 1000;
  let notAfter: number;
  if (opts.notAfter) {
    notAfter = parseNotAfter(opts.notAfter).getTime();
    if (notAfter <= now) throw new UserError("not_after is in the past");
    if (notAfter - now > opts.maxTtl * 1000) {
      opts.warnings.push(`not_after ${opts.notAfter} is later than the maximum TTL of ${opts.maxTtl}s allows; capped`);
      notAfter = now + opts.maxTtl * 1000;
    }
  } else {
    let ttl = opts.requestedTtl || opts.defaultTtl;
    if (ttl > opts.maxTtl) {
      if (opts.requestedTtl) opts.warnings.push(`TTL of ${ttl}s is greater than the maximum of ${opts.maxTtl}s; capped to ${opts.maxTtl}s`);
      ttl = opts.maxTtl;
    }
    if (ttl <= 0) throw new UserError("the certificate's TTL must be positive");
    notAfter = now + ttl * 1000;
  }
  if (opts.issuer) {
    const limit = opts.issuer.parts.notAfter.getTime();
    if (limit <= now) throw new UserError(`issuer ${opts.issuer.id} expired at ${opts.issuer.parts.notAfter.toISOString()}; it cannot issue certificates`);
    const behaviour = opts.issuer.entry.leaf_not_after_behavior;
    if (notAfter > limit && behaviour !== "permit") {
      if (behaviour === "err") throw new UserError(`cannot satisfy request, as the certificate would expire after its issuer (${opts.issuer.parts.notAfter.toISOString()})`);
      opts.warnings.push(`the certificate's NotAfter was capped to its issuer's NotAfter (${opts.issuer.parts.notAfter.toISOString()}): a certificate never outlives its issuer`);
      notAfter = limit;
    }
  }
  return { notBefore: new Date(now - opts.notBeforeDuration * 1000), notAfter: new Date(notAfter) };
}
