/**
 * Go's ways of turning values into text, as templates rendered by Vault Agent produce them:
 * `fmt`'s `%v` (what an action prints), `strconv.Quote` (`%q`), `encoding/json` (`toJSON`,
 * `toJSONPretty`: sorted keys, `<>&` escaped) and the `printf` subset.
 *
 * Numbers print as JavaScript writes them, which matches what consul-template prints for the
 * numbers in Vault responses (it keeps them as the JSON text).
 */
import { PkiCertView, SecretView, goTypeName, isPlainObject, sortedKeys } from "./values.js";

export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** `fmt.Sprint(v)`: `%v`. Nil values print `<nil>`. */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatNumber(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(" ")}]`;
  if (v instanceof SecretView) {
    const r = v.result;
    return `&{ ${r.lease_id ?? ""} ${formatNumber(r.lease_duration ?? 0)} ${String(r.renewable ?? false)} ${formatValue(v.field("Data").value)} map[] [] <nil> <nil>}`;
  }
  if (v instanceof PkiCertView) return `{${v.Cert} ${v.Key} ${v.CA}}`;
  if (isPlainObject(v)) return `map[${sortedKeys(v).map((k) => `${k}:${formatValue(v[k])}`).join(" ")}]`;
  return String(v);
}

/**
 * What `{{ pipeline }}` writes: nil and missing values print `<no value>`, and a secret prints
 * without the `&` of its pointer (Go dereferences pointers before printing an action).
 */
export function printAction(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (v instanceof SecretView) return formatValue(v).slice(1);
  return formatValue(v);
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's `strconv.Quote`. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += "\\ufffd";
    else if (PRINTABLE.test(ch)) out += ch;
    else if (ch === "\x07") out += "\\a";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\v") out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += "\\x" + cp.toString(16).padStart(2, "0");
    else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
    else out += "\\U" + cp.toString(16).padStart(8, "0");
  }
  return out + '"';
}

/** A JSON string as Go's encoding/json writes it (HTML-safe: `<`, `>`, `&` escaped). */
function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const code = s.charCodeAt(i);
    if (c === '"' || c === "\\") out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "\b") out += "\\b";
    else if (c === "\f") out += "\\f";
    else if (code < 0x20 || c === "<" || c === ">" || c === "&" || code === 0x2028 || code === 0x2029) out += "\\u" + code.toString(16).padStart(4, "0");
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += c + s[i + 1];
      i++;
    } else if (code >= 0xd800 && code <= 0xdfff) out += "\\ufffd";
    else out += c;
  }
  return out + '"';
}

/** Go's `json.Marshal` (indent "") or `json.MarshalIndent(v, "", indent)`. Throws on NaN and infinities. */
export function toGoJson(v: unknown, indent = ""): string {
  const enc = (x: unknown, depth: number): string => {
    const nl = indent ? "\n" + indent.repeat(depth + 1) : "";
    const close = indent ? "\n" + indent.repeat(depth) : "";
    const sep = indent ? ": " : ":";
    const obj = (entries: [string, unknown][]): string =>
      entries.length === 0 ? "{}" : `{${entries.map(([k, val]) => `${nl}${jsonString(k)}${sep}${enc(val, depth + 1)}`).join(",")}${close}}`;
    if (x === undefined || x === null) return "null";
    if (typeof x === "string") return jsonString(x);
    if (typeof x === "number") {
      if (!Number.isFinite(x)) throw new Error(`json: unsupported value: ${formatNumber(x)}`);
      return JSON.stringify(x);
    }
    if (typeof x === "boolean") return String(x);
    if (Array.isArray(x)) return x.length === 0 ? "[]" : `[${x.map((el) => `${nl}${enc(el, depth + 1)}`).join(",")}${close}]`;
    if (x instanceof SecretView) {
      // consul-template's Secret struct, in its field order; leasehold leaves the others empty.
      const f = (name: string): unknown => x.field(name).value;
      return obj([["RequestID", ""], ["LeaseID", f("LeaseID")], ["LeaseDuration", f("LeaseDuration")], ["Renewable", f("Renewable")], ["Data", f("Data")], ["Metadata", null], ["Warnings", null], ["Auth", null], ["WrapInfo", null]]);
    }
    if (x instanceof PkiCertView) return obj([["Cert", x.Cert], ["Key", x.Key], ["CA", x.CA], ["CAChain", x.CAChain]]);
    if (isPlainObject(x)) return obj(sortedKeys(x).map((k) => [k, x[k]]));
    return jsonString(String(x));
  };
  return enc(v, 0);
}

/** One piece of a printf format: literal text or a verb. */
export type FormatPiece = { text: string } | { verb: "s" | "d" | "v" | "q" };

/**
 * Splits a printf format into text and verbs (`%s %d %v %q`, and `%%`). Returns a message for
 * anything else: flags, width and precision, other verbs, a trailing `%`.
 */
export function scanFormat(format: string): FormatPiece[] | string {
  const pieces: FormatPiece[] = [];
  let text = "";
  for (let i = 0; i < format.length; i++) {
    const c = format[i];
    if (c !== "%") {
      text += c;
      continue;
    }
    const verb = format[i + 1];
    if (verb === undefined) return "printf: the format ends with a lone %";
    i++;
    if (verb === "%") {
      text += "%";
      continue;
    }
    if (verb === "s" || verb === "d" || verb === "v" || verb === "q") {
      if (text) pieces.push({ text });
      text = "";
      pieces.push({ verb });
      continue;
    }
    if (/[a-zA-Z]/.test(verb)) return `printf: verb %${verb} is not supported (supported: %s %d %v %q %%)`;
    let j = i;
    while (j < format.length && !/[a-zA-Z%]/.test(format[j])) j++;
    return `printf: flags, width and precision are not supported (in ${JSON.stringify(format.slice(i - 1, j + 1))}); supported: %s %d %v %q %%`;
  }
  if (text) pieces.push({ text });
  return pieces;
}

function badVerb(verb: string, v: unknown): string {
  return v === undefined || v === null ? `%!${verb}(<nil>)` : `%!${verb}(${goTypeName(v)}=${formatValue(v)})`;
}

function formatVerb(verb: "s" | "d" | "v" | "q", v: unknown): string {
  switch (verb) {
    case "v":
      return formatValue(v);
    case "s":
      return v === undefined || v === null ? badVerb("s", v) : formatValue(v);
    case "d":
      if (typeof v === "number" && Number.isInteger(v)) return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
      if (typeof v === "string" && /^[+-]?\d+$/.test(v)) return v;
      return badVerb("d", v);
    case "q":
      if (typeof v === "string") return goQuote(v);
      if (typeof v === "number") return goQuote(formatNumber(v));
      if (Array.isArray(v) && v.every((el) => typeof el === "string" || typeof el === "number")) return `[${v.map((el) => formatVerb("q", el)).join(" ")}]`;
      return badVerb("q", v);
  }
}

/** `fmt.Sprintf` for the pieces of `scanFormat`: missing arguments print `%!s(MISSING)`, extra ones `%!(EXTRA type=value)`. */
export function sprintf(pieces: FormatPiece[], args: unknown[]): string {
  let out = "";
  let argIndex = 0;
  for (const p of pieces) {
    if ("text" in p) {
      out += p.text;
    } else if (argIndex >= args.length) {
      out += `%!${p.verb}(MISSING)`;
    } else {
      out += formatVerb(p.verb, args[argIndex++]);
    }
  }
  if (argIndex < args.length) {
    out += `%!(EXTRA ${args
      .slice(argIndex)
      .map((a) => (a === undefined || a === null ? "<nil>" : `${goTypeName(a)}=${formatValue(a)}`))
      .join(", ")})`;
  }
  return out;
}
