/**
 * The secrets a template asks for, found without rendering it: for prefetching and for telling
 * the operator at startup what the agent will read. Only calls whose path and parameters are
 * string literals can be listed; the others (`secret (printf "db/creds/%s" .role)`, a path piped
 * into `secret`) are reported as dynamic and fetched when rendered.
 */
import type { ListNode, Node, Operand, PipeNode } from "./ast.js";
import type { Template } from "./parser.js";
import { secretRequest, type SecretRequest } from "./secrets.js";

export interface DynamicSecretCall {
  function: "secret" | "pkiCert";
  line: number;
  column: number;
}

export interface TemplateDependencies {
  /** Distinct literal requests, in the order they appear in the text. */
  secrets: SecretRequest[];
  /** Calls whose request is only known when rendering. */
  dynamic: DynamicSecretCall[];
}

/**
 * Lists the secret requests of a template, in every branch (an `{{if}}` that is false when
 * rendering still lists its secrets, so do not prefetch `write`/`pkiCert` requests blindly:
 * each fetch issues a new credential).
 */
export function dependencies(template: Template): TemplateDependencies {
  const secrets = new Map<string, SecretRequest>();
  const dynamic: DynamicSecretCall[] = [];

  const pipe = (p: PipeNode): void => {
    p.cmds.forEach((cmd, stage) => {
      const [head, ...args] = cmd.args;
      if (head.type === "function" && (head.name === "secret" || head.name === "pkiCert")) {
        const literal = stage === 0 && args.every((a) => a.type === "string");
        if (literal) {
          const values = args.map((a) => (a.type === "string" ? a.value : ""));
          const req = secretRequest(head.name, values[0], values.slice(1));
          if (!secrets.has(req.key)) secrets.set(req.key, req);
        } else {
          dynamic.push({ function: head.name, line: head.pos.line, column: head.pos.column });
        }
      }
      for (const a of cmd.args) operand(a);
    });
  };
  const operand = (o: Operand): void => {
    if (o.type === "pipe") pipe(o);
    else if (o.type === "chain") operand(o.node);
  };
  const list = (l: ListNode | undefined): void => {
    for (const n of l?.nodes ?? []) node(n);
  };
  const node = (n: Node): void => {
    switch (n.type) {
      case "action":
        pipe(n.pipe);
        return;
      case "if":
      case "with":
      case "range":
        pipe(n.pipe);
        list(n.list);
        list(n.elseList);
        return;
      default:
        return;
    }
  };
  list(template.root);
  return { secrets: [...secrets.values()], dynamic };
}
