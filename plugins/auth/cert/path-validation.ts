/**
 * Certification path validation for `auth/cert` (RFC 5280 §6.1), split between a maintained
 * validator and the few rules it does not enforce.
 *
 * Why this split: Node has no path validation (`X509Certificate` only offers `checkIssued` and
 * `verify`), and letting OpenSSL validate through the TLS listener would need the listener's trust
 * store to follow every `certs/:name` entry of every cert mount (and core changes outside the plugin
 * contract), so the plugin validates the chain the client sent itself, as Vault does with Go's
 * `x509.Verify`. The maintained validator is PKI.js's `CertificateChainValidationEngine`; reading
 * its source (pkijs 3.4.x, `sort()` and `verify()`), it enforces:
 *   - validity (notBefore/notAfter) of every certificate of the path, trust anchor included;
 *   - basicConstraints cA on every issuer, and keyCertSign when an issuer states key usage;
 *   - refusal of a critical extension it cannot parse;
 *   - certificate policy processing (policy mappings, requireExplicitPolicy, inhibitAnyPolicy);
 *   - name constraints of intermediates, but NOT those of the trust anchor, and it unions the
 *     permitted subtrees of successive CAs instead of intersecting them (a sub-CA could widen them).
 * It does NOT enforce: pathLenConstraint, extended key usage, the leaf's key usage, or critical
 * extensions it parses but does not process. Those are hand-written below (`supplementaryChecks`),
 * and so are name constraints (per CA, so they intersect; the anchor's included, as OpenSSL and Go
 * apply them). Path building is ours too: PKI.js's own search recurses without a bound over
 * client-sent certificates (two certificates naming each other loop), so candidate paths are built
 * here with a bounded search whose issuer test is OpenSSL's (`checkIssued` + `verify`, via
 * node:crypto), and each candidate is handed to the engine as is.
 */
import { X509Certificate } from "node:crypto";
import * as pkijs from "pkijs";

/** One certificate in the three forms the checks need. */
export interface PathCert {
  der: Buffer;
  /** node:crypto (OpenSSL): issuer name/AKID match and signature verification. */
  cert: X509Certificate;
  /** PKI.js: the validation engine and parsed extensions. */
  pki: pkijs.Certificate;
}

export function toPkiCertificate(der: Buffer): pkijs.Certificate {
  return pkijs.Certificate.fromBER(new Uint8Array(der));
}

export type PathResult = { ok: true; path: PathCert[] } | { ok: false; reason: string };

const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  nameConstraints: "2.5.29.30",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  anyExtendedKeyUsage: "2.5.29.37.0",
  commonName: "2.5.4.3",
  emailAddress: "1.2.840.113549.1.9.1",
} as const;

/**
 * Critical extensions a path may carry: those processed here or by the engine (policies), plus
 * key identifiers, which only help path building. RFC 5280 §6.1.4 (o): any other critical
 * extension makes the certificate unusable.
 */
const PROCESSED_CRITICAL = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  "2.5.29.32", // certificatePolicies
  "2.5.29.33", // policyMappings
  "2.5.29.36", // policyConstraints
  "2.5.29.54", // inhibitAnyPolicy
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
]);

/** Bounds on path building: the client controls the intermediates, so the search must stay small. */
const MAX_INTERMEDIATES = 10;
const MAX_DEPTH = 8;
const MAX_CANDIDATES = 8;
const MAX_STEPS = 200;

/**
 * Validates that `leaf` chains through some of `intermediates` (sent by the client, untrusted) to
 * one of `anchors`, under every RFC 5280 rule above, for TLS client authentication at `now`. The
 * first candidate path that passes is returned; otherwise the reason the shortest one failed.
 */
export async function validateClientPath(leaf: PathCert, intermediates: PathCert[], anchors: PathCert[], now: Date): Promise<PathResult> {
  const candidates = candidatePaths(leaf, intermediates, anchors);
  if (!candidates.length) return { ok: false, reason: "no path to a trusted certificate" };
  let firstFailure = "";
  for (const path of candidates) {
    const reason = (await engineCheck(path, now)) ?? supplementaryChecks(path);
    if (!reason) return { ok: true, path };
    firstFailure ||= reason;
  }
  return { ok: false, reason: firstFailure };
}

