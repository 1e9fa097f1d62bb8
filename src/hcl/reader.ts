/**
 * Reads typed values out of a decoded HCL (or JSON) config file, failing with a `UserError` that
 * names the file and line: `agent.hcl:7: unknown key "destinaton" in template (did you mean
 * "destination"?)`. The server and agent config loaders extend it, so both word their errors alike.
 *
 * `where` names the enclosing block (`listener "tcp"`, `template exec`), or is "" at the top level.
 */
import { UserError } from "../sdk/errors.js";
import { closest } from "./suggest.js";
import { describeValue, positionOf, type HclDocument, type HclObject } from "./parser.js";

export type ConfigLogLevel = "trace" | "debug" | "info" | "warn" | "error";

const LOG_LEVELS: readonly ConfigLogLevel[] = ["trace", "debug", "info", "warn", "error"];

export class HclConfigReader {
  /** `doc` carries the positions; undefined for JSON, whose errors have no line. */
  constructor(
    protected readonly fileName: string,
    protected readonly doc: HclDocument | undefined,
  ) {}

  /**
   * Throws `UserError("<file>:<line>: <message>")`, pointing at `key` in `node` (or at `node`);
   * without a node (something missing from the whole file) the message has no line.
   */
  protected fail(node: object | undefined, key: string | undefined, message: string): never {
    const pos = node && positionOf(this.doc, node, key);
    throw new UserError(`${this.fileName}${pos ? `:${pos.line}` : ""}: ${message}`);
  }

  /** Fails on the first key of `body` not in `known`, suggesting the closest known one. */
  protected checkKeys(body: HclObject, known: string[], where: string): void {
    for (const key of Object.keys(body)) {
      if (known.includes(key)) continue;
      const suggestion = closest(key, known);
      this.fail(body, key, `unknown key ${JSON.stringify(key)}${where ? ` in ${where}` : ""}${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ""}`);
    }
  }

  protected label(key: string, where: string): string {
    return where ? `${where}: ${key}` : key;
  }

  protected string(body: HclObject, key: string, where: string): string {
    const v = body[key];
    if (typeof v !== "string") this.fail(body, key, `${this.label(key, where)} must be a string, got ${describeValue(v)}`);
    if (v.trim() === "") this.fail(body, key, `${this.label(key, where)} must not be empty`);
    return v;
  }

  /** Go's `strconv.ParseBool` spellings, plus the numbers 1 and 0 (Vault configs write `tls_disable = 1`). */
  protected bool(body: HclObject, key: string, where: string): boolean {
    const v = body[key];
    if (typeof v === "boolean") return v;
    if (v === 1 || v === 0) return v === 1;
    if (typeof v === "string") {
      const s = v.trim().toLowerCase();
      if (s === "true" || s === "t" || s === "1") return true;
      if (s === "false" || s === "f" || s === "0") return false;
    }
    return this.fail(body, key, `${this.label(key, where)} must be true or false, got ${describeValue(v)}`);
  }

  /** An http(s) URL with a host, kept as written. */
  protected url(body: HclObject, key: string, where: string): string {
    const value = this.string(body, key, where);
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || !url.host) {
      this.fail(body, key, `${this.label(key, where)} must be a URL such as "https://leasehold.example:8200", got ${JSON.stringify(value)}`);
    }
    return value;
  }

  /** Top-level `log_level`, accepting Vault's `warning` and `err` spellings. */
  protected logLevel(root: HclObject): ConfigLogLevel {
    const raw = this.string(root, "log_level", "").trim().toLowerCase();
    const level = raw === "warning" ? "warn" : raw === "err" ? "error" : raw;
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      this.fail(root, "log_level", `log_level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(root.log_level)}`);
    }
    return level as ConfigLogLevel;
  }
}
