/**
 * Templates in the consul-template dialect Vault Agent uses: parse once (errors at startup, with
 * `name:line:column`), render many times against a `SecretSource`.
 *
 *   const t = parseTemplate(text, "web.ctmpl");
 *   const { text, secrets } = await renderTemplate(t, { source, errorOnMissingKey: true });
 *
 * Supported: text; `{{ }}` actions (may span lines) with `{{-`/`-}}` trimming; `{{/* *\/}}`
 * comments; `if`/`else if`/`else`, `with`/`else with`/`else`, `range` (lists, maps in sorted key
 * order, integers; `$i, $e :=`; `else`; `break`, `continue`); variables (`$x :=`, `$x =`, `$`);
 * fields and chains (`.Data.data.x`, `$s.Data.x`, `(secret "p").Data.x`); pipes; string (Go
 * escapes), raw string, character, number, `true`/`false`/`nil` literals; functions `secret`,
 * `pkiCert`, `and or not eq ne lt le gt ge index len printf` (`%s %d %v %q %%`), `toJSON
 * toJSONPretty base64Encode base64Decode trimSpace toUpper toLower replaceAll split join contains
 * env`. Custom delimiters (`left_delimiter`/`right_delimiter`).
 *
 * Not supported: `define`/`template`/`block`; `file`, `writeToFile`, `plugin` (security); Consul
 * functions; other consul-template and Sprig helpers; printf flags, width and other verbs.
 *
 * Deliberate differences from Vault Agent (the tests mark each): a secret's number 0 is false
 * (Vault Agent keeps numbers as strings, so it is true there); `eq` compares a number with a
 * string by text and `eq`/`lt`... compare numbers with numbers (Vault Agent only string-compares
 * them); `join` accepts a secret's list; `base64Decode` refuses output that is not UTF-8;
 * checks Go makes while rendering (arity, undefined variables, `secret` arguments, printf formats)
 * are made while parsing; variables of an `if`/`with`/`range` body are not visible in its `else`.
 * Everything else renders byte for byte as Go's text/template with consul-template's functions.
 */
export type * from "./ast.js";
export { nodeText } from "./ast.js";
export { TemplateError, textLocator, type Locate, type SourceLocation } from "./errors.js";
export { parseTemplate, type ParseOptions, type Template } from "./parser.js";
export { renderTemplate, type RenderOptions, type RenderResult, type UsedSecret } from "./render.js";
export { dependencies, type DynamicSecretCall, type TemplateDependencies } from "./dependencies.js";
export { SecretCache, secretRequest, type SecretKind, type SecretRequest, type SecretResult, type SecretSource } from "./secrets.js";
export { FUNCTIONS, UNSUPPORTED_FUNCTIONS } from "./functions.js";
