import { z } from "zod";
import { NotFound, UserError, zBool, zCommaList, zDuration, zInt, zName } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { normaliseKeySpec } from "../crypto/keys.js";
import type { PkiEngine } from "../engine.js";
import { defaultRole, type Role } from "../model.js";
import { extKeyUsageOids, keyUsageFlags } from "../template.js";
import { parseNotAfter, subjectAttributeFields } from "./common.js";

const roleSchema = z.object({
  ttl: zDuration.optional(),
  max_ttl: zDuration.optional(),
  allow_localhost: zBool.optional(),
  allowed_domains: zCommaList.optional(),
  allow_bare_domains: zBool.optional(),
  allow_subdomains: zBool.optional(),
  allow_glob_domains: zBool.optional(),
  allow_wildcard_certificates: zBool.optional(),
  allow_any_name: zBool.optional(),
  enforce_hostnames: zBool.optional(),
  allow_ip_sans: zBool.optional(),
  allowed_uri_sans: zCommaList.optional(),
  server_flag: zBool.optional(),
  client_flag: zBool.optional(),
  code_signing_flag: zBool.optional(),
  email_protection_flag: zBool.optional(),
  key_type: z.string().optional(),
  key_bits: zInt.optional(),
  signature_bits: zInt.optional(),
  key_usage: zCommaList.optional(),
  ext_key_usage: zCommaList.optional(),
  ext_key_usage_oids: zCommaList.optional(),
  use_csr_common_name: zBool.optional(),
  use_csr_sans: zBool.optional(),
  ...subjectAttributeFields,
  generate_lease: zBool.optional(),
  no_store: zBool.optional(),
  require_cn: zBool.optional(),
  basic_constraints_valid_for_non_ca: zBool.optional(),
  not_before_duration: zDuration.optional(),
  not_after: z.string().optional(),
  cn_validations: zCommaList.optional(),
  issuer_ref: z.string().optional(),
  use_pss: zBool.optional(),
});
type RoleData = z.infer<typeof roleSchema>;

function roleName(req: HandlerRequest): string {
  const parsed = zName.safeParse(req.params.name);
  if (!parsed.success) throw new UserError(`role name ${JSON.stringify(req.params.name)} ${parsed.error.issues[0].message}`);
  return parsed.data;
}

/** Applies the fields sent on top of `base` and checks the result as a whole. */
function buildRole(base: Role, d: RoleData): Role {
  const role: Role = { ...base };
  for (const [k, v] of Object.entries(d)) if (v !== undefined && k in role) (role as unknown as Record<string, unknown>)[k] = v;
  if (d.use_pss) throw new UserError("use_pss is not supported: RSA issuers sign with PKCS#1 v1.5");
  const spec = normaliseKeySpec(role.key_type, d.key_type !== undefined && d.key_bits === undefined ? 0 : role.key_bits);
  role.key_type = spec.type;
  role.key_bits = spec.bits;
  if (role.signature_bits && ![256, 384, 512].includes(role.signature_bits)) throw new UserError("signature_bits must be 0, 256, 384 or 512");
  if (role.max_ttl && role.ttl > role.max_ttl) throw new UserError("ttl cannot be larger than max_ttl");
  if (role.no_store && role.generate_lease) throw new UserError("generate_lease requires the certificate to be stored: it cannot be combined with no_store");
  keyUsageFlags(role.key_usage);
  extKeyUsageOids(role);
  const cnv = role.cn_validations.map((v) => v.toLowerCase());
  if (cnv.some((v) => !["email", "hostname", "disabled"].includes(v))) throw new UserError('cn_validations may contain only "email", "hostname" or "disabled"');
  if (cnv.includes("disabled") && cnv.length > 1) throw new UserError('cn_validations: "disabled" must be the only value');
  role.cn_validations = cnv.length ? cnv : ["email", "hostname"];
  if (role.not_after) parseNotAfter(role.not_after);
  for (const u of role.allowed_uri_sans) if (u.trim() === "") throw new UserError("allowed_uri_sans entries must not be empty");
  return role;
}

function roleOut(role: Role): Record<string, unknown> {
  return { ...role };
}

export function rolePaths(engine: PkiEngine): PathDefinition[] {
  return [
    {
      pattern: "roles/?",
      operations: {
        list: {
          summary: "List role names.",
          handler: async (): Promise<HandlerResponse> => {
            const keys = await engine.listRoles();
            if (!keys.length) throw new NotFound();
            return { data: { keys } };
          },
        },
      },
    },
    {
      pattern: "roles/(?<name>[^/]+)",
      existenceCheck: async (req) => (await engine.role(req.params.name)) !== undefined,
      operations: {
        read: {
          summary: "Read a role.",
          handler: async (req): Promise<HandlerResponse> => {
            const role = await engine.role(roleName(req));
            if (!role) throw new NotFound();
            return { data: roleOut(role) };
          },
        },
        // A write replaces the role; fields not sent take Vault's defaults.
        update: {
          schema: roleSchema,
          summary: "Create or replace a role.",
          handler: async (req: HandlerRequest<RoleData>): Promise<HandlerResponse> => {
            const name = roleName(req);
            const role = buildRole(defaultRole(), req.data);
            await engine.putRole(name, role);
            return { data: roleOut(role) };
          },
        },
        patch: {
          schema: roleSchema,
          summary: "Change the fields sent, keep the others.",
          handler: async (req: HandlerRequest<RoleData>): Promise<HandlerResponse> => {
            const name = roleName(req);
            const existing = await engine.role(name);
            if (!existing) throw new NotFound();
            const role = buildRole(existing, req.data);
            await engine.putRole(name, role);
            return { data: roleOut(role) };
          },
        },
        delete: {
          summary: "Delete a role (certificates it issued stay valid).",
          handler: async (req): Promise<void> => {
            await engine.deleteRole(roleName(req));
          },
        },
      },
    },
  ];
}
