import { randomUUID } from "node:crypto";
import pino from "pino";
import { invokeHandler, requireRoute, resolveWriteOperation } from "../../src/core/dispatch.js";
import type { Backend, CallerIdentity, HandlerRequest, HandlerResponse, MountInfo, Operation, StorageView } from "../../src/sdk/types.js";

export const silentLogger = pino({ level: "silent" });

export function testMount(type: string, path = `${type}/`, options: Record<string, string> = {}): MountInfo {
  return { path, type, accessor: `${type}_1234abcd`, uuid: randomUUID(), description: "", config: { defaultLeaseTtl: 0, maxLeaseTtl: 0 }, options };
}

export const rootIdentity: CallerIdentity = {
  accessor: "acc-root",
  displayName: "root",
  policies: ["root"],
  metadata: {},
  entityId: "",
  authMount: "auth/token/",
  isRoot: true,
};

/**
 * Drives a backend the way the core does (route match, create/update resolution, schema
 * validation, handler), without HTTP. `op` "write" means POST/PUT.
 */
export async function callBackend(
  backend: Backend,
  opts: { op: Operation | "write"; path: string; data?: Record<string, unknown>; storage: StorageView; mount: MountInfo },
): Promise<HandlerResponse> {
  const match = requireRoute(backend, opts.path, opts.mount.path + opts.path);
  const req: HandlerRequest = {
    id: randomUUID(),
    op: "read",
    path: opts.path,
    params: match.params,
    data: opts.data ?? {},
    identity: rootIdentity,
    mount: opts.mount,
    storage: opts.storage,
    connection: { remoteAddress: "127.0.0.1" },
    logger: silentLogger,
    leases: {
      open: async () => {
        throw new Error("callBackend drives one backend without the core: leased secrets are tested through the real server");
      },
    },
  };
  const op = opts.op === "write" ? await resolveWriteOperation(match, req) : opts.op;
  return invokeHandler(match, op, { ...req, op });
}
