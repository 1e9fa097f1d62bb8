import { UserError } from "../../../src/sdk/index.js";
import {
  aiaExtension,
  assembleTbs,
  authorityKeyIdExtension,
  basicConstraintsExtension,
  crlDistributionPointsExtension,
  encodeName,
  EXT_KEY_USAGES,
  extKeyUsageExtension,
  fixedRdns,
  KEY_USAGES,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdExtension,
  type AiaUrls,
  type AltNames,
} from "./crypto/certificate.js";
import { signerFor, type Signer } from "./crypto/keys.js";
import type { LoadedIssuer } from "./issuer.js";
import type { Role } from "./model.js";

export function keyUsageFlags(names: string[]): number {
  let flags = 0;
  for (const n of names) {
    const f = KEY_USAGES[n.toLowerCase().replace(/^keyusage/, "")];
    if (f === undefined) throw new UserError(`unknown key usage ${JSON.stringify(n)}: use ${Object.keys(KEY_USAGES).join(", ")} (case-insensitive, Go's x509.KeyUsage names)`);
    flags |= f;
  }
  return flags;
}

export function extKeyUsageOids(role: Pick<Role, "server_flag" | "client_flag" | "code_signing_flag" | "email_protection_flag" | "ext_key_usage" | "ext_key_usage_oids">): string[] {
  const oids: string[] = [];
  if (role.server_flag) oids.push(EXT_KEY_USAGES.serverauth);
  if (role.client_flag) oids.push(EXT_KEY_USAGES.clientauth);
  if (role.code_signing_flag) oids.push(EXT_KEY_USAGES.codesigning);
  if (role.email_protection_flag) oids.push(EXT_KEY_USAGES.emailprotection);
  for (const n of role.ext_key_usage) {
    const o = EXT_KEY_USAGES[n.toLowerCase().replace(/^extkeyusage/, "")];
    if (!o) throw new UserError(`unknown extended key usage ${JSON.stringify(n)}: use ${Object.keys(EXT_KEY_USAGES).join(", ")} (case-insensitive)`);
    oids.push(o);
  }
  for (const o of role.ext_key_usage_oids) {
    if (!/^\d+(\.\d+)+$/.test(o)) throw new UserError(`ext_key_usage_oids: ${JSON.stringify(o)} is not a dotted OID`);
    oids.push(o);
  }
  return [...new Set(oids)];
}

/** What changes from one certificate to the next. */
export interface LeafRequest {
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  commonName: string;
  sans: AltNames;
  spki: Buffer;
  /** The subject key identifier (see `keyIdentifier`). */
  keyId: Buffer;
}

/**
 * Everything about a role's certificates that does not change per request, encoded once per
 * (issuer, role, URL config): the signature algorithm, the issuer name, the role's subject
 * attributes, and the key usage, EKU, basic constraints, AKI, AIA and CRL DP extensions. Issuing
 * then only encodes the serial, validity, CN, SANs and SKI, and signs.
 */
export class LeafTemplate {
  readonly signer: Signer;
  private readonly rdns: Buffer[];
  private readonly head: (Buffer | undefined)[];
  private readonly middle: (Buffer | undefined)[];
  private readonly tail: (Buffer | undefined)[];

  constructor(
    readonly issuer: LoadedIssuer,
    role: Role,
    urls: AiaUrls,
  ) {
    if (!issuer.signer) throw new UserError(`issuer ${issuer.id} has no private key in this mount and cannot issue certificates`);
    this.signer = role.signature_bits ? signerFor(issuer.signer.key, role.signature_bits) : issuer.signer;
    this.rdns = fixedRdns({
      country: role.country,
      province: role.province,
      locality: role.locality,
      streetAddress: role.street_address,
      postalCode: role.postal_code,
      organization: role.organization,
      ou: role.ou,
    });
    this.head = [
      keyUsageExtension(keyUsageFlags(role.key_usage)),
      extKeyUsageExtension(extKeyUsageOids(role)),
      role.basic_constraints_valid_for_non_ca ? basicConstraintsExtension(false) : undefined,
    ];
    this.middle = [authorityKeyIdExtension(issuer.keyId), aiaExtension(urls)];
    this.tail = [crlDistributionPointsExtension(urls.crlDistributionPoints)];
  }

  tbs(r: LeafRequest): Buffer {
    const subject = encodeName({ commonName: r.commonName }, this.rdns);
    // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
    const emptySubject = subject.length === 2;
    return assembleTbs({
      serial: r.serial,
      signer: this.signer,
      issuerName: this.issuer.parts.subjectName,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      subject,
      spki: r.spki,
      extensions: [...this.head, subjectKeyIdExtension(r.keyId), ...this.middle, subjectAltNameExtension(r.sans, emptySubject), ...this.tail],
    });
  }
}
