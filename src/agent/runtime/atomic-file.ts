/**
 * Writing a rendered template or a token sink so that a reader never sees a half-written file
 * or a file with looser permissions than asked: the content goes to a temporary file in the same
 * directory, created with the final mode, flushed to disk, then renamed over the destination
 * (rename is atomic within one file system, which is why the temporary file is a sibling).
 */
import { randomBytes } from "node:crypto";
import { constants, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Vault Agent's mode for a template without `perms` when there is no file to take it from. */
export const DEFAULT_TEMPLATE_MODE = 0o644;
/** Mode of directories made for `createDirs`. */
export const CREATED_DIR_MODE = 0o755;

export interface WriteFileAtomicOptions {
  /** File mode (at most 0777). Unset: the existing file's mode with `keepExistingMode`, else 0644. */
  mode?: number;
  /** Create missing parent directories (0755), as a template's `create_dest_dirs` does. */
  createDirs?: boolean;
  /** With `mode` unset, keep the mode of the file being replaced (Vault Agent's template rule). */
  keepExistingMode?: boolean;
  /** Copy the file being replaced to `<path>.bak` first (a template's `backup`). */
  backup?: boolean;
}

/** A write that failed; the message names the file and what to check. */
export class AtomicWriteError extends Error {
  readonly code = "atomic_write_failed";
  constructor(
    message: string,
    /** The `errno` code of the underlying failure (`EACCES`, `ENOENT`, ...), if any. */
    readonly errno?: string,
  ) {
    super(message);
    this.name = "AtomicWriteError";
  }
}

/** The file's content as UTF-8, or undefined when it does not exist. Other errors are thrown. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Replaces `path` with `content` atomically. Resolves true when the content changed (the file
 * was created or rewritten), false when the file already held exactly this content; then it is
 * not rewritten (its mode is corrected in place if it differs), so a template's command runs only
 * on a real change. On failure the temporary file is removed and an `AtomicWriteError` is thrown.
 */
export async function writeFileAtomic(path: string, content: string | Buffer, opts: WriteFileAtomicOptions = {}): Promise<boolean> {
  if (opts.mode !== undefined && !(Number.isInteger(opts.mode) && opts.mode >= 0 && opts.mode <= 0o777)) {
    throw new RangeError(`writeFileAtomic: mode must be an integer between 0 and 0o777, got ${opts.mode}`);
  }
  const data = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  const dir = dirname(path);

  const existing = await currentFile(path);
  const mode = opts.mode ?? (opts.keepExistingMode && existing ? existing.mode : DEFAULT_TEMPLATE_MODE);
  if (existing && existing.content.equals(data)) {
    if (existing.mode !== mode) {
      await chmod(path, mode).catch((err: unknown) => {
        throw wrap(err, `cannot set the mode of ${path} to ${octal(mode)}`);
      });
    }
    return false;
  }

  if (opts.createDirs) {
    await mkdir(dir, { recursive: true, mode: CREATED_DIR_MODE }).catch((err: unknown) => {
      throw wrap(err, `cannot create the directory ${dir} for ${path}`);
    });
  }
  if (opts.backup && existing) {
    // copyFile keeps the mode of the source, so the backup is no more readable than the original.
    await copyFile(path, `${path}.bak`).catch((err: unknown) => {
      throw wrap(err, `cannot back up ${path} to ${path}.bak`);
    });
  }

  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    // O_EXCL: never write through a file or link someone else placed at the temporary name.
    // The mode given to open is narrowed by the umask, never widened, so the file is at most as
    // readable as asked from its first byte; fchmod then sets exactly the mode asked.
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (errnoOf(err) === "ENOENT" && !opts.createDirs) {
      throw new AtomicWriteError(`cannot write ${path}: the directory ${dir} does not exist (create it, or set create_dest_dirs = true on the template)`, "ENOENT");
    }
    throw wrap(err, `cannot write ${path}`);
  }
  await syncDir(dir);
  return true;
}

async function currentFile(path: string): Promise<{ content: Buffer; mode: number } | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw wrap(err, `cannot inspect ${path}`);
  }
  if (!st.isFile()) throw new AtomicWriteError(`cannot write ${path}: it exists and is not a regular file (remove it or choose another destination)`);
  try {
    return { content: readFileSync(path), mode: st.mode & 0o777 };
  } catch (err) {
    throw wrap(err, `cannot read the current ${path} to compare it`);
  }
}

/** Makes the rename itself durable; best effort, since not every file system allows it. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // A crash before the directory reaches disk leaves the previous file, which is still whole.
  }
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

function wrap(err: unknown, what: string): AtomicWriteError {
  if (err instanceof AtomicWriteError) return err;
  const code = errnoOf(err);
  const hint = code === "EACCES" || code === "EPERM" ? " (check that the agent's user may write to this directory)" : code === "ENOSPC" ? " (the file system is full)" : code === "EROFS" ? " (the file system is read-only: mount a writable volume here)" : "";
  return new AtomicWriteError(`${what}: ${(err as Error).message}${hint}`, code);
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}
