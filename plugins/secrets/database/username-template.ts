import { createHash, randomBytes, randomUUID } from "node:crypto";
import { UserError } from "../../../src/sdk/index.js";

/**
 * Vault's username templates (a subset of Go's text/template with Vault's functions), e.g.
 * `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`.
 * Supported: text, `{{ }}` actions with `{{-`/`-}}` trimming, pipelines, parentheses, string and
 * integer literals, the fields `.DisplayName` and `.RoleName`, and the functions `printf`
 * (%s %d %v %%), `truncate`, `truncate_sha256`, `uppercase`, `lowercase`, `replace`, `sha256`,
 * `base64`, `random`, `unix_time`, `unix_time_millis`, `timestamp`, `uuid`.
 */
export interface UsernameFields {
  DisplayName: string;
  RoleName: string;
}

type Token =
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "field"; v: string }
  | { t: "ident"; v: string }
  | { t: "pipe" }
  | { t: "open" }
  | { t: "close" };

type Node = { k: "lit"; v: string | number } | { k: "field"; v: string } | { k: "call"; fn: string; args: Node[] } | { k: "pipe"; cmds: Node[][] };

function fail(msg: string): never {
  throw new UserError(`username_template: ${msg}`);
}

/**
 * Limits on what a template may cost. A template has no loops, but `replace` and `printf` can each
 * multiply a string's length, so a short pipeline of them builds strings exponentially long (seconds
 * of CPU, then a crash). Usernames are at most a few dozen bytes; these bounds are far above any
 * real template and far below anything slow.
 */
export const TEMPLATE_LIMITS = {
  /** Characters of template source. */
  sourceLength: 4096,
  /** Nested parentheses. */
  depth: 32,
  /** Characters of any one value a function returns. */
  valueLength: 64 * 1024,
  /** Characters all function calls of one render return together (the evaluation's work). */
  totalLength: 1024 * 1024,
};

/** Work done by one render, checked after every function call. */
class RenderBudget {
  private left = TEMPLATE_LIMITS.totalLength;

  /** Throws when a value of `length` characters is over the limit (before it is built, where it can be sized). */
  checkLength(length: number, fn: string): void {
    if (length > TEMPLATE_LIMITS.valueLength) fail(`${fn} would build a value of ${length} characters; the limit is ${TEMPLATE_LIMITS.valueLength}`);
  }

  /** Counts a value a function returned against both limits. */
  reserve(length: number, fn: string): void {
    this.checkLength(length, fn);
    this.left -= length;
    if (this.left < 0) fail(`the template builds more than ${TEMPLATE_LIMITS.totalLength} characters in all`);
  }
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "|") {
      out.push({ t: "pipe" });
      i++;
    } else if (c === "(") {
      out.push({ t: "open" });
      i++;
    } else if (c === ")") {
      out.push({ t: "close" });
      i++;
    } else if (c === '"') {
      let v = "";
      i++;
      for (;;) {
        if (i >= src.length) fail("unterminated string");
        const d = src[i++];
        if (d === '"') break;
        if (d === "\\") {
          const e = src[i++];
          v += e === "n" ? "\n" : e === "t" ? "\t" : e;
        } else v += d;
      }
      out.push({ t: "str", v });
    } else if (c === "`") {
      const end = src.indexOf("`", i + 1);
      if (end < 0) fail("unterminated raw string");
      out.push({ t: "str", v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (/[-0-9]/.test(c)) {
      const m = /-?\d+/y;
      m.lastIndex = i;
      const r = m.exec(src);
      if (!r) fail(`unexpected ${JSON.stringify(c)}`);
      out.push({ t: "num", v: Number(r[0]) });
      i = m.lastIndex;
    } else if (c === ".") {
      const m = /\.([A-Za-z_][A-Za-z0-9_]*)/y;
      m.lastIndex = i;
      const r = m.exec(src);
      if (!r) fail("a bare '.' is not supported: use .DisplayName or .RoleName");
      out.push({ t: "field", v: r[1] });
      i = m.lastIndex;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /[A-Za-z_][A-Za-z0-9_]*/y;
      m.lastIndex = i;
      const r = m.exec(src)!;
      out.push({ t: "ident", v: r[0] });
      i = m.lastIndex;
    } else fail(`unexpected ${JSON.stringify(c)}`);
  }
  return out;
}

function parsePipeline(tokens: Token[], pos: { i: number }, depth: number): Node {
  const nested = depth > 0;
  if (depth > TEMPLATE_LIMITS.depth) fail(`parentheses nested deeper than ${TEMPLATE_LIMITS.depth}`);
  const cmds: Node[][] = [[]];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i];
    if (tok.t === "close") {
      if (!nested) fail("unexpected ')'");
      break;
    }
    pos.i++;
    if (tok.t === "pipe") {
      if (!cmds[cmds.length - 1].length) fail("empty command before '|'");
      cmds.push([]);
      continue;
    }
    const cmd = cmds[cmds.length - 1];
    if (tok.t === "open") {
      cmd.push(parsePipeline(tokens, pos, depth + 1));
      if (tokens[pos.i]?.t !== "close") fail("missing ')'");
      pos.i++;
    } else if (tok.t === "str" || tok.t === "num") cmd.push({ k: "lit", v: tok.v });
    else if (tok.t === "field") cmd.push({ k: "field", v: tok.v });
    else cmd.push({ k: "call", fn: tok.v, args: [] });
  }
  if (!cmds[cmds.length - 1].length) fail("empty command");
  return { k: "pipe", cmds };
}

