import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { normaliseArgv } from "./argv.js";
import { memoryIo } from "./memory-io.js";
import { buildProgram } from "./program.js";

const program = buildProgram(memoryIo({ homeDir: mkdtempSync(join(tmpdir(), "lh-argv-")) }));
const norm = (...argv: string[]) => normaliseArgv(argv, program);

describe("normaliseArgv (vault-style flags)", () => {
  it("turns single-dash long flags into GNU long flags, with or without =value", () => {
    expect(norm("read", "-format=json", "-field=password", "secret/foo")).toEqual(["read", "--format=json", "--field=password", "secret/foo"]);
    expect(norm("read", "-format", "json", "secret/foo")).toEqual(["read", "--format", "json", "secret/foo"]);
    expect(norm("secrets", "enable", "-path=pki", "-max-lease-ttl=87600h", "pki")).toEqual(["secrets", "enable", "--path=pki", "--max-lease-ttl=87600h", "pki"]);
  });

  it("keeps repeated flags and values containing = or spaces", () => {
    expect(norm("token", "create", "-policy=a", "-policy", "b", "-metadata=team=payments")).toEqual([
      "token",
      "create",
      "--policy=a",
      "--policy",
      "b",
      "--metadata=team=payments",
    ]);
    expect(norm("secrets", "enable", "-description=two words", "kv")).toEqual(["secrets", "enable", "--description=two words", "kv"]);
  });

  it("leaves short flags, negative numbers, a lone dash and GNU flags alone", () => {
    expect(norm("write", "-f", "secret/foo")).toEqual(["write", "-f", "secret/foo"]);
    expect(norm("write", "secret/foo", "-")).toEqual(["write", "secret/foo", "-"]);
    expect(norm("write", "--format", "json", "secret/foo", "n=-1")).toEqual(["write", "--format", "json", "secret/foo", "n=-1"]);
    expect(norm("token", "renew", "-i", "-1")).toEqual(["token", "renew", "-i", "-1"]);
  });

  it("does not touch the value of a flag, nor anything after --", () => {
    expect(norm("read", "-field", "-format", "x")).toEqual(["read", "--field", "-format", "x"]);
    expect(norm("write", "--", "-format=json")).toEqual(["write", "--", "-format=json"]);
  });

  it("leaves unknown single-dash flags for commander to reject", () => {
    expect(norm("read", "-bogus=1", "x")).toEqual(["read", "-bogus=1", "x"]);
  });

  it("maps Go-style boolean values: =true sets, =false sets the negation or drops the flag", () => {
    expect(norm("token", "create", "-orphan=true")).toEqual(["token", "create", "--orphan"]);
    expect(norm("token", "create", "-orphan=false")).toEqual(["token", "create"]);
    expect(norm("token", "create", "-renewable=false")).toEqual(["token", "create", "--no-renewable"]);
    expect(norm("login", "-no-store=true", "t")).toEqual(["login", "--no-store", "t"]);
    expect(norm("login", "-no-store=false", "t")).toEqual(["login", "t"]);
    expect(norm("token", "create", "-orphan=maybe")).toEqual(["token", "create", "--orphan=maybe"]);
  });

  it("looks a flag up on the command that parses it", () => {
    // -version is the KV version under `kv get`, the engine version under `secrets enable`, ours at the top.
    expect(norm("kv", "get", "-version=2", "secret/app")).toEqual(["kv", "get", "--version=2", "secret/app"]);
    expect(norm("secrets", "enable", "-version=2", "kv")).toEqual(["secrets", "enable", "--version=2", "kv"]);
    expect(norm("-version")).toEqual(["--version"]);
    expect(norm("kv", "metadata", "get", "-mount=secret", "app")).toEqual(["kv", "metadata", "get", "--mount=secret", "app"]);
  });

  it("turns -help and -h into help", () => {
    expect(norm("read", "-help")).toEqual(["read", "--help"]);
    expect(norm("read", "-h")).toEqual(["read", "-h"]);
  });
});
