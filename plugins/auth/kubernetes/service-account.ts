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
 * Reads the service account from either claim shape (empty fields when the token has neither):
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
  // A token without service account claims names nobody: the role's name and namespace bindings
  // then refuse it with 403, as Vault does (its claims decode to empty strings).
  return legacy;
}

/** `system:serviceaccount:<namespace>:<name>`, the username the API server reports. */
export function usernameOf(sa: Pick<ServiceAccount, "name" | "namespace">): string {
  return `system:serviceaccount:${sa.namespace}:${sa.name}`;
}
