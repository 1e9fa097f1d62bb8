/**
 * An HCL1 parser for the subset Vault users write in server configs and ACL policies.
 *
 * We write our own because the npm `hcl2-parser` speaks HCL2: it rejects valid HCL1 (commas
 * between attributes, attributes on one line without separators) and its errors carry no
 * message. Vault's config and policy files are HCL1.
 *
 * Supported: `#`, `//` and `/* *\/` comments; attributes `key = value` (key an identifier or a
 * quoted string); blocks `name "label" ... { ... }` (labels quoted or bare identifiers); optional
 * `,` between items; values: double-quoted strings (escapes `\" \\ \/ \n \t \r \a \b \f \v
 * \uXXXX \UXXXXXXXX`), heredocs `<<EOT` and `<<-EOT`, numbers (integers, floats, exponents,
 * negatives, `0x` hex), `true`/`false`, lists (may span lines, trailing comma allowed) and
 * objects `{ k = v }`.
 * Not supported: `${...}` interpolation (kept as literal text), single-quoted strings, and
 * bare identifiers as values.
 *
 * Output shape (what Vault's HCL1 decoder yields, so an HCL file and its JSON twin decode alike
 * once read through `hclBlocks`): `path "a" { x = 1 }` becomes `{ path: { a: [ { x: 1 } ] } }`.
 * Labels nest as object keys and the innermost value is an array of block bodies, so repeated
 * blocks accumulate; `c { d = 2 }` becomes `{ c: [ { d: 2 } ] }`; attributes are plain values.
 */
import { UserError } from "../sdk/errors.js";

export type HclValue = string | number | boolean | HclValue[] | HclObject;
export interface HclObject {
  [key: string]: HclValue;
}

/** 1-based line and column (columns count UTF-16 code units, tabs count as one). */
export interface HclPosition {
  line: number;
  column: number;
}

/**
 * Where one object or array of the output came from: `start` is its opening token (for a block
 * body or a label level, the block's name), `keys` the position of each key as written (for a
 * label level, the label; for an array, the element, keyed by its index as a string).
 */
export interface HclNodeInfo {
  start: HclPosition;
  keys: Map<string, HclPosition>;
}

export interface HclDocument {
  value: HclObject;
  /** Keyed by the objects and arrays inside `value` (identity), so callers can point at a line. */
  positions: WeakMap<object, HclNodeInfo>;
}

/** Parses HCL1 text into plain values. Syntax errors: `UserError("<sourceName>:<line>:<column>: ...")`. */
export function parseHcl(text: string, sourceName = "input"): HclObject {
  return parseHclWithPositions(text, sourceName).value;
}

/**
 * Like `parseHcl`, plus the position of every key, block and list element, for messages such as
 * `line 7: unknown key "adress" in listener "tcp"`. Look positions up with `positionOf`.
 */
export function parseHclWithPositions(text: string, sourceName = "input"): HclDocument {
  return new Parser(text, sourceName).parseDocument();
}

/**
 * The position of `key` inside `node` (an object or array from `doc.value`), or of `node` itself
 * when `key` is omitted. Undefined for values that did not come from HCL text (JSON input).
 */
export function positionOf(doc: Pick<HclDocument, "positions"> | undefined, node: object, key?: string | number): HclPosition | undefined {
  const info = doc?.positions.get(node);
  if (!info) return undefined;
  return key === undefined ? info.start : info.keys.get(String(key));
}

/**
 * Parses JSON into the same value types (`null` is refused: HCL has no null), for config and
 * policy files written in Vault's JSON form. Errors: `UserError("<sourceName>: invalid JSON: ...")`.
 */
export function parseHclJson(text: string, sourceName = "input"): HclObject {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${sourceName}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(raw)) throw new UserError(`${sourceName}: expected a JSON object at the top level`);
  return fromJson(raw, sourceName, "") as HclObject;
}

function fromJson(v: unknown, sourceName: string, path: string): HclValue {
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map((el, i) => fromJson(el, sourceName, `${path}[${i}]`));
  if (isPlainObject(v)) {
    const out: HclObject = {};
    for (const [k, el] of Object.entries(v)) setOwn(out, k, fromJson(el, sourceName, path ? `${path}.${k}` : k));
    return out;
  }
  throw new UserError(`${sourceName}: ${path || "value"}: null is not allowed`);
}

/** One block read back from a parsed document: its labels and its body. */
export interface HclBlock {
  labels: string[];
  body: HclObject;
}

