import { X509Certificate } from "node:crypto";
import { UserError } from "../../../src/sdk/index.js";

/** Validates a PEM bundle of CA certificates (at least one, every one parseable). */
export function checkCaBundle(pem: string, field: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new UserError(`${field}: not a PEM certificate bundle`);
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch {
      throw new UserError(`${field}: certificate ${i + 1} of the bundle could not be parsed`);
    }
  }
}
