import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { appRoleAuth, type AuthMethod } from "./auth-methods.js";
import { AbortError } from "./backoff.js";
import { BadRequestError, LeaseholdClient } from "./index.js";
import { TokenKeeper, type TokenKeeperOptions } from "./token-keeper.js";
import type { VaultAuth } from "./types.js";

/**
 * A stand-in peer for the token endpoints: `auth/approle/login` issues tokens whose TTL and max
 * TTL are configured per role_id (so the tests cannot disturb one another), `renew-self` extends
 * a token up to its max TTL and answers the time left in whole seconds (as Vault does), and
 * `revoke-self` revokes. Every request is logged.
 */
interface Role {
  ttl: number;
  maxTtl: number;
  /** Logins still to refuse with a 400. */
  failLogins?: number;
}
interface Token {
  role: string;
  created: number;
  expires: number;
  maxExpires: number;
  revoked: boolean;
}
interface Logged {
  at: number;
  path: string;
  token: string | undefined;
  body: Record<string, unknown>;
}

let server: Server;
let address: string;
const roles = new Map<string, Role>();
const tokens = new Map<string, Token>();
const log: Logged[] = [];
let issued = 0;

function authBlock(token: string, ttl: number): VaultAuth {
  return { client_token: token, accessor: `acc-${token}`, policies: ["default"], token_policies: ["default"], metadata: null, lease_duration: ttl, renewable: true, entity_id: "", token_type: "service", orphan: true };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const now = Date.now();
      const path = new URL(req.url ?? "/", "http://x").pathname.replace(/^\/v1\//, "");
      const text = Buffer.concat(chunks).toString("utf8");
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const header = req.headers["x-vault-token"];
      const token = typeof header === "string" ? header : undefined;
      log.push({ at: now, path, token, body });
      const json = (status: number, payload: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(payload));
      };
      const envelope = (auth: VaultAuth) => ({ request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth });
      const live = token ? tokens.get(token) : undefined;
      const usable = live && !live.revoked && live.expires > now ? live : undefined;
      switch (path) {
        case "auth/approle/login": {
          const roleId = String(body.role_id);
          const role = roles.get(roleId);
          if (!role || body.secret_id !== "secret") return json(400, { errors: ["invalid role or secret ID"] });
          if ((role.failLogins ?? 0) > 0) {
            role.failLogins!--;
            return json(400, { errors: ["invalid secret id"] });
          }
          const t = `s.${roleId}-${++issued}`;
          tokens.set(t, { role: roleId, created: now, expires: now + role.ttl * 1000, maxExpires: now + role.maxTtl * 1000, revoked: false });
          return json(200, envelope(authBlock(t, role.ttl)));
        }
        case "auth/token/renew-self": {
          if (!usable) return json(403, { errors: ["permission denied"] });
          const increment = Number(String(body.increment).replace(/s$/, ""));
          usable.expires = Math.min(now + increment * 1000, usable.maxExpires);
          return json(200, envelope(authBlock(token!, Math.floor((usable.expires - now) / 1000))));
        }
        case "auth/token/revoke-self": {
          if (!usable) return json(403, { errors: ["permission denied"] });
          usable.revoked = true;
          res.writeHead(204);
          return res.end();
        }
        default:
          return json(404, { errors: [] });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

type Finished = TestContext["onTestFinished"];

/** A keeper for a fresh role, with its events recorded; stopped when the test ends. */
function setup(onTestFinished: Finished, role: Role, options: Partial<TokenKeeperOptions> = {}) {
  const roleId = `role${roles.size + 1}`;
  roles.set(roleId, role);
  const client = new LeaseholdClient({ address });
  const logins: Array<{ auth: VaultAuth; previous: VaultAuth | undefined; at: number }> = [];
  const renewed: Array<{ auth: VaultAuth; expiresAt: number; at: number }> = [];
  const errors: Array<{ error: Error; willRetryInMs: number }> = [];
  const keeper = new TokenKeeper({
    client,
    method: appRoleAuth({ roleId, secretId: "secret" }),
    onLogin: (auth, previous) => {
      logins.push({ auth, previous, at: Date.now() });
    },
    onRenewed: (auth, expiresAt) => renewed.push({ auth, expiresAt, at: Date.now() }),
    onError: (error, info) => errors.push({ error, willRetryInMs: info.willRetryInMs }),
    ...options,
  });
  onTestFinished(async () => {
    await keeper.stop();
    client.close();
  });
  const requests = (path: string) => log.filter((l) => l.path === path && (path !== "auth/approle/login" ? tokens.get(l.token ?? "")?.role === roleId : l.body.role_id === roleId));
  return { roleId, client, keeper, logins, renewed, errors, requests };
}

async function until(what: string, condition: () => boolean, timeoutMs = 4_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// The tests are independent (a role each), so they run concurrently to keep the file fast.
describe.concurrent("TokenKeeper", () => {
  it("logs in, sets the client's token and renews it with renew-self at about 2/3 of its TTL", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 1, maxTtl: 60 });
    expect(t.keeper.auth).toBeUndefined();
    const started = Date.now();
    const auth = await t.keeper.start();
    expect(auth.client_token).toMatch(/^s\.role\d+-\d+$/);
    expect(t.client.token).toBe(auth.client_token);
    expect(t.keeper.auth?.client_token).toBe(auth.client_token);
    expect(t.logins).toHaveLength(1);
    expect(t.logins[0].previous).toBeUndefined();
    // Renewable and far from its max TTL: no final deadline yet.
    expect(t.keeper.deadlineOf(auth.client_token)).toBeUndefined();

    await until("a renewal", () => t.renewed.length >= 1);
    const renewals = t.requests("auth/token/renew-self");
    expect(renewals.length).toBeGreaterThanOrEqual(1);
    expect(renewals[0].token).toBe(auth.client_token);
    expect(renewals[0].body).toEqual({ increment: "1s" });
    // Not before 0.6 of the one-second TTL (the upper bound is left to the loaded machine).
    expect(renewals[0].at - started).toBeGreaterThanOrEqual(600);
    expect(t.renewed[0].auth.client_token).toBe(auth.client_token);
    expect(t.renewed[0].expiresAt).toBeGreaterThan(t.renewed[0].at);
    expect(t.renewed[0].expiresAt).toBeLessThanOrEqual(t.renewed[0].at + 1_000);
    // Still the same token: no second login.
    expect(t.client.token).toBe(auth.client_token);
    expect(t.requests("auth/approle/login")).toHaveLength(1);
  });

  it("logs in again once the max TTL caps renewal, remembering the old token until it expires", async ({ onTestFinished }) => {
    // Two keepers on the same schedule: one for revokeAll, one for the pruning of liveTokens.
    const a = setup(onTestFinished, { ttl: 2, maxTtl: 2 });
    const b = setup(onTestFinished, { ttl: 2, maxTtl: 2 });
    const [first, firstB] = await Promise.all([a.keeper.start(), b.keeper.start()]);
    await until("the second logins", () => a.logins.length >= 2 && b.logins.length >= 2);

    // Renewal answered 0 s (max TTL reached): capped, so a new login followed.
    const renewals = a.requests("auth/token/renew-self");
    expect(renewals.length).toBeGreaterThanOrEqual(1);
    expect(renewals.every((r) => r.token === first.client_token)).toBe(true);
    expect(a.requests("auth/approle/login")).toHaveLength(2);
    const second = a.logins[1].auth;
    expect(second.client_token).not.toBe(first.client_token);
    expect(a.client.token).toBe(second.client_token);
    expect(a.keeper.auth?.client_token).toBe(second.client_token);
    expect(a.logins[1].previous?.client_token).toBe(first.client_token);
    // Replaced well before the old token's end.
    const old = tokens.get(first.client_token)!;
    expect(a.logins[1].at).toBeLessThan(old.maxExpires);

    // The old token's deadline is its expiry (the server's, give or take the round trip).
    const deadline = a.keeper.deadlineOf(first.client_token);
    expect(deadline).toBeDefined();
    expect(Math.abs(deadline! - old.maxExpires)).toBeLessThan(300);
    expect(a.keeper.deadlineOf("s.someone-else")).toBeUndefined();
    expect(a.keeper.deadlineOf(undefined)).toBeUndefined();

    expect(a.keeper.liveTokens()).toEqual([second.client_token, first.client_token]);
    const revoked = await a.keeper.revokeAll();
    expect(revoked).toBe(2);
    const revokes = a.requests("auth/token/revoke-self").map((r) => r.token);
    expect(revokes.sort()).toEqual([first.client_token, second.client_token].sort());
    expect(tokens.get(first.client_token)!.revoked).toBe(true);
    expect(tokens.get(second.client_token)!.revoked).toBe(true);
    expect(a.keeper.liveTokens()).toEqual([second.client_token]);
    // revokeAll stops the renewals: the keeper logs in no more.
    const loginsAfter = a.requests("auth/approle/login").length;

    // The other keeper: a retired token past its expiry is dropped from liveTokens.
    const secondB = b.logins[1].auth;
    const deadlineB = b.keeper.deadlineOf(firstB.client_token)!;
    expect(b.keeper.liveTokens(deadlineB - 1)).toEqual([secondB.client_token, firstB.client_token]);
    expect(b.keeper.liveTokens(deadlineB)).toEqual([secondB.client_token]);
    expect(b.keeper.deadlineOf(firstB.client_token)).toBeUndefined();
    expect(await b.keeper.revokeAll()).toBe(1);
    expect(tokens.get(firstB.client_token)!.revoked).toBe(false);

    await new Promise((r) => setTimeout(r, 300));
    expect(a.requests("auth/approle/login")).toHaveLength(loginsAfter);
  });

  it("skips tokens the server no longer knows when revoking (403), without counting them", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 60, maxTtl: 60 });
    const auth = await t.keeper.start();
    tokens.get(auth.client_token)!.revoked = true;
    expect(await t.keeper.revokeAll()).toBe(0);
    expect(log.filter((l) => l.path === "auth/token/revoke-self" && l.token === auth.client_token)).toHaveLength(1);
    expect(t.errors).toHaveLength(0);
  });

  it("counts the token's TTL from the login, not from the end of onLogin", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 60, maxTtl: 60 });
    // A non-renewable token: its expiry is final from the start.
    const method: AuthMethod = {
      type: "approle",
      mountPath: "auth/approle",
      login: async (client, signal) => ({ ...(await appRoleAuth({ roleId: t.roleId, secretId: "secret" }).login(client, signal)), renewable: false }),
    };
    const keeper = new TokenKeeper({ client: t.client, method, onLogin: () => new Promise<void>((r) => setTimeout(r, 700)) });
    onTestFinished(() => keeper.stop());
    const auth = await keeper.start();
    const server = tokens.get(auth.client_token)!;
    const deadline = keeper.deadlineOf(auth.client_token);
    expect(deadline).toBeDefined();
    // Counted from after onLogin, it would be 700 ms late.
    expect(Math.abs(deadline! - server.expires)).toBeLessThan(350);
  });

  it("does not retire a token that a new login hands back unchanged (tokenAuth)", async ({ onTestFinished }) => {
    let logins = 0;
    const same: AuthMethod = {
      type: "token",
      mountPath: "auth/token",
      login: async () => {
        logins++;
        return { ...authBlock("s.same", 1), renewable: false };
      },
    };
    const client = new LeaseholdClient({ address });
    const keeper = new TokenKeeper({ client, method: same, threshold: 0.5 });
    onTestFinished(async () => {
      await keeper.stop();
      client.close();
    });
    await keeper.start();
    await until("a second login", () => logins >= 2);
    expect(keeper.liveTokens()).toEqual(["s.same"]);
    expect(client.token).toBe("s.same");
  });

  it("start({ retry: true }) retries refused logins with backoff until one succeeds", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 60, maxTtl: 60, failLogins: 2 }, { minBackoffMs: 20, maxBackoffMs: 40 });
    const auth = await t.keeper.start({ retry: true });
    expect(t.requests("auth/approle/login")).toHaveLength(3);
    expect(t.errors).toHaveLength(2);
    expect(t.errors[0].error).toBeInstanceOf(BadRequestError);
    // Equal jitter: between half of and the whole ceiling (20 ms, then 40 ms).
    expect(t.errors[0].willRetryInMs).toBeGreaterThanOrEqual(10);
    expect(t.errors[0].willRetryInMs).toBeLessThanOrEqual(20);
    expect(t.errors[1].willRetryInMs).toBeGreaterThanOrEqual(20);
    expect(t.errors[1].willRetryInMs).toBeLessThanOrEqual(40);
    expect(t.client.token).toBe(auth.client_token);
    expect(t.logins).toHaveLength(1);
  });

  it("start() without retry throws the first refusal and leaves the client's token alone", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 60, maxTtl: 60, failLogins: 1 }, { minBackoffMs: 20, maxBackoffMs: 40 });
    t.client.token = "s.before";
    const err = await t.keeper.start({ retry: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toBe("invalid secret id");
    expect(t.requests("auth/approle/login")).toHaveLength(1);
    expect(t.client.token).toBe("s.before");
    expect(t.keeper.auth).toBeUndefined();
    expect(t.logins).toHaveLength(0);
    expect(t.errors).toHaveLength(0);
  });

  it("start({ retry: true, signal }) stops retrying when the signal aborts", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 60, maxTtl: 60, failLogins: 1_000 }, { minBackoffMs: 60_000, maxBackoffMs: 60_000 });
    const ac = new AbortController();
    const started = Date.now();
    const pending = t.keeper.start({ retry: true, signal: ac.signal });
    await until("the first refusal", () => t.errors.length >= 1);
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(t.requests("auth/approle/login")).toHaveLength(1);
    expect(t.keeper.auth).toBeUndefined();
  });

  it("stop() ends the renewals; the token is left valid", async ({ onTestFinished }) => {
    const t = setup(onTestFinished, { ttl: 1, maxTtl: 60 });
    const auth = await t.keeper.start();
    await t.keeper.stop();
    await new Promise((r) => setTimeout(r, 900));
    expect(t.requests("auth/token/renew-self")).toHaveLength(0);
    expect(tokens.get(auth.client_token)!.revoked).toBe(false);
  });
});
