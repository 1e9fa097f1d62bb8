/**
 * The PKI engine as the console uses it, through the public `/v1/` API with the operator's token:
 * issuers, stored certificates, revocation, and the CRL (read through `cert/crl`, which answers
 * JSON, so the console needs no binary download). Certificates are read with x509-lite.ts.
 */
import { call, listKeys, type VaultResponse } from "../api";
import { normalizeSerial, readCertificate, readCrl, type CertSummary, type CrlSummary } from "./x509-lite";

/** An issuer of a mount. */
export interface PkiIssuer {
  id: string;
  name: string;
  isDefault: boolean;
  cert?: CertSummary;
  /** The issuer's certificate (PEM), for OCSP requests. */
  pem: string;
}

/** A stored certificate with its revocation state. */
export interface PkiCert {
  serial: string;
  cert?: CertSummary;
  /** Unix seconds; 0 when not revoked. */
  revocationTime: number;
  expiration?: number;
  /** The issuer that signed it (absent for the special serials). */
  issuerId?: string;
}

/** LIST `<mount>/issuers`, then each issuer's certificate. */
export async function listIssuers(token: string, mount: string): Promise<PkiIssuer[]> {
  let answer: VaultResponse<{ keys?: string[]; key_info?: Record<string, { issuer_name?: string; is_default?: boolean }> }>;
  try {
    answer = await call("GET", `${mount}/issuers?list=true`, { token });
  } catch (err) {
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
  const ids = answer.data?.keys ?? [];
  return Promise.all(
    ids.map(async (id) => {
      const info = answer.data.key_info?.[id] ?? {};
      const read = await call<VaultResponse<{ certificate: string; issuer_name: string }>>("GET", `${mount}/issuer/${encodeURIComponent(id)}`, { token });
      return { id, name: read.data.issuer_name || info.issuer_name || "", isDefault: !!info.is_default, cert: safeRead(read.data.certificate), pem: read.data.certificate };
    }),
  );
}

function safeRead(pem: string): CertSummary | undefined {
  try {
    return readCertificate(pem);
  } catch {
    return undefined;
  }
}

/** LIST `<mount>/certs`, then GET `<mount>/cert/<serial>` for each (the newest first). */
export async function listCertificates(token: string, mount: string): Promise<PkiCert[]> {
  const serials = await listKeys(token, `${mount}/certs`);
  const certs = await Promise.all(serials.map((s) => readCert(token, mount, s)));
  return certs.reverse();
}

/** GET `<mount>/cert/<serial>`. */
export async function readCert(token: string, mount: string, serial: string): Promise<PkiCert> {
  const answer = await call<VaultResponse<{ certificate: string; revocation_time?: number; expiration?: number; issuer_id?: string }>>("GET", `${mount}/cert/${encodeURIComponent(serial)}`, { token });
  return { serial, cert: safeRead(answer.data.certificate), revocationTime: answer.data.revocation_time ?? 0, expiration: answer.data.expiration, issuerId: answer.data.issuer_id };
}

/** POST `<mount>/revoke`: answers the revocation time (unix seconds). */
export async function revokeCert(token: string, mount: string, serial: string): Promise<number> {
  const answer = await call<VaultResponse<{ revocation_time: number }>>("POST", `${mount}/revoke`, { token, body: { serial_number: serial } });
  return answer.data.revocation_time;
}

/** The default issuer's CRL (GET `<mount>/cert/crl`), parsed. */
export async function readMountCrl(token: string, mount: string): Promise<CrlSummary> {
  const answer = await call<VaultResponse<{ certificate: string }>>("GET", `${mount}/cert/crl`, { token });
  return readCrl(answer.data.certificate);
}

/** Whether the CRL lists `serial`. */
export function inCrl(crl: CrlSummary, serial: string): boolean {
  return crl.revoked.has(normalizeSerial(serial));
}
