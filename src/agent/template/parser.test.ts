import { describe, expect, it } from "vitest";
import { UserError } from "../../sdk/errors.js";
import { dependencies } from "./dependencies.js";
import { TemplateError } from "./errors.js";
import { parseTemplate, type ParseOptions } from "./parser.js";

/** The TemplateError parsing fails with (fails the test when it parses). */
function parseError(text: string, name = "t", options?: ParseOptions): TemplateError {
  try {
    parseTemplate(text, name, options);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to fail to parse`);
}

// errors:begin
/**
 * Templates that must not parse, and the message (with line:column). `go` says what Go's
 * text/template with consul-template's functions does with the same text: "parse" when it rejects
 * it too when parsing, "render" when it only fails when rendering (here we fail at startup), "ok"
 * when it renders it without data (leasehold is stricter on purpose). Checked against Go 1.19
 * with consul-template's function implementations.
 */
const ERRORS: [name: string, template: string, message: string, go: "parse" | "render" | "ok"][] = [
  ["unknown function, with a suggestion", "a: 1\nb: 2\nuser:{{ .Data | toUpperr }}\n", 'web.ctmpl:3:17: function "toUpperr" not defined (did you mean "toUpper"?)', "parse"],
  ["unknown function", "{{ frobnicate 1 }}", 't:1:4: function "frobnicate" not defined', "parse"],
  ["file is left out for security", '{{ file "/etc/passwd" }}', 't:1:4: function "file" is not supported by leasehold templates (reading local files from templates is disabled for security)', "parse"],
  ["Consul functions are not available", '{{ key "service/x" }}', 't:1:4: function "key" is not supported by leasehold templates (Consul functions are not available: leasehold is a Vault-compatible broker only)', "parse"],
  ["unclosed action", "a\nb {{ .x ", "t:2:3: unclosed action (no }} before the end of the template)", "parse"],
  ["unclosed comment", "a {{/* x", "t:1:3: unclosed comment", "parse"],
  ["comment followed by more in the action", "{{/* x */ .y }}", "t:1:10: comment ends before closing delimiter (write {{/* ... */}})", "parse"],
  ["comment not right after the delimiter", "{{ /* x */ }}", 't:1:4: unexpected "/" in command', "parse"],
  ["end without a block", "a\n{{ end }}", "t:2:4: unexpected {{end}}: no {{if}}, {{with}} or {{range}} is open", "parse"],
  ["else without a block", "{{ else }}", "t:1:4: unexpected {{else}}: no {{if}}, {{with}} or {{range}} is open", "parse"],
  ["if without end", "{{ if .x }}\nyes", "t:1:4: {{if}} has no matching {{end}}", "parse"],
  ["range without end around a closed if", "{{ range .x }}{{ if . }}{{ end }}", "t:1:4: {{range}} has no matching {{end}}", "parse"],
  ["with without end after else", "{{ with .x }}a{{ else }}b", "t:1:4: {{with}} has no matching {{end}}", "parse"],
  ["else after else", "{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}", "t:1:26: {{else}} after {{else}}: expected {{end}} to close the {{if}}", "parse"],
  ["else if in a range", "{{ range .x }}{{ else if 1 }}{{ end }}", "t:1:18: {{else if}} is only allowed in {{if}}, not in {{range}}", "parse"],
  ["else with in an if", "{{ if 1 }}{{ else with 1 }}{{ end }}", "t:1:14: {{else with}} is only allowed in {{with}}, not in {{if}}", "parse"],
  ["end with an argument", "{{ if 1 }}{{ end 1 }}", 't:1:18: unexpected "1" in {{end}}', "parse"],
  ["unexpected right paren", "{{ .x) }}", "t:1:6: unexpected right paren", "parse"],
  ["unclosed left paren", "{{ (toUpper .x }}", "t:1:4: unclosed left paren", "parse"],
  ["unterminated string", '{{ "abc }}', "t:1:4: unterminated quoted string", "parse"],
  ["a newline in a string", '{{ "a\nb" }}', "t:1:4: unterminated quoted string", "parse"],
  ["unterminated raw string", "{{ `abc }}", "t:1:4: unterminated raw quoted string", "parse"],
  ["invalid escape", String.raw`{{ "a\qb" }}`, String.raw`t:1:6: invalid escape sequence \q in string`, "parse"],
  ["bad \\u escape", String.raw`{{ "\u12" }}`, String.raw`t:1:5: invalid escape \u: needs 4 hex digits`, "parse"],
  ["\\x above ASCII", String.raw`{{ "\xff" }}`, String.raw`t:1:5: \xff is not an ASCII character (write the character itself or \u00ff)`, "ok"],
  ["malformed character constant", "{{ 'ab' }}", "t:1:4: malformed character constant: 'ab'", "parse"],
  ["bad number", "{{ 3x }}", 't:1:4: bad number syntax: "3x"', "parse"],
  ["number with two dots", "{{ 1.2.3 }}", 't:1:4: bad number syntax: "1.2.3"', "parse"],
  ["bad character after a field", "{{ .a# }}", "t:1:6: bad character U+0023 '#'", "parse"],
  ["character that is not ASCII", '{{ "a" € }}', "t:1:8: unrecognized character in action: U+20AC '€'", "parse"],
  ["stray punctuation", '{{ "a" @ }}', 't:1:8: unexpected "@" in operand', "parse"],
  ["operands not separated by spaces", '{{ printf "a""b" }}', 't:1:14: unexpected string in operand', "parse"],
  [": without =", "{{ $x : 1 }}", "t:1:7: expected :=", "parse"],
  ["undefined variable", "{{ $nope }}", 't:1:4: undefined variable "$nope"', "parse"],
  ["assigning an undefined variable", "{{ $nope = 1 }}", 't:1:4: undefined variable "$nope" (declare it with $nope := ...)', "render"],
  ["a variable used in its own declaration", "{{ $x := $x }}", 't:1:10: undefined variable "$x"', "render"],
  ["a variable of a block used after its end", "{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}", 't:1:36: undefined variable "$x"', "parse"],
  ["a variable of an if body used in its else", "{{ if 1 }}{{ $x := 1 }}{{ else }}{{ $x }}{{ end }}", 't:1:37: undefined variable "$x"', "ok"],
  ["declaring $", "{{ $ := 1 }}", "t:1:4: cannot declare or assign $", "ok"],
  ["declaring inside parentheses", "{{ ($x := 1) }}", "t:1:5: variables cannot be declared or assigned inside parentheses", "ok"],
  ["if without a value", "{{ if }}{{ end }}", "t:1:7: missing value for if", "parse"],
  ["empty action", "{{ }}", "t:1:4: missing value for command", "parse"],
  ["a declaration without a value", "{{ $x := }}", "t:1:4: missing value for command", "parse"],
  ["a pipe with nothing after it", "{{ .x | }}", 't:1:7: missing command after "|"', "ok"],
  ["a pipe with nothing before it", "{{ | toUpper }}", 't:1:4: unexpected "|" in command', "parse"],
  ["a string after a pipe", '{{ "a" | "b" }}', 't:1:10: non executable command in pipeline stage 2: "b" is not a function', "parse"],
  ["a field after a pipe", "{{ .a | .b }}", "t:1:9: non executable command in pipeline stage 2: .b is not a function", "ok"],
  ["arguments to a field", '{{ .x "a" }}', "t:1:7: can't give argument to non-function .x", "ok"],
  ["arguments to a string", '{{ "x" "a" }}', `t:1:8: can't give argument to non-function "x"`, "render"],
  ["nil as a command", "{{ nil }}", "t:1:4: nil is not a command", "render"],
  ["a field of a literal", '{{ "a".b }}', 't:1:7: unexpected . after term "\\"a\\""', "parse"],
  ["too many arguments", '{{ toUpper "a" "b" }}', "t:1:4: wrong number of args for toUpper: want 1 got 2", "render"],
  ["too few arguments, counting the piped value", '{{ "a" | replaceAll "x" }}', "t:1:10: wrong number of args for replaceAll: want 3 got 2", "render"],
  ["eq with one argument", "{{ eq 1 }}", "t:1:4: wrong number of args for eq: want at least 2 got 1", "render"],
  ["secret without a path", "{{ secret }}", "t:1:4: wrong number of args for secret: want at least 1 got 0", "render"],
  ["a function used as a value needs no arguments", '{{ printf "%s" toUpper }}', "t:1:16: wrong number of args for toUpper: want 1 got 0", "render"],
  ["two declarations in an if", "{{ if $a, $b := 1 }}{{ end }}", "t:1:9: too many declarations in if", "parse"],
  ["three declarations in a range", "{{ range $a, $b, $c := .x }}{{ end }}", "t:1:16: too many declarations in range (at most $index, $element)", "parse"],
  ["a range declaring a field", "{{ range $a, .x }}{{ end }}", "t:1:14: range can only initialize variables", "parse"],
  ["a range variable without :=", "{{ range $a, $b }}{{ end }}", "t:1:17: expected := or = after $b", "parse"],
  ["break outside a range", "{{ break }}", "t:1:4: {{break}} outside {{range}}", "parse"],
  ["continue in an if outside a range", "{{ if 1 }}{{ continue }}{{ end }}", "t:1:14: {{continue}} outside {{range}}", "parse"],
  ["break with an argument", "{{ range .x }}{{ break 1 }}{{ end }}", 't:1:24: unexpected "1" in {{break}}', "parse"],
  ["named templates", '{{ template "x" }}', "t:1:4: {{template}} is not supported: leasehold templates have no named templates ({{define}}, {{template}}, {{block}})", "render"],
  ["define", '{{ define "x" }}y{{ end }}', "t:1:4: {{define}} is not supported: leasehold templates have no named templates ({{define}}, {{template}}, {{block}})", "ok"],
  ["an empty secret path", '{{ secret "/" }}', 't:1:11: secret: invalid path "/"', "render"],
  ["an empty pkiCert path", '{{ pkiCert " " }}', 't:1:12: pkiCert: invalid path " "', "render"],
  ["a secret parameter that is not k=v", '{{ secret "pki/issue/web" "common_name=a" "ttl" }}', 't:1:43: secret: "ttl" is not a k=v pair', "render"],
  ["a printf verb that is not supported", '{{ printf "%x" 1 }}', "t:1:11: printf: verb %x is not supported (supported: %s %d %v %q %%)", "ok"],
  ["printf width", '{{ printf "[%-5s]" "a" }}', 't:1:11: printf: flags, width and precision are not supported (in "%-5s"); supported: %s %d %v %q %%', "ok"],
  ["printf ending in %", '{{ printf "50%" }}', "t:1:11: printf: the format ends with a lone %", "ok"],
];
// errors:end

