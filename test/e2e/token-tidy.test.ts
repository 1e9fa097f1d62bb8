import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import type { TokenEntry } from "../../src/core/tokens.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * `auth/token/tidy` as hvac calls it (`client.auth.token.tidy()`: POST, no body): 202 with Vault's
 * warning, then, in the background, what a crash or an interrupted revocation left behind is gone,
 * and live tokens are untouched.
 */
describe("auth/token/tidy", () => {
  let server: RunningServer;
  let base: string;
  const view = () => server.core.barrier.view("sys/token/");
  const create = async (body: Record<string, unknown>, token = "root") => {
    const r = await call(base, "POST", "auth/token/create", { token, body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { token: r.body.auth.client_token as string, accessor: r.body.auth.accessor as string };
  };
  const stored = async (token: string) => server.core.tokens.getByToken(token);
  const overwrite = async (e: TokenEntry) => {
    await view().putJSON(`id/${e.hmac}`, e);
    server.core.tokens.invalidateAll();
  };

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    expect((await call(base, "PUT", "sys/policies/acl/parent", { token: "root", body: { policy: 'path "auth/token/create" { capabilities = ["update"] }' } })).status).toBe(204);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("revokes expired, pending and parentless tokens and drops dangling index entries; live tokens stay", async () => {
    const live = await create({ policies: ["parent"], ttl: "1h" });
    const liveChild = await create({ policies: ["parent"] }, live.token);

    // An expired token the lease manager never reached (its expiry written in the past).
    const expired = await create({ policies: ["default"], ttl: "1h" });
    const e1 = (await stored(expired.token))!;
    await overwrite({ ...e1, expireTime: Date.now() - 1000 });
    // A revocation interrupted after its mark.
    const pending = await create({ policies: ["default"], ttl: "1h" });
    await overwrite({ ...(await stored(pending.token))!, numUses: -1 });
    // A child whose parent entry vanished.
    const doomedParent = await create({ policies: ["parent"], ttl: "1h" });
    const orphaned = await create({ policies: ["default"] }, doomedParent.token);
    const parentEntry = (await stored(doomedParent.token))!;
    await view().delete(`id/${parentEntry.hmac}`);
    // A dangling accessor index entry and a dangling parent index entry.
    await view().putJSON("accessor/0123456789abcdef", { hmac: "f".repeat(64), accessor: "dangling-accessor" });
    await view().putJSON(`parent/${(await stored(live.token))!.hmac}/${"e".repeat(64)}`, {});
    server.core.tokens.invalidateAll();
    const accessorsBefore = (await call(base, "LIST", "auth/token/accessors", { token: "root" })).body.data.keys as string[];
    expect(accessorsBefore).toContain("dangling-accessor");

    const r = await call(base, "POST", "auth/token/tidy", { token: "root" });
    expect(r.status).toBe(202);
    expect(r.body.warnings).toEqual(["Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."]);

    // Tidy runs in the background, tokens first, then the accessor index, then the parent index:
    // wait for the last step too, or a slower store shows the accessor pass unfinished.
    const danglingParent = async () => (await view().list(`parent/${(await stored(live.token))!.hmac}/`)).includes("e".repeat(64));
    const until = Date.now() + 10_000;
    while (Date.now() < until && ((await stored(orphaned.token)) || (await stored(expired.token)) || (await stored(pending.token)) || (await danglingParent()))) await new Promise((res) => setTimeout(res, 50));
    expect(await stored(expired.token)).toBeUndefined();
    expect(await stored(pending.token)).toBeUndefined();
    expect(await stored(orphaned.token)).toBeUndefined();
    const accessorsAfter = (await call(base, "LIST", "auth/token/accessors", { token: "root" })).body.data.keys as string[];
    expect(accessorsAfter).not.toContain("dangling-accessor");
    for (const a of [expired.accessor, pending.accessor, orphaned.accessor]) expect(accessorsAfter).not.toContain(a);
    expect(await view().list(`parent/${(await stored(live.token))!.hmac}/`)).toEqual([(await stored(liveChild.token))!.hmac]);

    // Positive control: the live tree is untouched.
    expect(accessorsAfter).toEqual(expect.arrayContaining([live.accessor, liveChild.accessor]));
    expect((await call(base, "GET", "auth/token/lookup-self", { token: liveChild.token })).status).toBe(200);
  });

  it("needs update on auth/token/tidy; a token without it is refused", async () => {
    const plain = await create({ policies: ["default"], ttl: "1h" });
    expect((await call(base, "POST", "auth/token/tidy", { token: plain.token })).status).toBe(403);
    expect((await call(base, "PUT", "sys/policies/acl/tidier", { token: "root", body: { policy: 'path "auth/token/tidy" { capabilities = ["update"] }' } })).status).toBe(204);
    const tidier = await create({ policies: ["tidier"], ttl: "1h" });
    expect((await call(base, "POST", "auth/token/tidy", { token: tidier.token })).status).toBe(202);
  });
});
