/**
 * Renders a parsed template, with Go's `text/template` semantics and consul-template's functions.
 * Rendering is async because `secret` and `pkiCert` fetch from a `SecretSource`; each distinct
 * request (kind, path, parameters) is fetched once per render, or once per `SecretCache` when
 * several renders share one. The result lists the secrets the render used, with their leases, so
 * the agent can schedule renewals.
 *
 * Missing map keys render as `<no value>`, or fail with `errorOnMissingKey` (Go's
 * `missingkey=error`, Vault's `error_on_missing_key`). Unknown fields of a secret (`.data`
 * instead of `.Data`) always fail.
 */
import type { ListNode, Node, Operand, PipeNode, Position, VariableNode, FieldNode, ChainNode, CommandNode, FunctionNode } from "./ast.js";
import { nodeText } from "./ast.js";
import { TemplateError } from "./errors.js";
import { formatValue, printAction, scanFormat, sprintf, toGoJson } from "./format.js";
import type { Template } from "./parser.js";
import { SecretCache, secretRequest, type SecretRequest, type SecretResult, type SecretSource } from "./secrets.js";
import { PkiCertView, SecretView, compareStrings, goTypeName, isPlainObject, sortedKeys, truth } from "./values.js";

export interface RenderOptions {
  source: SecretSource;
  /** Share to fetch each secret once across several renders; by default each render has its own. */
  cache?: SecretCache;
  /** Fail on a missing map key instead of rendering `<no value>`. */
  errorOnMissingKey?: boolean;
  /** What `env` reads; `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The template's data (`.` at the top, and `$`); nothing by default, as in Vault Agent. */
  data?: unknown;
}

/** A secret a render used: the request and the answer (lease included). */
export interface UsedSecret extends SecretRequest {
  result: SecretResult;
}

export interface RenderResult {
  text: string;
  /** Each distinct secret the render fetched, in the order the template first used them. */
  secrets: UsedSecret[];
}

export async function renderTemplate(template: Template, options: RenderOptions): Promise<RenderResult> {
  const state = new State(template, options);
  await state.walkList(options.data, template.root);
  return { text: state.out.join(""), secrets: [...state.used.values()] };
}

/** Thrown by `{{break}}` and `{{continue}}`, caught by the enclosing range. */
class LoopSignal {
  constructor(readonly kind: "break" | "continue") {}
}

/** No value from a previous pipeline stage (distinct from `undefined`, a missing value). */
const NO_FINAL: unique symbol = Symbol("no final");
/** The previous stage's value, or `NO_FINAL` in the first stage. */
type Final = unknown;

interface Variable {
  name: string;
  value: unknown;
}

class State {
  readonly out: string[] = [];
  readonly used = new Map<string, UsedSecret>();
  private readonly vars: Variable[];
  private readonly cache: SecretCache;
  private readonly env: Readonly<Record<string, string | undefined>>;

  constructor(
    private readonly template: Template,
    private readonly options: RenderOptions,
  ) {
    this.vars = [{ name: "$", value: options.data }];
    this.cache = options.cache ?? new SecretCache();
    this.env = options.env ?? process.env;
  }

  private fail(pos: Position, at: string, message: string): never {
    throw new TemplateError(this.template.name, pos.line, pos.column, `at <${at}>: ${message}`, "render");
  }

  // ---- variables ----

  private mark(): number {
    return this.vars.length;
  }

