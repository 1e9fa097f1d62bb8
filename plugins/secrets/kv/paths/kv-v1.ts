import { NotFound, UserError, parseDuration } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { listPrefix, secretPath, type SecretData } from "../storage.js";

/**
 * KV version 1: no versions and no metadata, one storage entry per secret at the secret's own
 * path (as Vault stores it), the request body stored as is. Writes replace; deletes are final.
 */

/**
 * The `lease_duration` of a read, as Vault's KV v1 sends it: the secret's own `ttl` (or, without
 * one, `lease`) when it parses as a duration, else the mount's default lease TTL. A hint for the
 * reader of when to read again; there is no lease (`lease_id` stays empty, not renewable).
 */
function leaseHint(data: SecretData, mountDefault: number): number {
  const raw = "ttl" in data ? data.ttl : "lease" in data ? data.lease : undefined;
  if (raw === undefined) return mountDefault;
  try {
    return parseDuration(raw, "ttl");
  } catch {
    return mountDefault;
  }
}

async function readSecret(req: HandlerRequest): Promise<HandlerResponse> {
  const data = await req.storage.getJSON<SecretData>(secretPath(req.params.path));
  if (!data) throw new NotFound();
  return { data, leaseInfo: { id: "", ttl: leaseHint(data, req.mount.config.defaultLeaseTtl), renewable: false } };
}

async function writeSecret(req: HandlerRequest): Promise<void> {
  const path = secretPath(req.params.path);
  if (Object.keys(req.data).length === 0) throw new UserError("missing data fields");
  await req.storage.putJSON(path, req.data);
}

async function deleteSecret(req: HandlerRequest): Promise<void> {
  await req.storage.delete(secretPath(req.params.path));
}

async function listSecrets(req: HandlerRequest): Promise<HandlerResponse> {
  const keys = await req.storage.list(listPrefix(req.params.path));
  if (keys.length === 0) throw new NotFound();
  return { data: { keys } };
}

async function secretExists(req: HandlerRequest): Promise<boolean> {
  let path: string;
  try {
    path = secretPath(req.params.path);
  } catch {
    return false;
  }
  return (await req.storage.get(path)) !== undefined;
}

export function kvV1Paths(): PathDefinition[] {
  return [
    {
      // Any body is a secret, so the write has no schema (and no "unrecognized parameters" warning).
      pattern: "(?<path>.*)",
      existenceCheck: secretExists,
      operations: {
        read: { handler: readSecret, summary: "Read a secret." },
        create: { handler: writeSecret, summary: "Store a secret, replacing any previous value." },
        update: { handler: writeSecret, summary: "Store a secret, replacing any previous value." },
        delete: { handler: deleteSecret, summary: "Delete a secret." },
        list: { handler: listSecrets, summary: "List the secrets and folders under a folder." },
      },
    },
  ];
}
