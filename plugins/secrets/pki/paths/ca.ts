import { isIP } from "node:net";
import { KeyUsageFlags } from "@peculiar/asn1-x509";
import { z } from "zod";
import { NotFound, UserError, zBool, zCommaList, zDuration, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import {
  aiaExtension,
  assembleTbs,
  authorityKeyIdExtension,
  basicConstraintsExtension,
  certificateParts,
  crlDistributionPointsExtension,
  emptyAltNames,
  encodeName,
  ipBytes,
  keyUsageExtension,
  nameConstraintsExtension,
  signTbs,
  subjectAltNameExtension,
  subjectKeyIdExtension,
  type AltNames,
} from "../crypto/certificate.js";
import { buildCsr, parseCsr, verifyCsr } from "../crypto/csr.js";
import { generateKey, keyIdentifier, normaliseKeySpec, privateKeyOutput, signerFor, type GeneratedKey, type KeyType } from "../crypto/keys.js";
import { pemBlocks, toPem } from "../crypto/pem.js";
import { formatSerial, newSerial } from "../crypto/serial.js";
import type { PkiEngine } from "../engine.js";
import type { LoadedIssuer } from "../issuer.js";
import { isHostname } from "../policy.js";
import { keyUsageFlags } from "../template.js";
import { certOut, subjectAttributeFields, validity, zFormat, zPrivateKeyFormat } from "./common.js";

const subjectFields = {
  common_name: z.string().optional(),
  alt_names: zCommaList.optional(),
  ip_sans: zCommaList.optional(),
  uri_sans: zCommaList.optional(),
  other_sans: zCommaList.optional(),
  exclude_cn_from_sans: zBool.optional(),
  ...subjectAttributeFields,
  serial_number: z.string().optional(),
  format: zFormat.optional(),
  signature_bits: zInt.optional(),
  key_usage: zCommaList.optional(),
  use_pss: zBool.optional(),
};
const keyFields = {
  key_type: z.string().optional(),
  key_bits: zInt.optional(),
  key_name: z.string().optional(),
  private_key_format: zPrivateKeyFormat.optional(),
};
const validityFields = {
  ttl: zDuration.optional(),
  not_after: z.string().optional(),
  not_before_duration: zDuration.optional(),
  max_path_length: zInt.optional(),
  permitted_dns_domains: zCommaList.optional(),
};

const rootSchema = z.object({ ...subjectFields, ...keyFields, ...validityFields, issuer_name: z.string().optional() });
const intermediateSchema = z.object({ ...subjectFields, ...keyFields, add_basic_constraints: zBool.optional() });
const signIntermediateSchema = z.object({ ...subjectFields, ...validityFields, csr: z.string().min(1, "csr is required"), use_csr_values: zBool.optional(), skid: z.string().optional() });
const setSignedSchema = z.object({ certificate: z.string().min(1, "certificate is required") });
const importSchema = z.object({ pem_bundle: z.string().min(1, "pem_bundle is required") });

type SubjectData = z.infer<typeof signIntermediateSchema> & z.infer<typeof rootSchema>;

function exportType(req: HandlerRequest): "internal" | "exported" {
  const t = req.params.type;
  if (t === "internal" || t === "exported") return t;
  throw new UserError(`unsupported key handling ${JSON.stringify(t)}: use internal or exported (existing, kms and managed keys are not supported)`);
}

function checkUnsupported(d: Partial<SubjectData>): void {
  if (d.other_sans?.length) throw new UserError("other_sans are not supported by this engine");
  if (d.use_pss) throw new UserError("use_pss is not supported: RSA issuers sign with PKCS#1 v1.5");
}

/** Subject Name of a CA from the request fields. */
function caSubject(d: Partial<SubjectData>): Buffer {
  const cn = (d.common_name ?? "").trim();
  if (cn === "") throw new UserError("the common_name field is required");
  return encodeName({
    commonName: cn,
    country: d.country,
    province: d.province,
    locality: d.locality,
    streetAddress: d.street_address,
    postalCode: d.postal_code,
    organization: d.organization,
    ou: d.ou,
    serialNumber: d.serial_number || undefined,
  });
}

/** SANs of a CA certificate: operators choose them freely, but they must be well-formed. */
function caSans(d: Partial<SubjectData>): AltNames {
  const sans = emptyAltNames();
  const cn = (d.common_name ?? "").trim();
  if (cn && !d.exclude_cn_from_sans) {
    if (cn.includes("@")) sans.email.push(cn);
    else if (isHostname(cn)) sans.dns.push(cn);
  }
  for (const n of d.alt_names ?? []) {
    if (n.includes("@")) sans.email.push(n);
    else if (isHostname(n.replace(/^\*\./, ""))) sans.dns.push(n);
    else throw new UserError(`alt_names: ${JSON.stringify(n)} is not a hostname or email address`);
  }
  for (const ip of d.ip_sans ?? []) {
    if (!isIP(ip)) throw new UserError(`ip_sans: ${JSON.stringify(ip)} is not an IP address`);
    sans.ip.push(ipBytes(ip));
  }
  for (const u of d.uri_sans ?? []) {
    try {
      new URL(u);
    } catch {
      throw new UserError(`uri_sans: ${JSON.stringify(u)} is not a URI`);
    }
    sans.uri.push(u);
  }
  return sans;
}

function caKeyUsage(extra: string[] | undefined): number {
  return KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | keyUsageFlags(extra ?? []);
}

function generatableSpec(type: string | undefined, bits: number | undefined): { type: KeyType; bits: number } {
  const spec = normaliseKeySpec(type ?? "rsa", bits ?? 0);
  if (spec.type === "any") throw new UserError('key_type "any" cannot generate a key');
  return spec as { type: KeyType; bits: number };
}

/**
 * What root/generate and intermediate/generate both take from the request: the key handling from
 * the path, then the subject, SANs and key spec, checked before any key is generated.
 */
function newCaRequest(req: HandlerRequest<Partial<SubjectData>>): { exported: boolean; subject: Buffer; sans: AltNames; spec: { type: KeyType; bits: number } } {
  const d = req.data;
  const exported = exportType(req) === "exported";
  checkUnsupported(d);
  const subject = caSubject(d);
  const sans = caSans(d);
  const spec = generatableSpec(d.key_type, d.key_bits);
  return { exported, subject, sans, spec };
}

/** NotBefore and NotAfter of a new CA certificate: ttl or not_after within the mount's TTLs, and within the signing issuer's own validity when there is one. */
function caValidity(req: HandlerRequest<Partial<SubjectData>>, warnings: string[], issuer?: LoadedIssuer): { notBefore: Date; notAfter: Date } {
  const d = req.data;
  const ttls = req.mount.config;
  return validity({
    now: Date.now(),
    requestedTtl: d.ttl,
    notAfter: d.not_after,
    defaultTtl: ttls.defaultLeaseTtl,
    maxTtl: ttls.maxLeaseTtl,
    notBeforeDuration: d.not_before_duration ?? 30,
    issuer,
    warnings,
  });
}

function keyFieldsOut(key: GeneratedKey, exported: boolean, d: { private_key_format?: "der" | "pkcs8" | "" }, format: "pem" | "der" | "pem_bundle"): Record<string, unknown> {
  return exported ? { private_key: privateKeyOutput(key, d.private_key_format ?? "der", format), private_key_type: key.spec.type } : {};
}

/** The import response shared by config/ca, issuers/import/* and intermediate/set-signed. */
interface ImportResult {
  imported_issuers: string[] | null;
  imported_keys: string[] | null;
  mapping: Record<string, string>;
  existing_issuers: string[] | null;
  existing_keys: string[] | null;
}

async function importBundle(engine: PkiEngine, text: string, opts: { allowKeys: boolean; requireKeyMatch: boolean }): Promise<ImportResult> {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b.label));
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (!certs.length && !keys.length) throw new UserError("no PEM certificates or keys found in the bundle");
  if (keys.length && !opts.allowKeys) throw new UserError("private keys cannot be imported through this path");
  const result: ImportResult = { imported_issuers: [], imported_keys: [], mapping: {}, existing_issuers: [], existing_keys: [] };
  for (const k of keys) {
    const { id, existing } = await engine.addKey(toPem(k.label, k.der));
    (existing ? result.existing_keys! : result.imported_keys!).push(id);
  }
  // Certificates whose key this mount holds first: the first issuer of a mount becomes its default.
  const withKey: Buffer[] = [];
  const withoutKey: Buffer[] = [];
  for (const c of certs) {
    let spki: Buffer;
    try {
      spki = certificateParts(c.der).spki;
    } catch {
      throw new UserError("the bundle holds an unreadable certificate");
    }
    ((await engine.keyForSpki(spki)) ? withKey : withoutKey).push(c.der);
  }
  if (opts.requireKeyMatch && !withKey.length) throw new UserError("none of the certificates matches a key of this mount: sign the CSR from intermediate/generate and submit that certificate");
  for (const der of [...withKey, ...withoutKey]) {
    const { id, existing, keyId } = await engine.addIssuer(der);
    (existing ? result.existing_issuers! : result.imported_issuers!).push(id);
    if (keyId) result.mapping[id] = keyId;
  }
  const orNull = (a: string[] | null) => (a && a.length ? a : null);
  return { ...result, imported_issuers: orNull(result.imported_issuers), imported_keys: orNull(result.imported_keys), existing_issuers: orNull(result.existing_issuers), existing_keys: orNull(result.existing_keys) };
}

