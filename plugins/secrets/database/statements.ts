import { z } from "zod";

/**
 * Splits SQL text on top-level `;`, leaving semicolons inside quotes, dollar-quoted bodies
 * (`DO $$ ... ; ... $$`) and comments alone (Vault splits naively and breaks such bodies).
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  const skipQuoted = (q: string) => {
    i++;
    while (i < n) {
      if (sql[i] === q && sql[i + 1] === q) i += 2;
      else if (sql[i] === q) {
        i++;
        return;
      } else i++;
    }
  };
  while (i < n) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === "`") skipQuoted(c);
    else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "$" && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? "")) {
      const m = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/y;
      m.lastIndex = i;
      const tag = m.exec(sql);
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
      } else i++;
    } else if (c === ";") {
      out.push(sql.slice(start, i));
      i++;
      start = i;
    } else i++;
  }
  out.push(sql.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== "");
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Base64 text that decodes to readable UTF-8 (SQL never looks like that: it has spaces). */
function decodeBase64(s: string): string | undefined {
  const t = s.trim();
  if (t.length < 8 || t.length % 4 !== 0 || !BASE64.test(t)) return undefined;
  const decoded = Buffer.from(t, "base64").toString("utf8");
  // eslint-disable-next-line no-control-regex -- binary garbage is not SQL
  if (decoded.includes("\uFFFD") || /[\u0000-\u0008\u000e-\u001f]/.test(decoded)) return undefined;
  return decoded;
}

/**
 * Statements as Vault accepts them: a JSON list, or a string that is a `;`-separated list, a JSON
 * array, or base64 of either. Each list entry is kept whole (it may hold several statements).
 */
export function parseStatements(input: string | string[]): string[] {
  if (Array.isArray(input)) return input.map((s) => s.trim()).filter((s) => s !== "");
  const text = decodeBase64(input) ?? input;
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) return parseStatements(parsed as string[]);
    } catch {
      // not JSON: SQL that starts with '[' is split like any other
    }
  }
  return splitStatements(text);
}

/** zod field for statement lists. */
export const zStatements = z.union([z.string(), z.array(z.string())]).transform(parseStatements);