  private pop(mark: number): void {
    this.vars.length = mark;
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i].name === name) {
        this.vars[i].value = value;
        return;
      }
    }
    // The parser checks every variable is declared before use.
    throw new Error(`internal error: undefined variable ${name}`);
  }

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i].name === name) return this.vars[i].value;
    throw new Error(`internal error: undefined variable ${name}`);
  }

  // ---- walking ----

  async walkList(dot: unknown, list: ListNode): Promise<void> {
    for (const node of list.nodes) await this.walk(dot, node);
  }

  private async walk(dot: unknown, node: Node): Promise<void> {
    switch (node.type) {
      case "text":
        this.out.push(node.text);
        return;
      case "action": {
        const value = await this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.out.push(printAction(value));
        return;
      }
      case "if":
      case "with": {
        const mark = this.mark();
        const value = await this.evalPipeline(dot, node.pipe);
        const afterPipe = this.mark();
        if (truth(value)) {
          await this.walkList(node.type === "with" ? value : dot, node.list);
        } else if (node.elseList) {
          this.pop(afterPipe);
          await this.walkList(dot, node.elseList);
        }
        this.pop(mark);
        return;
      }
      case "range":
        return this.walkRange(dot, node.pipe, node.list, node.elseList, node.pos);
      case "break":
      case "continue":
        throw new LoopSignal(node.type);
    }
  }

  private async walkRange(dot: unknown, pipe: PipeNode, list: ListNode, elseList: ListNode | undefined, pos: Position): Promise<void> {
    const mark = this.mark();
    const value = await this.evalPipeline(dot, { ...pipe, decl: [] });
    const decl = pipe.decl;
    if (!pipe.isAssign) for (const d of decl) this.vars.push({ name: d.name, value: undefined });
    const iteration = async (index: unknown, elem: unknown): Promise<boolean> => {
      if (decl.length === 1) this.setVar(decl[0].name, elem);
      if (decl.length === 2) {
        this.setVar(decl[0].name, index);
        this.setVar(decl[1].name, elem);
      }
      const inner = this.mark();
      try {
        await this.walkList(elem, list);
      } catch (err) {
        if (!(err instanceof LoopSignal)) throw err;
        if (err.kind === "break") return false;
      } finally {
        this.pop(inner);
      }
      return true;
    };
    let ran = false;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        ran = true;
        if (!(await iteration(i, value[i]))) break;
      }
    } else if (isPlainObject(value)) {
      for (const key of sortedKeys(value)) {
        ran = true;
        if (!(await iteration(key, value[key]))) break;
      }
    } else if (typeof value === "number" && Number.isInteger(value)) {
      if (decl.length > 1) this.fail(pos, nodeText(pipe), `can't use ${decl[0].name}, ${decl[1].name} to iterate over a number`);
      for (let i = 0; i < value; i++) {
        ran = true;
        if (!(await iteration(i, i))) break;
      }
    } else if (value !== undefined && value !== null) {
      this.fail(pos, nodeText(pipe), `range can't iterate over ${formatValue(value)} (a ${goTypeName(value)})`);
    }
    this.pop(mark);
    if (!ran && elseList) await this.walkList(dot, elseList);
  }

  // ---- evaluation ----

  private async evalPipeline(dot: unknown, pipe: PipeNode): Promise<unknown> {
    let value: unknown = NO_FINAL;
    for (const cmd of pipe.cmds) value = await this.evalCommand(dot, cmd, value);
    // Go turns a nil interface into "no value" at the end of a pipeline.
    if (value === null) value = undefined;
    for (const d of pipe.decl) {
      if (pipe.isAssign) this.setVar(d.name, value);
      else this.vars.push({ name: d.name, value });
    }
    return value;
  }

  private async evalCommand(dot: unknown, cmd: CommandNode, final: Final): Promise<unknown> {
    const head = cmd.args[0];
    if (head.type === "function") return this.evalFunction(dot, head, cmd.args.slice(1), final);
    // The parser allows arguments and a piped value only for functions.
    return this.evalArg(dot, head);
  }

  private async evalArg(dot: unknown, node: Operand): Promise<unknown> {
    switch (node.type) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "bool":
      case "number":
      case "string":
        return node.value;
      case "field":
        return this.evalFields(dot, node.fields, node);
      case "variable":
        return this.evalFields(this.varValue(node.name), node.fields, node);
      case "chain":
        return this.evalFields(await this.evalArg(dot, node.node), node.fields, node);
      case "pipe":
        return this.evalPipeline(dot, node);
      case "function":
        return this.evalFunction(dot, node, [], NO_FINAL);
    }
  }

  private evalFields(receiver: unknown, fields: string[], node: FieldNode | VariableNode | ChainNode): unknown {
    let value = receiver;
    for (const name of fields) value = this.evalField(value, name, node);
    return value;
  }

  private evalField(receiver: unknown, name: string, node: FieldNode | VariableNode | ChainNode): unknown {
    const at = nodeText(node);
    if (receiver === undefined) {
      if (this.options.errorOnMissingKey) this.fail(node.pos, at, `nil data; no entry for key ${JSON.stringify(name)}`);
      return undefined;
    }
    if (receiver === null) this.fail(node.pos, at, `nil pointer evaluating interface {}.${name}`);
    if (receiver instanceof SecretView || receiver instanceof PkiCertView) {
      const f = receiver.field(name);
      if (!f.found) {
        const fields = receiver instanceof SecretView ? SecretView.FIELDS : PkiCertView.FIELDS;
        const hint = fields.find((k) => k.toLowerCase() === name.toLowerCase());
        this.fail(node.pos, at, `can't evaluate field ${name} in type ${goTypeName(receiver)} (${hint ? `did you mean .${hint}?` : `fields: ${fields.join(", ")}`})`);
      }
      return f.value;
    }
    if (isPlainObject(receiver)) {
      if (Object.hasOwn(receiver, name)) return receiver[name];
      if (this.options.errorOnMissingKey) this.fail(node.pos, at, `map has no entry for key ${JSON.stringify(name)}`);
      return undefined;
    }
    return this.fail(node.pos, at, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  // ---- functions ----

  private async evalFunction(dot: unknown, fn: FunctionNode, argNodes: Operand[], final: Final): Promise<unknown> {
    const name = fn.name;
    if (name === "and" || name === "or") {
      let v: unknown;
      for (const a of argNodes) {
        v = await this.evalArg(dot, a);
        if (truth(v) === (name === "or")) return v;
      }
      return final === NO_FINAL ? v : final;
    }
    const args: unknown[] = [];
    for (const a of argNodes) args.push(await this.evalArg(dot, a));
    if (final !== NO_FINAL) args.push(final);
    try {
      return await this.call(name, args);
    } catch (err) {
      if (err instanceof CallError) this.fail(fn.pos, name, err.message);
      throw err;
    }
  }

  private async call(name: string, args: unknown[]): Promise<unknown> {
    switch (name) {
      case "secret":
      case "pkiCert":
        return this.fetchSecret(name, args);
      case "not":
        return !truth(args[0]);
      case "eq":
        return eq(args[0], args.slice(1));
      case "ne":
        return !eq(args[0], [args[1]]);
      case "lt":
        return compare(args[0], args[1]) < 0;
      case "le":
        return compare(args[0], args[1]) <= 0;
      case "gt":
        return compare(args[0], args[1]) > 0;
      case "ge":
        return compare(args[0], args[1]) >= 0;
      case "index":
        return index(args[0], args.slice(1));
      case "len":
        return len(args[0]);
      case "printf": {
        const format = str(args[0], "printf", "format");
        const pieces = scanFormat(format);
        if (typeof pieces === "string") throw new CallError(pieces);
        return sprintf(pieces, args.slice(1));
      }
      case "toJSON":
      case "toJSONPretty":
        try {
          return toGoJson(args[0], name === "toJSONPretty" ? "  " : "");
        } catch (err) {
          throw new CallError(`error calling ${name}: ${(err as Error).message}`);
        }
      case "base64Encode":
        return Buffer.from(str(args[0], name), "utf8").toString("base64");
      case "base64Decode":
        return base64Decode(str(args[0], name));
      case "trimSpace":
        return str(args[0], name).replace(GO_SPACE_START, "").replace(GO_SPACE_END, "");
      case "toUpper":
        return mapRunes(str(args[0], name), (c) => c.toUpperCase());
      case "toLower":
        return mapRunes(str(args[0], name), (c) => c.toLowerCase());
      case "replaceAll": {
        const [from, to, s] = [str(args[0], name, "old"), str(args[1], name, "new"), str(args[2], name)];
        return from === "" ? [to, ...Array.from(s).map((c) => c + to)].join("") : s.split(from).join(to);
      }
      case "split": {
        const sep = str(args[0], name, "separator");
        const s = str(args[1], name).replace(GO_SPACE_START, "").replace(GO_SPACE_END, "");
        if (s === "") return [];
        return sep === "" ? Array.from(s) : s.split(sep);
      }
      case "join": {
        const sep = str(args[0], name, "separator");
        const list = args[1];
        if (list === undefined || list === null) return "";
        if (!Array.isArray(list)) throw new CallError(`wrong type for value; expected []string; got ${goTypeName(list)}`);
        return list.map((el) => str(el, name, "element")).join(sep);
      }
      case "contains":
        return contains(args[0], args[1]);
      case "env": {
        const key = str(args[0], name);
        return Object.hasOwn(this.env, key) ? (this.env[key] ?? "") : "";
      }
    }
    throw new Error(`internal error: function ${name} has no implementation`);
  }

  private async fetchSecret(fn: "secret" | "pkiCert", args: unknown[]): Promise<unknown> {
    const strings = args.map((a, i) => str(a, fn, i === 0 ? "path" : "parameter"));
    let req: SecretRequest;
    try {
      req = secretRequest(fn, strings[0], strings.slice(1));
    } catch (err) {
      throw new CallError((err as Error).message);
    }
    // A render evaluates one action at a time, so the first to finish is the first referenced.
    const result = await this.cache.fetch(this.options.source, req);
    if (typeof result !== "object" || result === null) throw new CallError(`${fn} ${JSON.stringify(req.path)}: the source returned no secret`);
    if (!this.used.has(req.key)) this.used.set(req.key, { ...req, result });
    return fn === "pkiCert" ? new PkiCertView(result) : new SecretView(result);
  }
}

/** A function failed on its arguments: reported with the template position. */
class CallError extends Error {}

/** The string argument of a function. Numbers pass as their text (consul-template sees JSON numbers as strings). */
function str(v: unknown, fn: string, what = "argument"): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatValue(v);
  if (v === undefined || v === null) throw new CallError(`invalid value for the ${what} of ${fn}; expected string (a missing key?)`);
  throw new CallError(`wrong type for the ${what} of ${fn}; expected string; got ${goTypeName(v)}`);
}