function issuerOut(issuer: LoadedIssuer): Record<string, unknown> {
  return {
    issuer_id: issuer.id,
    issuer_name: issuer.entry.issuer_name,
    key_id: issuer.entry.key_id,
    certificate: issuer.pem,
    ca_chain: issuer.chain.map((i) => i.pem),
    serial_number: issuer.serial,
    leaf_not_after_behavior: issuer.entry.leaf_not_after_behavior,
    usage: issuer.entry.usage,
    manual_chain: null,
    revocation_signature_algorithm: "",
    issuing_certificates: [],
    crl_distribution_points: [],
    ocsp_servers: [],
  };
}

export function caPaths(engine: PkiEngine): PathDefinition[] {
  const generateRoot = {
    schema: rootSchema,
    summary: "Generate a self-signed root CA; `exported` returns its private key once.",
    handler: async (req: HandlerRequest<z.infer<typeof rootSchema>>): Promise<HandlerResponse> => {
      const d = req.data;
      const { exported, subject, sans, spec } = newCaRequest(req);
      const warnings: string[] = [];
      const { notBefore, notAfter } = caValidity(req, warnings);
      const key = await generateKey(spec);
      const signer = signerFor(key.privateKey, d.signature_bits ?? 0);
      const urls = await engine.aiaUrls();
      const serial = newSerial();
      const maxPath = d.max_path_length ?? -1;
      const tbs = assembleTbs({
        serial,
        signer,
        issuerName: subject,
        notBefore,
        notAfter,
        subject,
        spki: key.spki,
        extensions: [
          keyUsageExtension(caKeyUsage(d.key_usage)),
          basicConstraintsExtension(true, maxPath >= 0 ? maxPath : undefined),
          subjectKeyIdExtension(keyIdentifier(key.publicKeyBits)),
          aiaExtension(urls),
          subjectAltNameExtension(sans, false),
          nameConstraintsExtension(d.permitted_dns_domains ?? []),
          crlDistributionPointsExtension(urls.crlDistributionPoints),
        ],
      });
      const der = await signTbs(tbs, signer);
      const { id: keyId } = await engine.addKey(toPem("PRIVATE KEY", key.pkcs8Der()), d.key_name ?? "");
      const { id } = await engine.addIssuer(der, { name: d.issuer_name ?? "" });
      const serialText = formatSerial(serial);
      const notAfterSeconds = Math.floor(notAfter.getTime() / 1000);
      await engine.storeCert(serialText, { der: der.toString("base64"), issuer_id: id, not_after: notAfterSeconds });
      const format = d.format ?? "pem";
      const data: Record<string, unknown> = {
        expiration: notAfterSeconds,
        certificate: certOut(der, format),
        issuing_ca: certOut(der, format),
        serial_number: serialText,
        issuer_id: id,
        issuer_name: d.issuer_name ?? "",
        key_id: keyId,
        key_name: d.key_name ?? "",
        ...keyFieldsOut(key, exported, d, format),
      };
      if (format === "pem_bundle" && exported) data.certificate = `${data.private_key as string}\n${certOut(der, "pem")}`;
      return { data, warnings: warnings.length ? warnings : undefined };
    },
  };

  const generateIntermediate = {
    schema: intermediateSchema,
    summary: "Generate an intermediate CA key and a CSR for it; `exported` returns the key once.",
    handler: async (req: HandlerRequest<z.infer<typeof intermediateSchema>>): Promise<HandlerResponse> => {
      const d = req.data;
      const { exported, subject, sans, spec } = newCaRequest(req);
      const key = await generateKey(spec);
      const signer = signerFor(key.privateKey, d.signature_bits ?? 0);
      const csr = await buildCsr({
        subject,
        spki: key.spki,
        signer,
        extensions: [
          subjectAltNameExtension(sans, false),
          d.add_basic_constraints ? basicConstraintsExtension(true) : undefined,
          d.key_usage?.length ? keyUsageExtension(keyUsageFlags(d.key_usage)) : undefined,
        ].filter((e): e is Buffer => e !== undefined),
      });
      const { id: keyId } = await engine.addKey(toPem("PRIVATE KEY", key.pkcs8Der()), d.key_name ?? "");
      const format = d.format ?? "pem";
      const data: Record<string, unknown> = {
        csr: format === "der" ? csr.toString("base64") : toPem("CERTIFICATE REQUEST", csr).trimEnd(),
        key_id: keyId,
        ...keyFieldsOut(key, exported, d, format),
      };
      if (format === "pem_bundle" && exported) data.csr = `${data.private_key as string}\n${data.csr as string}`;
      return { data };
    },
  };

  const signIntermediate = {
    schema: signIntermediateSchema,
    summary: "Sign an intermediate CA's CSR with this mount's issuer.",
    handler: async (req: HandlerRequest<z.infer<typeof signIntermediateSchema>>): Promise<HandlerResponse> => {
      const d = req.data;
      checkUnsupported(d);
      const issuer = await engine.resolveIssuer(req.params.issuer ?? "default");
      if (!issuer.signer) throw new UserError(`issuer ${issuer.id} has no private key in this mount`);
      const csr = parseCsr(d.csr);
      await verifyCsr(csr);
      const useCsr = d.use_csr_values ?? false;
      let subject: Buffer;
      let sans: AltNames;
      if (useCsr) {
        subject = csr.subjectDer;
        const badIp = csr.ipAddresses.find((ip) => !isIP(ip));
        if (badIp !== undefined || csr.otherSans.length) throw new UserError("the CSR carries SANs this engine cannot copy (malformed IP addresses or otherName/directoryName entries)");
        sans = { dns: csr.dnsNames, email: csr.emails, ip: csr.ipAddresses.map(ipBytes), uri: csr.uris };
      } else {
        // Vault's tutorial signs with only `csr=@...`: without common_name the CSR's CN is used.
        const named = { ...d, common_name: d.common_name?.trim() ? d.common_name : csr.commonName };
        subject = caSubject(named);
        sans = caSans(named);
      }
      const warnings: string[] = [];
      let pathLen: number | undefined;
      const requested = d.max_path_length ?? -1;
      if (issuer.pathLen !== undefined) {
        if (issuer.pathLen === 0) throw new UserError("the issuer's path length constraint is 0: it cannot sign intermediate CAs");
        pathLen = issuer.pathLen - 1;
        if (requested >= 0 && requested < pathLen) pathLen = requested;
        else if (requested > pathLen) warnings.push(`max_path_length capped to ${pathLen} by the issuer's own path length`);
      } else if (requested >= 0) pathLen = requested;
      const { notBefore, notAfter } = caValidity(req, warnings, issuer);
      let ski = keyIdentifier(csr.publicKeyBits);
      if (d.skid) {
        const hex = d.skid.replace(/[:\s-]/g, "");
        if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new UserError("skid must be hexadecimal");
        ski = Buffer.from(hex, "hex");
      }
      const signer = d.signature_bits ? signerFor(issuer.signer.key, d.signature_bits) : issuer.signer;
      const urls = await engine.aiaUrls();
      const serial = newSerial();
      const tbs = assembleTbs({
        serial,
        signer,
        issuerName: issuer.parts.subjectName,
        notBefore,
        notAfter,
        subject,
        spki: csr.spki,
        extensions: [
          keyUsageExtension(caKeyUsage(d.key_usage)),
          basicConstraintsExtension(true, pathLen),
          subjectKeyIdExtension(ski),
          authorityKeyIdExtension(issuer.keyId),
          aiaExtension(urls),
          subjectAltNameExtension(sans, false),
          nameConstraintsExtension(d.permitted_dns_domains ?? []),
          crlDistributionPointsExtension(urls.crlDistributionPoints),
        ],
      });
      const der = await signTbs(tbs, signer);
      const serialText = formatSerial(serial);
      const notAfterSeconds = Math.floor(notAfter.getTime() / 1000);
      await engine.storeCert(serialText, { der: der.toString("base64"), issuer_id: issuer.id, not_after: notAfterSeconds });
      const format = d.format ?? "pem";
      const data: Record<string, unknown> = {
        expiration: notAfterSeconds,
        certificate: certOut(der, format),
        issuing_ca: certOut(issuer.der, format),
        ca_chain: issuer.chain.map((i) => certOut(i.der, format)),
        serial_number: serialText,
      };
      if (format === "pem_bundle") data.certificate = [certOut(der, "pem"), ...issuer.chain.map((i) => i.pem)].join("\n");
      return { data, warnings: warnings.length ? warnings : undefined };
    },
  };

  const importCa = (allowKeys: boolean, field: "pem_bundle" | "certificate", requireKeyMatch: boolean) => ({
    schema: field === "pem_bundle" ? importSchema : setSignedSchema,
    summary: "Import CA certificates (and keys, where allowed) as issuers.",
    handler: async (req: HandlerRequest<Record<string, string>>): Promise<HandlerResponse> => ({
      data: { ...(await importBundle(engine, req.data[field], { allowKeys, requireKeyMatch })) },
    }),
  });

  return [
    { pattern: "root/generate/(?<type>[^/]+)", operations: { update: generateRoot } },
    { pattern: "issuers/generate/root/(?<type>[^/]+)", operations: { update: generateRoot } },
    { pattern: "intermediate/generate/(?<type>[^/]+)", operations: { update: generateIntermediate } },
    { pattern: "issuers/generate/intermediate/(?<type>[^/]+)", operations: { update: generateIntermediate } },
    { pattern: "root/sign-intermediate", operations: { update: signIntermediate } },
    { pattern: "issuer/(?<issuer>[^/]+)/sign-intermediate", operations: { update: signIntermediate } },
    { pattern: "intermediate/set-signed", operations: { update: importCa(false, "certificate", true) } },
    { pattern: "config/ca", operations: { update: importCa(true, "pem_bundle", false) } },
    { pattern: "issuers/import/bundle", operations: { update: importCa(true, "pem_bundle", false) } },
    { pattern: "issuers/import/cert", operations: { update: importCa(false, "pem_bundle", false) } },
    {
      pattern: "root",
      operations: {
        delete: {
          summary: "Delete every issuer and key of this mount (sudo).",
          handler: async (): Promise<HandlerResponse> => {
            await engine.deleteAllIssuers();
            return {};
          },
        },
      },
    },
    {
      pattern: "issuers/?",
      operations: {
        list: {
          summary: "List issuers.",
          handler: async (): Promise<HandlerResponse> => {
            const all = [...(await engine.issuers()).values()];
            if (!all.length) throw new NotFound();
            const def = (await engine.issuersConfig()).default;
            return {
              data: {
                keys: all.map((i) => i.id),
                key_info: Object.fromEntries(all.map((i) => [i.id, { issuer_name: i.entry.issuer_name, is_default: i.id === def, serial_number: i.serial, has_private_key: !!i.signer }])),
              },
            };
          },
        },
      },
    },
    {
      pattern: "issuer/(?<issuer>[^/]+)",
      operations: {
        read: {
          summary: "Read an issuer.",
          handler: async (req): Promise<HandlerResponse> => ({ data: issuerOut(await engine.resolveIssuer(req.params.issuer)) }),
        },
        update: {
          schema: z.object({ issuer_name: z.string().optional(), leaf_not_after_behavior: z.enum(["err", "truncate", "permit"]).optional(), usage: zCommaList.optional() }),
          summary: "Rename an issuer or change its NotAfter behaviour and usage (fields not sent are kept).",
          handler: async (req: HandlerRequest<{ issuer_name?: string; leaf_not_after_behavior?: "err" | "truncate" | "permit"; usage?: string[] }>): Promise<HandlerResponse> => {
            const issuer = await engine.resolveIssuer(req.params.issuer);
            const d = req.data;
            if (d.issuer_name === "default") throw new UserError('issuer_name may not be "default"');
            const known = ["read-only", "issuing-certificates", "crl-signing", "ocsp-signing"];
            if (d.usage?.some((u) => !known.includes(u))) throw new UserError(`usage may contain only ${known.join(", ")}`);
            await engine.updateIssuer(issuer.id, {
              ...(d.issuer_name !== undefined ? { issuer_name: d.issuer_name } : {}),
              ...(d.leaf_not_after_behavior ? { leaf_not_after_behavior: d.leaf_not_after_behavior } : {}),
              ...(d.usage ? { usage: [...new Set(["read-only", ...d.usage])].join(",") } : {}),
            });
            return { data: issuerOut(await engine.resolveIssuer(issuer.id)) };
          },
        },
        delete: {
          summary: "Delete an issuer (its key stays).",
          handler: async (req): Promise<HandlerResponse> => {
            const issuer = await engine.resolveIssuer(req.params.issuer);
            const wasDefault = await engine.deleteIssuer(issuer.id);
            return wasDefault ? { warnings: ["the deleted issuer was the default; this mount has no default issuer now"] } : {};
          },
        },
      },
    },
    {
      pattern: "issuer/(?<issuer>[^/]+)/(?<form>json|pem|der)",
      operations: {
        read: {
          summary: "An issuer's certificate (JSON with its chain, PEM or DER).",
          handler: async (req): Promise<HandlerResponse> => {
            const issuer = await engine.resolveIssuer(req.params.issuer);
            if (req.params.form === "der") return { raw: { status: 200, contentType: "application/pkix-cert", body: issuer.der } };
            if (req.params.form === "pem") return { raw: { status: 200, contentType: "application/pem-certificate-chain", body: `${issuer.pem}\n` } };
            return { data: { certificate: issuer.pem, ca_chain: issuer.chain.map((i) => i.pem), issuer_id: issuer.id, issuer_name: issuer.entry.issuer_name } };
          },
        },
      },
    },
    {
      pattern: "config/issuers",
      operations: {
        read: {
          summary: "Read the default issuer.",
          handler: async (): Promise<HandlerResponse> => {
            const c = await engine.issuersConfig();
            return { data: { default: c.default, default_follows_latest_issuer: c.default_follows_latest_issuer } };
          },
        },
        update: {
          schema: z.object({ default: z.string().optional(), default_follows_latest_issuer: zBool.optional() }),
          summary: "Choose the default issuer.",
          handler: async (req: HandlerRequest<{ default?: string; default_follows_latest_issuer?: boolean }>): Promise<HandlerResponse> => {
            const current = await engine.issuersConfig();
            const next = { ...current };
            if (req.data.default !== undefined && req.data.default !== "") next.default = (await engine.resolveIssuer(req.data.default)).id;
            if (req.data.default_follows_latest_issuer !== undefined) next.default_follows_latest_issuer = req.data.default_follows_latest_issuer;
            await engine.setIssuersConfig(next);
            return { data: { default: next.default, default_follows_latest_issuer: next.default_follows_latest_issuer } };
          },
        },
      },
    },
  ];
}
