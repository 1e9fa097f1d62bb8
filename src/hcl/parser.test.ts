import { describe, expect, it } from "vitest";
import { UserError } from "../sdk/errors.js";
import { hclBlocks, parseHcl, parseHclJson, parseHclWithPositions, positionOf, type HclObject } from "./parser.js";

/** The UserError message a parse produces (fails the test when it parses). */
function syntaxError(text: string, sourceName?: string): string {
  try {
    parseHcl(text, sourceName);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(text)}`);
}

describe("parseHcl: attributes and values", () => {
  it("reads attributes with identifier and quoted keys", () => {
    expect(parseHcl(`a = "x"\n"b c" = 2\nd-e.f = true`)).toEqual({ a: "x", "b c": 2, "d-e.f": true });
  });

  it("accepts newlines, commas or nothing between items", () => {
    expect(parseHcl(`a = 1, b = 2\nc = 3 d = 4,`)).toEqual({ a: 1, b: 2, c: 3, d: 4 });
  });

  it("returns an empty object for empty input or only comments", () => {
    expect(parseHcl("")).toEqual({});
    expect(parseHcl("# nothing\n// here\n/* at\nall */\n")).toEqual({});
  });

  it("skips #, // and /* */ comments anywhere between tokens", () => {
    const text = `
      # hash comment
      a = 1 // trailing
      /* block
         comment */ b = /* inline */ 2
      c = [1, # in a list
           2]
    `;
    expect(parseHcl(text)).toEqual({ a: 1, b: 2, c: [1, 2] });
  });

  it("keeps comment markers inside strings", () => {
    expect(parseHcl(`a = "x # y // z /* w */"`)).toEqual({ a: "x # y // z /* w */" });
  });

  it("decodes string escapes", () => {
    expect(parseHcl(String.raw`a = "q\"b\\n\nt\tu\u00e9U\U0001F600s\/"`)).toEqual({ a: 'q"b\\n\nt\tué' + "U😀s/" });
  });

  it("joins a surrogate pair written as two \\u escapes", () => {
    expect(parseHcl(String.raw`a = "\ud83d\ude00"`)).toEqual({ a: "😀" });
  });

  it("reads integers, floats, exponents, negatives and hex", () => {
    expect(parseHcl("a = 42\nb = -7\nc = 3.25\nd = -1.5e3\ne = 2E-2\nf = 0x1F\ng = 0")).toEqual({
      a: 42,
      b: -7,
      c: 3.25,
      d: -1500,
      e: 0.02,
      f: 31,
      g: 0,
    });
  });

  it("reads true and false", () => {
    expect(parseHcl("a = true\nb = false")).toEqual({ a: true, b: false });
  });

  it("reads lists that span lines, nest and end with a trailing comma", () => {
    const text = `
      a = []
      b = ["x", 1, true,]
      c = [
        "one",
        ["two", 3],
        { k = "v" },
      ]
    `;
    expect(parseHcl(text)).toEqual({ a: [], b: ["x", 1, true], c: ["one", ["two", 3], { k: "v" }] });
  });

  it("reads object values, which may hold attributes, blocks and commas", () => {
    expect(parseHcl(`o = { a = 1, "b" = "two"\n nested = { c = [] } inner "l" { d = 1 } }`)).toEqual({
      o: { a: 1, b: "two", nested: { c: [] }, inner: { l: [{ d: 1 }] } },
    });
  });

  it("tolerates CRLF line endings and a byte order mark", () => {
    expect(parseHcl("\uFEFFa = 1\r\nb {\r\n  c = 2\r\n}\r\n")).toEqual({ a: 1, b: [{ c: 2 }] });
  });

  it("stores keys such as __proto__ as ordinary keys without touching prototypes", () => {
    const v = parseHcl(`"__proto__" = { polluted = true }\npath "__proto__" { x = 1 }`);
    expect(Object.keys(v)).toEqual(["__proto__", "path"]);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(v.path as HclObject, "__proto__")?.value).toEqual([{ x: 1 }]);
  });
});

describe("parseHcl: heredocs", () => {
  it("keeps <<EOT text verbatim, with a final newline", () => {
    expect(parseHcl("a = <<EOT\nline one\n  indented \"quoted\" ${x}\nEOT\nb = 1")).toEqual({
      a: 'line one\n  indented "quoted" ${x}\n',
      b: 1,
    });
  });

  it("yields an empty string for an empty heredoc", () => {
    expect(parseHcl("a = <<EOT\nEOT\n")).toEqual({ a: "" });
  });

  it("removes the closing marker's indentation with <<-EOT", () => {
    const text = "policy = <<-EOT\n    path \"a\" {\n      x = 1\n    }\n    EOT\n";
    expect(parseHcl(text)).toEqual({ policy: 'path "a" {\n  x = 1\n}\n' });
  });

  it("lets blank lines through <<-EOT unindentation", () => {
    expect(parseHcl("a = <<-EOT\n  one\n\n  two\n  EOT")).toEqual({ a: "one\n\ntwo\n" });
  });

  it("keeps <<-EOT text as written when a line is less indented than the marker", () => {
    expect(parseHcl("a = <<-EOT\n    one\n  two\n    EOT")).toEqual({ a: "    one\n  two\n" });
  });

  it("accepts heredocs with CRLF line endings and inside lists", () => {
    expect(parseHcl("a = [<<EOT\r\nx\r\nEOT\r\n, \"y\"]")).toEqual({ a: ["x\n", "y"] });
  });

  it("does not end at a line that merely contains the marker", () => {
    expect(parseHcl("a = <<EOT\nEOTX\nnot EOT\nEOT")).toEqual({ a: "EOTX\nnot EOT\n" });
  });
});

describe("parseHcl: blocks", () => {
  it("nests labels as keys and stores the body in an array", () => {
    expect(parseHcl(`path "a" { x = 1 }`)).toEqual({ path: { a: [{ x: 1 }] } });
  });

  it("stores an unlabelled block as an array of bodies", () => {
    expect(parseHcl(`c { d = 2 }`)).toEqual({ c: [{ d: 2 }] });
  });

  it("accumulates repeated blocks with the same labels", () => {
    expect(parseHcl(`path "a" { x = 1 }\npath "a" { x = 2 }`)).toEqual({ path: { a: [{ x: 1 }, { x: 2 }] } });
  });

  it("merges blocks with different labels under the same key", () => {
    expect(parseHcl(`path "a" { x = 1 }\nother = true\npath "b" { y = 2 }`)).toEqual({
      path: { a: [{ x: 1 }], b: [{ y: 2 }] },
      other: true,
    });
  });

  it("nests two labels", () => {
    expect(parseHcl(`resource "t" "n1" { a = 1 }\nresource "t" "n2" {}\nresource "u" "n1" {}`)).toEqual({
      resource: { t: { n1: [{ a: 1 }], n2: [{}] }, u: { n1: [{}] } },
    });
  });

  it("accepts bare identifiers as labels", () => {
    expect(parseHcl(`listener tcp { address = "x" }`)).toEqual({ listener: { tcp: [{ address: "x" }] } });
  });

  it("reads the Vault HCL1 that hcl2-parser rejects (attributes on separate lines, commas)", () => {
    const text = `listener "tcp" { address = "127.0.0.1:8200"\n tls_disable = true }\nstorage "file" { path = "/tmp", a = 1 }`;
    expect(parseHcl(text)).toEqual({
      listener: { tcp: [{ address: "127.0.0.1:8200", tls_disable: true }] },
      storage: { file: [{ path: "/tmp", a: 1 }] },
    });
  });

  it("parses nested blocks inside blocks", () => {
    expect(parseHcl(`outer "o" {\n inner { x = 1 }\n inner { x = 2 }\n}`)).toEqual({ outer: { o: [{ inner: [{ x: 1 }, { x: 2 }] }] } });
  });
});

describe("parseHcl: errors", () => {
  it("refuses a repeated attribute, naming the first line", () => {
    expect(syntaxError("a = 1\n\na = 2")).toBe('input:3:1: duplicate attribute "a" (already set on line 1)');
  });

  it("refuses a repeated attribute inside a block", () => {
    expect(syntaxError(`listener "tcp" {\n  address = "a"\n  address = "b"\n}`)).toBe('input:3:3: duplicate attribute "address" (already set on line 2)');
  });

  it("refuses mixing an attribute and a block of the same name, in either order", () => {
    expect(syntaxError(`path = "x"\npath "a" {}`)).toBe('input:2:1: block "path" conflicts with the attribute "path" set on line 1');
    expect(syntaxError(`path "a" {}\npath = "x"`)).toBe('input:2:1: duplicate attribute "path" (already used as a block on line 1)');
  });

  it("refuses one block name with different numbers of labels", () => {
    expect(syntaxError(`a "x" {}\na "x" "y" {}`)).toBe('input:2:1: block "a" is used with different numbers of labels (first on line 1)');
  });

  it("names the source, line and column", () => {
    expect(syntaxError(`a = 1\nb = `, "policy.hcl")).toBe("policy.hcl:2:5: expected a value (string, number, true/false, list or object), got end of input");
  });

  it("explains a missing = or {", () => {
    expect(syntaxError("a 1")).toBe('input:1:3: expected "=" or "{" after "a", got "1"');
    expect(syntaxError("address\ntls = 1")).toBe('input:2:1: expected "=" or "{" after "address", got "tls"');
  });

  it("refuses assigning to a labelled block", () => {
    expect(syntaxError(`a "b" = 1`)).toBe('input:1:7: a block cannot be assigned with "=": write a "b" { ... }');
  });

  it("reports unterminated blocks, lists, strings, heredocs and comments", () => {
    expect(syntaxError(`a {\n  b = 1\n`)).toBe('input:3:1: expected "}" to close the block');
    expect(syntaxError(`a = [1, 2`)).toBe('input:1:10: expected "," or "]" in list, got end of input');
    expect(syntaxError(`a = [`)).toBe('input:1:6: expected "]" to close the list');
    expect(syntaxError(`a = "abc\nb = 1`)).toBe("input:1:5: unterminated string: strings end on the line they start (use a heredoc <<EOT for multi-line text)");
    expect(syntaxError(`a = <<EOT\nabc\n`)).toBe('input:1:5: unterminated heredoc: expected a line containing only "EOT"');
    expect(syntaxError(`a = 1 /* open`)).toBe('input:1:7: unterminated comment: expected "*/"');
  });

  it("requires a newline after the heredoc marker", () => {
    expect(syntaxError(`a = <<EOT x\nEOT`)).toBe("input:1:5: expected a heredoc marker such as <<EOT followed by a new line");
  });

  it("refuses list elements without commas", () => {
    expect(syntaxError(`a = [1 2]`)).toBe('input:1:8: expected "," or "]" in list, got "2"');
  });

  it("refuses bare words as values and unquoted durations", () => {
    expect(syntaxError(`a = read`)).toBe('input:1:5: expected a value, got "read" (quote strings: "read")');
    expect(syntaxError(`ttl = 10s`)).toBe('input:1:7: invalid number "10s" (quote strings and durations: "10s")');
  });

  it("refuses unknown escapes and short \\u escapes", () => {
    expect(syntaxError(String.raw`a = "C:\path"`)).toBe('input:1:8: unknown escape sequence "\\p" in string (use \\\\ for a backslash)');
    expect(syntaxError(String.raw`a = "\u12"`)).toBe("input:1:6: invalid escape: \\u needs 4 hex digits");
    expect(syntaxError(String.raw`a = "\UFFFFFFFF"`)).toBe("input:1:6: invalid escape: \\UFFFFFFFF is not a Unicode code point");
  });

  it("refuses single quotes, stray punctuation and unknown characters", () => {
    expect(syntaxError(`a = 'x'`)).toBe("input:1:5: single-quoted strings are not HCL: use double quotes");
    expect(syntaxError(`}`)).toBe('input:1:1: expected a key (identifier or quoted string) or end of input, got "}"');
    expect(syntaxError(`a { = }`)).toBe('input:1:5: expected a key (identifier or quoted string) or "}", got "="');
    expect(syntaxError(`a = 1 ; b = 2`)).toBe('input:1:7: unexpected character ";"');
    expect(syntaxError(`a = -x`)).toBe('input:1:5: expected a number after "-"');
  });

  it("counts columns after tabs and on later lines", () => {
    expect(syntaxError("x = 1\n\t\ty = ]")).toBe('input:2:7: expected a value (string, number, true/false, list or object), got "]"');
  });

  it("throws UserError (HTTP 400)", () => {
    expect(() => parseHcl("a =")).toThrow(UserError);
    try {
      parseHcl("a =");
    } catch (err) {
      expect((err as UserError).status).toBe(400);
    }
  });
});