// Go's unicode.IsSpace.
const GO_SPACE_START = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const GO_SPACE_END = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;

/** Go's strings.ToUpper/ToLower map rune by rune: a rune whose mapping is several runes (ß) stays. */
function mapRunes(s: string, f: (c: string) => string): string {
  let out = "";
  for (const c of s) {
    const m = f(c);
    out += Array.from(m).length === 1 ? m : c;
  }
  return out;
}

function base64Decode(s: string): string {
  const clean = s.replace(/[\r\n]/g, "");
  const bad = clean.search(/[^A-Za-z0-9+/=]/);
  const firstPad = clean.indexOf("=");
  let invalidAt = bad;
  if (invalidAt < 0 && firstPad >= 0 && !/^={1,2}$/.test(clean.slice(firstPad))) invalidAt = firstPad;
  if (invalidAt < 0 && clean.length % 4 !== 0) invalidAt = clean.length - (clean.length % 4);
  if (invalidAt >= 0) throw new CallError(`error calling base64Decode: illegal base64 data at input byte ${invalidAt}`);
  const bytes = Buffer.from(clean, "base64");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new CallError("error calling base64Decode: the decoded data is not UTF-8 text (binary output is not supported)");
  }
}

type Basic = "bool" | "number" | "string";

function basicKind(v: unknown): Basic | undefined {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  return undefined;
}

