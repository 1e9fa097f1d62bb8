import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { UserError, globMatch } from "../../../src/sdk/index.js";
import { emptyAltNames, ipBytes, type AltNames } from "./crypto/certificate.js";
import type { Role } from "./model.js";

/**
 * Which names a role lets a certificate carry. The rules follow Vault's `validateNames`:
 * `allow_any_name`, `allow_localhost`, and for each of `allowed_domains` an exact match
 * (`allow_bare_domains`), a subdomain (`allow_subdomains`, wildcards included) or a glob
 * (`allow_glob_domains`); `enforce_hostnames` and `allow_wildcard_certificates` apply before all of
 * them. Names are compared case-insensitively (DNS is).
 */

/** Vault's hostname rule: LDH labels, no leading/trailing hyphen, after IDNA conversion. */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

const HOSTNAME = /^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;

/**
 * The A-label (ASCII) form of a DNS name, or undefined when it has none. Node's `domainToASCII`
 * parses a URL host: it stops at `/`, `?`, `#` and `\` and drops tabs and newlines, so
 * `www.bank.com/.example.com` would come back as `www.bank.com` after the role had judged the whole
 * string. Names already in ASCII are therefore never converted, and an internationalised name is
 * converted only when it holds nothing but letters, marks, digits, `-` and `.` (what IDNA's
 * STD3 rules, which Vault applies, accept).
 */
export function asciiDnsName(name: string): string | undefined {
  if (PRINTABLE_ASCII.test(name)) return name;
  if (!/^[\p{L}\p{M}\p{N}.-]+$/u.test(name)) return undefined;
  const ascii = domainToASCII(name);
  return ascii !== "" && PRINTABLE_ASCII.test(ascii) ? ascii : undefined;
}

export function isHostname(name: string): boolean {
  const ascii = asciiDnsName(name);
  return ascii !== undefined && ascii.length <= 253 && HOSTNAME.test(ascii);
}

/** RFC 6125 wildcards Vault accepts: one `*` in the left-most label only (`*.x`, `f*.x`, `*o.x`, `f*o.x`). */
function splitWildcard(name: string): { wildcard: boolean; reduced: string; valid: boolean } {
  if (!name.includes("*")) return { wildcard: false, reduced: name, valid: true };
  const dot = name.indexOf(".");
  const label = dot < 0 ? name : name.slice(0, dot);
  const rest = dot < 0 ? "" : name.slice(dot + 1);
  const valid = label.split("*").length === 2 && !rest.includes("*") && rest !== "";
  return { wildcard: true, reduced: rest, valid };
}

/** Why `name` (a CN, DNS SAN or email SAN) is refused by `role`, or undefined when it is allowed. */
export function refuseName(role: Role, name: string): string | undefined {
  let reduced = name.toLowerCase();
  let emailDomain = reduced;
  let isEmail = false;
  if (reduced.includes("@")) {
    const parts = reduced.split("@");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") return "is not a valid email address";
    reduced = emailDomain = parts[1];
    isEmail = true;
  }
  const wc = splitWildcard(reduced);
  if (wc.wildcard) {
    if (!wc.valid) return "has a malformed wildcard (only one '*' in the left-most label is allowed)";
    if (!role.allow_wildcard_certificates) return "is a wildcard and the role sets allow_wildcard_certificates=false";
    if (isEmail) return "is an email address with a wildcard domain";
    reduced = wc.reduced;
  }
  if (role.enforce_hostnames && reduced !== "" && !isHostname(reduced)) return "is not a valid hostname (enforce_hostnames)";
  if (role.allow_any_name) return undefined;
  if (role.allow_localhost) {
    if (reduced === "localhost" || reduced === "localdomain") return undefined;
    if (role.allow_subdomains && (reduced.endsWith(".localhost") || reduced.endsWith(".localdomain") || (wc.wildcard && (reduced === "localhost" || reduced === "localdomain")))) return undefined;
  }
  const full = name.toLowerCase();
  for (const raw of role.allowed_domains) {
    const domain = raw.toLowerCase();
    if (domain === "") continue;
    if (role.allow_bare_domains && (full === domain || (isEmail && emailDomain === domain))) return undefined;
    if (role.allow_subdomains && (reduced.endsWith(`.${domain}`) || (wc.wildcard && reduced === domain))) return undefined;
    if (role.allow_glob_domains && domain.includes("*") && globMatch(domain, full)) return undefined;
  }
  return "is not allowed by this role (allowed_domains, allow_subdomains, allow_bare_domains, allow_glob_domains, allow_localhost, allow_any_name)";
}

/**
 * SPIFFE ID syntax (spiffe.io, SPIFFE-ID §2): `spiffe://<trust domain>/<path>`, trust domain in
 * lowercase letters, digits, `.`, `-`, `_`; no port, user info, query or fragment; path segments
 * non-empty, not `.`/`..`, of `[A-Za-z0-9._-]`; no trailing slash.
 */
