import { NotFound } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { toPem } from "../crypto/pem.js";
import { parseSerial } from "../crypto/serial.js";
import type { PkiEngine } from "../engine.js";
import type { LoadedIssuer } from "../issuer.js";

/** Media types Vault uses for these answers. */
const PKIX_CERT = "application/pkix-cert";
const PEM_CHAIN = "application/pem-certificate-chain";
const PKIX_CRL = "application/pkix-crl";
const PEM_FILE = "application/x-pem-file";

async function requireDefault(engine: PkiEngine): Promise<LoadedIssuer> {
  const issuer = await engine.defaultIssuer();
  if (!issuer) throw new NotFound("no default issuer is configured on this mount");
  return issuer;
}

function chainPem(issuer: LoadedIssuer): string {
  return issuer.chain.map((i) => `${i.pem}\n`).join("");
}

function revocationFields(record: { revoked_at_ms: number } | undefined): { revocation_time: number; revocation_time_rfc3339: string } {
  return record ? { revocation_time: Math.floor(record.revoked_at_ms / 1000), revocation_time_rfc3339: new Date(record.revoked_at_ms).toISOString() } : { revocation_time: 0, revocation_time_rfc3339: "" };
}

/**
 * `cert/:serial`: a stored certificate with its revocation state, or the special serials `ca`,
 * `ca_chain` and `crl` of the default issuer. `raw` and `raw/pem` give the bytes.
 */
async function readCert(engine: PkiEngine, req: HandlerRequest): Promise<HandlerResponse> {
  const name = req.params.serial;
  const form = req.params.form;
  if (name === "ca" || name === "ca_chain" || name === "crl") {
    const issuer = await requireDefault(engine);
    if (name === "crl") {
      const crl = await engine.crl(issuer);
      if (form === "raw") return { raw: { status: 200, contentType: PKIX_CRL, body: crl } };
      const pem = toPem("X509 CRL", crl);
      if (form === "raw/pem") return { raw: { status: 200, contentType: PEM_FILE, body: pem } };
      return { data: { certificate: pem.trimEnd(), revocation_time: 0, revocation_time_rfc3339: "" } };
    }
    if (name === "ca") {
      if (form === "raw") return { raw: { status: 200, contentType: PKIX_CERT, body: issuer.der } };
      if (form === "raw/pem") return { raw: { status: 200, contentType: PEM_CHAIN, body: `${issuer.pem}\n` } };
      return { data: { certificate: issuer.pem, issuer_id: issuer.id, revocation_time: 0, revocation_time_rfc3339: "" } };
    }
    if (form) return { raw: { status: 200, contentType: PEM_CHAIN, body: chainPem(issuer) } };
    return { data: { certificate: chainPem(issuer).trimEnd(), ca_chain: chainPem(issuer).trimEnd(), revocation_time: 0, revocation_time_rfc3339: "" } };
  }
  const serial = parseSerial(name);
  const record = await engine.cert(serial);
  if (!record) throw new NotFound(`certificate with serial ${serial} not found`);
  const der = Buffer.from(record.der, "base64");
  if (form === "raw") return { raw: { status: 200, contentType: PKIX_CERT, body: der } };
  if (form === "raw/pem") return { raw: { status: 200, contentType: PEM_CHAIN, body: toPem("CERTIFICATE", der) } };
  return { data: { certificate: toPem("CERTIFICATE", der).trimEnd(), issuer_id: record.issuer_id, serial_number: serial, expiration: record.not_after, ...revocationFields(await engine.revocation(serial)) } };
}

export function fetchPaths(engine: PkiEngine): PathDefinition[] {
  return [
    {
      pattern: "ca(?<pem>/pem)?",
      operations: {
        read: {
          summary: "The default issuer's certificate, DER (or PEM with /pem). Unauthenticated.",
          handler: async (req): Promise<HandlerResponse> => {
            const issuer = await requireDefault(engine);
            return req.params.pem ? { raw: { status: 200, contentType: PEM_CHAIN, body: `${issuer.pem}\n` } } : { raw: { status: 200, contentType: PKIX_CERT, body: issuer.der } };
          },
        },
      },
    },
    {
      pattern: "ca_chain",
      operations: {
        read: {
          summary: "The default issuer's chain, PEM, issuer first. Unauthenticated.",
          handler: async (): Promise<HandlerResponse> => ({ raw: { status: 200, contentType: PEM_CHAIN, body: chainPem(await requireDefault(engine)) } }),
        },
      },
    },
    {
      pattern: "crl(?<pem>/pem)?",
      operations: {
        read: {
          summary: "The default issuer's CRL, DER (or PEM with /pem). Unauthenticated.",
          handler: async (req): Promise<HandlerResponse> => {
            const crl = await engine.crl(await requireDefault(engine));
            return req.params.pem ? { raw: { status: 200, contentType: PEM_FILE, body: toPem("X509 CRL", crl) } } : { raw: { status: 200, contentType: PKIX_CRL, body: crl } };
          },
        },
      },
    },
    {
      pattern: "crl/rotate",
      operations: {
        read: {
          summary: "Rebuild every issuer's CRL now.",
          handler: async (): Promise<HandlerResponse> => {
            await engine.rebuildCrl();
            return { data: { success: true } };
          },
        },
      },
    },
    {
      pattern: "cert/(?<serial>[^/]+)(?:/(?<form>raw|raw/pem))?",
      operations: { read: { summary: "A certificate by serial (or ca, ca_chain, crl). Unauthenticated.", handler: (req) => readCert(engine, req) } },
    },
    {
      pattern: "certs/?",
      operations: {
        list: {
          summary: "Serials of stored certificates.",
          handler: async (): Promise<HandlerResponse> => {
            const keys = await engine.listCerts();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "certs/revoked/?",
      operations: {
        list: {
          summary: "Serials of revoked certificates.",
          handler: async (): Promise<HandlerResponse> => {
            const keys = await engine.listRevoked();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
  ];
}