/**
 * Lists the blocks stored under one key, whatever shape they came in: this parser's output
 * (`{ a: [body, ...] }`) or Vault's JSON forms (`{"a": body}`, `[{"a": body}]`, `{"a": [body]}`).
 * `labelCount` is how many labels the block type takes (`path "x"` → 1). `what` names the block
 * type in errors (`storage`). A value that is not block-shaped throws `UserError`.
 */
export function hclBlocks(value: HclValue | undefined, labelCount: number, what: string): HclBlock[] {
  const out: HclBlock[] = [];
  const walk = (v: HclValue, labels: string[]): void => {
    if (Array.isArray(v)) {
      for (const el of v) walk(el, labels);
      return;
    }
    if (!isPlainObject(v)) {
      const shape = `${what}${' "<label>"'.repeat(labelCount)} { ... }`;
      throw new UserError(`${what}${labels.map((l) => ` ${JSON.stringify(l)}`).join("")}: expected a block such as ${shape}, got ${describeValue(v)}`);
    }
    if (labels.length === labelCount) {
      out.push({ labels, body: v });
      return;
    }
    for (const [label, inner] of Object.entries(v)) walk(inner, [...labels, label]);
  };
  if (value !== undefined) walk(value, []);
  return out;
}

/** A short description of a value's type for error messages. */
export function describeValue(v: HclValue): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Defines an own property even for keys such as `__proto__`, which plain assignment would turn into a prototype change. */
function setOwn(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

type TokenKind = "ident" | "string" | "heredoc" | "number" | "{" | "}" | "[" | "]" | "=" | "," | "eof";

interface Token {
  kind: TokenKind;
  /** Source text of the token (for strings and heredocs: the decoded value). */
  text: string;
  number?: number;
  offset: number;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_\-.]/;
const NUMBER_RE = /-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/y;
const HEREDOC_START_RE = /<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n/y;

class Parser {
  private pos = 0;
  private readonly lineStarts: number[] = [0];
  private peeked: Token | undefined;
  private readonly positions = new WeakMap<object, HclNodeInfo>();
  /** Label levels and body arrays that blocks created, as opposed to attribute values. */
  private readonly blockNodes = new WeakSet<object>();

  constructor(
    private readonly src: string,
    private readonly sourceName: string,
  ) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  parseDocument(): HclDocument {
    const root: HclObject = {};
    this.positions.set(root, { start: { line: 1, column: 1 }, keys: new Map() });
    this.parseItems(root, "eof");
    return { value: root, positions: this.positions };
  }

  // ---- positions and errors ----

  private at(offset: number): HclPosition {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo] + 1 };
  }

  private fail(offset: number, message: string): never {
    const p = this.at(offset);
    throw new UserError(`${this.sourceName}:${p.line}:${p.column}: ${message}`);
  }

  // ---- lexer ----

  private skipTrivia(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\uFEFF") {
        this.pos++;
      } else if (c === "#" || (c === "/" && s[this.pos + 1] === "/")) {
        const nl = s.indexOf("\n", this.pos);
        this.pos = nl === -1 ? s.length : nl + 1;
      } else if (c === "/" && s[this.pos + 1] === "*") {
        const end = s.indexOf("*/", this.pos + 2);
        if (end === -1) this.fail(this.pos, 'unterminated comment: expected "*/"');
        this.pos = end + 2;
      } else {
        return;
      }
    }
  }

  private peek(): Token {
    if (!this.peeked) this.peeked = this.lex();
    return this.peeked;
  }

  private next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private lex(): Token {
    this.skipTrivia();
    const s = this.src;
    const start = this.pos;
    if (start >= s.length) return { kind: "eof", text: "", offset: start };
    const c = s[start];
    if (c === "{" || c === "}" || c === "[" || c === "]" || c === "=" || c === ",") {
      this.pos++;
      return { kind: c, text: c, offset: start };
    }
    if (c === '"') return this.lexString();
    if (c === "<" && s[start + 1] === "<") return this.lexHeredoc();
    if (c === "-" || (c >= "0" && c <= "9")) {
      NUMBER_RE.lastIndex = start;
      const m = NUMBER_RE.exec(s);
      if (!m) this.fail(start, `expected a number after "-"`);
      let end = start + m[0].length;
      if (end < s.length && (IDENT_PART.test(s[end]) || s[end] === "-")) {
        while (end < s.length && (IDENT_PART.test(s[end]) || s[end] === "-")) end++;
        const word = s.slice(start, end);
        this.fail(start, `invalid number ${JSON.stringify(word)} (quote strings and durations: "${word}")`);
      }
      this.pos = end;
      const text = m[0];
      const neg = text.startsWith("-");
      const digits = neg ? text.slice(1) : text;
      const value = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : Number(digits);
      return { kind: "number", text, number: neg ? -value : value, offset: start };
    }
    if (IDENT_START.test(c)) {
      let end = start + 1;
      while (end < s.length && IDENT_PART.test(s[end])) end++;
      this.pos = end;
      return { kind: "ident", text: s.slice(start, end), offset: start };
    }
    if (c === "'") this.fail(start, "single-quoted strings are not HCL: use double quotes");
    this.fail(start, `unexpected character ${JSON.stringify(c)}`);
  }

  private lexString(): Token {
    const s = this.src;
    const start = this.pos;
    let i = start + 1;
    let out = "";
    for (;;) {
      if (i >= s.length || s[i] === "\n") {
        this.fail(start, "unterminated string: strings end on the line they start (use a heredoc <<EOT for multi-line text)");
      }
      const c = s[i];
      if (c === '"') break;
      if (c !== "\\") {
        out += c;
        i++;
        continue;
      }
      const e = s[i + 1];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", f: "\f", v: "\v" };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === "u" || e === "U") {
        const len = e === "u" ? 4 : 8;
        const hex = s.slice(i + 2, i + 2 + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(i, `invalid escape: \\${e} needs ${len} hex digits`);
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff) this.fail(i, `invalid escape: \\${e}${hex} is not a Unicode code point`);
        // \uD83D\uDE00 (a surrogate pair written as two escapes) must join into one character.
        out += e === "u" ? String.fromCharCode(cp) : String.fromCodePoint(cp);
        i += 2 + len;
      } else {
        this.fail(i, `unknown escape sequence "\\${e ?? ""}" in string (use \\\\ for a backslash)`);
      }
    }
    this.pos = i + 1;
    return { kind: "string", text: out, offset: start };
  }

  private lexHeredoc(): Token {
    const s = this.src;
    const start = this.pos;
    HEREDOC_START_RE.lastIndex = start;
    const m = HEREDOC_START_RE.exec(s);
    if (!m) this.fail(start, 'expected a heredoc marker such as <<EOT followed by a new line');
    const indented = m[1] === "-";
    const anchor = m[2];
    let lineStart = start + m[0].length;
    const lines: string[] = [];
    for (;;) {
      const nl = s.indexOf("\n", lineStart);
      const lineEnd = nl === -1 ? s.length : nl;
      const line = s.slice(lineStart, lineEnd).replace(/\r$/, "");
      const trimmed = line.replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");
      if (trimmed === anchor) {
        this.pos = lineEnd;
        const text = indented ? unindent(lines, line.slice(0, line.length - line.replace(/^[ \t]+/, "").length)) : lines;
        return { kind: "heredoc", text: text.length ? text.join("\n") + "\n" : "", offset: start };
      }
      if (nl === -1) this.fail(start, `unterminated heredoc: expected a line containing only "${anchor}"`);
      lines.push(line);
      lineStart = nl + 1;
    }
  }

  // ---- parser ----

  private describe(t: Token): string {
    switch (t.kind) {
      case "eof":
        return "end of input";
      case "string":
        return `string ${JSON.stringify(t.text)}`;
      case "heredoc":
        return "heredoc";
      case "ident":
      case "number":
        return JSON.stringify(t.text);
      default:
        return `"${t.kind}"`;
    }
  }

  private nodeInfo(node: object, startOffset: number): HclNodeInfo {
    const info: HclNodeInfo = { start: this.at(startOffset), keys: new Map() };
    this.positions.set(node, info);
    return info;
  }

  /** Items of a body until `end` (`}` for blocks and objects, end of input at the top). */
  private parseItems(obj: HclObject, end: "}" | "eof"): void {
    for (;;) {
      const t = this.peek();
      if (t.kind === end) {
        this.next();
        return;
      }
      if (t.kind !== "ident" && t.kind !== "string") {
        if (t.kind === "eof") this.fail(t.offset, 'expected "}" to close the block');
        this.fail(t.offset, `expected a key (identifier or quoted string) or ${end === "}" ? '"}"' : "end of input"}, got ${this.describe(t)}`);
      }
      this.parseItem(obj);
      if (this.peek().kind === ",") this.next();
    }
  }

  private parseItem(obj: HclObject): void {
    const keyTok = this.next();
    const key = keyTok.text;
    const labels: Token[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === "=") {
        if (labels.length && this.at(labels[0].offset).line !== this.at(keyTok.offset).line) {
          this.fail(labels[0].offset, `expected "=" or "{" after ${JSON.stringify(key)}, got ${this.describe(labels[0])}`);
        }
        if (labels.length) this.fail(t.offset, `a block cannot be assigned with "=": write ${key} ${labels.map((l) => JSON.stringify(l.text)).join(" ")} { ... }`);
        this.next();
        const value = this.parseValue();
        this.assignAttribute(obj, keyTok, value);
        return;
      }
      if (t.kind === "{") {
        this.next();
        const body: HclObject = {};
        this.nodeInfo(body, keyTok.offset);
        this.parseItems(body, "}");
        this.addBlock(obj, keyTok, labels, body);
        return;
      }
      if (t.kind === "string" || t.kind === "ident") {
        labels.push(this.next());
        continue;
      }
      this.fail(t.offset, `expected "=" or "{" after ${JSON.stringify(key)}, got ${this.describe(t)}`);
    }
  }

  private assignAttribute(obj: HclObject, keyTok: Token, value: HclValue): void {
    const key = keyTok.text;
    const info = this.positions.get(obj)!;
    if (Object.hasOwn(obj, key)) {
      const first = info.keys.get(key);
      const usedAs = this.blockNodes.has(obj[key] as object) ? "used as a block" : "set";
      this.fail(keyTok.offset, `duplicate attribute ${JSON.stringify(key)} (already ${usedAs} on line ${first?.line})`);
    }
    setOwn(obj, key, value);
    info.keys.set(key, this.at(keyTok.offset));
  }

  private addBlock(obj: HclObject, nameTok: Token, labels: Token[], body: HclObject): void {
    let container = obj;
    const chain = [nameTok, ...labels];
    for (let i = 0; i < chain.length; i++) {
      const keyTok = chain[i];
      const key = keyTok.text;
      const last = i === chain.length - 1;
      const info = this.positions.get(container)!;
      let existing = Object.hasOwn(container, key) ? container[key] : undefined;
      if (existing === undefined) {
        existing = last ? [] : {};
        this.blockNodes.add(existing);
        this.nodeInfo(existing, nameTok.offset);
        setOwn(container, key, existing);
        info.keys.set(key, this.at(keyTok.offset));
      } else if (!this.blockNodes.has(existing as object)) {
        this.fail(nameTok.offset, `block ${JSON.stringify(chain[0].text)} conflicts with the attribute ${JSON.stringify(key)} set on line ${info.keys.get(key)?.line}`);
      } else if (Array.isArray(existing) !== last) {
        this.fail(nameTok.offset, `block ${JSON.stringify(chain[0].text)} is used with different numbers of labels (first on line ${info.keys.get(key)?.line})`);
      }
      if (last) {
        const arr = existing as HclValue[];
        this.positions.get(arr)!.keys.set(String(arr.length), this.at(nameTok.offset));
        arr.push(body);
      } else {
        container = existing as HclObject;
      }
    }
  }

  private parseValue(): HclValue {
    const t = this.next();
    switch (t.kind) {
      case "string":
      case "heredoc":
        return t.text;
      case "number":
        return t.number!;
      case "ident":
        if (t.text === "true") return true;
        if (t.text === "false") return false;
        return this.fail(t.offset, `expected a value, got ${this.describe(t)} (quote strings: "${t.text}")`);
      case "[":
        return this.parseList(t);
      case "{": {
        const obj: HclObject = {};
        this.nodeInfo(obj, t.offset);
        this.parseItems(obj, "}");
        return obj;
      }
      default:
        return this.fail(t.offset, `expected a value (string, number, true/false, list or object), got ${this.describe(t)}`);
    }
  }

  private parseList(open: Token): HclValue[] {
    const list: HclValue[] = [];
    const info = this.nodeInfo(list, open.offset);
    for (;;) {
      const t = this.peek();
      if (t.kind === "]") {
        this.next();
        return list;
      }
      if (t.kind === "eof") this.fail(t.offset, 'expected "]" to close the list');
      info.keys.set(String(list.length), this.at(t.offset));
      list.push(this.parseValue());
      const sep = this.peek();
      if (sep.kind === ",") {
        this.next();
      } else if (sep.kind !== "]") {
        this.fail(sep.offset, `expected "," or "]" in list, got ${this.describe(sep)}`);
      }
    }
  }
}

/**
 * HCL1's `<<-` rule: remove the closing marker's indentation from every line, provided every
 * non-empty line carries it (otherwise the text is left as written). Unlike HCL1 we let blank
 * lines through, which HCL1 would treat as "not indented" and so keep everything verbatim.
 */
function unindent(lines: string[], indent: string): string[] {
  if (!indent) return lines;
  if (!lines.every((l) => l === "" || l.startsWith(indent))) return lines;
  return lines.map((l) => l.slice(indent.length));
}