/** Leaf first, anchor last; shortest first. The issuer test is memoised and the search bounded. */
function candidatePaths(leaf: PathCert, intermediates: PathCert[], anchors: PathCert[]): PathCert[][] {
  const pool = intermediates.filter((i) => !i.der.equals(leaf.der) && !anchors.some((a) => a.der.equals(i.der))).slice(0, MAX_INTERMEDIATES);
  const memo = new Map<PathCert, Map<PathCert, boolean>>();
  const issuedBy = (child: PathCert, parent: PathCert): boolean => {
    let row = memo.get(child);
    if (!row) memo.set(child, (row = new Map()));
    let hit = row.get(parent);
    if (hit === undefined) {
      try {
        hit = child.cert.checkIssued(parent.cert) && child.cert.verify(parent.cert.publicKey);
      } catch {
        hit = false;
      }
      row.set(parent, hit);
    }
    return hit;
  };
  const out: PathCert[][] = [];
  let steps = 0;
  const walk = (path: PathCert[]): void => {
    if (out.length >= MAX_CANDIDATES || path.length > MAX_DEPTH || ++steps > MAX_STEPS) return;
    const cur = path[path.length - 1];
    for (const a of anchors) if (issuedBy(cur, a)) out.push([...path, a]);
    for (const i of pool) if (!path.includes(i) && issuedBy(cur, i)) walk([...path, i]);
  };
  walk([leaf]);
  return out.sort((a, b) => a.length - b.length);
}

/** Runs PKI.js's engine on exactly this path (its issuer lookup answers with the next certificate). */
async function engineCheck(path: PathCert[], now: Date): Promise<string | undefined> {
  const pki = path.map((p) => p.pki);
  const anchor = pki[pki.length - 1];
  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: [anchor],
    // The engine takes the leaf as the last of `certs`.
    certs: [...pki.slice(1, -1), pki[0]],
    checkDate: now,
    findIssuer: async (c) => {
      const at = pki.indexOf(c);
      return at >= 0 && at + 1 < pki.length ? [pki[at + 1]] : [];
    },
  });
  const r = await engine.verify();
  return r.result ? undefined : r.resultMessage || "the certificate path is not valid";
}

const extensionOf = (c: PathCert, oid: string) => c.pki.extensions?.find((e) => e.extnID === oid);
/** The parsed value PKI.js attaches to a known extension (its type depends on the OID). */
const parsedOf = <T>(c: PathCert, oid: string): T | undefined => extensionOf(c, oid)?.parsedValue as T | undefined;
const selfIssued = (c: PathCert) => c.pki.subject.isEqual(c.pki.issuer);

