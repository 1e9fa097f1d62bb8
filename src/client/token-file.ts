import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The token helper: `leasehold login` stores the token in `~/.leasehold-token` (as the `vault`
 * CLI does in `~/.vault-token`) and every later command picks it up when no token is set.
 */
export const TOKEN_FILE_NAME = ".leasehold-token";

export function tokenFilePath(homeDir: string = homedir()): string {
  return join(homeDir, TOKEN_FILE_NAME);
}

/** The stored token, or undefined when there is no (or an empty) token file. */
export function readTokenFile(homeDir: string = homedir()): string | undefined {
  let text: string;
  try {
    text = readFileSync(tokenFilePath(homeDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const token = text.trim();
  return token === "" ? undefined : token;
}

/** Stores the token readable by its owner only; an existing file is tightened to 0600 too. */
export function writeTokenFile(token: string, homeDir: string = homedir()): string {
  const file = tokenFilePath(homeDir);
  writeFileSync(file, token, { mode: 0o600 });
  // `mode` only applies when the file is created.
  chmodSync(file, 0o600);
  return file;
}