export function spiffeProblem(uri: string): string | undefined {
  if (uri.length > 2048) return "is longer than 2048 bytes";
  const m = /^spiffe:\/\/([^/?#]*)(\/[^?#]*)?$/.exec(uri);
  if (!m) return "is not a SPIFFE ID (spiffe://trust-domain/path, no query or fragment)";
  const [, trustDomain, path = ""] = m;
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) return "has an invalid trust domain (lowercase letters, digits, '.', '-', '_'; no port or user info)";
  if (path === "") return undefined;
  if (path.endsWith("/")) return "has a trailing slash";
  for (const seg of path.slice(1).split("/")) {
    if (seg === "" || seg === "." || seg === "..") return "has an empty, '.' or '..' path segment";
    if (!/^[A-Za-z0-9._-]+$/.test(seg)) return "has a path segment with characters outside [A-Za-z0-9._-]";
  }
  return undefined;
}

/** Why a URI SAN is refused by `role`, or undefined. */
export function refuseUri(role: Role, uri: string): string | undefined {
  try {
    new URL(uri);
  } catch {
    return "is not a valid URI";
  }
  // eslint-disable-next-line no-control-regex -- URIs in certificates are IA5 (ASCII)
  if (!/^[\x21-\x7e]+$/.test(uri)) return "must be ASCII without spaces (IA5String)";
  if (/^spiffe:/i.test(uri)) {
    const problem = spiffeProblem(uri);
    if (problem) return problem;
  }
  if (!role.allowed_uri_sans.some((p) => globMatch(p, uri))) return "is not allowed by this role's allowed_uri_sans";
  return undefined;
}

/** The names a certificate is asked to carry, before the role's judgement. */
export interface RequestedNames {
  commonName: string;
  altNames: string[];
  ipSans: string[];
  uriSans: string[];
  excludeCnFromSans: boolean;
}

/** What the role approved: the subject CN and the SANs to write. */
export interface ApprovedNames {
  commonName: string;
  sans: AltNames;
}

/**
 * Checks every requested name against the role. Any refusal fails the whole request with 400
 * naming each refused value, as Vault does ("the entire request will be denied").
 */
export function approveNames(role: Role, req: RequestedNames): ApprovedNames {
  const problems: string[] = [];
  const sans = emptyAltNames();
  const dns = new Set<string>();
  const email = new Set<string>();
  const ips = new Map<string, Buffer>();
  const uris = new Set<string>();
  const cn = req.commonName.trim();
  const cnChecksDisabled = role.cn_validations.includes("disabled");

  if (role.require_cn && cn === "") problems.push("the common_name field is required, or must be provided in a CSR with use_csr_common_name=true (the role sets require_cn)");
  if (cn !== "") {
    if (cnChecksDisabled) {
      // cn_validations=disabled: the CN is used verbatim and never copied into the SANs.
    } else if (isIP(cn)) {
      if (!role.allow_ip_sans) problems.push(`common name ${cn} is an IP address and the role does not allow IP SANs`);
      else if (!req.excludeCnFromSans) ips.set(cn, ipBytes(cn));
    } else {
      const isEmail = cn.includes("@");
      if (isEmail && !role.cn_validations.includes("email")) problems.push(`common name ${cn} is an email address and cn_validations does not include email`);
      else if (!isEmail && !role.cn_validations.includes("hostname")) problems.push(`common name ${cn} is a hostname and cn_validations does not include hostname`);
      else {
        const why = refuseName(role, cn);
        if (why) problems.push(`common name ${cn} ${why}`);
        else if (!req.excludeCnFromSans) (isEmail ? email : dns).add(cn);
      }
    }
  }
  for (const raw of req.altNames) {
    const name = raw.trim();
    if (name === "") continue;
    const why = refuseName(role, name);
    if (why) problems.push(`subject alternative name ${name} ${why}`);
    else (name.includes("@") ? email : dns).add(name);
  }
  for (const raw of req.ipSans) {
    const ip = raw.trim();
    if (ip === "") continue;
    if (!isIP(ip)) problems.push(`IP SAN ${JSON.stringify(ip)} is not an IP address`);
    else if (!role.allow_ip_sans) problems.push(`IP SAN ${ip} refused: the role does not allow IP SANs (allow_ip_sans=false)`);
    else ips.set(ip, ipBytes(ip));
  }
  for (const raw of req.uriSans) {
    const uri = raw.trim();
    if (uri === "") continue;
    const why = refuseUri(role, uri);
    if (why) problems.push(`URI SAN ${uri} ${why}`);
    else uris.add(uri);
  }
  // An X.509-SVID names exactly one SPIFFE ID (X509-SVID §2): no second URI SAN of any kind.
  if ([...uris].some((u) => /^spiffe:/i.test(u)) && uris.size !== 1) problems.push("a SPIFFE SVID must carry exactly one URI SAN");
  // IA5String: internationalised names go in as their A-label form; anything else non-ASCII is refused.
  // What is written is the name the role judged, or its faithful A-label form: never a shortened one.
  for (const d of dns) {
    const wildcard = d.startsWith("*.");
    const ascii = asciiDnsName(wildcard ? d.slice(2) : d);
    if (ascii === undefined) problems.push(`subject alternative name ${JSON.stringify(d)} cannot be written as ASCII`);
    else sans.dns.push(wildcard ? `*.${ascii}` : ascii);
  }
  for (const e of email) if (!PRINTABLE_ASCII.test(e)) problems.push(`email address ${e} must be ASCII`);
  if (problems.length) throw new UserError(problems[0], problems.slice(1));
  sans.email.push(...email);
  sans.ip.push(...ips.values());
  sans.uri.push(...uris);
  return { commonName: cn, sans };
}
