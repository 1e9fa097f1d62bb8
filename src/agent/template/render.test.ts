import { describe, expect, it } from "vitest";
import { UserError } from "../../sdk/errors.js";
import { TemplateError } from "./errors.js";
import { parseTemplate } from "./parser.js";
import { renderTemplate, type RenderOptions } from "./render.js";
import { SecretCache, type SecretResult, type SecretSource } from "./secrets.js";

// cases:begin
/** Test data for the renderer: what the in-memory source answers for each path. */
const STORE: Record<string, SecretResult> = {
  "secret/data/app": {
    data: {
      data: { user: "app", "pass-word": "s3cr3t", zeta: "z", alpha: "a", Mid: "m" },
      metadata: { version: 3, created_time: "2024-01-01T00:00:00Z" },
    },
    lease_id: "",
    lease_duration: 0,
    renewable: false,
  },
  "kv/app": {
    data: {
      host: "db.internal",
      port: 5432,
      ratio: 0.25,
      tls: true,
      off: false,
      empty: "",
      zero: 0,
      none: null,
      list: ["a", "b", "c"],
      emptyList: [],
      emptyMap: {},
      nested: { deep: { value: "found" } },
      html: "<a&b>",
      lines: "line1\nline2",
      padded: " \t x y \n",
      b64: "aGVsbG8gd29ybGQ=",
      csv: " a,b ,c ",
      unicode: "Grüße",
    },
    lease_id: "",
    lease_duration: 2764800,
    renewable: false,
  },
  "database/creds/app": {
    data: { username: "v-app-1", password: "pw-1" },
    lease_id: "database/creds/app/abc123",
    lease_duration: 3600,
    renewable: true,
  },
};

type Case = [name: string, template: string, expected: string, options?: { errorOnMissingKey?: boolean; env?: Record<string, string>; goCheck?: false }];

/**
 * Templates and what they render to. Every case without `goCheck: false` was also run through Go's
 * text/template with consul-template's functions and the same data, and gives the same text there.
 * `goCheck: false` marks the deliberate differences (documented in the module comments) and the
 * features newer than the Go used for the check.
 */
