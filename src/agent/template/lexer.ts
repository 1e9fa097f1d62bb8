/**
 * The lexer of Go's `text/template`, for the subset the parser accepts. It follows Go's rules
 * exactly where they decide what a template means:
 *
 * - `{{- ` (dash then a space, tab, CR or LF) trims every space, tab, CR and LF before the action;
 *   ` -}}` trims them after it. `{{-3}}` is the number -3, not a trim marker.
 * - `{{/* ... *\/}}` is a comment: it must start right after the delimiter (and trim marker) and
 *   end right before the closing one; trim markers work on comments too.
 * - Inside actions spaces (including newlines) separate operands, so they are tokens.
 * - Strings take Go's escapes; raw strings (backquotes) may span lines and lose their CRs.
 */
import type { Locate } from "./errors.js";
import { TemplateError } from "./errors.js";

export type TokenKind =
  | "text"
  | "leftDelim"
  | "rightDelim"
  | "space"
  | "identifier"
  | "keyword"
  | "field"
  | "dot"
  | "variable"
  | "string"
  | "rawString"
  | "charConstant"
  | "number"
  | "bool"
  | "nil"
  | "pipe"
  | "leftParen"
  | "rightParen"
  | "declare"
  | "assign"
  | "char"
  | "eof";

export interface Token {
  kind: TokenKind;
  /**
   * text: the (trimmed) text; string, rawString: the decoded value; charConstant: the code point
   * as a decimal string; field: the name without its dot; variable: the name with its `$`;
   * identifier, keyword, bool, number, char: as written.
   */
  value: string;
  /** Offset of the first character in the template text. */
  offset: number;
  /** Offset just past the token. */
  end: number;
}

export const KEYWORDS = new Set(["if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"]);

export interface LexOptions {
  leftDelim: string;
  rightDelim: string;
}

/** Go's `isSpace` in the template lexer: the characters trim markers remove. */
export function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

const ALPHANUMERIC = /^[\p{L}\p{Nd}_]$/u;

