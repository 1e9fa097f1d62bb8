/**
 * Parses the consul-template subset Vault Agent users write into the tree of `ast.ts`. The
 * structure follows Go's `text/template/parse`, and everything that can be checked without the
 * data is checked here, so a bad template fails when the agent loads its config rather than at
 * the first render:
 *
 * - syntax (unclosed actions and blocks, `{{end}}` or `{{else}}` without a block, stray tokens);
 * - unknown functions and wrong numbers of arguments;
 * - undefined variables (Go checks `$x =` only when rendering; we check it here);
 * - commands that cannot run: a value given arguments, a non-function after `|`;
 * - literal arguments: `secret` paths and `k=v` parameters, `printf` formats.
 *
 * Differences from Go, all stricter: variables declared in an `{{if}}`/`{{with}}`/`{{range}}`
 * body are not visible in its `{{else}}` body (Go accepts this and fails when rendering), and
 * parenthesised pipelines may not declare variables. `{{define}}`, `{{template}}` and
 * `{{block}}` are not supported.
 */
import type { ActionNode, CommandNode, IfNode, ListNode, Node, Operand, PipeNode, Position, RangeNode, VariableDecl, WithNode } from "./ast.js";
import { nodeText } from "./ast.js";
import { TemplateError, textLocator, type Locate } from "./errors.js";
import { closest } from "../../hcl/suggest.js";
import { FUNCTIONS, UNSUPPORTED_FUNCTIONS, isFunction } from "./functions.js";
import { scanFormat } from "./format.js";
import { lex, type Token, type TokenKind } from "./lexer.js";
import { secretRequest } from "./secrets.js";

/** A parsed template, ready to render any number of times. */
export interface Template {
  /** The name in messages: a file name, or the config file for inline `contents`. */
  name: string;
  root: ListNode;
  /** Maps offsets in the template text to message locations (kept for render errors). */
  locate: Locate;
}

export interface ParseOptions {
  /** `{{` unless set (Vault's `left_delimiter`). */
  leftDelimiter?: string;
  /** `}}` unless set (Vault's `right_delimiter`). */
  rightDelimiter?: string;
  /**
   * Where offsets of the text are in the file named by `name`; by default the text's own lines
   * and columns. The agent config uses it to report errors in inline `contents` at their line in
   * the config file.
   */
  locate?: Locate;
}

/** Parses a template. Throws `TemplateError` (`name:line:column: message`, phase "parse"). */
export function parseTemplate(text: string, name: string, options: ParseOptions = {}): Template {
  const leftDelim = options.leftDelimiter ?? "{{";
  const rightDelim = options.rightDelimiter ?? "}}";
  const locate = options.locate ?? textLocator(text);
  if (leftDelim === "" || rightDelim === "") {
    throw new TemplateError(name, 1, 1, "template delimiters must not be empty", "parse");
  }
  const tokens = lex(text, name, locate, { leftDelim, rightDelim });
  const root = new Parser(text, tokens, name, locate).parse();
  return { name, root, locate };
}

type ElseMarker = { type: "else"; pos: Position; chained?: "if" | "with" };
type EndMarker = { type: "end"; pos: Position };
type Item = Node | ElseMarker | EndMarker;

const OPERAND_START = new Set<TokenKind>(["bool", "charConstant", "dot", "field", "identifier", "number", "nil", "rawString", "string", "variable", "leftParen"]);

function describe(t: Token): string {
  switch (t.kind) {
    case "eof":
      return "end of template";
    case "text":
      return "text";
    case "keyword":
      return `{{${t.value}}}`;
    case "string":
    case "rawString":
      return "string";
    case "rightDelim":
    case "leftDelim":
      return JSON.stringify(t.value);
    case "space":
      return "space";
    default:
      return JSON.stringify(t.kind === "field" ? "." + t.value : t.value);
  }
}

class Parser {
  private i = 0;
  /** Variables in scope, innermost last. */
  private vars: string[] = ["$"];
  private rangeDepth = 0;
  private readonly eof: Token;

  constructor(
    private readonly src: string,
    private readonly tokens: Token[],
    private readonly name: string,
    private readonly locate: Locate,
  ) {
    this.eof = tokens[tokens.length - 1];
  }

  // ---- tokens ----

  private next(): Token {
    return this.tokens[this.i++] ?? this.eof;
  }

  private peek(): Token {
    return this.tokens[this.i] ?? this.eof;
  }

  private backup(): void {
    this.i--;
  }

  private nextNonSpace(): Token {
    let t: Token;
    do t = this.next();
    while (t.kind === "space");
    return t;
  }

