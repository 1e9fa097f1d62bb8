import cron from "node-cron";
import type { Backend, PluginFactory } from "../../../src/sdk/index.js";
import { PkiEngine } from "./engine.js";
import { caPaths } from "./paths/ca.js";
import { configPaths } from "./paths/config.js";
import { fetchPaths } from "./paths/fetch.js";
import { issuePaths } from "./paths/issue.js";
import { ocspPaths } from "./paths/ocsp.js";
import { revokePaths } from "./paths/revoke.js";
import { rolePaths } from "./paths/roles.js";
import { tidyPaths } from "./paths/tidy.js";
import { CERT_SECRET_TYPE, certSecretType } from "./secret-cert.js";

/**
 * The PKI secrets engine (`type: pki`): root and intermediate CAs, roles that bound names, key
 * types and lifetimes, fast issuance and CSR signing, revocation published through CRLs and OCSP,
 * leases for certificates that ask for them, and tidy. See docs/pki.md.
 */
export const pkiPlugin: PluginFactory = {
  type: "pki",
  kind: "secrets",
  description: "X.509 certificates: root and intermediate CAs, roles, issue and sign, CRL and OCSP revocation, tidy.",
  async create(ctx): Promise<Backend> {
    const engine = new PkiEngine(ctx.storage, ctx.logger);
    // Automatic tidy and CRL auto-rebuild are checked every 5 seconds against in-memory settings;
    // the work itself runs only when its interval or the CRL's grace period says so.
    const maintenance = cron.schedule(
      "*/5 * * * * *",
      () => engine.maintain().catch((err) => ctx.logger.error({ err }, "pki: periodic maintenance failed")),
      // A missed tick under load is harmless (the next one does the same check); do not log it.
      { noOverlap: true, name: `pki-maintenance-${ctx.mount.uuid}`, suppressMissedWarning: true, unref: true },
    );
    return {
      paths: [...issuePaths(engine), ...rolePaths(engine), ...caPaths(engine), ...fetchPaths(engine), ...revokePaths(engine), ...ocspPaths(engine), ...configPaths(engine), ...tidyPaths(engine)],
      // As Vault: what relying parties fetch (CA certificates, CRLs, OCSP, issued certificates) needs no token.
      unauthenticatedPaths: ["ca", "ca/pem", "ca_chain", "crl", "crl/pem", "ocsp*", "cert/*", "issuers", "issuers/", "issuer/+/json", "issuer/+/pem", "issuer/+/der"],
      rootPaths: ["root"],
      secretTypes: { [CERT_SECRET_TYPE]: certSecretType(engine) },
      async close() {
        await maintenance.destroy();
        engine.close();
        await engine.tidyDone();
      },
    };
  },
};
