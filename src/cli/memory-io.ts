import { Readable } from "node:stream";
import type { CliIo } from "./context.js";

/** A CliIo that captures output in memory, for running commands in-process (tests, embedding). */
export interface MemoryIo extends CliIo {
  out(): string;
  err(): string;
}

export function memoryIo(init: { env?: Record<string, string | undefined>; homeDir: string; stdin?: string; stdoutIsTTY?: boolean; runServer?: CliIo["runServer"] }): MemoryIo {
  let stdout = "";
  let stderr = "";
  return {
    stdout: { write: (s: string) => (stdout += s), isTTY: init.stdoutIsTTY ?? false },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(init.stdin === undefined ? [] : [Buffer.from(init.stdin)]),
    env: init.env ?? {},
    homeDir: init.homeDir,
    runServer: init.runServer,
    out: () => stdout,
    err: () => stderr,
  };
}
