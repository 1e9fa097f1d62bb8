import { describe, expect, it } from "vitest";
import { UserError } from "../sdk/errors.js";
import { hclBlocks, parseHclJson, parseHclWithPositions } from "./parser.js";
import { HclConfigReader } from "./reader.js";

/** A loader for `listener { address = "..."  tls_disable = ... }` files, reading through the shared methods. */
class ListenerFileReader extends HclConfigReader {
  read(text: string): { address: string; tlsDisable: boolean } {
    const root = this.doc ? this.doc.value : parseHclJson(text, this.fileName);
    this.checkKeys(root, ["listener"], "");
    const [{ body }] = hclBlocks(root.listener, 0, "listener");
    this.checkKeys(body, ["address", "tls_disable"], "listener");
    return { address: this.url(body, "address", "listener"), tlsDisable: this.bool(body, "tls_disable", "listener") };
  }
}

function load(text: string, fileName = "test.hcl"): { address: string; tlsDisable: boolean } {
  const doc = fileName.endsWith(".json") ? undefined : parseHclWithPositions(text, fileName);
  return new ListenerFileReader(fileName, doc).read(text);
}

function loadError(text: string, fileName?: string): string {
  try {
    load(text, fileName);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("HclConfigReader", () => {
  it("reads values in any of Go's boolean spellings", () => {
    expect(load(`listener {\n  address = "https://a:8200"\n  tls_disable = "T"\n}`)).toEqual({ address: "https://a:8200", tlsDisable: true });
    expect(load(`listener {\n  address = "https://a:8200"\n  tls_disable = 0\n}`).tlsDisable).toBe(false);
  });

  it("names the file, line and block of a bad value", () => {
    expect(loadError(`listener {\n  address = "https://a:8200"\n  tls_disable = "maybe"\n}`)).toBe('test.hcl:3: listener: tls_disable must be true or false, got string "maybe"');
    expect(loadError(`listener {\n  address = "ftp://a"\n  tls_disable = true\n}`)).toBe('test.hcl:2: listener: address must be a URL such as "https://leasehold.example:8200", got "ftp://a"');
  });

  it("suggests the closest key for a typo", () => {
    expect(loadError(`listener {\n  adress = "https://a:8200"\n}`)).toBe('test.hcl:2: unknown key "adress" in listener (did you mean "address"?)');
  });

  it("leaves the line out for JSON files", () => {
    expect(loadError(`{"listener": [{"address": ""}]}`, "test.json")).toBe("test.json: listener: address must not be empty");
  });
});
