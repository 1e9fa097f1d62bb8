/**
 * Issue 15, "what already held": AppRole use-limited secret IDs under concurrent logins, through
 * the real HTTP server. An attacker who copied a one-use secret ID races the legitimate client:
 * of 30 logins sent at once exactly one gets a token, whatever the interleaving, and the secret ID
 * is then gone. test/auth/approle-concurrency.test.ts drives the same race below the HTTP layer with
 * a store that yields on every call. Positive control: a fresh secret ID still logs in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
const root = { token: "root" };
let roleId = "";

const newSecretId = async (body: Record<string, unknown> = {}) => {
  const r = await call(base, "POST", "auth/approle/role/once/secret-id", { ...root, body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as { secret_id: string; secret_id_accessor: string; secret_id_num_uses: number };
};
const login = (secretId: string) => call(base, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } });

/** Sends `n` logins at once; returns the statuses and the tokens granted. */
async function race(secretId: string, n: number): Promise<{ statuses: number[]; tokens: string[] }> {
  const results = await Promise.all(Array.from({ length: n }, () => login(secretId)));
  return { statuses: results.map((r) => r.status), tokens: results.filter((r) => r.status === 200).map((r) => r.body.auth.client_token as string) };
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  expect((await call(base, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
  expect((await call(base, "POST", "auth/approle/role/once", { ...root, body: { secret_id_num_uses: 1, token_policies: "default" } })).status).toBe(204);
  roleId = (await call(base, "GET", "auth/approle/role/once/role-id", root)).body.data.role_id;
});
afterAll(async () => {
  await server?.stop();
});

describe("AppRole use-limited secret IDs under concurrency", () => {
  it("30 concurrent logins with a secret_id_num_uses=1 secret ID: exactly one succeeds, then it is gone", async () => {
    const sid = await newSecretId();
    expect(sid.secret_id_num_uses).toBe(1);
    const lookupAccessor = () => call(base, "POST", "auth/approle/role/once/secret-id-accessor/lookup", { ...root, body: { secret_id_accessor: sid.secret_id_accessor } });
    expect((await lookupAccessor()).status).toBe(200);
    const { statuses, tokens } = await race(sid.secret_id, 30);
    expect(tokens, `statuses ${statuses.join(",")}`).toHaveLength(1);
    // Every other attempt is an ordinary refusal (never a 5xx that might have done something).
    expect(statuses.filter((s) => s !== 200).every((s) => s === 400 || s === 403), statuses.join(",")).toBe(true);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: tokens[0] })).status).toBe(200);
    // The used-up secret ID is destroyed: no further login, and its accessor is unknown.
    expect((await login(sid.secret_id)).status).not.toBe(200);
    const lookup = await lookupAccessor();
    expect(lookup.status, JSON.stringify(lookup.body)).not.toBe(200);
  });

  it("a secret ID with num_uses=3 (below the role's) allows exactly three of 30 concurrent logins", async () => {
    expect((await call(base, "POST", "auth/approle/role/thrice", { ...root, body: { token_policies: "default" } })).status).toBe(204);
    const r = await call(base, "POST", "auth/approle/role/thrice/secret-id", { ...root, body: { num_uses: 3 } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const thriceId = (await call(base, "GET", "auth/approle/role/thrice/role-id", root)).body.data.role_id;
    const results = await Promise.all(Array.from({ length: 30 }, () => call(base, "POST", "auth/approle/login", { body: { role_id: thriceId, secret_id: r.body.data.secret_id } })));
    expect(results.filter((x) => x.status === 200)).toHaveLength(3);
  });

  it("a secret ID opens only its own role, spelled exactly", async () => {
    expect((await call(base, "POST", "auth/approle/role/other", { ...root, body: { token_policies: "default" } })).status).toBe(204);
    const otherRoleId = (await call(base, "GET", "auth/approle/role/other/role-id", root)).body.data.role_id as string;
    const mine = (await newSecretId()).secret_id;
    for (const [what, body] of [
      ["another role's role_id", { role_id: otherRoleId, secret_id: mine }],
      ["the role's name as role_id", { role_id: "once", secret_id: mine }],
      ["upper-cased secret ID", { role_id: roleId, secret_id: mine.toUpperCase() }],
      ["padded secret ID", { role_id: roleId, secret_id: ` ${mine} ` }],
      ["secret ID in a list", { role_id: roleId, secret_id: [mine] }],
      ["operator object", { role_id: roleId, secret_id: { $ne: "" } }],
    ] as const) {
      const r = await call(base, "POST", "auth/approle/login", { body });
      expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.auth, what).toBeUndefined();
    }
    // A destroy through another role leaves it alone; the failed attempts did not use it up.
    expect((await call(base, "POST", "auth/approle/role/other/secret-id/destroy", { ...root, body: { secret_id: mine } })).status).toBe(204);
    expect((await login(mine)).status).toBe(200);
  });

  it("positive control: a fresh secret ID of the same role logs in, once", async () => {
    const sid = await newSecretId();
    const first = await login(sid.secret_id);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.auth.client_token).toMatch(/\S/);
    expect((await login(sid.secret_id)).status).not.toBe(200);
  });
});
