import { z } from "zod";
import { UserError, parseDuration, zBool, zInt } from "../../../../src/sdk/index.js";
import type { HandlerRequest, HandlerResponse, PathDefinition } from "../../../../src/sdk/index.js";
import { goDuration } from "../key-metadata.js";
import { KvStore } from "../storage.js";

/**
 * The mount's delete_version_after is signed: a negative duration (`-1`, `"-1s"`) disables it on
 * every key, zero clears it. The sdk's zDuration is unsigned, so the sign is handled here.
 */
const signedDuration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const negative = typeof v === "number" ? v < 0 : v.trim().startsWith("-");
  const magnitude = typeof v === "number" ? Math.abs(v) : v.trim().replace(/^-/, "");
  try {
    const seconds = parseDuration(magnitude, "delete_version_after");
    return negative ? -seconds : seconds;
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message.replace(/^delete_version_after: /, "") });
    return z.NEVER;
  }
});

const writeSchema = z.object({
  max_versions: zInt.optional(),
  cas_required: zBool.optional(),
  delete_version_after: signedDuration.optional(),
});

async function readConfig(req: HandlerRequest): Promise<HandlerResponse> {
  const config = await new KvStore(req.storage).config();
  return {
    data: {
      cas_required: config.casRequired,
      delete_version_after: goDuration(config.deleteVersionAfter),
      max_versions: config.maxVersions,
    },
  };
}

/** Only the fields sent change. */
async function writeConfig(req: HandlerRequest<z.infer<typeof writeSchema>>): Promise<void> {
  const { max_versions, cas_required, delete_version_after } = req.data;
  if (max_versions !== undefined && max_versions < 0) throw new UserError("max_versions must not be negative");
  const store = new KvStore(req.storage);
  await store.lockConfig(async () => {
    const config = await store.config();
    if (max_versions !== undefined) config.maxVersions = max_versions;
    if (cas_required !== undefined) config.casRequired = cas_required;
    // Any negative value is stored as Vault stores it: -1s, "disabled".
    if (delete_version_after !== undefined) config.deleteVersionAfter = delete_version_after < 0 ? -1 : delete_version_after;
    await store.putConfig(config);
  });
}

export function configPath(): PathDefinition {
  return {
    pattern: "config",
    operations: {
      read: { handler: readConfig, summary: "Read the engine's settings." },
      update: { schema: writeSchema, handler: writeConfig, summary: "Configure settings applied to every key." },
    },
  };
}
