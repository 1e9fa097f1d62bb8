/**
 * Userpass through the real server: users (CRUD, LIST, password and policies endpoints, the
 * deprecated aliases), login (token fields, one answer for unknown users and wrong passwords at the
 * same cost, CIDR binding), passwords stored only as scrypt hashes, renewal, audit and rate limit.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../../plugins/auth/userpass/password-hash.js";
import type { UserEntry } from "../../plugins/auth/userpass/store.js";
import type { StorageView } from "../../src/sdk/index.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
let auditDir: string;
const root = { token: "root" };

const write = async (path: string, body: unknown = {}) => {
  const r = await call(base, "POST", path, { ...root, body });
  expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r;
};
const login = (username: string, password: unknown) => call(base, "POST", `auth/userpass/login/${username}`, { body: { password } });
const storage = (): StorageView => server.core.mounts.get("auth/userpass/")!.storage;

/** Every key and value under a storage view, decrypted (what a copy of the database would reveal with the barrier key). */
async function dump(view: StorageView, prefix = ""): Promise<string> {
  let out = "";
  for (const k of await view.list(prefix)) {
    if (k.endsWith("/")) out += await dump(view, prefix + k);
    else out += `${prefix}${k}=${(await view.get(prefix + k))?.toString("utf8")}\n`;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

beforeAll(async () => {
  auditDir = mkdtempSync(join(tmpdir(), "leasehold-userpass-audit-"));
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  await write("sys/auth/userpass", { type: "userpass" });
  await call(base, "PUT", "sys/audit/file", { ...root, body: { type: "file", options: { file_path: join(auditDir, "audit.log") } } });
});
afterAll(async () => {
  await server?.stop();
  rmSync(auditDir, { recursive: true, force: true });
});

describe("userpass users", () => {
  it("creates a user (name lower-cased), reads its token fields but never its password, lists and deletes it", async () => {
    const created = await call(base, "POST", "auth/userpass/users/Alice", { ...root, body: { password: "correct horse", token_policies: "app,Ops", token_ttl: "10m", token_max_ttl: "1h" } });
    expect(created.status).toBe(204);
    const r = await call(base, "GET", "auth/userpass/users/ALICE", root);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      token_policies: ["app", "ops"],
      token_ttl: 600,
      token_max_ttl: 3600,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_type: "default",
    });
    expect(JSON.stringify(r.body)).not.toMatch(/correct horse|password|scrypt/);

    // An update changes only the fields sent; the password stays.
    await write("auth/userpass/users/alice", { token_num_uses: 5 });
    expect((await call(base, "GET", "auth/userpass/users/alice", root)).body.data).toMatchObject({ token_policies: ["app", "ops"], token_ttl: 600, token_num_uses: 5 });
    expect((await login("alice", "correct horse")).status).toBe(200);

    await write("auth/userpass/users/bob", { password: "b" });
    expect((await call(base, "LIST", "auth/userpass/users", root)).body.data.keys).toEqual(expect.arrayContaining(["alice", "bob"]));
    expect((await call(base, "GET", "auth/userpass/users?list=true", root)).body.data.keys).toContain("bob");

    expect((await call(base, "DELETE", "auth/userpass/users/BOB", root)).status).toBe(204);
    expect((await call(base, "GET", "auth/userpass/users/bob", root)).status).toBe(404);
    expect((await call(base, "LIST", "auth/userpass/users", root)).body.data.keys).not.toContain("bob");
    expect(await login("bob", "b")).toEqual({ status: 400, body: { errors: ["invalid username or password"] } });
  });

  it("stores only a salted scrypt hash, with its parameters", async () => {
    await write("auth/userpass/users/hashed", { password: "s3cret-in-clear" });
    await write("auth/userpass/users/hashed-twin", { password: "s3cret-in-clear" });
    const stored = await dump(storage());
    expect(stored).not.toContain("s3cret-in-clear");
    const entry = await storage().getJSON<UserEntry>("user/hashed");
    const twin = await storage().getJSON<UserEntry>("user/hashed-twin");
    expect(entry!.password_hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    // A random salt per password: the same password hashes differently.
    expect(twin!.password_hash).not.toBe(entry!.password_hash);
  });

  it("refuses bad input with 400 and a message saying what to fix", async () => {
    const cases: [string, unknown, RegExp][] = [
      ["auth/userpass/users/nopass", { token_policies: "app" }, /^missing password$/],
      ["auth/userpass/users/emptypass", { password: "" }, /^missing password$/],
      ["auth/userpass/users/-dash", { password: "x" }, /invalid username "-dash"/],
      ["auth/userpass/users/dot.", { password: "x" }, /invalid username "dot\."/],
      ["auth/userpass/users", { password: "x" }, /missing username/],
      ["auth/userpass/users/prehashed", { password_hash: "$2a$10$abcdefghijklmnopqrstuv" }, /password_hash is not supported/],
      ["auth/userpass/users/longttl", { password: "x", token_ttl: "2h", token_max_ttl: "1h" }, /"token_ttl" should not be greater than "token_max_ttl"/],
      ["auth/userpass/users/rooted", { password: "x", token_policies: "root" }, /auth methods cannot create root tokens/],
      ["auth/userpass/users/badcidr", { password: "x", token_bound_cidrs: "10.0.0.0/33" }, /token_bound_cidrs/],
      ["auth/userpass/users/badnum", { password: "x", token_num_uses: "many" }, /token_num_uses/],
      ["auth/userpass/users/ghost/password", { password: "x" }, /username does not exist/],
      ["auth/userpass/users/ghost/policies", { token_policies: "x" }, /username does not exist/],
    ];
    for (const [path, body, msg] of cases) {
      const r = await call(base, "POST", path, { ...root, body });
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.errors[0]).toMatch(msg);
    }
    for (const name of ["nopass", "emptypass", "prehashed", "longttl", "rooted", "ghost"]) expect((await call(base, "GET", `auth/userpass/users/${name}`, root)).status).toBe(404);

    // Unknown fields are ignored with a warning, as Vault does (`period` is approle's alias, not userpass's).
    const extra = await call(base, "POST", "auth/userpass/users/extra", { ...root, body: { password: "x", colour: "blue", period: "1h" } });
    expect(extra.status).toBe(200);
    expect(extra.body.warnings).toEqual(["Endpoint ignored these unrecognized parameters: [colour period]"]);
    expect((await call(base, "GET", "auth/userpass/users/extra", root)).body.data.token_period).toBe(0);
  });

  it("changes the password through users/:username/password: the old one is refused afterwards", async () => {
    await write("auth/userpass/users/carol", { password: "old-password", token_policies: "app" });
    expect((await login("carol", "old-password")).status).toBe(200);
    const missing = await call(base, "POST", "auth/userpass/users/carol/password", { ...root, body: {} });
    expect(missing).toEqual({ status: 400, body: { errors: ["missing password"] } });
    expect((await call(base, "POST", "auth/userpass/users/carol/password", { ...root, body: { password: "new-password", token_policies: "other" } })).status).toBe(200);
    expect(await login("carol", "old-password")).toEqual({ status: 400, body: { errors: ["invalid username or password"] } });
    const ok = await login("carol", "new-password");
    expect(ok.status).toBe(200);
    // Only the password changed.
    expect(ok.body.auth.policies).toEqual(["app", "default"]);
    // Writing the user with a password changes it too.
    await write("auth/userpass/users/carol", { password: "third-password" });
    expect((await login("carol", "new-password")).status).toBe(400);
    expect((await login("carol", "third-password")).status).toBe(200);
  });

  it("changes the policies through users/:username/policies, and nothing else", async () => {
    await write("auth/userpass/users/dave", { password: "pw-dave", token_policies: "app", token_ttl: "5m" });
    await write("auth/userpass/users/dave/policies", { token_policies: "Reports, audit" });
    expect((await call(base, "GET", "auth/userpass/users/dave", root)).body.data).toMatchObject({ token_policies: ["audit", "reports"], token_ttl: 300 });
    const r = await login("dave", "pw-dave");
    expect(r.status).toBe(200);
    expect(r.body.auth.policies).toEqual(["audit", "default", "reports"]);
    // The deprecated name works too, and shows on read while it is in use.
    await write("auth/userpass/users/dave/policies", { policies: "legacy" });
    expect((await call(base, "GET", "auth/userpass/users/dave", root)).body.data).toMatchObject({ token_policies: ["legacy"], policies: ["legacy"] });
    const rooted = await call(base, "POST", "auth/userpass/users/dave/policies", { ...root, body: { token_policies: "root" } });
    expect(rooted.status).toBe(400);
  });

  it("honours the deprecated policies/ttl/max_ttl/bound_cidrs aliases as Vault does", async () => {
    await write("auth/userpass/users/legacy", { password: "pw", policies: "app", ttl: "20m", max_ttl: "2h", bound_cidrs: "127.0.0.0/8" });
    const read = await call(base, "GET", "auth/userpass/users/legacy", root);
    expect(read.body.data).toMatchObject({ token_policies: ["app"], policies: ["app"], token_ttl: 1200, ttl: 1200, token_max_ttl: 7200, max_ttl: 7200, token_bound_cidrs: ["127.0.0.0/8"], bound_cidrs: ["127.0.0.0/8"] });
    const r = await login("legacy", "pw");
    expect(r.body.auth).toMatchObject({ policies: ["app", "default"], lease_duration: 1200 });
    // The new name alone replaces the alias, which no longer shows.
    await write("auth/userpass/users/legacy", { token_policies: "web", token_ttl: "30m" });
    const after = (await call(base, "GET", "auth/userpass/users/legacy", root)).body.data;
    expect(after).toMatchObject({ token_policies: ["web"], token_ttl: 1800, max_ttl: 7200, bound_cidrs: ["127.0.0.0/8"] });
    expect(after.policies).toBeUndefined();
    expect(after.ttl).toBeUndefined();
  });
});

