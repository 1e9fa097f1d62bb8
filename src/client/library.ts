/**
 * The package's `leasehold/client` entry for applications: everything in the shared client plus
 * `Leasehold`, the rotating PostgreSQL pool and the self-renewing TLS certificate.
 */
export * from "./index.js";
export { Leasehold } from "./leasehold.js";
export type { DatabaseCredentials, IssuedCertificate, KvV2Data, LeaseholdOptions, Secret, SecretWatch, WatchOptions } from "./leasehold.js";
export { RotatingPool, databasePool } from "./database-pool.js";
export type { DatabasePoolOptions } from "./database-pool.js";
export { TlsCertificate, tlsCertificate } from "./tls-certificate.js";
export type { TlsCertificateOptions } from "./tls-certificate.js";
