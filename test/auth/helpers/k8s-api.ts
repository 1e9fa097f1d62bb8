import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { OpensslPki, type Issued } from "./openssl.js";

/** A service account the fake cluster knows. */
export interface KnownAccount {
  namespace: string;
  name: string;
  uid: string;
}

/** One TokenReview call as the API server saw it. */
export interface ReviewCall {
  bearer: string;
  token: string;
  audiences?: string[];
}

/**
 * A small Kubernetes API server for tests: the TokenReview endpoint only, over HTTPS with a CA
 * made by openssl. It answers like the real one (`201`, `status.authenticated`, `status.user`)
 * for tokens it was told about, refuses callers whose bearer token it does not accept (401), and
 * can be told to vouch for a different service account than the token names.
 */
export class TestKubernetesApi {
  readonly pki = new OpensslPki();
  ca!: Issued;
  url = "";
  private server!: Server;
  calls: ReviewCall[] = [];
  /** Tokens the cluster considers valid, and whose they are. */
  readonly tokens = new Map<string, KnownAccount>();
  /** Bearer tokens allowed to call TokenReview. */
  readonly reviewers = new Set<string>();
  /** Lets a token review itself (no reviewer JWT configured). */
  allowSelfReview = false;
  /** Overrides: the cluster answers with this account for the token. */
  readonly answerAs = new Map<string, KnownAccount>();

  static async start(): Promise<TestKubernetesApi> {
    const api = new TestKubernetesApi();
    api.ca = api.pki.rootCa("k8s-ca", "kubernetes test CA");
    const serving = api.pki.leaf("k8s-api", api.ca, { cn: "kube-apiserver", sans: ["IP:127.0.0.1", "DNS:localhost"], eku: "serverAuth" });
    api.server = createServer({ key: serving.key, cert: serving.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const send = (status: number, body: unknown) => {
          res.writeHead(status, { "Content-Type": "application/json" });
          res.end(JSON.stringify(body));
        };
        if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews") return send(404, { kind: "Status", code: 404 });
        const bearer = (req.headers.authorization ?? "").replace(/^Bearer /, "");
        let review: { apiVersion?: string; kind?: string; spec?: { token?: string; audiences?: string[] } };
        try {
          review = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          return send(400, { kind: "Status", code: 400 });
        }
        const token = review.spec?.token ?? "";
        api.calls.push({ bearer, token, audiences: review.spec?.audiences });
        const selfOk = api.allowSelfReview && bearer === token && api.tokens.has(token);
        if (!api.reviewers.has(bearer) && !selfOk) return send(401, { kind: "Status", apiVersion: "v1", status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 });
        if (review.apiVersion !== "authentication.k8s.io/v1" || review.kind !== "TokenReview") return send(400, { kind: "Status", code: 400 });
        const who = api.answerAs.get(token) ?? api.tokens.get(token);
        const status = who
          ? { authenticated: true, user: { username: `system:serviceaccount:${who.namespace}:${who.name}`, uid: who.uid, groups: ["system:serviceaccounts", `system:serviceaccounts:${who.namespace}`] }, ...(review.spec?.audiences ? { audiences: review.spec.audiences } : {}) }
          : { authenticated: false, user: {}, error: "[invalid bearer token, token lookup failed]" };
        send(201, { kind: "TokenReview", apiVersion: "authentication.k8s.io/v1", metadata: { creationTimestamp: null }, spec: review.spec, status });
      });
    });
    await new Promise<void>((resolve) => api.server.listen(0, "127.0.0.1", resolve));
    api.url = `https://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    return api;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