/** The hand-written rules (see the file comment for why each is here). Undefined when all pass. */
function supplementaryChecks(path: PathCert[]): string | undefined {
  // RFC 5280 §6.1.4 (o) and §6.1.5 (f) cover the leaf and intermediates; a trust anchor's extensions are not processed.
  for (const c of path.slice(0, -1)) {
    const unknown = (c.pki.extensions ?? []).find((e) => e.critical && !PROCESSED_CRITICAL.has(e.extnID));
    if (unknown) return `unhandled critical extension ${unknown.extnID}`;
  }
  // Extended key usage nests (Go's rule, which Vault applies): every certificate that states
  // extended key usages must allow client authentication (or any usage).
  for (const [i, c] of path.entries()) {
    const eku = parsedOf<pkijs.ExtKeyUsage>(c, OID.extKeyUsage);
    if (eku && !eku.keyPurposes.includes(OID.clientAuth) && !eku.keyPurposes.includes(OID.anyExtendedKeyUsage)) {
      return i === 0 ? "the certificate is not valid for client authentication" : "an issuer's extended key usage does not allow client authentication";
    }
  }
  // The leaf signs the TLS handshake: when it states key usage, digitalSignature must be among them.
  const ku = extensionOf(path[0], OID.keyUsage);
  if (ku && !(keyUsageBits(ku.parsedValue) & 0x80)) return "the certificate's key usage does not allow digitalSignature";
  // pathLenConstraint: at most that many non-self-issued intermediates may follow a CA.
  for (let k = 1; k < path.length; k++) {
    const limit = pathLenOf(path[k]);
    if (limit === undefined) continue;
    const below = path.slice(1, k).filter((c) => !selfIssued(c)).length;
    if (below > limit) return `path length constraint of ${path[k].cert.subject.replace(/\n/g, ", ")} exceeded`;
  }
  for (let k = 1; k < path.length; k++) {
    const nc = parsedOf<pkijs.NameConstraints>(path[k], OID.nameConstraints);
    if (!nc) continue;
    for (let j = 0; j < k; j++) {
      if (j > 0 && selfIssued(path[j])) continue; // RFC 5280 §6.1.3 (b): self-issued intermediates are exempt
      const violation = nameConstraintViolation(namesOf(path[j], j === 0), nc);
      if (violation) return violation;
    }
  }
  return undefined;
}

/** The first octet of a KeyUsage bit string (digitalSignature is its top bit), 0 when unreadable. */
function keyUsageBits(parsed: unknown): number {
  const view = (parsed as { valueBlock?: { valueHexView?: Uint8Array } } | undefined)?.valueBlock?.valueHexView;
  return view && view.length ? view[0] : 0;
}

function pathLenOf(c: PathCert): number | undefined {
  const bc = parsedOf<pkijs.BasicConstraints>(c, OID.basicConstraints);
  // A pathLenConstraint too large for a JS number is left as an Integer by PKI.js: no practical limit.
  return bc && typeof bc.pathLenConstraint === "number" ? bc.pathLenConstraint : undefined;
}

/** A name of a certificate, by GeneralName tag (1 rfc822, 2 dNSName, 4 directoryName, 6 URI, 7 IP, others opaque). */
type Name = { type: number; value: unknown };

/**
 * Every name a constraint applies to: the subject DN (when not empty), the subject alternative
 * names, e-mail addresses in the subject DN (RFC 5280 §4.2.1.10), and, for the leaf without DNS
 * SANs, a host-like common name (as OpenSSL does: our `allowed_common_names` trusts the CN, so a
 * CA constrained to a domain must not vouch for a CN outside it).
 */
function namesOf(c: PathCert, isLeaf: boolean): Name[] {
  const names: Name[] = [];
  const subject = c.pki.subject;
  if (subject.typesAndValues.length) names.push({ type: 4, value: subject });
  const san = parsedOf<pkijs.AltName>(c, OID.subjectAltName);
  for (const n of san?.altNames ?? []) names.push({ type: n.type, value: n.value });
  const attr = (oid: string) => subject.typesAndValues.filter((tv) => tv.type === oid).map((tv) => String(tv.value.valueBlock.value ?? ""));
  for (const e of attr(OID.emailAddress)) names.push({ type: 1, value: e });
  if (isLeaf && !names.some((n) => n.type === 2)) {
    for (const cn of attr(OID.commonName)) if (/^[a-z0-9_-]+(\.[a-z0-9_-]+)+\.?$/i.test(cn)) names.push({ type: 2, value: cn });
  }
  return names;
}

