import { z } from "zod";
import { UserError, formatDuration, parseDuration, zBool, zCommaList, zDuration } from "../../../../src/sdk/index.js";
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

/**
 * A duration Vault stores as the string it was given (`config/crl` keeps `expiry: "48h"` and reads
 * back `"48h"`, never `"48h0m0s"`): the seconds for our own use, and the text to read back. A bare
 * number (which Vault's string field would refuse) is read back in Go's form.
 */
const zDurationText = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    const seconds = parseDuration(v);
    return { seconds, text: typeof v === "string" ? v : formatDuration(seconds) };
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message.replace(/^duration: /, "") });
    return z.NEVER;
  }
});

const crlSchema = z.object({
  expiry: zDurationText.optional(),
  disable: zBool.optional(),
  ocsp_disable: zBool.optional(),
  ocsp_expiry: zDurationText.optional(),
  auto_rebuild: zBool.optional(),
  auto_rebuild_grace_period: zDurationText.optional(),
  enable_delta: zBool.optional(),
  delta_rebuild_interval: zDurationText.optional(),
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

type CrlDurationField = "expiry" | "ocsp_expiry" | "auto_rebuild_grace_period";
const CRL_DURATIONS: CrlDurationField[] = ["expiry", "ocsp_expiry", "auto_rebuild_grace_period"];

/** Vault's defaults, as Vault prints them. */
const CRL_DEFAULT_TEXT: Record<CrlDurationField, { seconds: number; text: string }> = {
  expiry: { seconds: 72 * 3600, text: "72h" },
  ocsp_expiry: { seconds: 12 * 3600, text: "12h" },
  auto_rebuild_grace_period: { seconds: 12 * 3600, text: "12h" },
};

/**
 * The CRL config as stored: the engine's record plus, per duration field, the text it was written
 * as. The engine persists the whole record as JSON and hands it back as read, so the texts travel
 * with the seconds they describe.
 */
type StoredCrlConfig = CrlConfig & { written_as?: Partial<Record<CrlDurationField, string>> };

/** The text to read back: as written; Vault's default spelling for an untouched default; else Go's form. */
function crlDurationText(c: StoredCrlConfig, field: CrlDurationField): string {
  const written = c.written_as?.[field];
  if (written !== undefined) return written;
  const d = CRL_DEFAULT_TEXT[field];
  return c[field] === d.seconds ? d.text : durationOut(c[field]);
}

function crlOut(c: StoredCrlConfig): Record<string, unknown> {
  return {
    expiry: crlDurationText(c, "expiry"),
    disable: c.disable,
    ocsp_disable: c.ocsp_disable,
    ocsp_expiry: crlDurationText(c, "ocsp_expiry"),
    auto_rebuild: c.auto_rebuild,
    auto_rebuild_grace_period: crlDurationText(c, "auto_rebuild_grace_period"),
    enable_delta: false,
    delta_rebuild_interval: "15m",
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
            const current: StoredCrlConfig = await engine.crlConfig();
            const writtenAs = { ...current.written_as };
            const next: StoredCrlConfig = { ...current, written_as: writtenAs };
            for (const field of CRL_DURATIONS) {
              const v = d[field];
              if (v === undefined) continue;
              next[field] = v.seconds;
              writtenAs[field] = v.text;
            }
            if (d.disable !== undefined) next.disable = d.disable;
            if (d.ocsp_disable !== undefined) next.ocsp_disable = d.ocsp_disable;
            if (d.auto_rebuild !== undefined) next.auto_rebuild = d.auto_rebuild;
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
