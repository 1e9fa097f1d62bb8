import { z } from "zod";
import { NotFound, UserError, mergeTokenFields, tokenFieldsResponse, tokenFieldsShape, zCommaList } from "../../../../src/sdk/index.js";
import type { HandlerRequest, PathDefinition, TokenFields } from "../../../../src/sdk/index.js";
import { NamedRecords, listAnswer, roleNameOf } from "../../shared/roles.js";
import { REQUIRED_EXTENSION, parsePemBundle, type CertConstraints } from "../certificates.js";

/** A trusted certificate entry (`certs/:name`), Vault's field names. */
export interface CertRole extends TokenFields, CertConstraints {
  name: string;
  certificate: string;
  display_name: string;
}

const certSchema = z.object({
  certificate: z.string().optional(),
  display_name: z.string().max(256).optional(),
  allowed_names: zCommaList.optional(),
  allowed_common_names: zCommaList.optional(),
  allowed_dns_sans: zCommaList.optional(),
  allowed_email_sans: zCommaList.optional(),
  allowed_uri_sans: zCommaList.optional(),
  allowed_organizational_units: zCommaList.optional(),
  required_extensions: zCommaList
    .refine((list) => list.every((e) => REQUIRED_EXTENSION.test(e)), {
      // Vault stores a malformed entry and then refuses every login; refusing it here says why.
      message: "each entry must be oid:value or hex:oid:value, with a dotted-decimal OID (value may use * globs)",
    })
    .optional(),
  ...tokenFieldsShape,
});

export const certName = (raw: string | undefined) => roleNameOf(raw, "certificate");

async function writeCert(certs: NamedRecords<CertRole>, req: HandlerRequest<z.infer<typeof certSchema>>): Promise<void> {
  const name = certName(req.params.name);
  const d = req.data;
  await certs.update(name, async (cur) => {
    const certificate = d.certificate ?? cur?.certificate ?? "";
    if (!certificate) throw new UserError("certificate is required");
    parsePemBundle(certificate, "certificate");
    const next: CertRole = {
      ...mergeTokenFields(cur, d),
      name,
      certificate,
      display_name: d.display_name ?? cur?.display_name ?? "",
      allowed_names: d.allowed_names ?? cur?.allowed_names ?? [],
      allowed_common_names: d.allowed_common_names ?? cur?.allowed_common_names ?? [],
      allowed_dns_sans: d.allowed_dns_sans ?? cur?.allowed_dns_sans ?? [],
      allowed_email_sans: d.allowed_email_sans ?? cur?.allowed_email_sans ?? [],
      allowed_uri_sans: d.allowed_uri_sans ?? cur?.allowed_uri_sans ?? [],
      allowed_organizational_units: d.allowed_organizational_units ?? cur?.allowed_organizational_units ?? [],
      required_extensions: d.required_extensions ?? cur?.required_extensions ?? [],
    };
    await certs.put(name, next);
  });
}

export function certPaths(certs: NamedRecords<CertRole>): PathDefinition[] {
  return [
    { pattern: "certs/?", operations: { list: { handler: async () => listAnswer(await certs.names()) } } },
    {
      pattern: "certs/(?<name>[^/]+)",
      existenceCheck: async (r) => (await certs.get(certName(r.params.name))) !== undefined,
      operations: {
        read: {
          handler: async (r) => {
            const c = await certs.get(certName(r.params.name));
            if (!c) throw new NotFound();
            const { name: _name, ...rest } = c;
            // Entries written before required_extensions was enforced have none.
            return { data: { ...rest, required_extensions: c.required_extensions ?? [], ...tokenFieldsResponse(c) } };
          },
        },
        create: { schema: certSchema, handler: (r) => writeCert(certs, r), summary: "Trust a CA (or pin a leaf) certificate, with name constraints and token fields." },
        update: { schema: certSchema, handler: (r) => writeCert(certs, r), summary: "Update a trusted certificate entry (only the fields sent change)." },
        delete: { handler: async (r) => certs.delete(certName(r.params.name)) },
      },
    },
  ];
}
