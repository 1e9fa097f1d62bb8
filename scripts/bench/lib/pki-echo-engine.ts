import type { PluginFactory } from "../../../src/sdk/index.js";

/**
 * The PKI benchmark's control: an engine whose `issue/:role` answers a response of the same shape
 * and size as a real P-256 issuance (certificate, issuing_ca, ca_chain, private_key, ...) without
 * any cryptography or storage. Its rate through the same server is the ceiling the HTTP layer and
 * the core put on any engine here; the PKI figures are read against it.
 */
export function pkiEchoEngine(sample: () => Record<string, unknown>): PluginFactory {
  return {
    type: "bench-pki-echo",
    kind: "secrets",
    description: "benchmark control: answers a stored issue response",
    async create() {
      return {
        paths: [
          {
            pattern: "issue/(?<role>[^/]+)",
            operations: { update: { handler: async () => ({ data: { ...sample() } }) } },
          },
        ],
      };
    },
  };
}
