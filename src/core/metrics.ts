import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LeaseStore } from "../storage/types.js";
import type { ExpirationManager, LeaseEvents } from "./leases/manager.js";

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
  readonly loginFailures = new Counter({ name: "leasehold_login_failures_total", help: "Refused or failed logins by auth mount", labelNames: ["auth_mount"] as const, registers: [this.registry] });
  readonly auditFailures = new Counter({ name: "leasehold_audit_failures_total", help: "Requests refused because no audit device could write", registers: [this.registry] });

  readonly leasesRevoked = new Counter({ name: "leasehold_leases_revoked_total", help: "Leases revoked", labelNames: ["mount"] as const, registers: [this.registry] });
  readonly leaseRevokeFailures = new Counter({ name: "leasehold_lease_revoke_failures_total", help: "Failed lease revocation attempts", labelNames: ["mount"] as const, registers: [this.registry] });
  readonly leasesIrrevocableTotal = new Counter({ name: "leasehold_leases_became_irrevocable_total", help: "Leases that ran out of revocation attempts", labelNames: ["mount"] as const, registers: [this.registry] });
  readonly leasesRenewed = new Counter({ name: "leasehold_leases_renewed_total", help: "Lease renewals", labelNames: ["mount"] as const, registers: [this.registry] });
  readonly leasesCreated = new Counter({ name: "leasehold_leases_created_total", help: "Leases created", labelNames: ["mount"] as const, registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "leasehold_" });
  }

  /** Counters fed by the expiration manager. */
  leaseEvents(): LeaseEvents {
    return {
      revoked: (mount) => this.leasesRevoked.inc({ mount }),
      revokeFailed: (mount) => this.leaseRevokeFailures.inc({ mount }),
      irrevocable: (mount) => this.leasesIrrevocableTotal.inc({ mount }),
      renewed: (mount) => this.leasesRenewed.inc({ mount }),
      created: (mount) => this.leasesCreated.inc({ mount }),
    };
  }

  /** Gauges read from the store when scraped: leases by mount and state, the revocation queue. */
  watchLeases(manager: ExpirationManager, store: LeaseStore): void {
    new Gauge({
      name: "leasehold_leases",
      help: "Leases in the store by mount and state (irrevocable ones need an operator)",
      labelNames: ["mount", "state"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const row of await store.countsByMountAndState()) this.set({ mount: row.mount, state: row.state }, row.n);
      },
    });
    new Gauge({
      name: "leasehold_lease_revocation_queue_depth",
      help: "Revocations running or waiting for a per-mount slot",
      registers: [this.registry],
      collect() {
        this.set(manager.queueDepth);
      },
    });
  }
}