const FUNCTIONS: Record<string, { arity: number | "variadic"; fn: (args: unknown[], budget: RenderBudget) => string }> = {
  printf: { arity: "variadic", fn: ([format, ...rest], budget) => printf(str(format, "printf"), rest, budget) },
  truncate: { arity: 2, fn: ([n, s]) => [...str(s, "truncate")].slice(0, positive(n, "truncate")).join("") },
  truncate_sha256: {
    arity: 2,
    fn: ([n, s]) => {
      const max = positive(n, "truncate_sha256");
      const v = str(s, "truncate_sha256");
      if (max <= 8) fail("truncate_sha256 needs a length above 8");
      return v.length <= max ? v : v.slice(0, max - 8) + createHash("sha256").update(v).digest("hex").slice(0, 8);
    },
  },
  uppercase: { arity: 1, fn: ([s]) => str(s, "uppercase").toUpperCase() },
  lowercase: { arity: 1, fn: ([s]) => str(s, "lowercase").toLowerCase() },
  replace: {
    arity: 3,
    fn: ([from, to, s], budget) => {
      const pieces = str(s, "replace").split(str(from, "replace"));
      const replacement = str(to, "replace");
      // Sized before it is built: each match can grow the string by the whole replacement.
      const length = pieces.reduce((n, p) => n + p.length, 0) + (pieces.length - 1) * replacement.length;
      budget.checkLength(length, "replace");
      return pieces.join(replacement);
    },
  },
  sha256: { arity: 1, fn: ([s]) => createHash("sha256").update(str(s, "sha256")).digest("hex") },
  base64: { arity: 1, fn: ([s]) => Buffer.from(str(s, "base64"), "utf8").toString("base64") },
  random: { arity: 1, fn: ([n]) => randomAlphanumeric(positive(n, "random")) },
  unix_time: { arity: 0, fn: () => String(Math.floor(Date.now() / 1000)) },
  unix_time_millis: { arity: 0, fn: () => String(Date.now()) },
  timestamp: { arity: 1, fn: ([layout]) => goTimestamp(str(layout, "timestamp"), new Date()) },
  uuid: { arity: 0, fn: () => randomUUID() },
};

function str(v: unknown, fn: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  fail(`${fn}: expected a string`);
}

function positive(v: unknown, fn: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n <= 0) fail(`${fn}: expected a positive integer length`);
  return n;
}

function printf(format: string, args: unknown[], budget: RenderBudget): string {
  let k = 0;
  let length = format.length;
  return format.replace(/%([%sdvq])/g, (_, verb: string) => {
    if (verb === "%") return "%";
    if (k >= args.length) return `%!${verb}(MISSING)`;
    const a = args[k++];
    const out = verb === "q" ? JSON.stringify(String(a)) : String(a);
    // Checked as it grows, so a format of many verbs stops at the limit instead of after.
    length += out.length;
    budget.checkLength(length, "printf");
    return out;
  });
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomAlphanumeric(n: number): string {
  if (n > 1024) fail("random: at most 1024 characters");
  let out = "";
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b >= 248) continue; // 248 = 4 * 62: keeps the choice uniform
      out += ALNUM[b % 62];
      if (out.length === n) break;
    }
  }
  return out;
}

