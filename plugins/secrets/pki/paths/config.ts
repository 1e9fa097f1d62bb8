import { z } from "zod";
import { UserError, zBool, zCommaList, zDuration } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import type { PkiEngine } from "../engine.js";
import type { AutoTidyConfig, CrlConfig, UrlsConfig } from "../model.js";
import { durationOut } from "./common.js";

const urlsSchema = z.object({
  issuing_certificates: zCommaList.optional(),
  crl_distribution_points: zCommaList.optional(),
  ocsp_servers: zCommaList.optional(),
  enable_templating: zBool.optional(),
});

const crlSchema = z.object({
  expiry: zDuration.optional(),
  disable: zBool.optional(),
  ocsp_disable: zBool.optional(),
  ocsp_expiry: zDuration.optional(),
  auto_rebuild: zBool.optional(),
  auto_rebuild_grace_period: zDuration.optional(),
  enable_delta: zBool.optional(),
  delta_rebuild_interval: zDuration.optional(),
  cross_cluster_revocation: zBool.optional(),
  unified_crl: zBool.optional(),
  unified_crl_on_existing_paths: zBool.optional(),
});

export const tidyFields = {
  tidy_cert_store: zBool.optional(),
  tidy_revoked_certs: zBool.optional(),
  tidy_revoked_cert_issuer_associations: zBool.optional(),
  safety_buffer: zDuration.optional(),
  pause_duration: zDuration.optional(),
};
const autoTidySchema = z.object({ ...tidyFields, enabled: zBool.optional(), interval_duration: zDuration.optional() });

function checkUrls(field: string, urls: string[]): void {
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new UserError(`${field}: ${JSON.stringify(u)} is not a URL`);
    }
    // eslint-disable-next-line no-control-regex -- written into certificates as IA5String
    if (!/^[\x21-\x7e]+$/.test(u) || !parsed.protocol) throw new UserError(`${field}: ${JSON.stringify(u)} must be an ASCII URL`);
  }
}

function urlsOut(u: UrlsConfig): Record<string, unknown> {
  return { issuing_certificates: u.issuing_certificates, crl_distribution_points: u.crl_distribution_points, ocsp_servers: u.ocsp_servers, enable_templating: false };
}

function crlOut(c: CrlConfig): Record<string, unknown> {
  return {
    expiry: durationOut(c.expiry),
    disable: c.disable,
    ocsp_disable: c.ocsp_disable,
    ocsp_expiry: durationOut(c.ocsp_expiry),
    auto_rebuild: c.auto_rebuild,
    auto_rebuild_grace_period: durationOut(c.auto_rebuild_grace_period),
    enable_delta: false,
    delta_rebuild_interval: "15m0s",
    cross_cluster_revocation: false,
    unified_crl: false,
    unified_crl_on_existing_paths: false,
  };
}

function autoTidyOut(c: AutoTidyConfig): Record<string, unknown> {
  return {
    enabled: c.enabled,
    interval_duration: c.interval_duration,
    tidy_cert_store: c.tidy_cert_store,
    tidy_revoked_certs: c.tidy_revoked_certs,
    tidy_revoked_cert_issuer_associations: false,
    tidy_expired_issuers: false,
    safety_buffer: c.safety_buffer,
    pause_duration: durationOut(c.pause_duration),
  };
}

export function configPaths(engine: PkiEngine): PathDefinition[] {
  return [
    {
      pattern: "config/urls",
      operations: {
        read: { summary: "URLs written into issued certificates.", handler: async (): Promise<HandlerResponse> => ({ data: urlsOut(await engine.urls()) }) },
        update: {
          schema: urlsSchema,
          summary: "Set the AIA issuing-certificate, CRL distribution point and OCSP URLs (fields not sent are kept; an empty string clears one).",
          handler: async (req: HandlerRequest<z.infer<typeof urlsSchema>>): Promise<HandlerResponse> => {
            const d = req.data;
            if (d.enable_templating) throw new UserError("enable_templating is not supported");
            const next = { ...(await engine.urls()) };
            for (const field of ["issuing_certificates", "crl_distribution_points", "ocsp_servers"] as const) {
              const v = d[field];
              if (v === undefined) continue;
              checkUrls(field, v);
              next[field] = v;
            }
            await engine.setUrls(next);
            return { data: urlsOut(next) };
          },
        },
      },
    },
    {
      pattern: "config/crl",
      operations: {
        read: { summary: "CRL and OCSP settings.", handler: async (): Promise<HandlerResponse> => ({ data: crlOut(await engine.crlConfig()) }) },
        update: {
          schema: crlSchema,
          summary: "Change CRL validity, disable CRLs or OCSP, or rebuild CRLs on a schedule (fields not sent are kept).",
          handler: async (req: HandlerRequest<z.infer<typeof crlSchema>>): Promise<HandlerResponse> => {
            const d = req.data;
            if (d.enable_delta) throw new UserError("delta CRLs are not supported");
            if (d.unified_crl || d.unified_crl_on_existing_paths || d.cross_cluster_revocation) throw new UserError("unified and cross-cluster revocation are Vault Enterprise features and are not supported");
            const next: CrlConfig = { ...(await engine.crlConfig()) };
            if (d.expiry !== undefined) next.expiry = d.expiry;
            if (d.disable !== undefined) next.disable = d.disable;
            if (d.ocsp_disable !== undefined) next.ocsp_disable = d.ocsp_disable;
            if (d.ocsp_expiry !== undefined) next.ocsp_expiry = d.ocsp_expiry;
            if (d.auto_rebuild !== undefined) next.auto_rebuild = d.auto_rebuild;
            if (d.auto_rebuild_grace_period !== undefined) next.auto_rebuild_grace_period = d.auto_rebuild_grace_period;
            if (next.expiry <= 0) throw new UserError("expiry must be positive");
            if (next.auto_rebuild && next.auto_rebuild_grace_period >= next.expiry) throw new UserError("auto_rebuild_grace_period must be shorter than expiry");
            await engine.setCrlConfig(next);
            await engine.rebuildCrl();
            return { data: crlOut(next) };
          },
        },
      },
    },
    {
      pattern: "config/auto-tidy",
      operations: {
        read: { summary: "Automatic tidy settings.", handler: async (): Promise<HandlerResponse> => ({ data: autoTidyOut(await engine.autoTidy()) }) },
        update: {
          schema: autoTidySchema,
          summary: "Run tidy periodically (fields not sent are kept).",
          handler: async (req: HandlerRequest<z.infer<typeof autoTidySchema>>): Promise<HandlerResponse> => {
            const d = req.data;
            const next: AutoTidyConfig = { ...(await engine.autoTidy()) };
            for (const k of ["enabled", "interval_duration", "tidy_cert_store", "tidy_revoked_certs", "safety_buffer", "pause_duration"] as const) {
              const v = d[k];
              if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
            }
            if (next.interval_duration <= 0) throw new UserError("interval_duration must be positive");
            if (next.enabled && !next.tidy_cert_store && !next.tidy_revoked_certs) throw new UserError("automatic tidy needs tidy_cert_store or tidy_revoked_certs");
            await engine.setAutoTidy(next);
            return { data: autoTidyOut(next) };
          },
        },
      },
    },
  ];
}
