import { z } from "zod";
import { PermissionDenied, UserError, authResultFromTokenFields, checkLoginAddress, policiesUnchanged } from "../../../../src/sdk/index.js";
import type { ConnectionInfo, HandlerRequest, HandlerResponse, PathDefinition, StorageView } from "../../../../src/sdk/index.js";
import type { NamedRecords } from "../../shared/roles.js";
import { chainsTo, identityOf, matchesConstraints, parseDer, parsePemBundle, spiffeIdOf, type CertIdentity, type ParsedCert } from "../certificates.js";
import { certName, type CertRole } from "./certs.js";

const loginSchema = z.object({ name: z.string().optional() });

/** Vault's wordings: the first when no trusted chain exists, the second when no entry's constraints match. */
const UNTRUSTED = "invalid certificate or no client certificate supplied";
const NO_MATCH = "no chain matching all constraints could be found for this login certificate";

/** Config of the mount (`config`): Vault's `disable_binding`. */
export interface CertConfig {
  disable_binding: boolean;
}

export async function loadCertConfig(storage: StorageView): Promise<CertConfig> {
  return (await storage.getJSON<CertConfig>("config")) ?? { disable_binding: false };
}

/** Parses trusted certificates once per entry version. */
export class AnchorCache {
  private cache = new Map<string, { pem: string; anchors: ParsedCert[] }>();
  anchorsOf(role: CertRole): ParsedCert[] {
    const hit = this.cache.get(role.name);
    if (hit && hit.pem === role.certificate) return hit.anchors;
    const anchors = parsePemBundle(role.certificate, "certificate");
    this.cache.set(role.name, { pem: role.certificate, anchors });
    return anchors;
  }
}

/** The client certificate and the chain it sent, from the TLS connection. */
function presented(connection: ConnectionInfo): { leaf: ParsedCert; intermediates: ParsedCert[] } | undefined {
  if (!connection.peerCertificate?.length) return undefined;
  try {
    const leaf = parseDer(connection.peerCertificate);
    const intermediates = (connection.peerCertificateChain ?? []).flatMap((der) => {
      try {
        return [parseDer(der)];
      } catch {
        return [];
      }
    });
    return { leaf, intermediates };
  } catch {
    return undefined;
  }
}

/** Finds the first entry (by name) the certificate chains to and whose constraints it meets. */
async function matchEntry(certs: NamedRecords<CertRole>, anchors: AnchorCache, only: string | undefined, conn: ConnectionInfo, logger: HandlerRequest["logger"]): Promise<{ role: CertRole; id: CertIdentity }> {
  const p = presented(conn);
  if (!p) throw new UserError("client certificate must be supplied");
  const names = only ? [only] : await certs.names();
  const trusted: CertRole[] = [];
  const refusals: string[] = [];
  for (const n of names) {
    const role = await certs.get(n);
    if (!role) continue;
    const r = await chainsTo(p.leaf, p.intermediates, anchors.anchorsOf(role));
    if (r.trusted) trusted.push(role);
    else refusals.push(`${n}: ${r.reason}`);
  }
  if (!trusted.length) {
    // The client gets Vault's generic answer; the operator gets the reason per entry.
    logger.info({ subject: p.leaf.cert.subject, refusals }, "cert login refused: no trusted certification path");
    throw new UserError(UNTRUSTED);
  }
  const id = identityOf(p.leaf);
  const role = trusted.find((r) => matchesConstraints(id, r));
  if (!role) throw new UserError(NO_MATCH);
  return { role, id };
}

async function login(req: HandlerRequest<z.infer<typeof loginSchema>>, certs: NamedRecords<CertRole>, anchors: AnchorCache): Promise<HandlerResponse> {
  const only = req.data.name ? certName(req.data.name) : undefined;
  const { role, id } = await matchEntry(certs, anchors, only, req.connection, req.logger);
  checkLoginAddress(role, req.connection.remoteAddress);
  const spiffe = spiffeIdOf(id);
  return {
    auth: authResultFromTokenFields(role, {
      metadata: {
        cert_name: role.name,
        common_name: id.commonName,
        serial_number: id.serialDecimal,
        subject_key_id: id.subjectKeyId,
        authority_key_id: id.authorityKeyId,
        ...(spiffe ? { spiffe_id: spiffe } : {}),
      },
      displayName: role.display_name || role.name,
      aliasName: spiffe ?? id.commonName,
    }),
  };
}

/**
 * Renewal re-checks the login: the entry must still exist with the same policies and, unless
 * `disable_binding`, the renewing connection must present a certificate that still chains to the
 * entry, still meets its constraints, and is the same certificate (serial and key identifiers)
 * that logged in.
 */
export async function renewCertAuth(
  certs: NamedRecords<CertRole>,
  anchors: AnchorCache,
  storage: StorageView,
  token: { metadata: Record<string, string>; policies: string[] },
  conn: ConnectionInfo,
): Promise<void> {
  const role = token.metadata.cert_name ? await certs.get(token.metadata.cert_name) : undefined;
  if (!role) throw new PermissionDenied("the certificate entry used to log in no longer exists");
  if (!policiesUnchanged(role, token.policies)) throw new PermissionDenied("policies have changed, not renewing");
  if ((await loadCertConfig(storage)).disable_binding) return;
  const p = presented(conn);
  if (!p || !(await chainsTo(p.leaf, p.intermediates, anchors.anchorsOf(role))).trusted) throw new PermissionDenied(UNTRUSTED);
  const id = identityOf(p.leaf);
  if (!matchesConstraints(id, role)) throw new PermissionDenied(NO_MATCH);
  const m = token.metadata;
  if (id.serialDecimal !== m.serial_number || id.authorityKeyId !== (m.authority_key_id ?? "") || id.subjectKeyId !== (m.subject_key_id ?? "")) {
    throw new PermissionDenied("client identity during renewal not matching client identity used during login");
  }
}

export function loginPath(certs: NamedRecords<CertRole>, anchors: AnchorCache): PathDefinition {
  return {
    pattern: "login",
    operations: {
      update: { schema: loginSchema, handler: (r) => login(r as HandlerRequest<z.infer<typeof loginSchema>>, certs, anchors), summary: "Log in with the client certificate of the TLS connection." },
    },
  };
}
