import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The broker's Prometheus metrics, on a registry of its own (several cores can run in one test process). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "leasehold_http_requests_total",
    help: "HTTP requests by method and status code",
    labelNames: ["method", "status"] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: "leasehold_http_request_duration_seconds",
    help: "Time to answer an HTTP request",
    labelNames: ["method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly sealed = new Gauge({ name: "leasehold_core_sealed", help: "1 while the server is sealed", registers: [this.registry] });
  readonly tokensCreated = new Counter({ name: "leasehold_tokens_created_total", help: "Tokens created", labelNames: ["auth_mount"] as const, registers: [this.registry] });
  readonly tokensRevoked = new Counter({ name: "leasehold_tokens_revoked_total", help: "Tokens revoked", registers: [this.registry] });
  readonly auditFailures = new Counter({ name: "leasehold_audit_failures_total", help: "Requests refused because no audit device could write", registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "leasehold_" });
  }
}
