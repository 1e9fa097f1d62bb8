import { readFile } from "node:fs/promises";

/** Where `-` and `@file` values come from; the CLI passes its stdin, tests pass their own. */
export interface KeyValueSources {
  stdin: NodeJS.ReadableStream;
  readFile?: (path: string) => Promise<string>;
}

export class KeyValueParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyValueParseError";
  }
}

/**
 * Parses `vault write`-style data arguments, with the `vault` CLI's rules:
 * - `key=value` keeps `value` as a string (no JSON or number guessing);
 * - `key=@file` reads the file's contents; `key=\@text` is the literal `@text`;
 * - `key=-` reads all of stdin;
 * - a lone `-` or `@file.json` merges a JSON object from stdin or the file (values keep their JSON types);
 * - a repeated key collects its values into a list (`policies=a policies=b`).
 * Stdin can be consumed once.
 */
export async function parseKeyValueArgs(args: readonly string[], sources: KeyValueSources): Promise<Record<string, unknown>> {
  const load = sources.readFile ?? ((path: string) => readFile(path, "utf8"));
  const result: Record<string, unknown> = {};
  let stdinUsed = false;
  const takeStdin = async (): Promise<string> => {
    if (stdinUsed) throw new KeyValueParseError("stdin already consumed: only one argument may read from it");
    stdinUsed = true;
    return readAll(sources.stdin);
  };
  const readSource = async (path: string): Promise<string> => {
    try {
      return await load(path);
    } catch (err) {
      throw new KeyValueParseError(`cannot read ${path}: ${(err as Error).message}`);
    }
  };

  for (const raw of args) {
    if (raw === "") continue;
    const eq = raw.indexOf("=");
    if (eq < 0) {
      if (raw === "-") {
        Object.assign(result, parseJsonObject(await takeStdin(), "stdin"));
        continue;
      }
      if (raw.startsWith("@")) {
        Object.assign(result, parseJsonObject(await readSource(raw.slice(1)), raw.slice(1)));
        continue;
      }
      throw new KeyValueParseError(`${JSON.stringify(raw)}: format must be key=value`);
    }
    const key = raw.slice(0, eq);
    let value = raw.slice(eq + 1);
    if (value.startsWith("@")) value = await readSource(value.slice(1));
    else if (value.startsWith("\\@")) value = value.slice(1);
    else if (value === "-") value = await takeStdin();

    if (Object.hasOwn(result, key)) {
      const existing = result[key];
      result[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
    } else {
      result[key] = value;
    }
  }
  return result;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJsonObject(text: string, from: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new KeyValueParseError(`${from} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new KeyValueParseError(`${from} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
