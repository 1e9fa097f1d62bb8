import type { PluginFactory } from "../../../src/sdk/index.js";

/** A secrets engine whose revoke does nothing: the benchmark measures the lease manager alone. */
export const noopEngine: PluginFactory = {
  type: "bench-noop",
  kind: "secrets",
  description: "benchmark engine: leases with no-op revocation",
  async create() {
    return { paths: [], secretTypes: { noop: { revoke: async () => undefined, renew: async () => undefined } } };
  },
};