const CASES: Case[] = [
  // text and trim markers
  ["plain text", "hello\nworld\n", "hello\nworld\n"],
  ["action without trim keeps spaces", "a {{ 1 }} b\n", "a 1 b\n"],
  ["trim both sides", "a  {{- 1 -}}  b", "a1b"],
  ["left trim eats newlines and tabs", "a\n\t \n{{- 1 }}\n b", "a1\n b"],
  ["right trim eats newlines", "a {{ 1 -}} \n\n b", "a 1b"],
  ["trim markers on CRLF text", "a \r\n{{- 1 -}}\r\n b", "a1b"],
  ["trim does not reach past the neighbouring action", "a {{ 1 }} {{- 2 }} c", "a 12 c"],
  ["whitespace between two trims vanishes", "{{ 1 -}}\n  \n{{- 2 }}", "12"],
  ["{{-3}} is a negative number, not a trim marker", "{{-3}}", "-3"],
  ["negative number with spaces", "{{ -3 }}", "-3"],
  ["trim marker with a tab and newline", "x\n{{-\t1\n-}}\ny", "x1y"],
  ["comment renders nothing", "a {{/* note */}} b", "a  b"],
  ["trimmed comment", "a\n  {{- /* note */ -}}\n  b", "ab"],
  ["multi-line comment", "a{{/* one\ntwo */}}b", "ab"],
  ["multi-line action", "{{ printf\n  \"%s-%s\"\n  \"x\"\n  \"y\" }}", "x-y"],
  [
    "a typical Vault Agent file",
    '{{ with secret "database/creds/app" -}}\nusername={{ .Data.username }}\npassword={{ .Data.password }}\n{{ end -}}\n',
    "username=v-app-1\npassword=pw-1\n",
  ],
  [
    "a typical env file with leading trims",
    '{{- with secret "secret/data/app" }}\nexport APP_USER="{{ .Data.data.user }}"\nexport APP_PASS="{{ index .Data.data "pass-word" }}"\n{{- end }}\n',
    '\nexport APP_USER="app"\nexport APP_PASS="s3cr3t"\n',
  ],

  // literals
  ["string escapes", String.raw`{{ "q\"t\tn\\ \u00e9 \x41 \101" }}`, 'q"t\tn\\ é A A'],
  ["raw string spans lines", "{{ `a\\n\nb` }}", "a\\n\nb"],
  ["character constant is its code point", "{{ 'a' }} {{ '\\n' }}", "97 10"],
  ["numbers: int, float, hex, octal, exponent", "{{ 42 }} {{ 1.5 }} {{ 0x1F }} {{ 017 }} {{ 0o17 }} {{ 0b101 }} {{ 1e3 }} {{ +7 }}", "42 1.5 31 15 15 5 1000 7"],
  ["booleans", "{{ true }} {{ false }}", "true false"],
  ["nil as an argument", '{{ printf "%v" nil }}', "<nil>"],

  // fields and secrets
  ["KV v1 field", '{{ with secret "kv/app" }}{{ .Data.host }}:{{ .Data.port }}{{ end }}', "db.internal:5432"],
  ["KV v2 fields", '{{ with secret "secret/data/app" }}{{ .Data.data.user }} v{{ .Data.metadata.version }}{{ end }}', "app v3"],
  ["nested fields", '{{ with secret "kv/app" }}{{ .Data.nested.deep.value }}{{ end }}', "found"],
  ["index with a dashed key", '{{ with secret "secret/data/app" }}{{ index .Data.data "pass-word" }}{{ end }}', "s3cr3t"],
  ["index through several levels and into a list", '{{ with secret "kv/app" }}{{ index .Data "nested" "deep" "value" }} {{ index .Data.list 1 }}{{ end }}', "found b"],
  [
    "lease fields",
    '{{ with secret "database/creds/app" }}{{ .LeaseID }} {{ .LeaseDuration }} {{ .Renewable }}{{ end }}',
    "database/creds/app/abc123 3600 true",
  ],
  ["secret into a variable", '{{ $s := secret "database/creds/app" }}{{ $s.Data.username }}/{{ $s.Data.password }}', "v-app-1/pw-1"],
  ["secret in parentheses with a field chain", '{{ (secret "database/creds/app").Data.username }}', "v-app-1"],
  [
    "a whole secret as JSON",
    '{{ secret "secret/data/app" | toJSON }}',
    '{"RequestID":"","LeaseID":"","LeaseDuration":0,"Renewable":false,"Data":{"data":{"Mid":"m","alpha":"a","pass-word":"s3cr3t","user":"app","zeta":"z"},"metadata":{"created_time":"2024-01-01T00:00:00Z","version":3}},"Metadata":null,"Warnings":null,"Auth":null,"WrapInfo":null}',
  ],
  ["leading and trailing slashes in the path", '{{ (secret "/kv/app/").Data.host }}', "db.internal"],
  ["booleans, lists and maps print as Go prints them", '{{ with secret "kv/app" }}{{ .Data.tls }} {{ .Data.list }} {{ .Data.nested }} {{ .Data.emptyList }} {{ .Data.emptyMap }}{{ end }}', "true [a b c] map[deep:map[value:found]] [] map[]"],
  ["map keys print sorted", '{{ (secret "secret/data/app").Data.data }}', "map[Mid:m alpha:a pass-word:s3cr3t user:app zeta:z]"],
  ["a whole secret prints as Go prints consul-template's struct", '{{ secret "database/creds/app" }}', "{ database/creds/app/abc123 3600 true map[password:pw-1 username:v-app-1] map[] [] <nil> <nil>}"],
  ["printf %v of a secret keeps Go's &", '{{ printf "%v" (secret "database/creds/app") }}', "&{ database/creds/app/abc123 3600 true map[password:pw-1 username:v-app-1] map[] [] <nil> <nil>}"],
  ["floats print as written", '{{ (secret "kv/app").Data.ratio }}', "0.25"],
  ["root data is empty in Vault Agent", "{{ . }}|{{ $ }}", "<no value>|<no value>"],

  // missing keys
  ["missing key renders <no value>", '{{ with secret "kv/app" }}[{{ .Data.nope }}]{{ end }}', "[<no value>]"],
  ["missing key deeper down renders <no value>", '{{ with secret "kv/app" }}[{{ .Data.nope.deeper }}]{{ end }}', "[<no value>]"],
  ["JSON null renders <no value>", '{{ with secret "kv/app" }}[{{ .Data.none }}]{{ end }}', "[<no value>]"],
  ["a variable holding JSON null has no value, so its fields have none either", '{{ $n := (secret "kv/app").Data.none }}[{{ $n.x }}]', "[<no value>]"],
  ["index of a missing key renders <no value>, even with error_on_missing_key", '{{ with secret "kv/app" }}[{{ index .Data "nope" }}]{{ end }}', "[<no value>]", { errorOnMissingKey: true }],

  // variables
  ["declare and use", '{{ $x := "v" }}{{ $x }}{{ $x }}', "vv"],
  ["assign changes the variable", '{{ $x := "a" }}{{ $x = "b" }}{{ $x }}', "b"],
  ["assignment inside a range persists", '{{ $last := "" }}{{ range (secret "kv/app").Data.list }}{{ $last = . }}{{ end }}{{ $last }}', "c"],
  ["a variable declared in a block ends with it", '{{ $x := "outer" }}{{ if true }}{{ $x := "inner" }}{{ $x }}{{ end }} {{ $x }}', "inner outer"],
  ["$ inside a range is the root", '{{ range (secret "kv/app").Data.list }}{{ $ }}{{ end }}', "<no value><no value><no value>"],

  // range
  ["range over a list", '{{ range (secret "kv/app").Data.list }}{{ . }},{{ end }}', "a,b,c,"],
  ["range with index and element", '{{ range $i, $e := (secret "kv/app").Data.list }}{{ $i }}={{ $e }} {{ end }}', "0=a 1=b 2=c "],
  ["range with one variable gets the element", '{{ range $e := (secret "kv/app").Data.list }}{{ $e }}{{ end }}', "abc"],
  ["range over a map visits keys in sorted order", '{{ range $k, $v := (secret "secret/data/app").Data.data }}{{ $k }}={{ $v }};{{ end }}', "Mid=m;alpha=a;pass-word=s3cr3t;user=app;zeta=z;"],
  ["range over a map sets dot to the value", '{{ range (secret "secret/data/app").Data.data }}{{ . }}{{ end }}', "mas3cr3tappz"],
  ["range else on an empty list", '{{ range (secret "kv/app").Data.emptyList }}x{{ else }}empty{{ end }}', "empty"],
  ["range else on an empty map", '{{ range (secret "kv/app").Data.emptyMap }}x{{ else }}empty{{ end }}', "empty"],
  ["range else on a missing key", '{{ range (secret "kv/app").Data.nope }}x{{ else }}none{{ end }}', "none"],
  ["nested ranges", '{{ range $a := (secret "kv/app").Data.list }}{{ range $b := (secret "kv/app").Data.list }}{{ $a }}{{ $b }} {{ end }}{{ end }}', "aa ab ac ba bb bc ca cb cc "],
  ["break", '{{ range (secret "kv/app").Data.list }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"],
  ["continue", '{{ range (secret "kv/app").Data.list }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"],
  ["range over an integer", "{{ range 3 }}{{ . }}{{ end }}|{{ range $i := 2 }}{{ $i }}{{ end }}", "012|01", { goCheck: false }],
  [
    "range with trim markers, line per item",
    '{{ range $k, $v := (secret "database/creds/app").Data -}}\n{{ $k }}={{ $v }}\n{{ end -}}\n',
    "password=pw-1\nusername=v-app-1\n",
  ],

  // if and with
  ["if true", "{{ if true }}yes{{ end }}", "yes"],
  ["if else", '{{ if (secret "kv/app").Data.off }}yes{{ else }}no{{ end }}', "no"],
  ["else if chain", '{{ $v := "b" }}{{ if eq $v "a" }}A{{ else if eq $v "b" }}B{{ else if eq $v "c" }}C{{ else }}?{{ end }}', "B"],
  ["else if chain falls through to else", '{{ $v := "z" }}{{ if eq $v "a" }}A{{ else if eq $v "b" }}B{{ else }}?{{ end }}', "?"],
  [
    "Go truthiness of empty values",
    '{{ with secret "kv/app" }}{{ if .Data.empty }}1{{ end }}{{ if .Data.emptyList }}3{{ end }}{{ if .Data.emptyMap }}4{{ end }}{{ if .Data.none }}5{{ end }}{{ if .Data.nope }}6{{ end }}{{ if .Data.off }}7{{ end }}{{ if 0 }}8{{ end }}{{ if "" }}9{{ end }}{{ end }}',
    "",
  ],
  // Vault Agent keeps a secret's numbers as strings, so there a 0 is true.
  ["a secret's number 0 is false", '{{ if (secret "kv/app").Data.zero }}true{{ else }}false{{ end }}', "false", { goCheck: false }],
  [
    "Go truthiness of non-empty values",
    '{{ with secret "kv/app" }}{{ if .Data.host }}1{{ end }}{{ if .Data.port }}2{{ end }}{{ if .Data.list }}3{{ end }}{{ if .Data.nested }}4{{ end }}{{ if .Data.tls }}5{{ end }}{{ if . }}6{{ end }}{{ if 1 }}7{{ end }}{{ end }}',
    "1234567",
  ],
  ["with sets dot", '{{ with (secret "kv/app").Data.nested }}{{ .deep.value }}{{ end }}', "found"],
  ["with on an empty value takes the else", '{{ with (secret "kv/app").Data.empty }}x{{ else }}empty: {{ . }}{{ end }}', "empty: <no value>"],
  ["with declares a variable", '{{ with $h := (secret "kv/app").Data.host }}{{ $h }}={{ . }}{{ end }}', "db.internal=db.internal"],
  ["else with", '{{ with (secret "kv/app").Data.empty }}a{{ else with (secret "kv/app").Data.host }}{{ . }}{{ end }}', "db.internal", { goCheck: false }],
  ["if with a declaration", '{{ if $p := (secret "kv/app").Data.port }}port {{ $p }}{{ end }}', "port 5432"],

  // comparisons and logic
  ["eq and ne on strings", '{{ eq "a" "a" }} {{ eq "a" "b" }} {{ ne "a" "b" }}', "true false true"],
  ["eq with several candidates", '{{ eq "c" "a" "b" "c" }} {{ eq "d" "a" "b" "c" }}', "true false"],
  ["eq on numbers and booleans", "{{ eq 1 1 }} {{ eq 1 2 }} {{ eq true true }} {{ ne false true }}", "true false true true"],
  ["eq compares a secret's number with a string (as Vault Agent's json.Number does)", '{{ eq (secret "kv/app").Data.port "5432" }}', "true"],
  ["eq compares a secret's number with a number", '{{ eq (secret "kv/app").Data.port 5432 }}', "true", { goCheck: false }],
  ["eq with a missing value", '{{ eq (secret "kv/app").Data.nope "x" }}', "false"],
  ["lt le gt ge on numbers", "{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 3 2 }}", "true true false true"],
  ["lt gt on strings compare bytes", '{{ lt "B" "a" }} {{ gt "b" "a" }} {{ lt "a" "ab" }}', "true true true"],
  ["and returns the first false value or the last", '{{ and 1 0 2 }} {{ and 1 2 }} {{ and "x" "" }}|', "0 2 |"],
  ["or returns the first true value or the last", '{{ or 0 "" "x" }} {{ or 0 "" }}| {{ or 0 false }}', "x | false"],
  ["not", '{{ not true }} {{ not "" }} {{ not (secret "kv/app").Data.list }}', "false true false"],
  ["and/or take the piped value last", '{{ "x" | and 1 }} {{ "y" | or 0 }}', "x y"],

  // functions
  ["toJSON sorts keys and escapes HTML like Go", '{{ (secret "secret/data/app").Data.data | toJSON }}', '{"Mid":"m","alpha":"a","pass-word":"s3cr3t","user":"app","zeta":"z"}'],
  ["toJSON of scalars, lists and escapes", '{{ with secret "kv/app" }}{{ .Data.html | toJSON }} {{ .Data.lines | toJSON }} {{ .Data.list | toJSON }} {{ .Data.port | toJSON }} {{ .Data.tls | toJSON }} {{ .Data.none | toJSON }}{{ end }}', '"\\u003ca\\u0026b\\u003e" "line1\\nline2" ["a","b","c"] 5432 true null'],
  [
    "toJSONPretty",
    '{{ with secret "kv/app" }}{{ .Data.nested | toJSONPretty }}\n{{ .Data.list | toJSONPretty }}\n{{ .Data.emptyMap | toJSONPretty }} {{ .Data.emptyList | toJSONPretty }}{{ end }}',
    '{\n  "deep": {\n    "value": "found"\n  }\n}\n[\n  "a",\n  "b",\n  "c"\n]\n{} []',
  ],
  ["base64Encode and base64Decode", '{{ "hello world" | base64Encode }} {{ (secret "kv/app").Data.b64 | base64Decode }} {{ "Grüße" | base64Encode | base64Decode }}', "aGVsbG8gd29ybGQ= hello world Grüße"],
  ["trimSpace", '[{{ (secret "kv/app").Data.padded | trimSpace }}]', "[x y]"],
  ["toUpper and toLower", '{{ "MiXed" | toUpper }} {{ "MiXed" | toLower }} {{ (secret "kv/app").Data.unicode | toUpper }}', "MIXED mixed GRÜßE"],
  ["replaceAll", '{{ "a-b-c" | replaceAll "-" "_" }} {{ replaceAll "x" "y" "xox" }}', "a_b_c yoy"],
  ["split trims, then splits", '{{ range (secret "kv/app").Data.csv | split "," }}[{{ . }}]{{ end }}', "[a][b ][c]"],
  ["split of an empty string gives no items", '{{ range "  " | split "," }}x{{ else }}none{{ end }}', "none"],
  ["join", '{{ "a,b,c" | split "," | join "+" }}', "a+b+c"],
  ["join a secret's list", '{{ (secret "kv/app").Data.list | join ", " }}', "a, b, c", { goCheck: false }],
  ["contains on a list and a string", '{{ with secret "kv/app" }}{{ .Data.list | contains "b" }} {{ .Data.list | contains "z" }} {{ .Data.host | contains "internal" }}{{ end }}', "true false true"],
  ["printf %s %d %v %q %%", '{{ printf "%s|%d|%v|%q|100%%" "s" 42 true "a\\"b\\n" }}', 's|42|true|"a\\"b\\n"|100%'],
  ["printf with a secret's values", '{{ with secret "kv/app" }}{{ printf "%s:%v %v" .Data.host .Data.port .Data.list }}{{ end }}', "db.internal:5432 [a b c]"],
  ["printf %q quotes non-printable characters as Go does", '{{ printf "%q" "tab\\t\\x00é\\u00a0" }}', '"tab\\t\\x00é\\u00a0"'],
  ["printf reports missing and extra arguments as Go does", '{{ printf "%s %s" "a" }} {{ printf "x" 1 "y" }}', "a %!s(MISSING) x%!(EXTRA int=1, string=y)"],
  ["printf %d of a non-number", '{{ printf "%d" "abc" }} {{ printf "%s" nil }}', "%!d(string=abc) %!s(<nil>)"],
  ["printf used in a secret path", '{{ with secret (printf "database/creds/%s" "app") }}{{ .Data.username }}{{ end }}', "v-app-1"],
  ["env", '{{ env "APP_ENV" }}|{{ env "UNSET_VARIABLE_FOR_TEST" }}', "prod|", { env: { APP_ENV: "prod" } }],
  ["len", '{{ with secret "kv/app" }}{{ len .Data.list }} {{ len .Data.host }} {{ len .Data.nested }} {{ len "é" }}{{ end }}', "3 11 1 2"],
  ["pipelines of several stages", '{{ "  MiXed  " | trimSpace | toLower | printf "<%s>" }}', "<mixed>"],
  ["parenthesised pipelines as arguments", '{{ printf "%s-%s" ("a" | toUpper) (toLower "B") }}', "A-b"],

  // writes and pkiCert
  [
    "secret with parameters writes them",
    '{{ with secret "pki/issue/web" "common_name=web.example.com" " ttl = 1h " }}{{ .Data.common_name }} {{ .Data.ttl }} {{ .Data.method }}{{ end }}',
    "web.example.com 1h PUT",
  ],
  [
    "pkiCert exposes Cert, Key and CA ending in newlines, also under .Data",
    '{{ with pkiCert "pki/issue/web" "common_name=web.example.com" }}{{ .Cert }}{{ .Key }}{{ .CA }}{{ .Data.Cert }}{{ end }}',
    "CERT web.example.com\nKEY\nCA\nCERT web.example.com\n",
    { goCheck: false },
  ],
  ["pkiCert CAChain", '{{ range (pkiCert "pki/issue/web" "common_name=a").CAChain }}[{{ . }}]{{ end }}', "[CA\n][ROOT\n]", { goCheck: false }],
];
// cases:end

/** An in-memory source over STORE that counts calls. Writes answer with their parameters and method. */
function memorySource(): SecretSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async read(path) {
      calls.push(`read ${path}`);
      const found = STORE[path];
      if (!found) throw new Error(`no secret at ${path}`);
      return found;
    },
    async write(path, data) {
      calls.push(`write ${path} ${JSON.stringify(data)}`);
      return {
        data: { ...data, method: "PUT", certificate: `CERT ${data.common_name ?? ""}`, private_key: "KEY", issuing_ca: "CA", ca_chain: ["CA", "ROOT\n"] },
        lease_id: `${path}/lease-${calls.length}`,
        lease_duration: 60,
        renewable: false,
      };
    },
  };
}

