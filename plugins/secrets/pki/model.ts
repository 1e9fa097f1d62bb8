/** What the engine keeps in its storage view. Field names follow Vault's API, so reads are direct. */

/** `roles/<name>`. Durations are whole seconds. */
export interface Role {
  ttl: number;
  max_ttl: number;
  allow_localhost: boolean;
  allowed_domains: string[];
  allow_bare_domains: boolean;
  allow_subdomains: boolean;
  allow_glob_domains: boolean;
  allow_wildcard_certificates: boolean;
  allow_any_name: boolean;
  enforce_hostnames: boolean;
  allow_ip_sans: boolean;
  allowed_uri_sans: string[];
  server_flag: boolean;
  client_flag: boolean;
  code_signing_flag: boolean;
  email_protection_flag: boolean;
  key_type: "rsa" | "ec" | "ed25519" | "any";
  key_bits: number;
  signature_bits: number;
  key_usage: string[];
  ext_key_usage: string[];
  ext_key_usage_oids: string[];
  use_csr_common_name: boolean;
  use_csr_sans: boolean;
  ou: string[];
  organization: string[];
  country: string[];
  locality: string[];
  province: string[];
  street_address: string[];
  postal_code: string[];
  generate_lease: boolean;
  no_store: boolean;
  require_cn: boolean;
  basic_constraints_valid_for_non_ca: boolean;
  not_before_duration: number;
  not_after: string;
  cn_validations: string[];
  issuer_ref: string;
}

/** Vault's defaults for a role created with no fields. */
export function defaultRole(): Role {
  return {
    ttl: 0,
    max_ttl: 0,
    allow_localhost: true,
    allowed_domains: [],
    allow_bare_domains: false,
    allow_subdomains: false,
    allow_glob_domains: false,
    allow_wildcard_certificates: true,
    allow_any_name: false,
    enforce_hostnames: true,
    allow_ip_sans: true,
    allowed_uri_sans: [],
    server_flag: true,
    client_flag: true,
    code_signing_flag: false,
    email_protection_flag: false,
    key_type: "rsa",
    key_bits: 2048,
    signature_bits: 0,
    key_usage: ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
    ext_key_usage: [],
    ext_key_usage_oids: [],
    use_csr_common_name: true,
    use_csr_sans: true,
    ou: [],
    organization: [],
    country: [],
    locality: [],
    province: [],
    street_address: [],
    postal_code: [],
    generate_lease: false,
    no_store: false,
    require_cn: true,
    basic_constraints_valid_for_non_ca: false,
    not_before_duration: 30,
    not_after: "",
    cn_validations: ["email", "hostname"],
    issuer_ref: "default",
  };
}

/** `issuers/<id>`: a CA certificate this mount knows, with the key that signs for it when it has one. */
export interface IssuerEntry {
  issuer_id: string;
  issuer_name: string;
  certificate: string;
  key_id: string;
  leaf_not_after_behavior: "truncate" | "err" | "permit";
  usage: string;
  /** Set once the issuer has been revoked (`issuer/:ref/revoke` is not offered; reserved). */
  revocation_time?: number;
}

/** `keys/<id>`: a CA private key, PKCS#8 PEM. The barrier encrypts it at rest; it is never returned. */
export interface KeyEntry {
  key_id: string;
  key_name: string;
  key_type: string;
  key_bits: number;
  private_key: string;
}

/** `certs/<serial>`: an issued certificate (never its private key). */
export interface CertRecord {
  /** Certificate DER, base64. */
  der: string;
  issuer_id: string;
  /** NotAfter, unix seconds. */
  not_after: number;
  role?: string;
}

/** `revoked/<serial>`: a revocation. Kept until tidy drops it after the certificate expired. */
export interface RevokedRecord {
  issuer_id: string;
  /** Unix milliseconds (reads give seconds and RFC 3339). */
  revoked_at_ms: number;
  not_after: number;
}

/** `crls/<issuer_id>`: the issuer's current CRL. */
export interface CrlRecord {
  der: string;
  number: number;
  this_update: number;
  next_update: number;
}

export interface UrlsConfig {
  issuing_certificates: string[];
  crl_distribution_points: string[];
  ocsp_servers: string[];
}

export interface CrlConfig {
  expiry: number;
  disable: boolean;
  ocsp_disable: boolean;
  ocsp_expiry: number;
  auto_rebuild: boolean;
  auto_rebuild_grace_period: number;
}

export function defaultCrlConfig(): CrlConfig {
  return { expiry: 72 * 3600, disable: false, ocsp_disable: false, ocsp_expiry: 12 * 3600, auto_rebuild: false, auto_rebuild_grace_period: 12 * 3600 };
}

export interface TidyOptions {
  tidy_cert_store: boolean;
  tidy_revoked_certs: boolean;
  safety_buffer: number;
  pause_duration: number;
}

export interface AutoTidyConfig extends TidyOptions {
  enabled: boolean;
  interval_duration: number;
}

export function defaultAutoTidy(): AutoTidyConfig {
  return { enabled: false, interval_duration: 12 * 3600, tidy_cert_store: false, tidy_revoked_certs: false, safety_buffer: 72 * 3600, pause_duration: 0 };
}

/** `config/issuers`. */
export interface IssuersConfig {
  default: string;
  default_follows_latest_issuer: boolean;
}
