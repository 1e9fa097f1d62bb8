import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "vitest";
import { call, startTestServer } from "../helpers/server.js";
import type { RunningServer } from "../../src/server/run.js";

const run = promisify(execFile);

export const TOKEN = "root";
/** The dev server's system max TTL is 768h; a CA mount wants ten years. */
export const TEN_YEARS = 87600 * 3600;

/** A dev server whose system max lease TTL allows `max_lease_ttl: 87600h` on a pki mount. */
export async function startPkiServer(): Promise<RunningServer> {
  return startTestServer({ rootTokenId: TOKEN, maxLeaseTtl: TEN_YEARS });
}

export type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON

/** An authenticated call that must succeed; returns the parsed body. */
export async function ok(base: string, method: string, path: string, body?: unknown): Promise<Body> {
  const r = await call(base, method, path, { token: TOKEN, body });
  expect(r.status, `${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r.body as Body;
}

/** An authenticated call that must fail with `status`; returns the joined error messages. */
export async function fails(base: string, method: string, path: string, body: unknown, status = 400): Promise<string> {
  const r = await call(base, method, path, { token: TOKEN, body });
  expect(r.status, `${method} ${path} should fail with ${status}: ${JSON.stringify(r.body)}`).toBe(status);
  return ((r.body as Body)?.errors ?? []).join("\n");
}

/** Mounts a pki engine at `path` with a ten-year max TTL. */
export async function mountPki(base: string, path: string): Promise<void> {
  await ok(base, "POST", `sys/mounts/${path}`, { type: "pki", config: { max_lease_ttl: "87600h" } });
}

/** Mount + EC P-256 root. Returns the root certificate PEM. */
export async function mountWithRoot(base: string, path: string, extra: Body = {}): Promise<string> {
  await mountPki(base, path);
  const r = await ok(base, "POST", `${path}/root/generate/internal`, { common_name: `${path} Root CA`, key_type: "ec", key_bits: 256, ttl: "87600h", ...extra });
  return r.data.certificate as string;
}

/** A scratch directory for files handed to openssl. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), "leasehold-pki-"));
  private n = 0;
  file(content: string | Buffer, name = `f${this.n++}.pem`): string {
    const p = join(this.dir, name);
    writeFileSync(p, content);
    return p;
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs openssl; resolves with stdout+stderr and the exit code (never throws on a non-zero exit). */
export async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run("openssl", args, { maxBuffer: 1 << 22 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : 1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

/** `openssl x509 -noout -text` of a PEM certificate. */
export async function certText(scratch: Scratch, pem: string): Promise<string> {
  const r = await openssl(["x509", "-noout", "-text", "-in", scratch.file(pem)]);
  expect(r.code, r.out).toBe(0);
  return r.out;
}

/** The SAN line(s) of a certificate as openssl prints them, e.g. `DNS:a.example.com, IP Address:10.0.0.1`. */
export async function sans(scratch: Scratch, pem: string): Promise<string> {
  const r = await openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", scratch.file(pem)]);
  return r.out.split("\n").slice(1).join(" ").trim();
}