  private peekNonSpace(): Token {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  private pos(offset: number): Position {
    return { offset, ...this.locate(offset) };
  }

  private fail(offset: number, message: string): never {
    const loc = this.locate(offset);
    throw new TemplateError(this.name, loc.line, loc.column, message, "parse");
  }

  private unexpected(t: Token, context: string): never {
    return this.fail(t.offset, `unexpected ${describe(t)} in ${context}`);
  }

  // ---- lists ----

  parse(): ListNode {
    const root: ListNode = { type: "list", nodes: [] };
    while (this.peek().kind !== "eof") {
      const n = this.textOrAction();
      if (n.type === "end") this.fail(n.pos.offset, "unexpected {{end}}: no {{if}}, {{with}} or {{range}} is open");
      if (n.type === "else") this.fail(n.pos.offset, "unexpected {{else}}: no {{if}}, {{with}} or {{range}} is open");
      root.nodes.push(n);
    }
    return root;
  }

  /** Nodes up to the `{{end}}` or `{{else}}` of the block `opener` opened. */
  private itemList(opener: string, openerOffset: number): { list: ListNode; next: ElseMarker | EndMarker } {
    const list: ListNode = { type: "list", nodes: [] };
    for (;;) {
      if (this.peek().kind === "eof") this.fail(openerOffset, `{{${opener}}} has no matching {{end}}`);
      const n = this.textOrAction();
      if (n.type === "end" || n.type === "else") return { list, next: n };
      list.nodes.push(n);
    }
  }

  private textOrAction(): Item {
    const t = this.nextNonSpace();
    if (t.kind === "text") return { type: "text", pos: this.pos(t.offset), text: t.value };
    if (t.kind === "leftDelim") return this.action(t);
    return this.unexpected(t, "input");
  }

  private action(delim: Token): Item {
    const t = this.nextNonSpace();
    if (t.kind === "keyword") {
      switch (t.value) {
        case "if":
        case "with":
        case "range":
          return this.control(t.value, t.offset);
        case "end":
          this.expectClose("end");
          return { type: "end", pos: this.pos(t.offset) };
        case "else":
          return this.elseControl(t);
        case "break":
        case "continue": {
          const kind = t.value;
          if (this.rangeDepth === 0) this.fail(t.offset, `{{${kind}}} outside {{range}}`);
          this.expectClose(kind);
          return { type: kind, pos: this.pos(t.offset) };
        }
        default:
          this.fail(t.offset, `{{${t.value}}} is not supported: leasehold templates have no named templates ({{define}}, {{template}}, {{block}})`);
      }
    }
    this.backup();
    const pipe = this.pipeline("command", "rightDelim");
    const node: ActionNode = { type: "action", pos: this.pos(delim.offset), pipe };
    return node;
  }

  private expectClose(context: string): void {
    const t = this.nextNonSpace();
    if (t.kind !== "rightDelim") this.unexpected(t, `{{${context}}}`);
  }

  private elseControl(t: Token): ElseMarker {
    const peek = this.peekNonSpace();
    if (peek.kind === "keyword" && (peek.value === "if" || peek.value === "with")) {
      return { type: "else", pos: this.pos(t.offset), chained: peek.value };
    }
    this.expectClose("else");
    return { type: "else", pos: this.pos(t.offset) };
  }

  /** `{{if}}`, `{{with}}` and `{{range}}`, from after the keyword to their `{{end}}`. */
  private control(kind: "if" | "with" | "range", offset: number): Node {
    const mark = this.vars.length;
    const pipe = this.pipeline(kind, "rightDelim");
    this.declare(pipe);
    const afterPipe = this.vars.length;
    if (kind === "range") this.rangeDepth++;
    const body = this.itemList(kind, offset);
    if (kind === "range") this.rangeDepth--;
    let elseList: ListNode | undefined;
    if (body.next.type === "else") {
      const elseMarker = body.next;
      this.vars.length = afterPipe;
      if (elseMarker.chained) {
        if (elseMarker.chained !== kind) {
          this.fail(elseMarker.pos.offset, `{{else ${elseMarker.chained}}} is only allowed in {{${elseMarker.chained}}}, not in {{${kind}}}`);
        }
        const kw = this.nextNonSpace();
        elseList = { type: "list", nodes: [this.control(kind, kw.offset)] };
      } else {
        const rest = this.itemList(kind, offset);
        if (rest.next.type === "else") this.fail(rest.next.pos.offset, `{{else}} after {{else}}: expected {{end}} to close the {{${kind}}}`);
        elseList = rest.list;
      }
    }
    this.vars.length = mark;
    const node: IfNode | WithNode | RangeNode = { type: kind, pos: this.pos(offset), pipe, list: body.list };
    if (elseList) node.elseList = elseList;
    return node;
  }

  // ---- pipelines ----

  /** Adds the variables a pipeline declares (`:=`) to the scope. */
  private declare(pipe: PipeNode): void {
    if (!pipe.isAssign) for (const d of pipe.decl) this.vars.push(d.name);
  }

  private pipeline(context: string, end: "rightDelim" | "rightParen"): PipeNode {
    const first = this.peekNonSpace();
    const pipe: PipeNode = { type: "pipe", pos: this.pos(first.offset), decl: [], isAssign: false, cmds: [] };
    this.declarations(pipe, context);
    let afterPipe: Token | undefined;
    for (;;) {
      const t = this.nextNonSpace();
      if (t.kind === end) {
        if (afterPipe) this.fail(afterPipe.offset, `missing command after "|"`);
        break;
      }
      if (!OPERAND_START.has(t.kind)) this.unexpected(t, context);
      this.backup();
      const { cmd, pipeToken } = this.command();
      pipe.cmds.push(cmd);
      afterPipe = pipeToken;
    }
    this.checkPipeline(pipe, context);
    if (pipe.isAssign) {
      for (const d of pipe.decl) if (!this.vars.includes(d.name)) this.fail(d.pos.offset, `undefined variable "${d.name}" (declare it with ${d.name} := ...)`);
    }
    if (context === "command") this.declare(pipe);
    return pipe;
  }

  /** `$x :=`, `$x =`, and in range `$k, $v :=`. Leaves the tokens alone when there is none. */
  private declarations(pipe: PipeNode, context: string): void {
    for (;;) {
      const saved = this.i;
      const v = this.nextNonSpace();
      if (v.kind !== "variable") {
        this.i = saved;
        return;
      }
      const next = this.nextNonSpace();
      const decl: VariableDecl = { name: v.value, pos: this.pos(v.offset) };
      if (next.kind === "assign" || next.kind === "declare") {
        if (context === "parenthesized pipeline") this.fail(v.offset, "variables cannot be declared or assigned inside parentheses");
        if (v.value === "$") this.fail(v.offset, "cannot declare or assign $");
        pipe.isAssign = next.kind === "assign";
        pipe.decl.push(decl);
        return;
      }
      if (next.kind === "char" && next.value === ",") {
        if (context !== "range") this.fail(next.offset, `too many declarations in ${context}`);
        if (pipe.decl.length) this.fail(next.offset, "too many declarations in range (at most $index, $element)");
        pipe.decl.push(decl);
        const second = this.peekNonSpace();
        if (second.kind !== "variable") this.fail(second.offset, "range can only initialize variables");
        continue;
      }
      if (pipe.decl.length) this.fail(next.offset, `expected := or = after ${v.value}`);
      this.i = saved;
      return;
    }
  }

  /** One command; also returns the `|` that ended it, if one did. */
  private command(): { cmd: CommandNode; pipeToken?: Token } {
    const cmd: CommandNode = { type: "command", pos: this.pos(this.peekNonSpace().offset), args: [] };
    let pipeToken: Token | undefined;
    for (;;) {
      this.peekNonSpace();
      const operand = this.operand();
      if (operand) cmd.args.push(operand);
      const t = this.next();
      if (t.kind === "space") continue;
      if (t.kind === "rightDelim" || t.kind === "rightParen") this.backup();
      else if (t.kind === "pipe") pipeToken = t;
      else this.unexpected(t, "operand");
      break;
    }
    if (cmd.args.length === 0) this.fail(cmd.pos.offset, "empty command");
    return { cmd, pipeToken };
  }

  private operand(): Operand | null {
    const node = this.term();
    if (!node) return null;
    if (this.peek().kind !== "field") return node;
    const fieldTok = this.peek();
    const fields: string[] = [];
    while (this.peek().kind === "field") fields.push(this.next().value);
    switch (node.type) {
      case "field":
      case "variable":
        return { ...node, fields: [...node.fields, ...fields] };
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        return this.fail(fieldTok.offset, `unexpected . after term ${JSON.stringify(nodeText(node))}`);
      default:
        return { type: "chain", pos: node.pos, node, fields };
    }
  }

  private term(): Operand | null {
    const t = this.nextNonSpace();
    const pos = this.pos(t.offset);
    switch (t.kind) {
      case "identifier":
        if (!isFunction(t.value)) this.unknownFunction(t);
        return { type: "function", pos, name: t.value };
      case "dot":
        return { type: "dot", pos };
      case "nil":
        return { type: "nil", pos };
      case "variable":
        if (!this.vars.includes(t.value)) this.fail(t.offset, `undefined variable "${t.value}"`);
        return { type: "variable", pos, name: t.value, fields: [] };
      case "field":
        return { type: "field", pos, fields: [t.value] };
      case "bool":
        return { type: "bool", pos, value: t.value === "true" };
      case "number":
        return { type: "number", pos, value: parseNumber(t.value), raw: t.value };
      case "charConstant":
        return { type: "number", pos, value: Number(t.value), raw: this.src.slice(t.offset, t.end) };
      case "string":
      case "rawString":
        return { type: "string", pos, value: t.value, raw: this.src.slice(t.offset, t.end) };
      case "leftParen": {
        const pipe = this.pipeline("parenthesized pipeline", "rightParen");
        pipe.pos = pos;
        return pipe;
      }
      default:
        this.backup();
        return null;
    }
  }

  private unknownFunction(t: Token): never {
    const why = Object.hasOwn(UNSUPPORTED_FUNCTIONS, t.value) ? UNSUPPORTED_FUNCTIONS[t.value] : undefined;
    if (why) this.fail(t.offset, `function ${JSON.stringify(t.value)} is not supported by leasehold templates (${why})`);
    const suggestion = closest(t.value, Object.keys(FUNCTIONS));
    return this.fail(t.offset, `function ${JSON.stringify(t.value)} not defined${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ""}`);
  }

  // ---- checks ----

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.fail(pipe.pos.offset, `missing value for ${context}`);
    pipe.cmds.forEach((cmd, stage) => {
      const [head, ...args] = cmd.args;
      if (head.type === "function") {
        this.checkCall(head.name, head.pos, args, stage > 0);
      } else {
        if (stage > 0) this.fail(head.pos.offset, `non executable command in pipeline stage ${stage + 1}: ${nodeText(head)} is not a function`);
        if (head.type === "nil") this.fail(head.pos.offset, "nil is not a command");
        if (args.length) this.fail(args[0].pos.offset, `can't give argument to non-function ${nodeText(head)}`);
      }
      for (const arg of cmd.args) this.checkOperand(arg, arg === head);
    });
  }

