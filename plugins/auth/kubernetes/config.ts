import { readFile } from "node:fs/promises";
import { z } from "zod";
import { UserError, zBool, zCommaList } from "../../../src/sdk/index.js";
import { KeySet } from "../shared/jwt.js";
import { checkCaBundle } from "../shared/pem.js";

/** The mount's cluster settings (Vault's field names). */
export interface KubeConfig {
  kubernetes_host: string;
  kubernetes_ca_cert: string;
  token_reviewer_jwt: string;
  pem_keys: string[];
  disable_local_ca_jwt: boolean;
  issuer: string;
  disable_iss_validation: boolean;
}

export const configSchema = z.object({
  kubernetes_host: z.string().min(1, "kubernetes_host is required"),
  kubernetes_ca_cert: z.string().optional(),
  token_reviewer_jwt: z.string().optional(),
  pem_keys: zCommaList.optional(),
  disable_local_ca_jwt: zBool.optional(),
  issuer: z.string().optional(),
  disable_iss_validation: zBool.optional(),
});

/** Where a pod finds its own service account token and the cluster CA. */
export const LOCAL_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";
export const LOCAL_CA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/** `host`, `host:port` or a URL → a base URL (https unless the URL says otherwise). */
function normaliseHost(raw: string): string {
  const s = raw.trim();
  const url = /^[a-z]+:\/\//i.test(s) ? s : `https://${s}`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`kubernetes_host: ${JSON.stringify(raw)} is not a host, host:port or URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new UserError("kubernetes_host: only http and https are supported");
  return url.replace(/\/+$/, "");
}

/** Validates a config write (a write replaces the whole config). */
export function configFromInput(d: z.infer<typeof configSchema>): KubeConfig {
  const cfg: KubeConfig = {
    kubernetes_host: normaliseHost(d.kubernetes_host),
    kubernetes_ca_cert: d.kubernetes_ca_cert ?? "",
    token_reviewer_jwt: d.token_reviewer_jwt ?? "",
    pem_keys: d.pem_keys ?? [],
    disable_local_ca_jwt: d.disable_local_ca_jwt ?? false,
    issuer: d.issuer ?? "",
    disable_iss_validation: d.disable_iss_validation ?? false,
  };
  if (cfg.kubernetes_ca_cert) checkCaBundle(cfg.kubernetes_ca_cert, "kubernetes_ca_cert");
  if (cfg.pem_keys.length) KeySet.fromPems(cfg.pem_keys, "pem_keys");
  return cfg;
}

/** Config as read back: everything but the reviewer JWT (a credential), as Vault does. */
export function configView(cfg: KubeConfig): Record<string, unknown> {
  const { token_reviewer_jwt, ...rest } = cfg;
  return { ...rest, token_reviewer_jwt_set: token_reviewer_jwt !== "" };
}

async function readLocal(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The CA and the bearer for the TokenReview call. Inside a pod, unless `disable_local_ca_jwt`,
 * the pod's own CA and token fill what the config leaves empty (read on each login: kubelet
 * rotates projected tokens). Without any reviewer token, the login JWT reviews itself.
 */
export async function reviewCredentials(cfg: KubeConfig, loginJwt: string): Promise<{ ca?: string; bearer: string }> {
  const local = !cfg.disable_local_ca_jwt;
  const ca = cfg.kubernetes_ca_cert || (local ? await readLocal(LOCAL_CA_PATH) : undefined);
  const bearer = cfg.token_reviewer_jwt || (local ? await readLocal(LOCAL_JWT_PATH) : undefined) || loginJwt;
  return { ca, bearer };
}
