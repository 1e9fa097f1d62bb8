import { stringify as toYaml } from "yaml";
import type { VaultResponse } from "../client/index.js";

/**
 * Output the way the `vault` CLI prints it: two-column `Key`/`Value` tables for secrets,
 * a `Keys` column for lists, Go-style `%v` rendering of values, durations as `768h`/`1m30s`,
 * and `-format=json` printing what the server sent, indented by two spaces.
 */

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `-format`, else `LEASEHOLD_FORMAT`/`VAULT_FORMAT`, else `table`. Returns undefined for an unknown name. */
export function resolveFormat(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): OutputFormat | undefined {
  const raw = (flag || env.LEASEHOLD_FORMAT || env.VAULT_FORMAT || "table").toLowerCase();
  return (OUTPUT_FORMATS as readonly string[]).includes(raw) ? (raw as OutputFormat) : undefined;
}

/** Columns padded to their widest cell and glued by four spaces (Vault uses columnize so). */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + " ".repeat(widths[i] - [...cell].length)))
        .join("    ")
        .trimEnd(),
    )
    .join("\n")
    .concat("\n");
}

/** A table with a header row and a dashed rule under it; empty strings print as `n/a`. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const rule = header.map((h) => "-".repeat([...h].length));
  return formatColumns([header, rule, ...rows.map((r) => r.map((c) => (c === "" ? "n/a" : c)))]);
}

/** The `Key`/`Value` table; keys that name a duration (`ttl`, `*_period`, ...) print humanised. */
export function formatKeyValueTable(entries: readonly (readonly [string, unknown])[]): string {
  return formatTable(
    ["Key", "Value"],
    entries.map(([k, v]) => [k, looksLikeDuration(k) && isSeconds(v) ? humanDuration(Number(v)) : formatValue(v)]),
  );
}

export function formatList(keys: readonly string[], header = "Keys"): string {
  return formatTable([header], keys.map((k) => [k]));
}

export function formatJson(value: unknown): string {
  return `${JSON.stringify(value ?? null, null, 2)}\n`;
}

export function formatYaml(value: unknown): string {
  return toYaml(value ?? null);
}

/** Structured output for `json` and `yaml`. */
export function formatStructured(value: unknown, format: Exclude<OutputFormat, "table">): string {
  return format === "json" ? formatJson(value) : formatYaml(value);
}

/** Renders a value as Go's `%v` does for decoded JSON: `[a b]`, `map[k:v]`, `<nil>`. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (Array.isArray(value)) return `[${value.map(formatValue).join(" ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, v]) => `${k}:${formatValue(v)}`).join(" ")}]`;
  }
  return String(value);
}

/** Vault's `humanDuration`: Go's `time.Duration` string without zero minutes/seconds (`768h`, `1h1m`, `1m30s`). */
export function humanDuration(seconds: number): string {
  const total = Math.trunc(seconds);
  if (total === 0) return "0s";
  const sign = total < 0 ? "-" : "";
  const abs = Math.abs(total);
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  let out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
  if (out.endsWith("m0s")) out = out.slice(0, -2);
  out = out.replace(/h0m/, "h");
  return sign + out;
}

/** Vault humanises these data keys in tables. */
export function looksLikeDuration(key: string): boolean {
  return ["period", "ttl", "duration"].some((suffix) => key === suffix || key.endsWith(suffix)) || key === "lease_max" || key === "ttl_max";
}

function isSeconds(v: unknown): boolean {
  return (typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && /^-?\d+$/.test(v));
}

/**
 * Some answers are not enveloped (`sys/health`, `sys/seal-status`, `sys/leader`); their top-level
 * fields are shown as the data, so `leasehold read sys/health` prints a useful table.
 */
export function asEnvelope(body: unknown): VaultResponse<unknown> {
  const b = body as Partial<VaultResponse<unknown>> | null | undefined;
  if (b && typeof b === "object" && !Array.isArray(b) && ("data" in b || "auth" in b || "request_id" in b)) return b as VaultResponse<unknown>;
  return { request_id: "", lease_id: "", renewable: false, lease_duration: 0, data: body ?? null, wrap_info: null, warnings: null, auth: null };
}

/**
 * The rows the `vault` CLI shows for a secret, in its order: lease (or `refresh_interval` for
 * lease-less data such as KV), then the token of an `auth` block, then wrapping info, then the
 * data keys sorted. Values are raw so `-field` can print them unformatted.
 */
export function secretEntries(resp: VaultResponse<unknown>): [string, unknown][] {
  const rows: [string, unknown][] = [];
  if (resp.lease_duration > 0) {
    if (resp.lease_id) {
      rows.push(["lease_id", resp.lease_id], ["lease_duration", resp.lease_duration], ["lease_renewable", resp.renewable]);
    } else {
      rows.push(["refresh_interval", resp.lease_duration]);
    }
  }
  const auth = resp.auth;
  if (auth) {
    rows.push(
      ["token", auth.client_token],
      ["token_accessor", auth.accessor],
      ["token_duration", auth.lease_duration === 0 ? "∞" : auth.lease_duration],
      ["token_renewable", auth.renewable],
      ["token_policies", auth.token_policies ?? []],
      ["identity_policies", auth.identity_policies ?? []],
      ["policies", auth.policies ?? []],
    );
    for (const [k, v] of sortedEntries(auth.metadata ?? {})) rows.push([`token_meta_${k}`, v]);
  }
  const wrap = resp.wrap_info;
  if (wrap) {
    rows.push(
      ["wrapping_token:", wrap.token],
      ["wrapping_accessor:", wrap.accessor],
      ["wrapping_token_ttl:", wrap.ttl],
      ["wrapping_token_creation_time:", wrap.creation_time],
      ["wrapping_token_creation_path:", wrap.creation_path],
    );
    if (wrap.wrapped_accessor) rows.push(["wrapped_accessor:", wrap.wrapped_accessor]);
  }
  const data = resp.data;
  if (data && typeof data === "object" && !Array.isArray(data)) rows.push(...sortedEntries(data as Record<string, unknown>));
  return rows;
}

/** Like secretEntries, with the `_duration` rows humanised as Vault prints them. */
export function formatSecretTable(resp: VaultResponse<unknown>): string {
  const rows = secretEntries(resp).map(([k, v]): [string, unknown] =>
    (k === "lease_duration" || k === "refresh_interval" || k === "token_duration") && typeof v === "number" ? [k, humanDuration(v)] : [k, v],
  );
  const warnings = formatWarnings(resp.warnings);
  return (warnings ? `${warnings}\n` : "") + formatKeyValueTable(rows);
}

export function formatWarnings(warnings: readonly string[] | null | undefined): string {
  if (!warnings || warnings.length === 0) return "";
  return `WARNING! The following warnings were returned from the server:\n\n${warnings.map((w) => `  * ${w}`).join("\n\n")}\n`;
}

/**
 * A single field's raw value, as `-field=NAME` prints it: strings verbatim, everything else as
 * `%v`; a trailing newline only for a terminal, so `$(...)` and redirects get the exact value.
 */
export function formatField(value: unknown, isTerminal: boolean): string {
  const text = typeof value === "string" ? value : formatValue(value);
  return isTerminal ? `${text}\n` : text;
}

export function sortedEntries(obj: Record<string, unknown>): [string, unknown][] {
  return Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
