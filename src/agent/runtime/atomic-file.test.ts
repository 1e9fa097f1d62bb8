import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AtomicWriteError, readIfExists, writeFileAtomic } from "./atomic-file.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "leasehold-atomic-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const modeOf = (p: string): number => statSync(p).mode & 0o777;
/** Files in `d` other than the ones a test wrote: a leftover temporary file would show here. */
const entries = (d: string): string[] => readdirSync(d).sort();

describe("writeFileAtomic", () => {
  it("creates the file with 0644 when no mode is given, and reports a change", async () => {
    const p = join(dir, "db.env");
    expect(await writeFileAtomic(p, "USER=a\n")).toBe(true);
    expect(readFileSync(p, "utf8")).toBe("USER=a\n");
    expect(modeOf(p)).toBe(0o644);
    expect(entries(dir)).toEqual(["db.env"]);
  });

  it("sets exactly the mode asked, whatever the umask", async () => {
    const p = join(dir, "shared");
    await writeFileAtomic(p, "x", { mode: 0o666 });
    expect(modeOf(p)).toBe(0o666);
    await writeFileAtomic(p, "y", { mode: 0o600 });
    expect(modeOf(p)).toBe(0o600);
  });

  it("writes Buffers byte for byte", async () => {
    const p = join(dir, "bin");
    const bytes = Buffer.from([0, 255, 10, 13]);
    expect(await writeFileAtomic(p, bytes)).toBe(true);
    expect(readFileSync(p).equals(bytes)).toBe(true);
  });

  it("leaves an unchanged file alone and reports no change", async () => {
    const p = join(dir, "db.env");
    await writeFileAtomic(p, "same", { mode: 0o640 });
    const before = statSync(p);
    expect(await writeFileAtomic(p, "same", { mode: 0o640 })).toBe(false);
    const after = statSync(p);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it("corrects the mode of an unchanged file in place without reporting a change", async () => {
    const p = join(dir, "db.env");
    await writeFileAtomic(p, "same", { mode: 0o644 });
    const ino = statSync(p).ino;
    expect(await writeFileAtomic(p, "same", { mode: 0o600 })).toBe(false);
    expect(modeOf(p)).toBe(0o600);
    expect(statSync(p).ino).toBe(ino);
  });

  it("replaces changed content through a new file (rename), so readers never see a partial file", async () => {
    const p = join(dir, "db.env");
    await writeFileAtomic(p, "old");
    const ino = statSync(p).ino;
    expect(await writeFileAtomic(p, "new")).toBe(true);
    expect(readFileSync(p, "utf8")).toBe("new");
    expect(statSync(p).ino).not.toBe(ino);
    expect(entries(dir)).toEqual(["db.env"]);
  });

  it("keeps the existing mode with keepExistingMode and no mode, as Vault Agent does for templates", async () => {
    const p = join(dir, "cfg");
    writeFileSync(p, "old");
    chmodSync(p, 0o600);
    await writeFileAtomic(p, "new", { keepExistingMode: true });
    expect(modeOf(p)).toBe(0o600);
    await writeFileAtomic(p, "newer");
    expect(modeOf(p)).toBe(0o644);
  });

  it("an explicit mode wins over keepExistingMode", async () => {
    const p = join(dir, "cfg");
    writeFileSync(p, "old");
    chmodSync(p, 0o600);
    await writeFileAtomic(p, "new", { mode: 0o640, keepExistingMode: true });
    expect(modeOf(p)).toBe(0o640);
  });

  it("creates missing parent directories with 0755 when asked", async () => {
    const p = join(dir, "a", "b", "db.env");
    expect(await writeFileAtomic(p, "x", { createDirs: true })).toBe(true);
    expect(readFileSync(p, "utf8")).toBe("x");
    expect(modeOf(join(dir, "a"))).toBe(0o755);
    expect(modeOf(join(dir, "a", "b"))).toBe(0o755);
  });

  it("without createDirs, a missing directory is an error that says how to fix it", async () => {
    const p = join(dir, "missing", "db.env");
    const err = await writeFileAtomic(p, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtomicWriteError);
    expect((err as AtomicWriteError).errno).toBe("ENOENT");
    expect((err as Error).message).toMatch(/does not exist.*create_dest_dirs = true/);
    expect(entries(dir)).toEqual([]);
  });

  it("refuses to replace a directory and leaves no temporary file", async () => {
    const p = join(dir, "taken");
    mkdirSync(p);
    await expect(writeFileAtomic(p, "x")).rejects.toThrow(/not a regular file/);
    expect(entries(dir)).toEqual(["taken"]);
  });

  it("keeps the previous file as .bak with its mode when backup is set", async () => {
    const p = join(dir, "db.env");
    await writeFileAtomic(p, "v1", { mode: 0o600 });
    await writeFileAtomic(p, "v2", { mode: 0o600, backup: true });
    expect(readFileSync(p, "utf8")).toBe("v2");
    expect(readFileSync(`${p}.bak`, "utf8")).toBe("v1");
    expect(modeOf(`${p}.bak`)).toBe(0o600);
    // No change, no new backup.
    await writeFileAtomic(p, "v2", { mode: 0o600, backup: true });
    expect(readFileSync(`${p}.bak`, "utf8")).toBe("v1");
  });

  it("rejects modes outside 0..0777", async () => {
    await expect(writeFileAtomic(join(dir, "x"), "x", { mode: 0o4755 })).rejects.toThrow(RangeError);
  });
});

describe("readIfExists", () => {
  it("returns the content, or undefined for a missing file", () => {
    const p = join(dir, "f");
    expect(readIfExists(p)).toBeUndefined();
    writeFileSync(p, "hello");
    expect(readIfExists(p)).toBe("hello");
  });

  it("throws for other errors, such as reading a directory", () => {
    expect(() => readIfExists(dir)).toThrow(/EISDIR/);
  });
});