function isAlphaNumeric(c: string | undefined): boolean {
  return c !== undefined && ALPHANUMERIC.test(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/** `U+0040 '@'`, as Go's `%#U` prints a rune. */
export function describeRune(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, "0");
  const printable = cp >= 0x20 && cp !== 0x7f;
  return printable ? `U+${hex} '${c}'` : `U+${hex}`;
}

const NUMBER_RE = /[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)/y;

export function lex(text: string, name: string, locate: Locate, options: LexOptions): Token[] {
  return new Lexer(text, name, locate, options).run();
}

class Lexer {
  private pos = 0;
  private readonly tokens: Token[] = [];
  /** Offsets of the `(` still open in the current action. */
  private parens: number[] = [];
  private actionStart = 0;

  constructor(
    private readonly src: string,
    private readonly name: string,
    private readonly locate: Locate,
    private readonly opts: LexOptions,
  ) {}

  run(): Token[] {
    while (this.lexText()) {
      /* one text and one action (or comment) per round */
    }
    return this.tokens;
  }

  private fail(offset: number, message: string): never {
    const loc = this.locate(offset);
    throw new TemplateError(this.name, loc.line, loc.column, message, "parse");
  }

  private emit(kind: TokenKind, value: string, offset: number, end: number): void {
    this.tokens.push({ kind, value, offset, end });
  }

  private hasLeftTrimMarker(at: number): boolean {
    return this.src[at] === "-" && isSpace(this.src[at + 1]);
  }

  /** Whether the closing delimiter starts at `at`, with (` -}}`) or without a trim marker. */
  private atRightDelim(at: number): { delim: boolean; trim: boolean } {
    const s = this.src;
    if (isSpace(s[at]) && s[at + 1] === "-" && s.startsWith(this.opts.rightDelim, at + 2)) return { delim: true, trim: true };
    if (s.startsWith(this.opts.rightDelim, at)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  }

  private skipSpaces(at: number): number {
    while (at < this.src.length && isSpace(this.src[at])) at++;
    return at;
  }

  /** Text up to the next action; then the action. False at the end of the input. */
  private lexText(): boolean {
    const s = this.src;
    const left = this.opts.leftDelim;
    const idx = s.indexOf(left, this.pos);
    if (idx < 0) {
      if (this.pos < s.length) this.emit("text", s.slice(this.pos), this.pos, s.length);
      this.emit("eof", "", s.length, s.length);
      return false;
    }
    const trim = this.hasLeftTrimMarker(idx + left.length);
    let textEnd = idx;
    if (trim) while (textEnd > this.pos && isSpace(s[textEnd - 1])) textEnd--;
    if (textEnd > this.pos) this.emit("text", s.slice(this.pos, textEnd), this.pos, textEnd);
    const afterMarker = idx + left.length + (trim ? 2 : 0);
    if (s.startsWith("/*", afterMarker)) {
      this.lexComment(idx, afterMarker);
    } else {
      this.emit("leftDelim", left, idx, afterMarker);
      this.pos = afterMarker;
      this.actionStart = idx;
      this.parens = [];
      this.lexInsideAction();
    }
    return true;
  }

  private lexComment(start: number, commentStart: number): void {
    const end = this.src.indexOf("*/", commentStart + 2);
    if (end < 0) this.fail(start, "unclosed comment");
    let at = end + 2;
    const rd = this.atRightDelim(at);
    if (!rd.delim) this.fail(at, `comment ends before closing delimiter (write ${this.opts.leftDelim}/* ... */${this.opts.rightDelim})`);
    at += (rd.trim ? 2 : 0) + this.opts.rightDelim.length;
    this.pos = rd.trim ? this.skipSpaces(at) : at;
  }

  private lexInsideAction(): void {
    const s = this.src;
    for (;;) {
      const rd = this.atRightDelim(this.pos);
      if (rd.delim) {
        if (this.parens.length) this.fail(this.parens[this.parens.length - 1], "unclosed left paren");
        const end = this.pos + (rd.trim ? 2 : 0) + this.opts.rightDelim.length;
        this.emit("rightDelim", this.opts.rightDelim, this.pos, end);
        this.pos = rd.trim ? this.skipSpaces(end) : end;
        return;
      }
      if (this.pos >= s.length) this.fail(this.actionStart, `unclosed action (no ${this.opts.rightDelim} before the end of the template)`);
      const start = this.pos;
      const c = s[start];
      if (isSpace(c)) {
        this.lexSpace();
      } else if (c === "=") {
        this.pos++;
        this.emit("assign", "=", start, this.pos);
      } else if (c === ":") {
        if (s[start + 1] !== "=") this.fail(start, "expected :=");
        this.pos += 2;
        this.emit("declare", ":=", start, this.pos);
      } else if (c === "|") {
        this.pos++;
        this.emit("pipe", "|", start, this.pos);
      } else if (c === '"') {
        this.lexQuote();
      } else if (c === "`") {
        this.lexRawQuote();
      } else if (c === "'") {
        this.lexCharConstant();
      } else if (c === "$") {
        this.lexFieldOrVariable("variable");
      } else if (c === "." && !isDigit(s[start + 1])) {
        this.lexFieldOrVariable("field");
      } else if (c === "+" || c === "-" || c === "." || isDigit(c)) {
        this.lexNumber();
      } else if (isAlphaNumeric(c)) {
        this.lexIdentifier();
      } else if (c === "(") {
        this.parens.push(start);
        this.pos++;
        this.emit("leftParen", "(", start, this.pos);
      } else if (c === ")") {
        if (!this.parens.length) this.fail(start, "unexpected right paren");
        this.parens.pop();
        this.pos++;
        this.emit("rightParen", ")", start, this.pos);
      } else if (c >= "\x20" && c < "\x7f") {
        this.pos++;
        this.emit("char", c, start, this.pos);
      } else {
        this.fail(start, `unrecognized character in action: ${describeRune(String.fromCodePoint(s.codePointAt(start) ?? 0))}`);
      }
    }
  }

  /** A run of spaces; the one before a ` -}}` belongs to the trim marker (as in Go). */
  private lexSpace(): void {
    const start = this.pos;
    let end = this.skipSpaces(start);
    if (this.src[end] === "-" && this.src.startsWith(this.opts.rightDelim, end + 1)) {
      end--;
      if (end === start) return;
    }
    this.pos = end;
    this.emit("space", this.src.slice(start, end), start, end);
  }

  /** Go's `atTerminator`: what may follow an identifier, field or variable. */
  private atTerminator(at: number): boolean {
    const c = this.src[at];
    if (c === undefined || isSpace(c)) return true;
    if (c === "." || c === "," || c === "|" || c === ":" || c === ")" || c === "(") return true;
    return this.src.startsWith(this.opts.rightDelim, at);
  }

  private badCharacter(at: number): never {
    return this.fail(at, `bad character ${describeRune(String.fromCodePoint(this.src.codePointAt(at) ?? 0))}`);
  }

  private lexFieldOrVariable(kind: "field" | "variable"): void {
    const start = this.pos;
    if (this.atTerminator(start + 1)) {
      this.pos = start + 1;
      if (kind === "variable") this.emit("variable", "$", start, this.pos);
      else this.emit("dot", ".", start, this.pos);
      return;
    }
    let end = start + 1;
    while (isAlphaNumeric(this.src[end])) end++;
    if (!this.atTerminator(end)) this.badCharacter(end);
    this.pos = end;
    const word = this.src.slice(start, end);
    this.emit(kind, kind === "field" ? word.slice(1) : word, start, end);
  }

  private lexIdentifier(): void {
    const start = this.pos;
    let end = start;
    while (isAlphaNumeric(this.src[end])) end++;
    if (!this.atTerminator(end)) this.badCharacter(end);
    this.pos = end;
    const word = this.src.slice(start, end);
    const kind: TokenKind = KEYWORDS.has(word) ? "keyword" : word === "true" || word === "false" ? "bool" : word === "nil" ? "nil" : "identifier";
    this.emit(kind, word, start, end);
  }

  private lexNumber(): void {
    const start = this.pos;
    NUMBER_RE.lastIndex = start;
    const m = NUMBER_RE.exec(this.src);
    let end = m ? start + m[0].length : start + 1;
    if (!m || isAlphaNumeric(this.src[end]) || this.src[end] === ".") {
      while (isAlphaNumeric(this.src[end]) || this.src[end] === ".") end++;
      this.fail(start, `bad number syntax: ${JSON.stringify(this.src.slice(start, Math.max(end, start + 1)))}`);
    }
    this.pos = end;
    this.emit("number", m[0], start, end);
  }

  /** Scans a quoted literal (Go: a backslash escapes anything but a newline). Returns the body's end. */
  private scanQuoted(quote: string, what: string): number {
    const s = this.src;
    const start = this.pos;
    let i = start + 1;
    for (;;) {
      const c = s[i];
      if (c === "\\" && i + 1 < s.length && s[i + 1] !== "\n") {
        i += 2;
        continue;
      }
      if (c === undefined || c === "\n" || c === "\\") this.fail(start, `unterminated ${what}`);
      if (c === quote) return i;
      i++;
    }
  }

  private lexQuote(): void {
    const start = this.pos;
    const close = this.scanQuoted('"', "quoted string");
    const value = this.unescape(start + 1, close, '"');
    this.pos = close + 1;
    this.emit("string", value, start, this.pos);
  }

  private lexCharConstant(): void {
    const start = this.pos;
    const close = this.scanQuoted("'", "character constant");
    const value = this.unescape(start + 1, close, "'");
    const chars = Array.from(value);
    if (chars.length !== 1) this.fail(start, `malformed character constant: ${this.src.slice(start, close + 1)}`);
    this.pos = close + 1;
    this.emit("charConstant", String(chars[0].codePointAt(0)), start, this.pos);
  }

  private lexRawQuote(): void {
    const start = this.pos;
    const close = this.src.indexOf("`", start + 1);
    if (close < 0) this.fail(start, "unterminated raw quoted string");
    this.pos = close + 1;
    this.emit("rawString", this.src.slice(start + 1, close).replace(/\r/g, ""), start, this.pos);
  }

  /** Go's escapes (strconv.Unquote) in src[from, to). `\x` and octal escapes are limited to ASCII. */
  private unescape(from: number, to: number, quote: string): string {
    const s = this.src;
    let out = "";
    let i = from;
    const simple: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\" };
    while (i < to) {
      const c = s[i];
      if (c !== "\\") {
        out += c;
        i++;
        continue;
      }
      const e = s[i + 1];
      if (e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === quote) {
        out += quote;
        i += 2;
      } else if (e === "x" || e === "u" || e === "U") {
        const len = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = s.slice(i + 2, i + 2 + len);
        if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex) || i + 2 + len > to) this.fail(i, `invalid escape \\${e}: needs ${len} hex digits`);
        const cp = parseInt(hex, 16);
        if (e === "x" && cp > 0x7f) this.fail(i, `\\x${hex} is not an ASCII character (write the character itself or \\u00${hex})`);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(i, `invalid escape \\${e}${hex}: not a Unicode code point`);
        out += String.fromCodePoint(cp);
        i += 2 + len;
      } else if (e !== undefined && e >= "0" && e <= "7") {
        const oct = s.slice(i + 1, i + 4);
        if (!/^[0-7]{3}$/.test(oct) || i + 4 > to) this.fail(i, "invalid escape: octal escapes need 3 digits");
        const cp = parseInt(oct, 8);
        if (cp > 0x7f) this.fail(i, `\\${oct} is not an ASCII character (write the character itself)`);
        out += String.fromCharCode(cp);
        i += 4;
      } else {
        this.fail(i, `invalid escape sequence \\${e ?? ""} in ${quote === '"' ? "string" : "character constant"}`);
      }
    }
    return out;
  }
}
