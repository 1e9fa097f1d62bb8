import type { Logger } from "pino";
import { InternalError, PermissionDenied } from "../../../src/sdk/index.js";
import { requestJson } from "../shared/http.js";
import { usernameOf, type ServiceAccount } from "./service-account.js";

/**
 * Why the cluster did not vouch for the token, for the operator's log. The client gets only 403
 * `permission denied`: Vault's kubernetes method turns every failed lookup into
 * `logical.ErrPermissionDenied`.
 */
export const REVIEW_REFUSED = "lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token";

export interface ReviewTarget {
  /** Base URL of the API server, e.g. `https://10.0.0.1:6443`. */
  host: string;
  /** PEM CA bundle for the API server's certificate (undefined = system store). */
  ca?: string;
  /** Bearer token for the review call: the reviewer JWT, or the login JWT itself. */
  bearer: string;
}

interface TokenReviewAnswer {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; uid?: string };
  };
}

/**
 * Asks the cluster whether `jwt` is valid right now (TokenReview API,
 * `POST /apis/authentication.k8s.io/v1/tokenreviews`) and checks that it belongs to the same
 * service account the token's claims name. A deleted service account or pod, a revoked secret, or
 * a forged token all end here. Returns the service account's uid as the cluster reports it.
 */
export async function reviewToken(target: ReviewTarget, jwt: string, sa: ServiceAccount, audience: string, logger: Logger): Promise<{ uid: string }> {
  const url = `${target.host.replace(/\/+$/, "")}/apis/authentication.k8s.io/v1/tokenreviews`;
  let answer;
  try {
    answer = await requestJson(url, {
      method: "POST",
      ca: target.ca,
      headers: { Authorization: `Bearer ${target.bearer}` },
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: jwt, ...(audience ? { audiences: [audience] } : {}) } },
      maxBytes: 256 * 1024,
    });
  } catch (err) {
    throw new InternalError(`kubernetes: cannot reach the TokenReview API at ${target.host}: ${(err as Error).message}`);
  }
  if (answer.status === 401 || answer.status === 403) {
    // The reviewer credential itself was refused (or, without one, the login JWT may not review).
    logger.warn({ status: answer.status }, "kubernetes: the TokenReview call was refused; check token_reviewer_jwt and its system:auth-delegator binding");
    throw new PermissionDenied();
  }
  if (answer.status !== 200 && answer.status !== 201) throw new InternalError(`kubernetes: the TokenReview API answered HTTP ${answer.status}`);
  const status = (answer.body as TokenReviewAnswer | undefined)?.status;
  const refuse = (why: string): never => {
    logger.info({ namespace: sa.namespace, service_account: sa.name, why }, `kubernetes login refused: ${REVIEW_REFUSED}`);
    throw new PermissionDenied();
  };
  if (!status || status.authenticated !== true || status.error) return refuse(status?.error ? `not authenticated: ${status.error}` : "not authenticated");
  if (status.user?.username !== usernameOf(sa)) return refuse("the cluster vouches for another service account");
  if (sa.uid && status.user.uid !== undefined && status.user.uid !== sa.uid) return refuse("the service account was recreated (uid differs)");
  if (audience && Array.isArray(status.audiences) && !status.audiences.includes(audience)) return refuse("the cluster did not confirm the role's audience");
  return { uid: status.user.uid ?? sa.uid };
}
