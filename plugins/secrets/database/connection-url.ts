/**
 * Passwords written into a config's `connection_url`, found the way a driver finds them, so that
 * reading the config never shows one (Vault redacts the URL on read the same way) and rotate-root
 * knows when the root password is not the `password` field.
 *
 * A URL's credentials end at the last `@` of its authority (the text after `://` up to the first
 * `/`, `?` or `#`), as in the WHATWG URL parser node-postgres uses: a password holding `@` or `:`
 * is all password, not user and host. Query parameters named `password` or `sslpassword` (node-postgres
 * reads every query parameter as a connection setting) are passwords too. A string that is not a
 * URL is read as a key=value DSN (`host=db user=app password='...'`).
 *
 * `{{password}}` is a template, not a password: it is shown as written.
 */

const MASK = "*****";
const TEMPLATE = /^\{\{\s*password\s*\}\}$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const PASSWORD_KEY = /^(ssl)?password$/i;
// key = 'quoted value with \' escapes' | bare-value
const DSN_PASSWORD = /(^|\s)((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)/gi;

interface Credential {
  /** Where the secret text starts and ends in the string. */
  start: number;
  end: number;
}

function isTemplate(text: string): boolean {
  return TEMPLATE.test(text.trim());
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/** The spans of literal passwords in a URL or DSN (templates excluded). */
function passwordSpans(raw: string): Credential[] {
  const scheme = SCHEME.exec(raw);
  if (!scheme) {
    const spans: Credential[] = [];
    for (const m of raw.matchAll(DSN_PASSWORD)) {
      const value = m[3];
      if (value === "" || value === "''" || isTemplate(value.replace(/^'|'$/g, ""))) continue;
      const start = m.index + m[1].length + m[2].length;
      spans.push({ start, end: start + value.length });
    }
    return spans;
  }
  const afterScheme = scheme[0].length;
  let parses = true;
  try {
    new URL(raw);
  } catch {
    parses = false;
  }
  const rest = raw.slice(afterScheme);
  // A URL no parser accepts is never sent to a database, but it may still hold a password: then
  // everything up to the last `@` counts as credentials (masking too much rather than too little).
  const authorityEnd = parses ? (rest.search(/[/?#]/) < 0 ? rest.length : rest.search(/[/?#]/)) : rest.length;
  const spans: Credential[] = [];
  const at = rest.slice(0, authorityEnd).lastIndexOf("@");
  if (at >= 0) {
    const colon = rest.indexOf(":");
    if (colon >= 0 && colon < at) {
      const pw = rest.slice(colon + 1, at);
      if (pw !== "" && !isTemplate(decode(pw))) spans.push({ start: afterScheme + colon + 1, end: afterScheme + at });
    }
  }
  if (parses) {
    const q = rest.indexOf("?", authorityEnd);
    if (q >= 0) {
      const hash = rest.indexOf("#", q);
      const queryEnd = hash < 0 ? rest.length : hash;
      let pos = q + 1;
      for (const pair of rest.slice(q + 1, queryEnd).split("&")) {
        const eq = pair.indexOf("=");
        if (eq >= 0 && PASSWORD_KEY.test(decode(pair.slice(0, eq)))) {
          const value = pair.slice(eq + 1);
          if (value !== "" && !isTemplate(decode(value))) spans.push({ start: afterScheme + pos + eq + 1, end: afterScheme + pos + pair.length });
        }
        pos += pair.length + 1;
      }
    }
  }
  return spans;
}

/** The URL or DSN with each literal password replaced by `*****`; user, host, port, database and options stay readable. */
export function redactConnectionUrl(raw: string): string {
  let out = raw;
  for (const s of passwordSpans(raw).sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + MASK + out.slice(s.end);
  return out;
}

/** Whether the URL or DSN carries a password of its own (not `{{password}}`). */
export function hasLiteralPassword(raw: string): boolean {
  return passwordSpans(raw).length > 0;
}
