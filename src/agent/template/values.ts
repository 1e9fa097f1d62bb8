/**
 * The values templates compute with, modelled on the Go values consul-template exposes:
 *
 * - `undefined` is Go's invalid value (a missing map key): printed `<no value>`.
 * - `null` is a nil interface (JSON null): printed `<no value>` by an action, `<nil>` inside
 *   collections and by printf.
 * - strings, numbers, booleans, arrays (`[]interface {}`), plain objects (`map[string]interface {}`).
 * - `SecretView` (`*dependency.Secret`) and `PkiCertView` (`dependency.PemEncoded`): structs,
 *   so an unknown field is always an error, whatever `error_on_missing_key` says.
 */
import type { SecretResult } from "./secrets.js";

/** What `secret` returns: the Vault envelope with Go's field names. */
export class SecretView {
  static readonly FIELDS = ["Data", "LeaseID", "LeaseDuration", "Renewable"] as const;

  constructor(readonly result: SecretResult) {}

  field(name: string): { found: boolean; value?: unknown } {
    switch (name) {
      case "Data":
        return { found: true, value: isPlainObject(this.result.data) ? this.result.data : {} };
      case "LeaseID":
        return { found: true, value: this.result.lease_id ?? "" };
      case "LeaseDuration":
        return { found: true, value: this.result.lease_duration ?? 0 };
      case "Renewable":
        return { found: true, value: this.result.renewable ?? false };
      default:
        return { found: false };
    }
  }
}

/**
 * What `pkiCert` returns: consul-template's `PemEncoded`, whose `.Cert`, `.Key` and `.CA` are
 * PEM blocks ending in a newline (so `{{ .Cert }}{{ .Key }}` concatenates cleanly), reachable
 * directly or through `.Data` (`.Data.Cert`). `.CAChain` (the `ca_chain` list) is a leasehold
 * addition.
 */
export class PkiCertView {
  static readonly FIELDS = ["Cert", "Key", "CA", "CAChain", "Data"] as const;
  readonly Cert: string;
  readonly Key: string;
  readonly CA: string;
  readonly CAChain: string[];

  constructor(readonly result: SecretResult) {
    const data = isPlainObject(result.data) ? result.data : {};
    this.Cert = pem(data.certificate);
    this.Key = pem(data.private_key);
    this.CA = pem(data.issuing_ca);
    this.CAChain = Array.isArray(data.ca_chain) ? data.ca_chain.filter((c): c is string => typeof c === "string").map(pem) : [];
  }

  field(name: string): { found: boolean; value?: unknown } {
    switch (name) {
      case "Cert":
        return { found: true, value: this.Cert };
      case "Key":
        return { found: true, value: this.Key };
      case "CA":
        return { found: true, value: this.CA };
      case "CAChain":
        return { found: true, value: this.CAChain };
      case "Data":
        return { found: true, value: this };
      default:
        return { found: false };
    }
  }
}

function pem(v: unknown): string {
  if (typeof v !== "string" || v === "") return "";
  return v.endsWith("\n") ? v : v + "\n";
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof SecretView) && !(v instanceof PkiCertView);
}

/** The Go type name of a value, for messages (`string`, `map[string]interface {}`). */
export function goTypeName(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (typeof v === "string") return "string";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "[]interface {}";
  if (v instanceof SecretView) return "*dependency.Secret";
  if (v instanceof PkiCertView) return "dependency.PemEncoded";
  return "map[string]interface {}";
}

/** Go's truth: false, 0, nil, and empty strings, lists and maps are false; structs are true. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof SecretView || v instanceof PkiCertView) return true;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** Compares strings as Go does (by UTF-8 bytes, which is code point order). */
export function compareStrings(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(j) ?? 0;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i === 0 ? (b.length - j === 0 ? 0 : -1) : 1;
}

/** Map keys in Go's iteration order for templates and encoders: sorted. */
export function sortedKeys(obj: Record<string, unknown>): string[] {
  return Object.keys(obj).sort(compareStrings);
}
