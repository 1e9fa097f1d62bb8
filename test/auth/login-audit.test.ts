/** Failed and successful logins are audited (secrets HMAC'd), and the per-address rate limit answers 429. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let dir: string;
const root = { token: "root" };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "leasehold-login-audit-"));
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1, burst: 5 } });
  const ok = async (method: string, path: string, body: unknown) => expect((await call(server.url, method, path, { ...root, body })).status).toBeLessThan(300);
  await ok("POST", "sys/auth/approle", { type: "approle" });
  await ok("POST", "auth/approle/role/web", { token_policies: "default" });
  await ok("PUT", "sys/audit/file", { type: "file", options: { file_path: join(dir, "audit.log") } });
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("login auditing and rate limiting", () => {
  it("audits a refused login with its error and never writes the secret id in clear", async () => {
    const roleId = (await call(server.url, "GET", "auth/approle/role/web/role-id", root)).body.data.role_id as string;
    const bogus = "0c8f4e8e-not-a-real-secret-id-7d1b";
    const r = await call(server.url, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: bogus } });
    expect(r.status).toBe(400);
    const secret = (await call(server.url, "POST", "auth/approle/role/web/secret-id", { ...root, body: {} })).body.data.secret_id as string;
    const good = await call(server.url, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secret } });
    expect(good.status).toBe(200);

    const entries = readFileSync(join(dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const logins = entries.filter((e) => e.request?.path === "auth/approle/login" && e.type === "response");
    expect(logins).toHaveLength(2);
    expect(logins[0].error).toMatch(/invalid role or secret ID/);
    expect(logins[1].error ?? "").toBe("");
    expect(logins[1].auth?.client_token ?? logins[1].response?.auth?.client_token).toMatch(/^hmac-sha256:/);
    const text = readFileSync(join(dir, "audit.log"), "utf8");
    for (const s of [bogus, secret, good.body.auth.client_token]) expect(text.includes(s)).toBe(false);
  });

  it("answers 429 once an address used up its login burst, and nothing else is limited", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await call(server.url, "POST", "auth/approle/login", { body: { role_id: "x", secret_id: "y" } })).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(3);
    const limited = await call(server.url, "POST", "auth/approle/login", { body: { role_id: "x", secret_id: "y" } });
    expect(limited.status).toBe(429);
    expect(limited.body.errors[0]).toMatch(/rate limit/);
    expect((await call(server.url, "GET", "sys/health")).status).toBe(200);
    expect((await call(server.url, "GET", "auth/token/lookup-self", root)).status).toBe(200);
  });
});