/** Checks each name against one CA's constraints: within a permitted subtree of its type (if any), in no excluded one. */
function nameConstraintViolation(names: Name[], nc: pkijs.NameConstraints): string | undefined {
  const permitted = nc.permittedSubtrees ?? [];
  const excluded = nc.excludedSubtrees ?? [];
  for (const name of names) {
    const sameType = (subtrees: pkijs.GeneralSubtree[]) => subtrees.map((s) => s.base).filter((b) => b.type === name.type);
    const allowed = sameType(permitted);
    const denied = sameType(excluded);
    if (!allowed.length && !denied.length) continue;
    const within = (base: pkijs.GeneralName) => nameWithin(name, base);
    if (allowed.some((b) => within(b) === undefined) || denied.some((b) => within(b) === undefined)) {
      // RFC 5280 §4.2.1.10: a constraint on a name form we cannot evaluate means refusing the certificate.
      return `unsupported name constraint type ${name.type}`;
    }
    if (allowed.length && !allowed.some(within)) return `a name is outside the permitted subtrees of an issuer's name constraints (${describe(name)})`;
    if (denied.some(within)) return `a name is within the excluded subtrees of an issuer's name constraints (${describe(name)})`;
  }
  return undefined;
}

function describe(n: Name): string {
  if (typeof n.value === "string") return n.value;
  if (n.type === 7) return "IP address";
  if (n.type === 4) return "subject DN";
  return `type ${n.type}`;
}

/** Whether `name` lies within `base` (same type); undefined for a type this does not evaluate. */
function nameWithin(name: Name, base: pkijs.GeneralName): boolean | undefined {
  switch (name.type) {
    case 1:
      return emailWithin(String(name.value), String(base.value));
    case 2:
      return dnsWithin(String(name.value), String(base.value));
    case 4:
      return dnWithin(name.value as pkijs.RelativeDistinguishedNames, base.value as pkijs.RelativeDistinguishedNames);
    case 6:
      return uriWithin(String(name.value), String(base.value));
    case 7:
      return ipWithin(bytesOf(name.value), bytesOf(base.value));
    default:
      return undefined;
  }
}

/** RFC 5280 DNS subtree: the name or any subdomain of it; a leading dot means subdomains only; empty matches all. */
function dnsWithin(name: string, base: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  const b = base.toLowerCase();
  if (!b) return true;
  if (b.startsWith(".")) return n.endsWith(b);
  return n === b || n.endsWith(`.${b}`);
}

/** A mailbox (`a@b`) matches exactly; `.example.com` any mail domain under it; `example.com` that host only. */
function emailWithin(name: string, base: string): boolean {
  const at = name.lastIndexOf("@");
  if (at < 0) return false;
  const [local, domain] = [name.slice(0, at), name.slice(at + 1).toLowerCase()];
  if (base.includes("@")) {
    const bAt = base.lastIndexOf("@");
    return local === base.slice(0, bAt) && domain === base.slice(bAt + 1).toLowerCase();
  }
  const b = base.toLowerCase();
  return b.startsWith(".") ? domain.endsWith(b) : domain === b;
}

/** The host of the URI against the constraint (a leading dot: subdomains). A URI without a host is outside. */
function uriWithin(name: string, base: string): boolean {
  let host: string;
  try {
    host = new URL(name).hostname.toLowerCase().replace(/^\[|\]$/g, "");
  } catch {
    return false;
  }
  if (!host) return false;
  const b = base.toLowerCase();
  return b.startsWith(".") ? host.endsWith(b) : host === b;
}

/** The constraint's RDNs are a prefix of the subject's. */
function dnWithin(name: pkijs.RelativeDistinguishedNames, base: pkijs.RelativeDistinguishedNames): boolean {
  const b = base.typesAndValues;
  const n = name.typesAndValues;
  if (b.length > n.length) return false;
  return b.every((tv, i) => tv.isEqual(n[i]));
}

function bytesOf(v: unknown): Uint8Array {
  const view = (v as { valueBlock?: { valueHexView?: Uint8Array } } | undefined)?.valueBlock?.valueHexView;
  return view ?? new Uint8Array(0);
}

/** Address and mask of the same family (4+4 or 16+16 octets). */
function ipWithin(addr: Uint8Array, base: Uint8Array): boolean {
  if (base.length !== addr.length * 2 || (addr.length !== 4 && addr.length !== 16)) return false;
  for (let i = 0; i < addr.length; i++) if ((addr[i] & base[addr.length + i]) !== (base[i] & base[addr.length + i])) return false;
  return true;
}
