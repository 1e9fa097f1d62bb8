import { formatDuration } from "../../../src/sdk/index.js";

/** Engine-wide settings (`<mount>/config`). */
export interface KvConfig {
  /** 0 = unset (Vault then keeps 10). */
  maxVersions: number;
  casRequired: boolean;
  /** Seconds. 0 = unset; negative = disabled for every key, whatever the key says (Vault's rule). */
  deleteVersionAfter: number;
}

export const DEFAULT_CONFIG: KvConfig = { maxVersions: 0, casRequired: false, deleteVersionAfter: 0 };

/** What Vault keeps when neither the key nor the mount sets `max_versions`. */
export const DEFAULT_MAX_VERSIONS = 10;

/** One version's bookkeeping; its data is stored separately (see storage.ts). */
export interface VersionState {
  /** Unix milliseconds. */
  createdTime: number;
  /** Unix milliseconds from which the version reads as deleted (soft delete or `delete_version_after`); null = never. */
  deletionTime: number | null;
  destroyed: boolean;
}

/** A key's metadata: its settings and the versions still retained. */
export interface KeyMetadata {
  createdTime: number;
  updatedTime: number;
  currentVersion: number;
  /** 0 until the first version is pruned, then the lowest retained version (as Vault reports it). */
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  /** Seconds; 0 = use the mount's. */
  deleteVersionAfter: number;
  customMetadata: Record<string, string> | null;
  /** Keyed by version number. */
  versions: Record<string, VersionState>;
}

export function newKeyMetadata(now: number): KeyMetadata {
  return {
    createdTime: now,
    updatedTime: now,
    currentVersion: 0,
    oldestVersion: 0,
    maxVersions: 0,
    casRequired: false,
    deleteVersionAfter: 0,
    customMetadata: null,
    versions: {},
  };
}

/** A version past its deletion time reads as deleted, whether it was deleted by hand or expired. */
export function isDeleted(v: VersionState, now = Date.now()): boolean {
  return v.deletionTime !== null && v.deletionTime <= now;
}

/** A version whose data can be returned. */
export function isLive(v: VersionState, now = Date.now()): boolean {
  return !v.destroyed && !isDeleted(v, now);
}

/**
 * Vault takes the larger of the key's and the mount's `max_versions` (not the key's alone, as its
 * docs suggest), and 10 when both are unset.
 */
export function effectiveMaxVersions(meta: KeyMetadata, config: KvConfig): number {
  return Math.max(meta.maxVersions, config.maxVersions) || DEFAULT_MAX_VERSIONS;
}

/**
 * When a version written (or undeleted) at `from` will read as deleted: after the smaller non-zero
 * `delete_version_after` of the key and the mount; never when both are unset or the mount disabled it.
 */
export function scheduledDeletion(from: number, meta: KeyMetadata, config: KvConfig): number | null {
  if (config.deleteVersionAfter < 0) return null;
  const candidates = [config.deleteVersionAfter, meta.deleteVersionAfter].filter((s) => s > 0);
  if (candidates.length === 0) return null;
  return from + Math.min(...candidates) * 1000;
}

/**
 * Appends a version to `meta` and slides the window of retained versions. Returns the new version
 * number and the versions that fell out of the window, whose data the caller must delete.
 */
export function addVersion(meta: KeyMetadata, config: KvConfig, now: number): { version: number; pruned: number[] } {
  const version = meta.currentVersion + 1;
  meta.currentVersion = version;
  meta.versions[version] = { createdTime: now, deletionTime: scheduledDeletion(now, meta, config), destroyed: false };
  meta.updatedTime = now;
  if (!meta.createdTime) meta.createdTime = now;

  const max = effectiveMaxVersions(meta, config);
  const pruned: number[] = [];
  if (meta.currentVersion - meta.oldestVersion >= max) {
    // Versions up to `cutoff` go; a loop, because max_versions may have been lowered since.
    const cutoff = meta.currentVersion - max;
    for (const n of Object.keys(meta.versions).map(Number)) {
      if (n <= cutoff) {
        delete meta.versions[n];
        pruned.push(n);
      }
    }
    meta.oldestVersion = cutoff + 1;
  }
  return { version, pruned: pruned.sort((a, b) => a - b) };
}

/**
 * Go's RFC 3339 rendering (`time.RFC3339Nano`: trailing zeros of the fraction dropped), which is
 * what Vault clients see; our clock has millisecond precision.
 */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits ? `.${digits}Z` : "Z"));
}

function optionalTime(ms: number | null): string {
  return ms === null ? "" : rfc3339(ms);
}

/** Go's `time.Duration.String()` for whole seconds, including negatives (`-1s`). */
export function goDuration(seconds: number): string {
  return seconds < 0 ? `-${formatDuration(-seconds)}` : formatDuration(seconds);
}

/** The per-version block of `data/` reads and writes (`metadata` in a read, the whole `data` of a write). */
export function versionResponse(meta: KeyMetadata, version: number): Record<string, unknown> {
  const v = meta.versions[version];
  return {
    created_time: rfc3339(v.createdTime),
    custom_metadata: meta.customMetadata,
    deletion_time: optionalTime(v.deletionTime),
    destroyed: v.destroyed,
    version,
  };
}

/** The body of `GET metadata/<path>`. */
export function keyMetadataResponse(meta: KeyMetadata): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const [n, v] of Object.entries(meta.versions)) {
    versions[n] = { created_time: rfc3339(v.createdTime), deletion_time: optionalTime(v.deletionTime), destroyed: v.destroyed };
  }
  return {
    cas_required: meta.casRequired,
    created_time: rfc3339(meta.createdTime),
    current_version: meta.currentVersion,
    custom_metadata: meta.customMetadata,
    delete_version_after: goDuration(meta.deleteVersionAfter),
    max_versions: meta.maxVersions,
    oldest_version: meta.oldestVersion,
    updated_time: rfc3339(meta.updatedTime),
    versions,
  };
}