describe("userpass login", () => {
  it("mints a token with the user's policies and TTL, metadata.username and display name userpass-<username>", async () => {
    await write("auth/userpass/users/erin", { password: "pw-erin", token_policies: "app", token_ttl: "15m", token_max_ttl: "1h", token_num_uses: 4 });
    const r = await login("Erin", "pw-erin");
    expect(r.status).toBe(200);
    expect(r.body.data).toBeNull();
    expect(r.body.auth).toMatchObject({ policies: ["app", "default"], token_policies: ["app", "default"], metadata: { username: "erin" }, lease_duration: 900, renewable: true, orphan: true, num_uses: 4 });
    const self = await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token });
    expect(self.body.data).toMatchObject({ path: "auth/userpass/login/Erin", display_name: "userpass-erin", meta: { username: "erin" }, ttl: 900, renewable: true });
  });

  it("answers an unknown user and a wrong password alike, at the same cost", async () => {
    await write("auth/userpass/users/frank", { password: "pw-frank" });
    const wrong = await login("frank", "not-it");
    const unknown = await login("nobody-here", "not-it");
    expect(wrong).toEqual({ status: 400, body: { errors: ["invalid username or password"] } });
    expect(unknown).toEqual(wrong);
    expect(await login("frank", "")).toEqual({ status: 400, body: { errors: ["missing password"] } });
    expect(await login("frank", undefined)).toEqual({ status: 400, body: { errors: ["missing password"] } });
    expect(await call(base, "POST", "auth/userpass/login", { body: { username: "frank", password: "pw-frank" } })).toEqual({ status: 400, body: { errors: ["missing username: log in at login/<username> with the password in the body"] } });

    // Both cost one scrypt derivation (about 0.1 s here); without the dummy hash an unknown user would answer in about 1 ms.
    const time = async (user: string) => {
      const t = performance.now();
      expect((await login(user, "not-it")).status).toBe(400);
      return performance.now() - t;
    };
    const wrongTimes: number[] = [];
    const unknownTimes: number[] = [];
    const okTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      wrongTimes.push(await time("frank"));
      unknownTimes.push(await time(`ghost-${i}`));
      const t = performance.now();
      expect((await login("frank", "pw-frank")).status).toBe(200);
      okTimes.push(performance.now() - t);
    }
    console.log(`userpass login medians: success ${median(okTimes).toFixed(1)} ms, wrong password ${median(wrongTimes).toFixed(1)} ms, unknown user ${median(unknownTimes).toFixed(1)} ms`);
    // Loose bounds: the machine is shared, but skipping the derivation for unknown users would be 20 times faster.
    expect(median(wrongTimes)).toBeGreaterThan(20);
    expect(median(unknownTimes)).toBeGreaterThan(median(wrongTimes) * 0.5);

    const metrics = await fetch(`${base}/v1/sys/metrics?format=prometheus`, { headers: { "X-Vault-Token": "root" } }).then((x) => x.text());
    const failures = Number(/leasehold_login_failures_total\{auth_mount="auth\/userpass\/"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(failures).toBeGreaterThanOrEqual(12);
  });

  it("token_bound_cidrs: outside refuses a right password with 403 (a wrong one still 400), inside binds the token", async () => {
    await write("auth/userpass/users/far", { password: "pw-far", token_bound_cidrs: "10.0.0.0/8" });
    expect(await login("far", "pw-far")).toEqual({ status: 403, body: { errors: ["permission denied"] } });
    expect((await login("far", "wrong")).status).toBe(400);
    await write("auth/userpass/users/near", { password: "pw-near", token_bound_cidrs: ["127.0.0.1/32"] });
    const r = await login("near", "pw-near");
    expect(r.status).toBe(200);
    expect((await call(base, "GET", "auth/token/lookup-self", { token: r.body.auth.client_token })).status).toBe(200);
    expect((await server.core.tokens.lookup(r.body.auth.client_token))?.boundCidrs).toEqual(["127.0.0.1/32"]);
  });

  it("re-hashes a password stored at a lower cost on the next successful login", async () => {
    await write("auth/userpass/users/oldhash", { password: "placeholder" });
    const entry = (await storage().getJSON<UserEntry>("user/oldhash"))!;
    await storage().putJSON("user/oldhash", { ...entry, password_hash: await hashPassword("legacy-pw", { ln: 10, r: 8, p: 1 }) });
    expect((await login("oldhash", "wrong")).status).toBe(400);
    expect((await storage().getJSON<UserEntry>("user/oldhash"))!.password_hash).toMatch(/^\$scrypt\$ln=10,/);
    expect((await login("oldhash", "legacy-pw")).status).toBe(200);
    expect((await storage().getJSON<UserEntry>("user/oldhash"))!.password_hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
    expect((await login("oldhash", "legacy-pw")).status).toBe(200);
  });

  it("renews while the user and its policies hold; refuses once the policies change or the user is deleted", async () => {
    await write("auth/userpass/users/gina", { password: "pw-gina", token_policies: "app", token_ttl: "10m", token_max_ttl: "1h" });
    const first = (await login("gina", "pw-gina")).body.auth.client_token;
    const renewed = await call(base, "POST", "auth/token/renew-self", { token: first, body: { increment: "20m" } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.auth.lease_duration).toBe(1200);

    await write("auth/userpass/users/gina/policies", { token_policies: "app,extra" });
    const changed = await call(base, "POST", "auth/token/renew-self", { token: first, body: {} });
    expect(changed).toMatchObject({ status: 403, body: { errors: ["policies have changed, not renewing"] } });

    const second = (await login("gina", "pw-gina")).body.auth.client_token;
    expect((await call(base, "POST", "auth/token/renew-self", { token: second, body: {} })).status).toBe(200);
    expect((await call(base, "DELETE", "auth/userpass/users/gina", root)).status).toBe(204);
    const gone = await call(base, "POST", "auth/token/renew-self", { token: second, body: {} });
    expect(gone.status).toBe(403);
    expect(gone.body.errors[0]).toMatch(/user "gina" no longer exists, not renewing/);
  });

  it("audits logins, refused and successful, without the password in clear", async () => {
    await write("auth/userpass/users/henry", { password: "henry-Pa55word!" });
    expect((await login("henry", "henry-wrong-Pa55")).status).toBe(400);
    const ok = await login("henry", "henry-Pa55word!");
    expect(ok.status).toBe(200);
    const text = readFileSync(join(auditDir, "audit.log"), "utf8");
    const entries = text.trim().split("\n").map((l) => JSON.parse(l));
    const logins = entries.filter((e) => e.request?.path === "auth/userpass/login/henry" && e.type === "response");
    expect(logins).toHaveLength(2);
    expect(logins[0].error).toBe("invalid username or password");
    expect(logins[0].request.data.password).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(logins[1].error ?? "").toBe("");
    for (const s of ["henry-Pa55word!", "henry-wrong-Pa55", ok.body.auth.client_token]) expect(text.includes(s)).toBe(false);
    // Writing a user audits its password HMAC'd as well.
    const create = entries.find((e) => e.request?.path === "auth/userpass/users/henry" && e.type === "request");
    expect(create.request.data.password).toMatch(/^hmac-sha256:/);
  });
});

describe("userpass login rate limit", () => {
  it("answers 429 once an address exceeds its login burst, counting refused logins, and never limits user management", async () => {
    const limited = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1, burst: 3 } });
    try {
      expect((await call(limited.url, "POST", "sys/auth/userpass", { ...root, body: { type: "userpass" } })).status).toBe(204);
      for (let i = 0; i < 5; i++) expect((await call(limited.url, "POST", "auth/userpass/users/ivy", { ...root, body: { token_num_uses: i, password: i === 0 ? "pw-ivy" : undefined } })).status).toBe(204);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(limited.url, "POST", "auth/userpass/login/ivy", { body: { password: "guess" } })).status);
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      // The right password is limited too until tokens refill.
      const blocked = await call(limited.url, "POST", "auth/userpass/login/ivy", { body: { password: "pw-ivy" } });
      expect(blocked.status).toBe(429);
      expect(blocked.body.errors[0]).toMatch(/rate limit/);
      expect((await call(limited.url, "LIST", "auth/userpass/users", root)).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});