/**
 * Go's `eq`: true when arg1 equals any of the others. Nil equals only nil. A number and a string
 * compare by text (as Vault Agent compares the numbers of a secret, which it keeps as strings).
 */
function eq(arg1: unknown, others: unknown[]): boolean {
  const nil1 = arg1 === undefined || arg1 === null;
  for (const arg of others) {
    const nil2 = arg === undefined || arg === null;
    if (nil1 || nil2) {
      if (nil1 && nil2) return true;
      continue;
    }
    const k1 = basicKind(arg1);
    const k2 = basicKind(arg);
    if (!k1 || !k2) {
      if (arg1 instanceof SecretView || arg1 instanceof PkiCertView) {
        if (arg1 === arg) return true;
        continue;
      }
      throw new CallError(`error calling eq: non-comparable type ${goTypeName(k1 ? arg : arg1)}`);
    }
    if (k1 !== k2) {
      // consul-template keeps Vault's numbers as json.Number, a string: eq .Data.port "5432" holds there.
      if ((k1 === "number" && k2 === "string") || (k1 === "string" && k2 === "number")) {
        if (formatValue(arg1) === formatValue(arg)) return true;
        continue;
      }
      throw new CallError(`error calling eq: incompatible types for comparison (${goTypeName(arg1)} and ${goTypeName(arg)})`);
    }
    if (arg1 === arg) return true;
  }
  return false;
}

