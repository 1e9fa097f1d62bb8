import type { SecretType } from "../../../src/sdk/index.js";
import type { PkiEngine } from "./engine.js";

/** Vault's secret type name for certificates issued with `generate_lease=true`. */
export const CERT_SECRET_TYPE = "pki";

/** What a certificate's lease remembers: enough to revoke it even if it was never stored. */
export interface CertLeaseInternal {
  serial_number: string;
  issuer_id: string;
  /** Unix seconds. */
  not_after: number;
  [key: string]: unknown;
}

/** A lease ends within this margin of the certificate's own NotAfter: nothing left to revoke. */
const EXPIRY_MARGIN_MS = 2000;

/**
 * The lease of a certificate is not renewable (a certificate's lifetime is fixed when it is
 * signed); revoking it revokes the certificate, idempotently. A lease that simply ran out
 * coincides with the certificate's expiry, and an expired certificate is not put on the CRL.
 */
export function certSecretType(engine: PkiEngine): SecretType {
  return {
    revoke: async (lease) => {
      const internal = lease.internal as Partial<CertLeaseInternal>;
      if (typeof internal.serial_number !== "string" || typeof internal.issuer_id !== "string" || typeof internal.not_after !== "number") return;
      if (internal.not_after * 1000 <= Date.now() + EXPIRY_MARGIN_MS) return;
      await engine.revoke(internal.serial_number, { issuerId: internal.issuer_id, notAfter: internal.not_after }, "soon");
    },
  };
}
