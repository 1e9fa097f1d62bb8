import { z } from "zod";
import { UserError, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { isPlainObject } from "../merge-patch.js";
import { loadVersion, notFoundWith } from "./data.js";

const schema = z.object({
  version: zInt.optional(),
  depth: zInt.optional(),
});

/**
 * The secret's shape without its values: every leaf (a non-object, or an empty object) becomes
 * null. With `depth` > 0, keys at that nesting level (top level = 1) are leaves too.
 */
export function subkeysOf(data: Record<string, unknown>, depth: number, level = 1): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(data)) {
    const descend = isPlainObject(value) && Object.keys(value).length > 0 && (depth === 0 || level < depth);
    out.set(key, descend ? subkeysOf(value as Record<string, unknown>, depth, level + 1) : null);
  }
  return Object.fromEntries(out);
}

async function readSubkeys(req: HandlerRequest<z.infer<typeof schema>>): Promise<HandlerResponse> {
  const depth = req.data.depth ?? 0;
  if (depth < 0) throw new UserError("depth must be a non-negative integer");
  const { metadata, data } = await loadVersion(req, req.data.version);
  if (!data) return notFoundWith({ subkeys: null, metadata });
  return { data: { subkeys: subkeysOf(data, depth), metadata } };
}

export function subkeysPath(): PathDefinition {
  return {
    pattern: "subkeys/(?<path>.+)",
    operations: { read: { schema, handler: readSubkeys, summary: "Read a secret's keys with the values replaced by null." } },
  };
}