  /** Functions used as values (`printf "%s" toUpper`, `(env).x`) are called with no arguments. */
  private checkOperand(node: Operand, isHead: boolean): void {
    if (node.type === "function" && !isHead) this.checkCall(node.name, node.pos, [], false);
    if (node.type === "chain") this.checkOperand(node.node, false);
  }

  private checkCall(name: string, pos: Position, args: Operand[], piped: boolean): void {
    const sig = FUNCTIONS[name];
    const count = args.length + (piped ? 1 : 0);
    if (count < sig.min || count > sig.max) {
      const want = sig.min === sig.max ? `${sig.min}` : sig.max === Infinity ? `at least ${sig.min}` : `${sig.min} to ${sig.max}`;
      this.fail(pos.offset, `wrong number of args for ${name}: want ${want} got ${count}`);
    }
    if ((name === "secret" || name === "pkiCert") && !piped) {
      // Check each literal on its own, so the message points at the bad one.
      args.forEach((a, i) => {
        if (a.type !== "string") return;
        try {
          secretRequest(name, i === 0 ? a.value : "x", i === 0 ? [] : [a.value]);
        } catch (err) {
          this.fail(a.pos.offset, (err as Error).message);
        }
      });
    }
    if (name === "printf" && !piped && args[0]?.type === "string") {
      const scanned = scanFormat(args[0].value);
      if (typeof scanned === "string") this.fail(args[0].pos.offset, scanned);
    }
  }
}

/** Go's number literals: `0x1F`, `0o17`, `0b101`, `017` (octal), decimal and floats. */
function parseNumber(text: string): number {
  const neg = text.startsWith("-");
  const body = text.replace(/^[+-]/, "");
  let value: number;
  if (/^0[xX]/.test(body)) value = parseInt(body.slice(2), 16);
  else if (/^0[oO]/.test(body)) value = parseInt(body.slice(2), 8);
  else if (/^0[bB]/.test(body)) value = parseInt(body.slice(2), 2);
  else if (/^0[0-7]+$/.test(body)) value = parseInt(body.slice(1), 8);
  else value = Number(body);
  return neg ? -value : value;
}