async function render(text: string, options: Partial<RenderOptions> = {}): Promise<string> {
  const template = parseTemplate(text, "t.ctmpl");
  const result = await renderTemplate(template, { source: memorySource(), env: {}, ...options });
  return result.text;
}

/** The TemplateError a render fails with (fails the test when it renders). */
async function renderError(text: string, options: Partial<RenderOptions> = {}): Promise<TemplateError> {
  try {
    await render(text, options);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to fail`);
}

describe("renderTemplate: the supported subset", () => {
  it.each(CASES)("%s", async (_name, template, expected, options) => {
    expect(await render(template, { errorOnMissingKey: options?.errorOnMissingKey, env: options?.env ?? {} })).toBe(expected);
  });

  it("env reads process.env when no env is given", async () => {
    process.env.LEASEHOLD_TEMPLATE_TEST_VAR = "from-process";
    try {
      const out = await renderTemplate(parseTemplate('{{ env "LEASEHOLD_TEMPLATE_TEST_VAR" }}', "t"), { source: memorySource() });
      expect(out.text).toBe("from-process");
    } finally {
      delete process.env.LEASEHOLD_TEMPLATE_TEST_VAR;
    }
  });

  it("passes data as dot and $ when given", async () => {
    expect(await render("{{ .name }} {{ $.name }}", { data: { name: "x" } })).toBe("x x");
  });

  it("renders with custom delimiters", async () => {
    const t = parseTemplate('{{ literal }} [[- with secret "kv/app" ]]<[[ .Data.host -]] [[ end ]]>', "t", { leftDelimiter: "[[", rightDelimiter: "]]" });
    expect((await renderTemplate(t, { source: memorySource() })).text).toBe("{{ literal }}<db.internal>");
  });

  it("renders the same parsed template many times", async () => {
    const t = parseTemplate('{{ (secret "kv/app").Data.host }}', "t");
    const source = memorySource();
    expect((await renderTemplate(t, { source })).text).toBe("db.internal");
    expect((await renderTemplate(t, { source })).text).toBe("db.internal");
    expect(source.calls).toEqual(["read kv/app", "read kv/app"]);
  });
});

describe("renderTemplate: secrets are fetched once per render", () => {
  const template = `
{{- with secret "database/creds/app" }}{{ .Data.username }}{{ end }}
{{- $s := secret "database/creds/app" }}{{ $s.Data.password }}
{{- range (secret "kv/app").Data.list }}{{ (secret "database/creds/app").LeaseID }}{{ end }}
{{- with secret "pki/issue/web" "common_name=a" "ttl=1h" }}{{ end }}
{{- with secret "pki/issue/web" "ttl=1h" "common_name=a" }}{{ end }}
{{- with secret "pki/issue/web" "common_name=b" }}{{ end }}
{{- with pkiCert "pki/issue/web" "common_name=a" "ttl=1h" }}{{ end }}`;

  it("reads each path once, and writes each distinct set of parameters once", async () => {
    const source = memorySource();
    const result = await renderTemplate(parseTemplate(template, "t"), { source });
    expect(source.calls).toEqual([
      "read database/creds/app",
      "read kv/app",
      'write pki/issue/web {"common_name":"a","ttl":"1h"}',
      'write pki/issue/web {"common_name":"b"}',
      'write pki/issue/web {"common_name":"a","ttl":"1h"}',
    ]);
    expect(result.text).toBe("v-app-1pw-1" + "database/creds/app/abc123".repeat(3));
  });

  it("reports every secret used, in first-use order, with its lease", async () => {
    const result = await renderTemplate(parseTemplate(template, "t"), { source: memorySource() });
    expect(result.secrets.map((s) => [s.kind, s.path, s.args, s.data, s.result.lease_id])).toEqual([
      ["read", "database/creds/app", [], {}, "database/creds/app/abc123"],
      ["read", "kv/app", [], {}, ""],
      ["write", "pki/issue/web", ["common_name=a", "ttl=1h"], { common_name: "a", ttl: "1h" }, "pki/issue/web/lease-3"],
      ["write", "pki/issue/web", ["common_name=b"], { common_name: "b" }, "pki/issue/web/lease-4"],
      ["pkiCert", "pki/issue/web", ["common_name=a", "ttl=1h"], { common_name: "a", ttl: "1h" }, "pki/issue/web/lease-5"],
    ]);
    expect(result.secrets[0].result).toBe(STORE["database/creds/app"]);
  });

  it("does not fetch secrets in branches that do not run, nor arguments of a short-circuited or", async () => {
    const source = memorySource();
    const out = await renderTemplate(parseTemplate('{{ if false }}{{ secret "kv/app" }}{{ end }}{{ or 1 (secret "database/creds/app") }}', "t"), { source });
    expect(out.text).toBe("1");
    expect(source.calls).toEqual([]);
    expect(out.secrets).toEqual([]);
  });

  it("uses pkiCert on the source when it has one", async () => {
    const base = memorySource();
    const pkiCalls: string[] = [];
    const source: SecretSource = {
      read: base.read,
      write: base.write,
      async pkiCert(path, data) {
        pkiCalls.push(`${path} ${JSON.stringify(data)}`);
        return { data: { certificate: "CACHED", private_key: "K", issuing_ca: "C" }, lease_id: "", lease_duration: 0, renewable: false };
      },
    };
    const out = await renderTemplate(parseTemplate('{{ with pkiCert "pki/issue/web" "common_name=a" }}{{ .Cert }}{{ end }}', "t"), { source });
    expect(out.text).toBe("CACHED\n");
    expect(pkiCalls).toEqual(['pki/issue/web {"common_name":"a"}']);
    expect(base.calls).toEqual([]);
  });

  it("a shared cache fetches once across renders, even concurrent ones", async () => {
    let reads = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const source: SecretSource = {
      async read(path) {
        reads++;
        await gate;
        return STORE[path];
      },
      async write() {
        throw new Error("unexpected write");
      },
    };
    const cache = new SecretCache();
    const t1 = parseTemplate('{{ (secret "kv/app").Data.host }}', "a");
    const t2 = parseTemplate('{{ (secret "kv/app").Data.port }}', "b");
    const pending = Promise.all([renderTemplate(t1, { source, cache }), renderTemplate(t2, { source, cache })]);
    release();
    const [a, b] = await pending;
    expect([a.text, b.text]).toEqual(["db.internal", "5432"]);
    expect(reads).toBe(1);
    expect(b.secrets.map((s) => s.path)).toEqual(["kv/app"]);

    cache.clear();
    await renderTemplate(t1, { source, cache });
    expect(reads).toBe(2);
  });

  it("without a shared cache each render fetches again", async () => {
    const source = memorySource();
    const t = parseTemplate('{{ (secret "kv/app").Data.host }}', "t");
    await Promise.all([renderTemplate(t, { source }), renderTemplate(t, { source })]);
    expect(source.calls).toEqual(["read kv/app", "read kv/app"]);
  });

  it("passes the source's errors through unchanged", async () => {
    const failure = new Error("connection refused");
    const source: SecretSource = {
      read: async () => {
        throw failure;
      },
      write: async () => {
        throw failure;
      },
    };
    await expect(renderTemplate(parseTemplate('{{ secret "kv/app" }}', "t"), { source })).rejects.toBe(failure);
  });
});

describe("renderTemplate: missing keys", () => {
  const t = '{{ with secret "kv/app" }}{{ .Data.nope }}{{ end }}';

  it("render <no value> by default", async () => {
    expect(await render(t)).toBe("<no value>");
  });

  it("fail with error_on_missing_key, naming the key and where", async () => {
    const err = await renderError(t, { errorOnMissingKey: true });
    expect(err.message).toBe('t.ctmpl:1:30: at <.Data.nope>: map has no entry for key "nope"');
    expect(err.phase).toBe("render");
    expect([err.line, err.column, err.templateName]).toEqual([1, 30, "t.ctmpl"]);
    expect(err).toBeInstanceOf(UserError);
  });

  it("fail on the first missing level of a longer chain", async () => {
    const err = await renderError('{{ with secret "kv/app" }}{{ .Data.nope.deeper }}{{ end }}', { errorOnMissingKey: true });
    expect(err.reason).toBe('at <.Data.nope.deeper>: map has no entry for key "nope"');
  });

  it("fail on fields of a missing value reached through a variable", async () => {
    const err = await renderError('{{ $m := index (secret "kv/app").Data "nope" }}{{ $m.x }}', { errorOnMissingKey: true });
    expect(err.reason).toBe('at <$m.x>: nil data; no entry for key "x"');
  });

  it("passes when every key is there", async () => {
    expect(await render('{{ with secret "kv/app" }}{{ .Data.host }}{{ end }}', { errorOnMissingKey: true })).toBe("db.internal");
  });
});

describe("renderTemplate: errors while rendering", () => {
  const cases: [name: string, template: string, message: string][] = [
    ["an unknown field of a secret, whatever the missing-key setting", '{{ with secret "kv/app" }}{{ .data.host }}{{ end }}', "t.ctmpl:1:30: at <.data.host>: can't evaluate field data in type *dependency.Secret (did you mean .Data?)"],
    ["an unknown field of a secret without a close match", '{{ (secret "kv/app").Nope }}', "t.ctmpl:1:4: at <(secret \"kv/app\").Nope>: can't evaluate field Nope in type *dependency.Secret (fields: Data, LeaseID, LeaseDuration, Renewable)"],
    ["an unknown field of a pkiCert", '{{ (pkiCert "pki/issue/web").Data.certificate }}', "t.ctmpl:1:4: at <(pkiCert \"pki/issue/web\").Data.certificate>: can't evaluate field certificate in type dependency.PemEncoded (fields: Cert, Key, CA, CAChain, Data)"],
    ["a field of a string", '{{ (secret "kv/app").Data.host.x }}', "t.ctmpl:1:4: at <(secret \"kv/app\").Data.host.x>: can't evaluate field x in type string"],
    ["a field of JSON null", '{{ (secret "kv/app").Data.none.x }}', "t.ctmpl:1:4: at <(secret \"kv/app\").Data.none.x>: nil pointer evaluating interface {}.x"],
    ["a string function given a missing value", '{{ (secret "kv/app").Data.nope | toUpper }}', "t.ctmpl:1:34: at <toUpper>: invalid value for the argument of toUpper; expected string (a missing key?)"],
    ["a string function given a list", '{{ (secret "kv/app").Data.list | toUpper }}', "t.ctmpl:1:34: at <toUpper>: wrong type for the argument of toUpper; expected string; got []interface {}"],
    ["bad base64", '{{ "not base64!" | base64Decode }}', "t.ctmpl:1:20: at <base64Decode>: error calling base64Decode: illegal base64 data at input byte 3"],
    ["base64 of binary data", '{{ "/w==" | base64Decode }}', "t.ctmpl:1:13: at <base64Decode>: error calling base64Decode: the decoded data is not UTF-8 text (binary output is not supported)"],
    ["eq of incompatible types", "{{ eq true 1 }}", "t.ctmpl:1:4: at <eq>: error calling eq: incompatible types for comparison (bool and int)"],
    ["eq of lists", '{{ eq (secret "kv/app").Data.list "a" }}', "t.ctmpl:1:4: at <eq>: error calling eq: non-comparable type []interface {}"],
    ["lt of booleans", "{{ lt true false }}", "t.ctmpl:1:4: at <lt>: invalid type for comparison: bool"],
    ["lt of a number and a string", '{{ lt 1 "2" }}', "t.ctmpl:1:4: at <lt>: incompatible types for comparison (int and string)"],
    ["range over a string", '{{ range (secret "kv/app").Data.host }}{{ end }}', 't.ctmpl:1:4: at <(secret "kv/app").Data.host>: range can\'t iterate over db.internal (a string)'],
    ["index out of range", '{{ index (secret "kv/app").Data.list 5 }}', "t.ctmpl:1:4: at <index>: error calling index: index out of range: 5"],
    ["index of a missing value", '{{ index (secret "kv/app").Data.nope "x" }}', "t.ctmpl:1:4: at <index>: error calling index: index of untyped nil"],
    ["len of a number", "{{ len 3 }}", "t.ctmpl:1:4: at <len>: error calling len: len of type int"],
    ["join of a string", '{{ join "," "abc" }}', "t.ctmpl:1:4: at <join>: wrong type for value; expected []string; got string"],
    ["a dynamic secret path that is empty", '{{ secret (printf "%s" "/") }}', 't.ctmpl:1:4: at <secret>: secret: invalid path "/"'],
    ["a dynamic printf format that is not supported", '{{ printf (printf "%s" "%x") 1 }}', "t.ctmpl:1:4: at <printf>: printf: verb %x is not supported (supported: %s %d %v %q %%)"],
    ["toJSON of a float that JSON cannot hold", "{{ toJSON 1e999 }}", "t.ctmpl:1:4: at <toJSON>: error calling toJSON: json: unsupported value: +Inf"],
  ];

  it.each(cases)("%s", async (_name, template, message) => {
    const err = await renderError(template);
    expect(err.message).toBe(message);
    expect(err.phase).toBe("render");
  });
});