/** Go's reference-time layouts, for `timestamp`; always UTC. */
function goTimestamp(layout: string, d: Date): string {
  const p = (x: number, w = 2) => String(x).padStart(w, "0");
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const parts: [string, () => string][] = [
    ["2006", () => String(d.getUTCFullYear())],
    ["Z07:00", () => "Z"],
    ["-07:00", () => "+00:00"],
    ["-0700", () => "+0000"],
    [".000000", () => `.${p(d.getUTCMilliseconds(), 3)}000`],
    [".000", () => `.${p(d.getUTCMilliseconds(), 3)}`],
    ["MST", () => "UTC"],
    ["Jan", () => months[d.getUTCMonth()]],
    ["Mon", () => days[d.getUTCDay()]],
    ["01", () => p(d.getUTCMonth() + 1)],
    ["02", () => p(d.getUTCDate())],
    ["15", () => p(d.getUTCHours())],
    ["04", () => p(d.getUTCMinutes())],
    ["05", () => p(d.getUTCSeconds())],
    ["06", () => p(d.getUTCFullYear() % 100)],
  ];
  let out = "";
  let i = 0;
  outer: while (i < layout.length) {
    for (const [token, value] of parts) {
      if (layout.startsWith(token, i)) {
        out += value();
        i += token.length;
        continue outer;
      }
    }
    out += layout[i++];
  }
  return out;
}

function evaluate(node: Node, fields: UsernameFields, budget: RenderBudget): unknown {
  if (node.k === "lit") return node.v;
  if (node.k === "field") {
    if (node.v !== "DisplayName" && node.v !== "RoleName") fail(`unknown field .${node.v} (use .DisplayName or .RoleName)`);
    return fields[node.v];
  }
  if (node.k === "pipe") {
    let piped: unknown;
    node.cmds.forEach((cmd, idx) => {
      const [head, ...rest] = cmd;
      const extra = idx > 0 ? [piped] : [];
      if (head.k === "call") {
        const f = FUNCTIONS[head.fn];
        if (!f) fail(`unknown function ${JSON.stringify(head.fn)}`);
        const args = [...rest.map((n) => evaluate(n, fields, budget)), ...extra];
        if (f.arity !== "variadic" && args.length !== f.arity) fail(`${head.fn} takes ${f.arity} argument(s), got ${args.length}`);
        if (f.arity === "variadic" && args.length === 0) fail(`${head.fn} needs arguments`);
        const out = f.fn(args, budget);
        budget.reserve(out.length, head.fn);
        piped = out;
      } else {
        if (rest.length || extra.length) fail("only a function can take arguments");
        piped = evaluate(head, fields, budget);
      }
    });
    return piped;
  }
  fail("unexpected expression");
}

/** A parsed template: parse once (config write), render per credential. */
export class UsernameTemplate {
  private readonly parts: (string | Node)[] = [];

  constructor(readonly source: string) {
    if (source.length > TEMPLATE_LIMITS.sourceLength) fail(`the template is longer than ${TEMPLATE_LIMITS.sourceLength} characters`);
    let i = 0;
    let trimNext = false;
    while (i < source.length) {
      const open = source.indexOf("{{", i);
      let text = source.slice(i, open < 0 ? source.length : open);
      if (trimNext) text = text.replace(/^\s+/, "");
      trimNext = false;
      if (open < 0) {
        if (text) this.parts.push(text);
        break;
      }
      let start = open + 2;
      if (source[start] === "-" && /\s/.test(source[start + 1] ?? "")) {
        text = text.replace(/\s+$/, "");
        start++;
      }
      if (text) this.parts.push(text);
      const close = source.indexOf("}}", start);
      if (close < 0) fail("unclosed action");
      let body = source.slice(start, close);
      if (/\s-$/.test(body)) {
        body = body.slice(0, -1);
        trimNext = true;
      }
      const tokens = tokenize(body);
      if (!tokens.length) fail("empty action");
      const pos = { i: 0 };
      this.parts.push(parsePipeline(tokens, pos, 0));
      if (pos.i !== tokens.length) fail("unexpected ')'");
      i = close + 2;
    }
  }

  /** Throws UserError (400) for a broken template or one over TEMPLATE_LIMITS. */
  render(fields: UsernameFields): string {
    const budget = new RenderBudget();
    return this.parts.map((p) => (typeof p === "string" ? p : str(evaluate(p, fields, budget), "template"))).join("");
  }
}

/**
 * Display and role names go into usernames: anything but letters, digits, `_`, `-` and `.` becomes
 * `_`, so a display name full of quotes and semicolons yields a plain username.
 */
export function sanitiseNamePart(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateBytes(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, "utf8") <= maxBytes) return s;
  let out = "";
  let bytes = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch, "utf8");
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out;
}

/** Renders a username: sanitised inputs, no control characters, at most `maxBytes`. */
export function makeUsername(template: UsernameTemplate, fields: UsernameFields, maxBytes: number): string {
  const rendered = template.render({ DisplayName: sanitiseNamePart(fields.DisplayName), RoleName: sanitiseNamePart(fields.RoleName) });
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(rendered)) fail("the template produced a username with control characters");
  const name = truncateBytes(rendered.trim(), maxBytes);
  if (!name) fail("the template produced an empty username");
  return name;
}
