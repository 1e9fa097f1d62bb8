import type { PluginFactory } from "../src/sdk/index.js";
import { approlePlugin } from "./auth/approle/index.js";
import { certPlugin } from "./auth/cert/index.js";
import { jwtPlugin, oidcPlugin } from "./auth/jwt/index.js";
import { kubernetesPlugin } from "./auth/kubernetes/index.js";
import { userpassPlugin } from "./auth/userpass/index.js";
import { postgresDatabasePlugin } from "./database/postgres/index.js";
import { databaseEngine } from "./secrets/database/index.js";
import { kvPlugin } from "./secrets/kv/index.js";
import { pkiPlugin } from "./secrets/pki/index.js";

/** Every plugin compiled into leasehold, registered by type name. */
export const builtinPlugins: PluginFactory[] = [kvPlugin, pkiPlugin, approlePlugin, certPlugin, jwtPlugin, oidcPlugin, kubernetesPlugin, userpassPlugin, databaseEngine({ plugins: [postgresDatabasePlugin] })];