describe("parseTemplate: errors, with their position", () => {
  it.each(ERRORS)("%s", (_name, template, message) => {
    const name = message.startsWith("web.ctmpl") ? "web.ctmpl" : "t";
    const err = parseError(template, name);
    expect(err.message).toBe(message);
    expect(err.phase).toBe("parse");
  });

  it("errors are UserErrors carrying the name, line, column and reason", () => {
    const err = parseError("ok\n  {{ nope }}", "app.ctmpl");
    expect(err).toBeInstanceOf(UserError);
    expect(err.code).toBe("template_error");
    expect([err.templateName, err.line, err.column, err.reason]).toEqual(["app.ctmpl", 2, 6, 'function "nope" not defined']);
  });

  it("names the custom delimiters in messages", () => {
    expect(parseError("<% .x ", "t", { leftDelimiter: "<%", rightDelimiter: "%>" }).message).toBe("t:1:1: unclosed action (no %> before the end of the template)");
    expect(parseError("[[/* x */ 1 ]]", "t", { leftDelimiter: "[[", rightDelimiter: "]]" }).message).toBe("t:1:10: comment ends before closing delimiter (write [[/* ... */]])");
  });

  it("refuses empty delimiters", () => {
    expect(parseError("x", "t", { leftDelimiter: "" }).message).toBe("t:1:1: template delimiters must not be empty");
  });

  it("reports positions through a locate function", () => {
    const err = parseError("ab\ncd {{ nope }}", "agent.hcl", { locate: (offset) => ({ line: 40 + offset, column: 7 }) });
    expect(err.message).toBe('agent.hcl:49:7: function "nope" not defined');
  });

  it("counts columns after tabs and CRLF line ends as one character each", () => {
    expect(parseError("a\r\n\t{{ nope }}").message).toBe('t:2:5: function "nope" not defined');
  });
});