describe("parseHclWithPositions", () => {
  const text = [
    'storage "sqlite" {', // 1
    '  path = "/data"', // 2
    "}", // 3
    "", // 4
    'listener "tcp" {', // 5
    '  address = "127.0.0.1:8200"', // 6
    "  adress = 1", // 7
    "}", // 8
    'listener "tcp" {', // 9
    "  tls_disable = true", // 10
    "}", // 11
    "list = [", // 12
    "  1,", // 13
    "  { k = 2 }", // 14
    "]", // 15
  ].join("\n");
  const doc = parseHclWithPositions(text, "leasehold.hcl");
  const root = doc.value;
  const listeners = (root.listener as HclObject).tcp as HclObject[];

  it("returns the same value as parseHcl", () => {
    expect(doc.value).toEqual(parseHcl(text));
  });

  it("locates top-level keys", () => {
    expect(positionOf(doc, root, "storage")).toEqual({ line: 1, column: 1 });
    expect(positionOf(doc, root, "listener")).toEqual({ line: 5, column: 1 });
    expect(positionOf(doc, root, "list")).toEqual({ line: 12, column: 1 });
  });

  it("locates keys inside each block body, and each body's block", () => {
    expect(positionOf(doc, listeners[0], "adress")).toEqual({ line: 7, column: 3 });
    expect(positionOf(doc, listeners[0])).toEqual({ line: 5, column: 1 });
    expect(positionOf(doc, listeners[1])).toEqual({ line: 9, column: 1 });
    expect(positionOf(doc, listeners[1], "tls_disable")).toEqual({ line: 10, column: 3 });
  });

  it("locates labels and the block occurrences in a body array", () => {
    expect(positionOf(doc, root.listener as HclObject, "tcp")).toEqual({ line: 5, column: 10 });
    expect(positionOf(doc, listeners, 0)).toEqual({ line: 5, column: 1 });
    expect(positionOf(doc, listeners, 1)).toEqual({ line: 9, column: 1 });
  });

  it("locates list elements and keys of objects inside lists", () => {
    const list = root.list as unknown[];
    expect(positionOf(doc, list)).toEqual({ line: 12, column: 8 });
    expect(positionOf(doc, list, 1)).toEqual({ line: 14, column: 3 });
    expect(positionOf(doc, list[1] as HclObject, "k")).toEqual({ line: 14, column: 5 });
  });

  it("answers undefined for unknown keys, foreign objects and documents without positions", () => {
    expect(positionOf(doc, listeners[0], "nope")).toBeUndefined();
    expect(positionOf(doc, {}, "x")).toBeUndefined();
    expect(positionOf(undefined, root, "storage")).toBeUndefined();
  });
});

