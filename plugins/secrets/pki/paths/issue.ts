import { z } from "zod";
import { UserError, zBool, zCommaList, zDuration } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { signTbs } from "../crypto/certificate.js";
import { CSR_SIGNATURE_INVALID, csrProof, parseCsr, verifyCsr, type ParsedCsr } from "../crypto/csr.js";
import { generateKey, keyIdentifier, privateKeyOutput, type GeneratedKey } from "../crypto/keys.js";
import { toPem } from "../crypto/pem.js";
import { formatSerial, newSerial } from "../crypto/serial.js";
import { ProofRefused, type Proof } from "../crypto/worker.js";
import type { PkiEngine } from "../engine.js";
import type { Role } from "../model.js";
import { approveNames } from "../policy.js";
import { CERT_SECRET_TYPE, type CertLeaseInternal } from "../secret-cert.js";
import { certOut, issuerOut, validity, zFormat, zPrivateKeyFormat } from "./common.js";

const issueSchema = z.object({
  common_name: z.string().optional(),
  alt_names: zCommaList.optional(),
  ip_sans: zCommaList.optional(),
  uri_sans: zCommaList.optional(),
  other_sans: zCommaList.optional(),
  ttl: zDuration.optional(),
  not_after: z.string().optional(),
  format: zFormat.optional(),
  private_key_format: zPrivateKeyFormat.optional(),
  exclude_cn_from_sans: zBool.optional(),
  remove_roots_from_chain: zBool.optional(),
  user_ids: zCommaList.optional(),
  serial_number: z.string().optional(),
});
const signSchema = issueSchema.extend({ csr: z.string().min(1, "csr is required") });
type IssueData = z.infer<typeof signSchema>;

/** A CSR's key must be of the role's type and at least the role's size (`any`: RSA ≥ 2048, any supported curve, Ed25519). */
function checkCsrKey(role: Role, csr: ParsedCsr): void {
  const k = csr.keySpec;
  if (role.key_type === "any") {
    if (k.type === "rsa" && k.bits < 2048) throw new UserError(`the CSR's RSA key has ${k.bits} bits; at least 2048 are required`);
    return;
  }
  if (k.type !== role.key_type) throw new UserError(`role requires keys of type ${role.key_type}; the CSR carries a ${k.type} key`);
  if (k.type !== "ed25519" && k.bits < role.key_bits) throw new UserError(`role requires ${role.key_type} keys of at least ${role.key_bits} bits; the CSR's key has ${k.bits}`);
}

/**
 * issue/:role and sign/:role. The hot path: the role, issuer and template come from memory, the key
 * pair (issue) is generated on the thread pool while the names are checked, the TBS certificate is
 * spliced from pre-encoded parts, the signature runs on the thread pool, and one storage write
 * records the certificate (never the private key).
 */