describe("parseTemplate: the tree", () => {
  it("parses text, actions and control structures with positions", () => {
    const t = parseTemplate('Hi {{ with secret "kv/a" }}{{ .Data.x | toUpper }}{{ else }}none{{ end }}', "t");
    const [text, withNode] = t.root.nodes;
    expect(text).toEqual({ type: "text", pos: { offset: 0, line: 1, column: 1 }, text: "Hi " });
    expect(withNode.type).toBe("with");
    if (withNode.type !== "with") throw new Error("unreachable");
    expect(withNode.pos).toEqual({ offset: 6, line: 1, column: 7 });
    expect(withNode.pipe.cmds[0].args.map((a) => a.type)).toEqual(["function", "string"]);
    const action = withNode.list.nodes[0];
    if (action.type !== "action") throw new Error("expected an action");
    expect(action.pipe.cmds.map((c) => c.args.map((a) => a.type))).toEqual([["field"], ["function"]]);
    expect(withNode.elseList?.nodes).toEqual([{ type: "text", pos: { offset: 60, line: 1, column: 61 }, text: "none" }]);
  });

  it("turns else if into an if inside the else list", () => {
    const t = parseTemplate("{{ if 1 }}a{{ else if 2 }}b{{ else }}c{{ end }}", "t");
    const outer = t.root.nodes[0];
    if (outer.type !== "if") throw new Error("expected if");
    expect(outer.elseList?.nodes.map((n) => n.type)).toEqual(["if"]);
    const inner = outer.elseList?.nodes[0];
    if (inner?.type !== "if") throw new Error("expected if");
    expect(inner.elseList?.nodes).toEqual([{ type: "text", pos: { offset: 37, line: 1, column: 38 }, text: "c" }]);
  });

  it("leaves no node for comments and applies trim markers to the text", () => {
    const t = parseTemplate("a \n{{- /* c */ -}}\n b", "t");
    expect(t.root.nodes).toEqual([
      { type: "text", pos: { offset: 0, line: 1, column: 1 }, text: "a" },
      { type: "text", pos: { offset: 20, line: 3, column: 2 }, text: "b" },
    ]);
  });

  it("joins field chains and keeps declarations", () => {
    const t = parseTemplate('{{ $s := (secret "p").Data.x }}{{ range $k, $v := $s.list }}{{ end }}', "t");
    const [decl, range] = t.root.nodes;
    if (decl.type !== "action" || range.type !== "range") throw new Error("unexpected nodes");
    expect(decl.pipe.decl.map((d) => d.name)).toEqual(["$s"]);
    const chain = decl.pipe.cmds[0].args[0];
    expect(chain.type === "chain" && chain.fields).toEqual(["Data", "x"]);
    expect(range.pipe.decl.map((d) => d.name)).toEqual(["$k", "$v"]);
    expect(range.pipe.isAssign).toBe(false);
    const operand = range.pipe.cmds[0].args[0];
    expect(operand.type === "variable" && [operand.name, operand.fields]).toEqual(["$s", ["list"]]);
  });

  it("accepts range assignment to declared variables", () => {
    const t = parseTemplate("{{ $i := 0 }}{{ $e := 0 }}{{ range $i, $e = .x }}{{ end }}", "t");
    const range = t.root.nodes[2];
    expect(range.type === "range" && range.pipe.isAssign).toBe(true);
  });
});