/** Go's ordering for `lt le gt ge`: numbers with numbers, strings with strings. */
function compare(a: unknown, b: unknown): number {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (!ka || !kb || ka === "bool" || kb === "bool") {
    const bad = !ka || ka === "bool" ? a : b;
    throw new CallError(`invalid type for comparison: ${goTypeName(bad)}`);
  }
  if (ka !== kb) throw new CallError(`incompatible types for comparison (${goTypeName(a)} and ${goTypeName(b)})`);
  if (ka === "string") return compareStrings(a as string, b as string);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** Go's `index`: map keys and list positions, one level per index. Missing map keys give no value. */
function index(item: unknown, indexes: unknown[]): unknown {
  let v = item;
  for (const idx of indexes) {
    if (v === undefined || v === null) throw new CallError("error calling index: index of untyped nil");
    if (Array.isArray(v) || typeof v === "string") {
      if (typeof idx !== "number" || !Number.isInteger(idx)) throw new CallError(`error calling index: cannot index slice/array with type ${goTypeName(idx)}`);
      const length = typeof v === "string" ? Buffer.byteLength(v) : v.length;
      if (idx < 0 || idx >= length) throw new CallError(`error calling index: index out of range: ${idx}`);
      v = typeof v === "string" ? Buffer.from(v)[idx] : v[idx];
    } else if (isPlainObject(v)) {
      if (typeof idx !== "string") throw new CallError(`error calling index: value has type ${goTypeName(idx)}; should be string`);
      v = Object.hasOwn(v, idx) ? v[idx] : undefined;
    } else {
      throw new CallError(`error calling index: can't index item of type ${goTypeName(v)}`);
    }
  }
  return v;
}

function len(v: unknown): number {
  if (typeof v === "string") return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (isPlainObject(v)) return Object.keys(v).length;
  throw new CallError(`error calling len: len of ${v === undefined || v === null ? "nil" : `type ${goTypeName(v)}`}`);
}

/** consul-template's `contains needle haystack`: an element of a list, or a substring of a string. */
function contains(needle: unknown, haystack: unknown): boolean {
  if (Array.isArray(haystack)) return haystack.some((el) => el === needle && (typeof el === "string" || typeof el === "number"));
  if (typeof haystack === "string") return typeof needle === "string" && haystack.includes(needle);
  return false;
}
