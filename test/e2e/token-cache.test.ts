import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Token entries are cached in memory (src/core/tokens.ts). Whatever the cache holds, a token must
 * behave exactly as its stored entry says: revocation, use counts, expiry and policy changes take
 * effect on the very next request.
 */
describe("token cache: as strict as the store", () => {
  let server: RunningServer;
  let base: string;

  const create = async (body: Record<string, unknown>, token = "root"): Promise<{ token: string; accessor: string }> => {
    const r = await call(base, "POST", "auth/token/create", { token, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { token: r.body.auth.client_token as string, accessor: r.body.auth.accessor as string };
  };
  const readApp = (token: string) => call(base, "GET", "secret/data/app/config", { token });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    expect((await call(base, "PUT", "sys/policies/acl/app", { token: "root", body: { policy: 'path "secret/data/app/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }' } })).status).toBe(204);
    expect((await call(base, "POST", "secret/data/app/config", { token: "root", body: { data: { k: "v" } } })).status).toBe(200);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("a cached token is refused as soon as it is revoked (self, by accessor, through its parent)", async () => {
    const self = await create({ policies: ["app"], ttl: "1h" });
    expect((await readApp(self.token)).status).toBe(200);
    expect((await readApp(self.token)).status).toBe(200);
    expect((await call(base, "POST", "auth/token/revoke-self", { token: self.token })).status).toBe(204);
    expect((await readApp(self.token)).status).toBe(403);

    const byAccessor = await create({ policies: ["app"], ttl: "1h" });
    expect((await readApp(byAccessor.token)).status).toBe(200);
    expect((await call(base, "POST", "auth/token/revoke-accessor", { token: "root", body: { accessor: byAccessor.accessor } })).status).toBe(204);
    expect((await readApp(byAccessor.token)).status).toBe(403);

    const parent = await create({ policies: ["app"], ttl: "1h" });
    const child = await create({ policies: ["app"], ttl: "1h" }, parent.token);
    expect((await readApp(child.token)).status).toBe(200);
    expect((await call(base, "POST", "auth/token/revoke", { token: "root", body: { token: parent.token } })).status).toBe(204);
    expect((await readApp(child.token)).status).toBe(403);
    expect((await readApp(parent.token)).status).toBe(403);
  });

  it("revoking the token's lease (sys/leases/revoke-prefix) refuses the cached token at once", async () => {
    const t = await create({ policies: ["app"], ttl: "1h" });
    expect((await readApp(t.token)).status).toBe(200);
    expect((await call(base, "PUT", "sys/leases/revoke-prefix/auth/token/create", { token: "root" })).status).toBe(204);
    expect((await readApp(t.token)).status).toBe(403);
  });

  it("num_uses is honoured, also for requests that arrive together", async () => {
    const t = await create({ policies: ["app"], ttl: "1h", num_uses: 3 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => readApp(t.token)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 403)).toHaveLength(7);
    expect((await readApp(t.token)).status).toBe(403);

    const one = await create({ policies: ["app"], ttl: "1h", num_uses: 1 });
    expect((await readApp(one.token)).status).toBe(200);
    expect((await readApp(one.token)).status).toBe(403);
  });

  it("a cached token is refused once it expires", async () => {
    const t = await create({ policies: ["app"], ttl: "2s" });
    expect((await readApp(t.token)).status).toBe(200);
    expect((await readApp(t.token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await readApp(t.token)).status).toBe(403);
  });

  it("renewal and policy changes apply to a cached token at once", async () => {
    const t = await create({ policies: ["app"], ttl: "1h" });
    expect((await readApp(t.token)).status).toBe(200);
    const renewed = await call(base, "POST", "auth/token/renew-self", { token: t.token, body: { increment: "2h" } });
    expect(renewed.status).toBe(200);
    const looked = await call(base, "GET", "auth/token/lookup-self", { token: t.token });
    expect(looked.body.data.ttl).toBeGreaterThan(3600);

    expect((await call(base, "PUT", "sys/policies/acl/app", { token: "root", body: { policy: 'path "secret/data/other/*" { capabilities = ["read"] }' } })).status).toBe(204);
    expect((await readApp(t.token)).status).toBe(403);
    expect((await call(base, "PUT", "sys/policies/acl/app", { token: "root", body: { policy: 'path "secret/data/app/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }' } })).status).toBe(204);
    expect((await readApp(t.token)).status).toBe(200);
  });

  it("an unknown token is refused, and dropping the cache changes nothing for a valid one", async () => {
    expect((await readApp("lhs.doesnotexistdoesnotexist")).status).toBe(403);
    const t = await create({ policies: ["app"], ttl: "1h" });
    expect((await readApp(t.token)).status).toBe(200);
    server.core.tokens.invalidateAll();
    expect((await readApp(t.token)).status).toBe(200);
  });
});
