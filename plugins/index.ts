import type { PluginFactory } from "../src/sdk/index.js";
import { kvPlugin } from "./secrets/kv/index.js";

/** Every plugin compiled into leasehold, registered by type name. */
export const builtinPlugins: PluginFactory[] = [kvPlugin];
