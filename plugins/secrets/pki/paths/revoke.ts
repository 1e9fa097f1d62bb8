import { z } from "zod";
import { UserError } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { X509Certificate as NodeCertificate } from "node:crypto";
import { certificateParts } from "../crypto/certificate.js";
import { onePem } from "../crypto/pem.js";
import { formatSerial, parseSerial } from "../crypto/serial.js";
import type { PkiEngine } from "../engine.js";
import { issuedBy } from "../issuer.js";

const revokeSchema = z.object({ serial_number: z.string().optional(), certificate: z.string().optional() });

/**
 * `revoke`: by serial (a certificate this mount stored) or by the certificate itself, which must
 * have been signed by one of this mount's issuers; the second form also revokes certificates of
 * `no_store` roles. The CRL is rebuilt before the answer (unless `auto_rebuild`); OCSP sees it at once.
 */
async function revoke(engine: PkiEngine, req: HandlerRequest<z.infer<typeof revokeSchema>>): Promise<HandlerResponse> {
  const { serial_number, certificate } = req.data;
  if (!!serial_number === !!certificate) throw new UserError("exactly one of serial_number or certificate must be given");
  let serial: string;
  let fallback: { issuerId: string; notAfter: number } | undefined;
  if (certificate) {
    const der = onePem(certificate, ["CERTIFICATE"], "certificate");
    let node: NodeCertificate;
    try {
      node = new NodeCertificate(der);
    } catch {
      throw new UserError("certificate: unreadable certificate");
    }
    const issuer = [...(await engine.issuers()).values()].find((i) => issuedBy(node, i.node));
    if (!issuer) throw new UserError("certificate was not issued by any issuer of this mount");
    const parts = certificateParts(der);
    serial = formatSerial(parts.serial);
    fallback = { issuerId: issuer.id, notAfter: Math.floor(parts.notAfter.getTime() / 1000) };
  } else {
    serial = parseSerial(serial_number!);
  }
  const outcome = await engine.revoke(serial, fallback);
  if (outcome.expired) return { data: { revocation_time: 0, revocation_time_rfc3339: "", state: "expired" }, warnings: [`certificate ${serial} has already expired; it was not added to the CRL`] };
  const at = outcome.record!.revoked_at_ms;
  return { data: { revocation_time: Math.floor(at / 1000), revocation_time_rfc3339: new Date(at).toISOString(), state: "revoked" } };
}

export function revokePaths(engine: PkiEngine): PathDefinition[] {
  return [{ pattern: "revoke", operations: { update: { schema: revokeSchema, summary: "Revoke a certificate by serial or PEM.", handler: (req: HandlerRequest<z.infer<typeof revokeSchema>>) => revoke(engine, req) } } }];
}
