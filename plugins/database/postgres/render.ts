import pg from "pg";
import { UserError } from "../../../src/sdk/index.js";

/** Values a statement template may use. `username` is an alias of `name`, as in Vault. */
export interface StatementValues {
  name?: string;
  password?: string;
  expiration?: string;
}

type Key = "name" | "password" | "expiration";

const PLACEHOLDER = /\{\{\s*(name|username|password|expiration)\s*\}\}/y;

function placeholderAt(sql: string, i: number): { key: Key; end: number } | undefined {
  PLACEHOLDER.lastIndex = i;
  const m = PLACEHOLDER.exec(sql);
  if (!m) return undefined;
  return { key: m[1] === "username" ? "name" : (m[1] as Key), end: PLACEHOLDER.lastIndex };
}

function valueOf(values: StatementValues, key: Key): string {
  const v = values[key];
  if (v === undefined) throw new UserError(`statement uses {{${key}}}, which is not available here`);
  // PostgreSQL strings cannot hold NUL, and a quoted value must not be cut short by one.
  if (v.includes("\0")) throw new UserError(`the value of {{${key}}} contains a NUL character`);
  return v;
}

const isWordChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

/**
 * Renders a statement template for PostgreSQL. Values are quoted for the place they land in, so no
 * request data is ever concatenated into SQL unquoted:
 *   - `"{{name}}"` and a bare `{{name}}` become an identifier (`pg.escapeIdentifier`);
 *   - `'{{password}}'`, `'{{expiration}}'`, `'{{name}}'` and bare `{{password}}`/`{{expiration}}`
 *     become a literal (`pg.escapeLiteral`);
 *   - a placeholder inside a longer quoted string or identifier is escaped for that string;
 *   - inside a dollar-quoted body (`DO $$ ... $$`) the same rules apply to the body, and a value
 *     that would close the body is refused.
 * Placeholders in comments are left alone.
 */
export function renderStatement(sql: string, values: StatementValues): string {
  let out = "";
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (c === "{") {
      const p = placeholderAt(sql, i);
      if (p) {
        const v = valueOf(values, p.key);
        out += p.key === "name" ? pg.escapeIdentifier(v) : pg.escapeLiteral(v);
        i = p.end;
        continue;
      }
    }
    if (c === "'") {
      const escapeString = (sql[i - 1] === "E" || sql[i - 1] === "e") && !isWordChar(sql[i - 2]);
      const whole = placeholderAt(sql, i + 1);
      if (whole && sql[whole.end] === "'" && !escapeString) {
        out += pg.escapeLiteral(valueOf(values, whole.key));
        i = whole.end + 1;
        continue;
      }
      // A literal: copy it, escaping placeholders for the inside of the string.
      out += "'";
      i++;
      while (i < n) {
        if (sql[i] === "'" && sql[i + 1] === "'") {
          out += "''";
          i += 2;
          continue;
        }
        if (escapeString && sql[i] === "\\" && i + 1 < n) {
          out += sql[i] + sql[i + 1];
          i += 2;
          continue;
        }
        if (sql[i] === "'") break;
        const p = sql[i] === "{" ? placeholderAt(sql, i) : undefined;
        if (p) {
          let v = valueOf(values, p.key).replace(/'/g, "''");
          if (escapeString) v = v.replace(/\\/g, "\\\\");
          out += v;
          i = p.end;
          continue;
        }
        out += sql[i++];
      }
      if (i < n) out += sql[i++];
      continue;
    }
    if (c === '"') {
      const whole = placeholderAt(sql, i + 1);
      if (whole && sql[whole.end] === '"') {
        out += pg.escapeIdentifier(valueOf(values, whole.key));
        i = whole.end + 1;
        continue;
      }
      out += '"';
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') {
          out += '""';
          i += 2;
          continue;
        }
        if (sql[i] === '"') break;
        const p = sql[i] === "{" ? placeholderAt(sql, i) : undefined;
        if (p) {
          out += valueOf(values, p.key).replace(/"/g, '""');
          i = p.end;
          continue;
        }
        out += sql[i++];
      }
      if (i < n) out += sql[i++];
      continue;
    }
    if (c === "$" && !isWordChar(sql[i - 1])) {
      const m = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
      m.lastIndex = i;
      const tag = m.exec(sql);
      if (tag) {
        const delimiter = tag[0];
        const bodyStart = i + delimiter.length;
        const close = sql.indexOf(delimiter, bodyStart);
        const bodyEnd = close < 0 ? n : close;
        const body = renderStatement(sql.slice(bodyStart, bodyEnd), values);
        if (body.includes(delimiter)) throw new UserError(`a value substituted into a ${delimiter}-quoted body would end it early`);
        out += delimiter + body + (close < 0 ? "" : delimiter);
        i = close < 0 ? n : close + delimiter.length;
        continue;
      }
    }
    if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      const stop = end < 0 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      // PostgreSQL block comments nest.
      let depth = 0;
      let j = i;
      while (j < n) {
        if (sql[j] === "/" && sql[j + 1] === "*") {
          depth++;
          j += 2;
        } else if (sql[j] === "*" && sql[j + 1] === "/") {
          depth--;
          j += 2;
          if (depth === 0) break;
        } else j++;
      }
      out += sql.slice(i, j);
      i = j;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** `{{expiration}}` as Vault formats it (Go layout `2006-01-02 15:04:05-0700`), in UTC. */
export function formatExpiration(d: Date): string {
  const p = (x: number) => String(x).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}+0000`;
}

/**
 * Joins rendered statements into one simple-protocol query. PostgreSQL runs the statements of one
 * query message as a single implicit transaction: all of them or none. A newline before each `;`
 * keeps a trailing `-- comment` from swallowing the separator.
 */
export function joinStatements(statements: string[]): string {
  return statements.map((s) => s.trim()).filter((s) => s !== "").join("\n;\n");
}
