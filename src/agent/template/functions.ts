/**
 * The functions a template may call: their arity (checked when the template is parsed, so a
 * config error fails at startup) and, for the consul-template functions leasehold leaves out, the
 * reason given instead of "not defined".
 */

export interface FunctionSignature {
  /** Fewest arguments, the pipeline's value included when the function is a later pipeline stage. */
  min: number;
  /** Most arguments (`Infinity` for variadic functions). */
  max: number;
}

const fixed = (n: number): FunctionSignature => ({ min: n, max: n });
const atLeast = (n: number): FunctionSignature => ({ min: n, max: Infinity });

export const FUNCTIONS: Readonly<Record<string, FunctionSignature>> = {
  // Vault
  secret: atLeast(1),
  pkiCert: atLeast(1),
  // Go's builtins
  and: atLeast(1),
  or: atLeast(1),
  not: fixed(1),
  eq: atLeast(2),
  ne: fixed(2),
  lt: fixed(2),
  le: fixed(2),
  gt: fixed(2),
  ge: fixed(2),
  index: atLeast(1),
  len: fixed(1),
  printf: atLeast(1),
  // consul-template helpers
  toJSON: fixed(1),
  toJSONPretty: fixed(1),
  base64Encode: fixed(1),
  base64Decode: fixed(1),
  trimSpace: fixed(1),
  toUpper: fixed(1),
  toLower: fixed(1),
  replaceAll: fixed(3),
  split: fixed(2),
  join: fixed(2),
  contains: fixed(2),
  env: fixed(1),
};

const CONSUL = "Consul functions are not available: leasehold is a Vault-compatible broker only";

/** consul-template functions a Vault Agent template might use that leasehold does not provide, and why. */
export const UNSUPPORTED_FUNCTIONS: Readonly<Record<string, string>> = {
  file: "reading local files from templates is disabled for security",
  writeToFile: "writing files from templates is disabled for security",
  plugin: "running programs from templates is disabled for security",
  executeTemplate: "{{define}} and nested templates are not supported",
  secrets: "listing secrets is not supported yet; read each path with secret",
  pkiSign: "pkiSign is not supported; use pkiCert or secret with the issue path",
  key: CONSUL,
  keyExists: CONSUL,
  keyOrDefault: CONSUL,
  ls: CONSUL,
  safeLs: CONSUL,
  tree: CONSUL,
  safeTree: CONSUL,
  service: CONSUL,
  services: CONSUL,
  node: CONSUL,
  nodes: CONSUL,
  datacenters: CONSUL,
  connect: CONSUL,
  caLeaf: CONSUL,
  caRoots: CONSUL,
};

export function isFunction(name: string): boolean {
  return Object.hasOwn(FUNCTIONS, name);
}
