import { UserError } from "../../../src/sdk/index.js";
import type { Backend, MountInfo, PathDefinition, PluginFactory } from "../../../src/sdk/index.js";
import { configPath } from "./paths/config.js";
import { dataPath } from "./paths/data.js";
import { kvV1Paths } from "./paths/kv-v1.js";
import { metadataPath } from "./paths/metadata.js";
import { subkeysPath } from "./paths/subkeys.js";
import { versionPaths } from "./paths/versions.js";
import { upgradeV1ToV2 } from "./upgrade.js";

/**
 * The mount option `version` picks the flavour. Like Vault, a kv mount without it is version 1;
 * the dev server mounts `secret/` with version "2".
 */
export function kvVersion(mount: Pick<MountInfo, "options">): 1 | 2 {
  const raw = mount.options.version ?? "";
  if (raw === "" || raw === "1") return 1;
  if (raw === "2") return 2;
  throw new UserError(`kv: unsupported version ${JSON.stringify(raw)}: use "1" or "2"`);
}

export function kvV2Paths(): PathDefinition[] {
  return [configPath(), dataPath(), metadataPath(), ...versionPaths(), subkeysPath()];
}

export const kvPlugin: PluginFactory = {
  type: "kv",
  kind: "secrets",
  description: "Key/value secrets: version 2 keeps versions with metadata, check-and-set and soft delete; version 1 stores one value per path.",
  async create(ctx): Promise<Backend> {
    return { paths: kvVersion(ctx.mount) === 2 ? kvV2Paths() : kvV1Paths() };
  },
  // `sys/mounts/<kv>/tune` with `options.version=2` upgrades a version 1 mount (the core refuses a
  // downgrade, as Vault does); "" and "1" are the same layout.
  retune(from, to) {
    return kvVersion({ options: from }) === 1 && kvVersion({ options: to }) === 2 ? upgradeV1ToV2 : undefined;
  },
};
