import { z } from "zod";
import { parseDuration } from "./durations.js";

/**
 * zod field types with Vault's lenient input rules: form bodies and query strings carry strings,
 * so booleans and integers arrive as `"true"` or `"42"`; lists arrive as `"a,b"` or `["a","b"]`.
 */

/** Duration in whole seconds: integer seconds or a Go duration string. */
export const zDuration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message.replace(/^duration: /, "") });
    return z.NEVER;
  }
});

/** Go's `strconv.ParseBool`, the forms Vault accepts in query flags such as `?list=`; undefined for anything else. */
export function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** Boolean accepting `true/false`, `"true"/"false"`, `1/0`, `"1"/"0"`. */
export const zBool = z.union([z.boolean(), z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === "boolean") return v;
  const s = String(v).toLowerCase();
  if (s === "true" || s === "1" || s === "t") return true;
  if (s === "false" || s === "0" || s === "f" || s === "") return false;
  ctx.addIssue({ code: "custom", message: `expected a boolean, got ${JSON.stringify(v)}` });
  return z.NEVER;
});

/** Integer accepting numbers and numeric strings. */
export const zInt = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === "number" ? v : Number(v.trim());
  if (!Number.isInteger(n) || (typeof v === "string" && v.trim() === "")) {
    ctx.addIssue({ code: "custom", message: `expected an integer, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

/** Vault's comma-string-slice: `"a,b"` or `["a","b"]`, trimmed, empty entries dropped. */
export const zCommaList = z.union([z.string(), z.array(z.union([z.string(), z.number()]))]).transform((v) =>
  (Array.isArray(v) ? v.map(String) : v.split(",")).map((s) => s.trim()).filter((s) => s !== ""),
);

/** A map of string to string (metadata); accepts a JSON object or `"k=v,k2=v2"`. */
export const zStringMap = z.union([z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])), z.string()]).transform((v, ctx) => {
  if (typeof v !== "string") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  const out: Record<string, string> = {};
  for (const part of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf("=");
    if (i <= 0) {
      ctx.addIssue({ code: "custom", message: `expected key=value, got ${JSON.stringify(part)}` });
      return z.NEVER;
    }
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
});

/** Names of roles, configs, policies: Vault-safe characters and a sane length. */
export const zName = z
  .string()
  .min(1, "must not be empty")
  .max(128, "must be at most 128 characters")
  .regex(/^[A-Za-z0-9_.-]+$/, "may contain only letters, digits, '_', '-' and '.'");

/**
 * Request bodies that are neither JSON nor form-encoded (`application/ocsp-request`, any other
 * `application/*` type) reach the handler as `data[RAW_BODY_FIELD] = { content_type, base64 }`:
 * the media type without parameters and the body bytes in base64. Declare it with `zRawBody`.
 */
export const RAW_BODY_FIELD = "_raw_body";
export const zRawBody = z.object({ content_type: z.string(), base64: z.string() });
