import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { KeyValueParseError, parseKeyValueArgs } from "./kv-args.js";

const dir = mkdtempSync(join(tmpdir(), "lh-kv-"));
const stdin = (text: string) => ({ stdin: Readable.from([Buffer.from(text)]) });
const noStdin = () => stdin("");

describe("parseKeyValueArgs", () => {
  it("keeps values as strings, including ones that look like JSON or numbers", async () => {
    expect(await parseKeyValueArgs(["a=1", "b=true", 'c={"x":1}', "d=", "e=x=y"], noStdin())).toEqual({
      a: "1",
      b: "true",
      c: '{"x":1}',
      d: "",
      e: "x=y",
    });
  });

  it("reads k=@file contents verbatim, and k=\\@text is the literal @text", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    expect(await parseKeyValueArgs([`certificate=@${file}`, "handle=\\@alice"], noStdin())).toEqual({
      certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      handle: "@alice",
    });
  });

  it("reads k=- from stdin, once", async () => {
    expect(await parseKeyValueArgs(["password=-"], stdin("s3cret"))).toEqual({ password: "s3cret" });
    await expect(parseKeyValueArgs(["a=-", "b=-"], stdin("x"))).rejects.toThrow(/stdin already consumed/);
  });

  it("merges a JSON object from a lone - or @file.json, keeping JSON types", async () => {
    expect(await parseKeyValueArgs(["-", "extra=1"], stdin('{"ttl": 3600, "policies": ["a", "b"]}'))).toEqual({
      ttl: 3600,
      policies: ["a", "b"],
      extra: "1",
    });
    const file = join(dir, "data.json");
    writeFileSync(file, '{"enabled": true}');
    expect(await parseKeyValueArgs([`@${file}`], noStdin())).toEqual({ enabled: true });
    await expect(parseKeyValueArgs(["-"], stdin("[1,2]"))).rejects.toThrow(/must hold a JSON object/);
  });

  it("collects a repeated key into a list", async () => {
    expect(await parseKeyValueArgs(["policies=a", "policies=b", "policies=c"], noStdin())).toEqual({ policies: ["a", "b", "c"] });
  });

  it("rejects an argument without = and a missing file", async () => {
    await expect(parseKeyValueArgs(["novalue"], noStdin())).rejects.toThrow(KeyValueParseError);
    await expect(parseKeyValueArgs(["novalue"], noStdin())).rejects.toThrow(/format must be key=value/);
    await expect(parseKeyValueArgs([`x=@${join(dir, "missing")}`], noStdin())).rejects.toThrow(/cannot read .*missing/);
  });
});
