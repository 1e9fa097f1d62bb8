/**
 * The parse tree of a template, modelled on Go's `text/template/parse` nodes. Comments leave no
 * node; `{{else if}}` and `{{else with}}` become an `if`/`with` node alone in the `elseList`.
 */
import type { SourceLocation } from "./errors.js";

/** Where a node starts: the offset in the template text and the location reported in messages. */
export interface Position extends SourceLocation {
  offset: number;
}

export type Node = TextNode | ActionNode | IfNode | WithNode | RangeNode | BreakNode | ContinueNode;

export interface ListNode {
  type: "list";
  nodes: Node[];
}

/** Literal text, already trimmed by `{{-` / `-}}` markers. */
export interface TextNode {
  type: "text";
  pos: Position;
  text: string;
}

/** `{{ pipeline }}`: prints the value unless the pipeline declares or assigns variables. */
export interface ActionNode {
  type: "action";
  pos: Position;
  pipe: PipeNode;
}

interface ControlNode {
  pos: Position;
  pipe: PipeNode;
  list: ListNode;
  elseList?: ListNode;
}

export interface IfNode extends ControlNode {
  type: "if";
}

export interface WithNode extends ControlNode {
  type: "with";
}

export interface RangeNode extends ControlNode {
  type: "range";
}

export interface BreakNode {
  type: "break";
  pos: Position;
}

export interface ContinueNode {
  type: "continue";
  pos: Position;
}

export interface VariableDecl {
  /** With the `$`: `$x`. */
  name: string;
  pos: Position;
}

/**
 * Commands joined by `|`, optionally declaring (`$x :=`) or assigning (`$x =`) variables. Also
 * the node of a parenthesised pipeline used as an operand (which may not declare variables).
 */
export interface PipeNode {
  type: "pipe";
  pos: Position;
  decl: VariableDecl[];
  isAssign: boolean;
  cmds: CommandNode[];
}

/** Space-separated operands; when the first is a function the rest are its arguments. */
export interface CommandNode {
  type: "command";
  pos: Position;
  args: Operand[];
}

export type Operand = FieldNode | VariableNode | DotNode | ChainNode | FunctionNode | StringNode | NumberNode | BoolNode | NilNode | PipeNode;

/** `.Data.password`: fields looked up from dot. */
export interface FieldNode {
  type: "field";
  pos: Position;
  fields: string[];
}

/** `$s` or `$s.Data.x` (`$` alone is the data passed to the template). */
export interface VariableNode {
  type: "variable";
  pos: Position;
  name: string;
  fields: string[];
}

export interface DotNode {
  type: "dot";
  pos: Position;
}

/** `(pipeline).Field.Other`: fields looked up on the value of another operand. */
export interface ChainNode {
  type: "chain";
  pos: Position;
  node: Operand;
  fields: string[];
}

/** The name of a function (Go's identifier node). */
export interface FunctionNode {
  type: "function";
  pos: Position;
  name: string;
}

export interface StringNode {
  type: "string";
  pos: Position;
  /** The decoded value. */
  value: string;
  /** As written, quotes included. */
  raw: string;
}

export interface NumberNode {
  type: "number";
  pos: Position;
  value: number;
  /** As written. */
  raw: string;
}

export interface BoolNode {
  type: "bool";
  pos: Position;
  value: boolean;
}

export interface NilNode {
  type: "nil";
  pos: Position;
}

/** Source-like text of an operand, command or pipeline, for messages (`.Data.x`, `secret "p"`). */
export function nodeText(node: Operand | CommandNode): string {
  switch (node.type) {
    case "field":
      return "." + node.fields.join(".");
    case "variable":
      return node.name + node.fields.map((f) => "." + f).join("");
    case "dot":
      return ".";
    case "chain": {
      const inner = node.node.type === "pipe" ? `(${nodeText(node.node)})` : nodeText(node.node);
      return inner + node.fields.map((f) => "." + f).join("");
    }
    case "function":
      return node.name;
    case "string":
    case "number":
      return node.raw;
    case "bool":
      return String(node.value);
    case "nil":
      return "nil";
    case "command":
      return node.args.map((a) => (a.type === "pipe" ? `(${nodeText(a)})` : nodeText(a))).join(" ");
    case "pipe": {
      const decl = node.decl.length ? `${node.decl.map((d) => d.name).join(", ")} ${node.isAssign ? "=" : ":="} ` : "";
      return decl + node.cmds.map((c) => nodeText(c)).join(" | ");
    }
  }
}
