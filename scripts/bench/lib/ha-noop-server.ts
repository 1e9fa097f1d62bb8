// A `leasehold server` process for the lease part of the `ha` benchmark:
//   node --import tsx scripts/bench/lib/ha-noop-server.ts server -config=<file>
// The real CLI (src/cli/main.ts) with one addition, the benchmark's no-op engine (noop-engine.ts),
// so that the leases the benchmark wrote under `bench/` revoke without touching anything outside
// the lease manager: the figures are the HA takeover and the lease manager, not an engine.
import "reflect-metadata";
import { builtinPlugins } from "../../../plugins/index.js";
import { noopEngine } from "./noop-engine.js";

// The server reads the list when it builds its core, after this runs.
builtinPlugins.push(noopEngine);
await import("../../../src/cli/main.js");