async function issueOrSign(engine: PkiEngine, req: HandlerRequest<IssueData>, mode: "issue" | "sign"): Promise<HandlerResponse> {
  const d = req.data;
  const roleName = req.params.role;
  const role = await engine.role(roleName);
  if (!role) throw new UserError(`unknown role: ${roleName}`);
  if (d.other_sans?.length) throw new UserError("other_sans are not supported by this engine");
  if (d.user_ids?.length) throw new UserError("user_ids are not supported by this engine");
  if (d.serial_number) throw new UserError("a subject serial_number is not allowed by this role");

  let pendingKey: Promise<GeneratedKey> | undefined;
  let csr: ParsedCsr | undefined;
  let csrVerified: Promise<void> | undefined;
  let proof: Proof | undefined;
  if (mode === "issue") {
    if (role.key_type === "any") throw new UserError('role key type "any" not allowed for issuing certificates, only signing');
    pendingKey = generateKey({ type: role.key_type, bits: role.key_bits });
    pendingKey.catch(() => undefined); // awaited below; a refusal in between must not leave it unhandled
  } else {
    csr = parseCsr(d.csr);
    checkCsrKey(role, csr);
    // EC and Ed25519 CSRs: the self-signature is checked on the crypto worker right before, and as
    // a condition of, the certificate's signature (one round trip); other keys are checked here.
    proof = csrProof(csr);
    if (!proof) {
      csrVerified = verifyCsr(csr);
      csrVerified.catch(() => undefined);
    }
    if (role.use_csr_sans && csr.otherSans.length) throw new UserError(`the CSR requests SAN types this engine never issues: ${csr.otherSans.join(", ")}`);
  }

  const names = approveNames(role, {
    commonName: csr && role.use_csr_common_name ? csr.commonName : (d.common_name ?? ""),
    altNames: csr && role.use_csr_sans ? [...csr.dnsNames, ...csr.emails] : (d.alt_names ?? []),
    ipSans: csr && role.use_csr_sans ? csr.ipAddresses : (d.ip_sans ?? []),
    uriSans: csr && role.use_csr_sans ? csr.uris : (d.uri_sans ?? []),
    excludeCnFromSans: d.exclude_cn_from_sans ?? false,
  });
  const issuer = await engine.resolveIssuer(req.params.issuer ?? role.issuer_ref);
  const template = await engine.template(issuer, roleName, role);
  const warnings: string[] = [];
  const mountTtl = req.mount.config;
  const maxTtl = role.max_ttl ? Math.min(role.max_ttl, mountTtl.maxLeaseTtl) : mountTtl.maxLeaseTtl;
  const { notBefore, notAfter } = validity({
    now: Date.now(),
    requestedTtl: d.ttl,
    notAfter: d.not_after || role.not_after || undefined,
    defaultTtl: role.ttl || mountTtl.defaultLeaseTtl,
    maxTtl,
    notBeforeDuration: role.not_before_duration,
    issuer,
    warnings,
  });
  const serial = newSerial();
  const serialText = formatSerial(serial);
  const notAfterSeconds = Math.floor(notAfter.getTime() / 1000);

  // Persist before hand-out: the lease (which revokes this serial) exists before the certificate does.
  const lease =
    role.generate_lease && !role.no_store
      ? await req.leases.open({
          type: CERT_SECRET_TYPE,
          ttl: Math.max(1, Math.ceil((notAfter.getTime() - Date.now()) / 1000)),
          renewable: false,
          internal: { serial_number: serialText, issuer_id: issuer.id, not_after: notAfterSeconds } satisfies CertLeaseInternal,
          role: roleName,
        })
      : undefined;

  if (csrVerified) await csrVerified;
  if (csr?.requestsCa) warnings.push("the CSR asked for CA:TRUE; certificates signed through a role are never CAs");
  const key = pendingKey ? await pendingKey : undefined;
  const tbs = template.tbs({
    serial,
    notBefore,
    notAfter,
    commonName: names.commonName,
    sans: names.sans,
    spki: key ? key.spki : csr!.spki,
    keyId: key ? key.keyId() : keyIdentifier(csr!.publicKeyBits),
  });
  const der = await signTbs(tbs, template.signer, proof).catch((err: unknown) => {
    throw err instanceof ProofRefused ? new UserError(CSR_SIGNATURE_INVALID) : err;
  });
  if (!role.no_store) await engine.storeCert(serialText, { der: der.toString("base64"), issuer_id: issuer.id, not_after: notAfterSeconds, role: roleName });

  const format = d.format ?? "pem";
  const chain = issuer.chain.filter((i) => !(d.remove_roots_from_chain && i.selfSigned));
  const data: Record<string, unknown> = {
    certificate: certOut(der, format),
    issuing_ca: issuerOut(issuer, format),
    ca_chain: chain.map((i) => issuerOut(i, format)),
    serial_number: serialText,
    expiration: notAfterSeconds,
  };
  if (key) {
    data.private_key = privateKeyOutput(key, d.private_key_format ?? "der", format);
    data.private_key_type = key.spec.type;
  }
  if (format === "pem_bundle") {
    const parts = [...(key ? [data.private_key as string] : []), toPem("CERTIFICATE", der).trimEnd(), ...chain.filter((i) => !i.selfSigned).map((i) => i.pem)];
    data.certificate = parts.join("\n");
  }
  return { data, warnings: warnings.length ? warnings : undefined, lease };
}

export function issuePaths(engine: PkiEngine): PathDefinition[] {
  const issue = { schema: issueSchema, handler: (req: HandlerRequest<IssueData>) => issueOrSign(engine, req, "issue"), summary: "Issue a certificate and its private key under a role." };
  const sign = { schema: signSchema, handler: (req: HandlerRequest<IssueData>) => issueOrSign(engine, req, "sign"), summary: "Sign a CSR under a role." };
  return [
    { pattern: "issue/(?<role>[^/]+)", operations: { update: issue } },
    { pattern: "sign/(?<role>[^/]+)", operations: { update: sign } },
    { pattern: "issuer/(?<issuer>[^/]+)/issue/(?<role>[^/]+)", operations: { update: issue } },
    { pattern: "issuer/(?<issuer>[^/]+)/sign/(?<role>[^/]+)", operations: { update: sign } },
  ];
}
