/**
 * Asks a PKI mount's OCSP responder (`POST /v1/<mount>/ocsp`, RFC 6960, no token needed) about one
 * certificate: builds the DER request (SHA-1 CertID, as OpenSSL sends it) and reads the status out
 * of the answer. The response's signature is not checked here: the console reports what the
 * responder says, it is not a relying party.
 */
import { childrenOf, issuerIdentity, readOne } from "./x509-lite";

/** The responder's answer about one certificate. */
export type OcspStatus = { state: "good" } | { state: "revoked"; at: Date } | { state: "unknown" } | { state: "error"; message: string };

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const lenBytes = len < 0x80 ? [len] : len < 0x100 ? [0x81, len] : [0x82, len >> 8, len & 0xff];
  const out = new Uint8Array(1 + lenBytes.length + len);
  out.set([tag, ...lenBytes]);
  let at = 1 + lenBytes.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const SHA1_ALGORITHM = new Uint8Array([0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00]);

async function sha1(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-1", new Uint8Array(bytes)));
}

/** The DER OCSPRequest for `serial` (`xx:xx:..`) issued by the certificate `issuerPem`. */
export async function ocspRequest(issuerPem: string, serial: string): Promise<Uint8Array<ArrayBuffer>> {
  const { subjectDer, keyBits } = issuerIdentity(issuerPem);
  const serialBytes = (serial.replace(/[^0-9a-fA-F]/g, "").match(/../g) ?? []).map((h) => parseInt(h, 16));
  if (serialBytes[0]! & 0x80) serialBytes.unshift(0);
  const certId = tlv(0x30, SHA1_ALGORITHM, tlv(0x04, await sha1(subjectDer)), tlv(0x04, await sha1(keyBits)), tlv(0x02, new Uint8Array(serialBytes)));
  return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, certId))));
}

function generalizedTime(bytes: Uint8Array): Date {
  const s = new TextDecoder().decode(bytes);
  return new Date(Date.UTC(Number(s.slice(0, 4)), Number(s.slice(4, 6)) - 1, Number(s.slice(6, 8)), Number(s.slice(8, 10)), Number(s.slice(10, 12)), Number(s.slice(12, 14))));
}

/** Reads the first SingleResponse's status out of a DER OCSPResponse. */
export function ocspStatusOf(der: Uint8Array): OcspStatus {
  const top = childrenOf(readOne(der, 0).el.content);
  const responseStatus = top[0]!.content[0];
  if (responseStatus !== 0) return { state: "error", message: `the responder answered status ${responseStatus} (${["successful", "malformedRequest", "internalError", "tryLater", "", "sigRequired", "unauthorized"][responseStatus ?? 0] ?? "?"})` };
  const responseBytes = childrenOf(childrenOf(top[1]!.content)[0]!.content);
  const basic = childrenOf(readOne(responseBytes[1]!.content, 0).el.content);
  const tbs = childrenOf(basic[0]!.content);
  const f = tbs[0]!.tag === 0xa0 ? tbs.slice(1) : tbs;
  const single = childrenOf(childrenOf(f[2]!.content)[0]!.content);
  const status = single[1]!;
  if (status.tag === 0x80) return { state: "good" };
  if (status.tag === 0xa1) return { state: "revoked", at: generalizedTime(childrenOf(status.content)[0]!.content) };
  return { state: "unknown" };
}

/** Asks `<mount>/ocsp` about `serial`. */
export async function askOcsp(mount: string, issuerPem: string, serial: string): Promise<OcspStatus> {
  try {
    const body = await ocspRequest(issuerPem, serial);
    const res = await fetch(`/v1/${mount}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body, credentials: "omit", cache: "no-store" });
    if (!res.ok) return { state: "error", message: `HTTP ${res.status}` };
    return ocspStatusOf(new Uint8Array(await res.arrayBuffer()));
  } catch (err) {
    return { state: "error", message: err instanceof Error ? err.message : String(err) };
  }
}
