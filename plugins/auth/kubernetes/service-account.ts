import { UserError } from "../../../src/sdk/index.js";

/** Who a service-account token says it is. */
export interface ServiceAccount {
  name: string;
  namespace: string;
  uid: string;
  /** Legacy (secret-based) tokens name their secret; projected tokens do not. */
  secretName: string;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/**
 * Reads the service account from either claim shape:
 * - projected (bound) tokens: `{"kubernetes.io": {"namespace", "serviceaccount": {"name", "uid"}, "pod": ...}}`;
 * - legacy secret tokens: `kubernetes.io/serviceaccount/namespace`, `.../service-account.name`,
 *   `.../service-account.uid`, `.../secret.name` (issuer `kubernetes/serviceaccount`).
 */
export function serviceAccountOf(claims: Record<string, unknown>): ServiceAccount {
  const projected = claims["kubernetes.io"];
  if (typeof projected === "object" && projected !== null) {
    const p = projected as { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } };
    const sa: ServiceAccount = { name: str(p.serviceaccount?.name), namespace: str(p.namespace), uid: str(p.serviceaccount?.uid), secretName: "" };
    if (sa.name && sa.namespace) return sa;
  }
  const legacy: ServiceAccount = {
    name: str(claims["kubernetes.io/serviceaccount/service-account.name"]),
    namespace: str(claims["kubernetes.io/serviceaccount/namespace"]),
    uid: str(claims["kubernetes.io/serviceaccount/service-account.uid"]),
    secretName: str(claims["kubernetes.io/serviceaccount/secret.name"]),
  };
  if (legacy.name && legacy.namespace) return legacy;
  throw new UserError("the JWT is not a Kubernetes service account token (no service account name and namespace claims)");
}

/** `system:serviceaccount:<namespace>:<name>`, the username the API server reports. */
export function usernameOf(sa: Pick<ServiceAccount, "name" | "namespace">): string {
  return `system:serviceaccount:${sa.namespace}:${sa.name}`;
}