describe("dependencies", () => {
  it("lists the literal secret requests in every branch, once each", () => {
    const t = parseTemplate(
      `{{ with secret "database/creds/app" }}{{ end }}
{{ if .x }}{{ (secret "/kv/app/").Data.y }}{{ else }}{{ pkiCert "pki/issue/web" "common_name=a" "ttl=1h" }}{{ end }}
{{ range $k, $v := (secret "database/creds/app").Data }}{{ secret "pki/issue/web" "ttl=1h" "common_name=a" }}{{ end }}`,
      "t",
    );
    const deps = dependencies(t);
    expect(deps.secrets.map((s) => [s.kind, s.path, s.data])).toEqual([
      ["read", "database/creds/app", {}],
      ["read", "kv/app", {}],
      ["pkiCert", "pki/issue/web", { common_name: "a", ttl: "1h" }],
      ["write", "pki/issue/web", { ttl: "1h", common_name: "a" }],
    ]);
    expect(deps.dynamic).toEqual([]);
  });

  it("reports calls whose path is computed", () => {
    const t = parseTemplate('{{ secret (printf "db/creds/%s" "x") }}\n{{ "kv/a" | secret }} {{ secret "kv/b" (env "P") }}', "t");
    expect(dependencies(t)).toEqual({
      secrets: [],
      dynamic: [
        { function: "secret", line: 1, column: 4 },
        { function: "secret", line: 2, column: 13 },
        { function: "secret", line: 2, column: 26 },
      ],
    });
  });

  it("finds calls nested in parentheses and in control pipelines", () => {
    const t = parseTemplate('{{ if eq (secret "kv/a").Data.x "1" }}{{ end }}{{ with $s := secret "kv/b" }}{{ end }}', "t");
    expect(dependencies(t).secrets.map((s) => s.path)).toEqual(["kv/a", "kv/b"]);
  });
});