describe("parseHclJson", () => {
  it("parses a JSON object into HCL values", () => {
    expect(parseHclJson(`{"a": 1, "b": ["x", true], "c": {"d": 2.5}}`)).toEqual({ a: 1, b: ["x", true], c: { d: 2.5 } });
  });

  it("refuses invalid JSON, non-objects and null", () => {
    expect(() => parseHclJson(`{"a": `, "p.json")).toThrow(/^p\.json: invalid JSON: /);
    expect(() => parseHclJson(`[1]`, "p.json")).toThrow(new UserError("p.json: expected a JSON object at the top level"));
    expect(() => parseHclJson(`{"a": {"b": [1, null]}}`, "p.json")).toThrow(new UserError("p.json: a.b[1]: null is not allowed"));
  });

  it("keeps __proto__ as an ordinary key", () => {
    const v = parseHclJson(`{"__proto__": {"polluted": true}}`);
    expect(Object.keys(v)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});

describe("hclBlocks", () => {
  it("reads this parser's output", () => {
    const v = parseHcl(`listener "tcp" { a = 1 }\nlistener "tcp" { a = 2 }\nlistener "unix" {}`);
    expect(hclBlocks(v.listener, 1, "listener")).toEqual([
      { labels: ["tcp"], body: { a: 1 } },
      { labels: ["tcp"], body: { a: 2 } },
      { labels: ["unix"], body: {} },
    ]);
  });

  it("reads the JSON shapes Vault accepts, giving the same blocks as HCL", () => {
    const fromHcl = hclBlocks(parseHcl(`path "a" { x = 1 }\npath "b" { x = 2 }`).path, 1, "path");
    const shapes = [
      `{"path": {"a": {"x": 1}, "b": {"x": 2}}}`,
      `{"path": {"a": [{"x": 1}], "b": [{"x": 2}]}}`,
      `{"path": [{"a": {"x": 1}}, {"b": {"x": 2}}]}`,
      `{"path": [{"a": [{"x": 1}], "b": {"x": 2}}]}`,
    ];
    for (const json of shapes) expect(hclBlocks(parseHclJson(json).path, 1, "path")).toEqual(fromHcl);
  });

  it("reads unlabelled blocks and multi-label blocks", () => {
    expect(hclBlocks(parseHcl(`c { d = 1 }\nc { d = 2 }`).c, 0, "c")).toEqual([
      { labels: [], body: { d: 1 } },
      { labels: [], body: { d: 2 } },
    ]);
    expect(hclBlocks(parseHcl(`r "t" "n" { a = 1 }`).r, 2, "r")).toEqual([{ labels: ["t", "n"], body: { a: 1 } }]);
  });

  it("answers an empty list for a missing key", () => {
    expect(hclBlocks(undefined, 1, "seal")).toEqual([]);
  });

  it("refuses values that are not blocks", () => {
    expect(() => hclBlocks("sqlite", 1, "storage")).toThrow(new UserError('storage: expected a block such as storage "<label>" { ... }, got string "sqlite"'));
    expect(() => hclBlocks({ sqlite: 1 }, 1, "storage")).toThrow(new UserError('storage "sqlite": expected a block such as storage "<label>" { ... }, got number 1'));
  });
});
