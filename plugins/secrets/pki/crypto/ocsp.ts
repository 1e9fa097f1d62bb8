import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Extension } from "@peculiar/asn1-x509";
import {
  BasicOCSPResponse,
  CertStatus,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  type CertID,
} from "@peculiar/asn1-ocsp";
import type { Signer } from "./keys.js";

/** Hash algorithms a CertID may use (RFC 6960 clients send SHA-1; some send SHA-256). */
export const CERT_ID_HASHES: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

export interface ParsedOcspRequest {
  certIds: CertID[];
  nonce?: Extension;
}

/** Parses a DER OCSPRequest; undefined when it is not one (answered with `malformedRequest`). */
export function parseOcspRequest(der: Buffer): ParsedOcspRequest | undefined {
  try {
    const req = AsnConvert.parse(der, OCSPRequest);
    const certIds = req.tbsRequest.requestList.map((r) => r.reqCert);
    if (!certIds.length) return undefined;
    const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === id_pkix_ocsp_nonce);
    return { certIds, nonce };
  } catch {
    return undefined;
  }
}

/** An OCSPResponse carrying only an error status (RFC 6960 §4.2.1: no responseBytes). */
export function ocspError(status: OCSPResponseStatus): Buffer {
  return Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: status })));
}

export type CertState = { status: "good" } | { status: "revoked"; revokedAt: Date } | { status: "unknown" };

export interface OcspAnswer {
  certId: CertID;
  state: CertState;
}

function seconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * A signed `successful` response. The issuer signs it directly (RFC 6960 §4.2.2.2 allows the CA
 * itself as responder), named by key hash, so no delegated OCSP certificate is needed.
 */
export async function ocspResponse(opts: { signer: Signer; responderKeyHash: Buffer; answers: OcspAnswer[]; nonce?: Extension; now: Date; validFor: number }): Promise<Buffer> {
  const now = seconds(opts.now);
  const responses = opts.answers.map(
    (a) =>
      new SingleResponse({
        certID: a.certId,
        certStatus:
          a.state.status === "good"
            ? new CertStatus({ good: null })
            : a.state.status === "revoked"
              ? new CertStatus({ revoked: new RevokedInfo({ revocationTime: seconds(a.state.revokedAt) }) })
              : new CertStatus({ unknown: null }),
        thisUpdate: now,
        nextUpdate: opts.validFor > 0 ? new Date(now.getTime() + opts.validFor * 1000) : undefined,
      }),
  );
  const data = new ResponseData({
    responderID: new ResponderID({ byKey: new OctetString(opts.responderKeyHash) }),
    producedAt: now,
    responses,
    responseExtensions: opts.nonce ? [opts.nonce] : undefined,
  });
  const tbs = Buffer.from(AsnConvert.serialize(data));
  const signature = await opts.signer.sign(tbs);
  const basic = new BasicOCSPResponse({
    tbsResponseData: data,
    signatureAlgorithm: AsnConvert.parse(opts.signer.algorithmDer, AlgorithmIdentifier),
    signature: new Uint8Array(signature).buffer,
  });
  const response = new OCSPResponse({
    responseStatus: OCSPResponseStatus.successful,
    responseBytes: new ResponseBytes({ responseType: id_pkix_ocsp_basic, response: new OctetString(AsnConvert.serialize(basic)) }),
  });
  return Buffer.from(AsnConvert.serialize(response));
}

export { OCSPResponseStatus };
