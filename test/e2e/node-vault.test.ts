import vault from "node-vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/** The ApiResponseError node-vault rejects with (statusCode + parsed body). */
interface VaultApiError {
  message: string;
  response: { statusCode: number; body: { errors?: string[] } };
}

async function failure(p: Promise<unknown>): Promise<VaultApiError> {
  try {
    await p;
  } catch (e) {
    return e as VaultApiError;
  }
  throw new Error("expected the request to fail");
}

describe("node-vault against a running leasehold", () => {
  let server: RunningServer;
  let client: vault.client;

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    client = vault({ apiVersion: "v1", endpoint: server.url, token: "root" });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("writes and reads KV v2 secrets", async () => {
    const w = await client.write("secret/data/app", { data: { user: "alice", pass: "s3cret" } });
    expect(w.data.version).toBe(1);
    expect(w.data.destroyed).toBe(false);
    const w2 = await client.write("secret/data/app", { data: { user: "alice", pass: "rotated" } });
    expect(w2.data.version).toBe(2);

    const r = await client.read("secret/data/app");
    expect(r.data.data).toEqual({ user: "alice", pass: "rotated" });
    expect(r.data.metadata.version).toBe(2);
    expect(r.lease_duration).toBe(0);
    expect(r.wrap_info).toBeNull();

    const v1 = await client.read("secret/data/app?version=1");
    expect(v1.data.data).toEqual({ user: "alice", pass: "s3cret" });
  });

  it("lists with the LIST method", async () => {
    await client.write("secret/data/app/db", { data: { x: "1" } });
    await client.write("secret/data/other", { data: { y: "2" } });
    const l = await client.list("secret/metadata/");
    expect([...l.data.keys].sort()).toEqual(["app", "app/", "other"]);
    const sub = await client.list("secret/metadata/app/");
    expect(sub.data.keys).toEqual(["db"]);
    // The same through ?list=1 (noCustomHTTPVerbs)
    const getList = vault({ apiVersion: "v1", endpoint: server.url, token: "root", noCustomHTTPVerbs: true });
    const l2 = await getList.list("secret/metadata/");
    expect([...l2.data.keys].sort()).toEqual(["app", "app/", "other"]);
    // An empty folder: 404
    const e = await failure(client.list("secret/metadata/nothing-here/"));
    expect(e.response.statusCode).toBe(404);
  });

  it("deletes the latest version", async () => {
    await client.write("secret/data/todelete", { data: { a: "b" } });
    await client.delete("secret/data/todelete");
    const e = await failure(client.read("secret/data/todelete"));
    expect(e.response.statusCode).toBe(404);
    // Vault still sends the version metadata with the 404 of a soft-deleted version.
    const body = e.response.body as { data?: { metadata?: { deletion_time?: string; version?: number } } };
    expect(body.data?.metadata?.version).toBe(1);
    expect(body.data?.metadata?.deletion_time).not.toBe("");
    // Metadata delete removes the key entirely.
    await client.delete("secret/metadata/todelete");
    const gone = await failure(client.read("secret/metadata/todelete"));
    expect(gone.response.statusCode).toBe(404);
  });

  it("writes, reads and lists policies", async () => {
    const rules = 'path "secret/data/app" {\n  capabilities = ["read"]\n}\n';
    await client.addPolicy({ name: "app-read", rules });
    const got = await client.getPolicy({ name: "app-read" });
    expect(got.name).toBe("app-read");
    expect(got.rules).toBe(rules);
    expect(got.data).toEqual({ name: "app-read", rules });

    const all = await client.policies();
    expect(all.policies).toEqual(["app-read", "default", "root"]);
    expect(all.keys).toEqual(["app-read", "default", "root"]);

    await client.write("sys/policies/acl/app-write", { policy: 'path "secret/data/app" { capabilities = ["create", "update"] }' });
    const acl = await client.read("sys/policies/acl/app-write");
    expect(acl.data.name).toBe("app-write");
    expect(acl.data.policy).toContain('capabilities = ["create", "update"]');
    const listed = await client.list("sys/policies/acl");
    expect(listed.data.keys).toEqual(["app-read", "app-write", "default"]);

    await client.removePolicy({ name: "app-write" });
    const e = await failure(client.read("sys/policies/acl/app-write"));
    expect(e.response.statusCode).toBe(404);
  });

  it("creates a token with policies and a ttl, then looks it up", async () => {
    const creator = vault({ apiVersion: "v1", endpoint: server.url, token: "root" });
    const created = await creator.tokenCreate({ policies: ["app-read"], ttl: "1h", display_name: "ci", meta: { team: "blue" } });
    const token: string = created.auth.client_token;
    expect(token).toMatch(/^lhs\./);
    expect(created.auth.policies).toEqual(["app-read", "default"]);
    expect(created.auth.lease_duration).toBe(3600);
    expect(created.auth.renewable).toBe(true);
    expect(created.auth.orphan).toBe(false);
    expect(created.auth.metadata).toEqual({ team: "blue" });
    // node-vault switches the client to the new token (tokenSource)
    expect(creator.token).toBe(token);

    const self = await creator.tokenLookupSelf();
    expect(self.data.id).toBe(token);
    expect(self.data.policies).toEqual(["app-read", "default"]);
    expect(self.data.display_name).toBe("token-ci");
    expect(self.data.creation_ttl).toBe(3600);
    expect(self.data.ttl).toBeGreaterThan(3590);
    expect(self.data.ttl).toBeLessThanOrEqual(3600);
    expect(self.data.accessor).toBe(created.auth.accessor);
    expect(self.data.path).toBe("auth/token/create");
    expect(self.data.meta).toEqual({ team: "blue" });

    // The new token may read what its policy allows and nothing else.
    const r = await creator.read("secret/data/app");
    expect(r.data.data.user).toBe("alice");
    const denied = await failure(creator.write("secret/data/app", { data: { user: "mallory" } }));
    expect(denied.response.statusCode).toBe(403);
    expect(denied.response.body).toEqual({ errors: ["permission denied"] });
    expect(denied.message).toBe("permission denied");
  });

  it("answers health, seal status and status", async () => {
    const h = await client.health();
    expect(h.initialized).toBe(true);
    expect(h.sealed).toBe(false);
    expect(h.standby).toBe(false);
    expect(typeof h.version).toBe("string");
    expect(h.cluster_name).toBe("leasehold-dev");
    expect(Math.abs(h.server_time_utc - Date.now() / 1000)).toBeLessThan(60);

    const s = await client.status();
    expect(s.sealed).toBe(false);
    expect(s.initialized).toBe(true);
    expect(s.t).toBe(1);
    expect(s.n).toBe(1);
    expect(s.progress).toBe(0);
    expect(s.type).toBe("shamir");
    const raw = await call(server.url, "GET", "sys/seal-status");
    expect(raw.status).toBe(200);
    expect(raw.body.sealed).toBe(false);
  });

  it("lists, mounts and unmounts secrets engines", async () => {
    const m = await client.mounts();
    expect(m.data["secret/"].type).toBe("kv");
    expect(m.data["secret/"].options).toEqual({ version: "2" });
    expect(m["secret/"].type).toBe("kv"); // copied to the top level, as Vault does
    expect(m.data["sys/"].type).toBe("system");

    await client.mount({ mount_point: "kv-two", type: "kv", description: "second", options: { version: "2" } });
    const after = await client.mounts();
    expect(after.data["kv-two/"].type).toBe("kv");
    expect(after.data["kv-two/"].description).toBe("second");
    expect(after.data["kv-two/"].accessor).toMatch(/^kv_/);

    await client.write("kv-two/data/x", { data: { v: "42" } });
    expect((await client.read("kv-two/data/x")).data.data).toEqual({ v: "42" });
    // Mount isolation: secret/ does not see it
    expect((await failure(client.read("secret/data/x"))).response.statusCode).toBe(404);

    // A v1 mount
    await client.mount({ mount_point: "kv-one", type: "kv" });
    await client.write("kv-one/foo", { bar: "baz" });
    expect((await client.read("kv-one/foo")).data).toEqual({ bar: "baz" });
    expect((await client.list("kv-one/")).data.keys).toEqual(["foo"]);

    await client.unmount({ mount_point: "kv-two" });
    await client.unmount({ mount_point: "kv-one" });
    const final = await client.mounts();
    expect(final.data["kv-two/"]).toBeUndefined();
    expect(final.data["kv-one/"]).toBeUndefined();
    const e = await failure(client.read("kv-two/data/x"));
    expect(e.response.statusCode).toBe(404);
    expect(e.message).toContain("no handler for route");
  });

  it("logs in with AppRole, issues a leased certificate, and renews and revokes it through the lease calls", async () => {
    await client.enableAuth({ mount_point: "approle", type: "approle" });
    await client.addPolicy({ name: "issuer", rules: 'path "pki/issue/web" { capabilities = ["update"] }\npath "sys/leases/*" { capabilities = ["update"] }' });
    // node-vault sends only the fields its schema knows: `policies` (Vault's older name of token_policies), TTLs in seconds.
    await client.addApproleRole({ role_name: "ci", policies: "issuer", token_ttl: 600 });
    const roleId = (await client.getApproleRoleId({ role_name: "ci" })).data.role_id as string;
    const secretId = (await client.getApproleRoleSecret({ role_name: "ci" })).data.secret_id as string;
    const app = vault({ apiVersion: "v1", endpoint: server.url });
    const login = await app.approleLogin({ role_id: roleId, secret_id: secretId });
    expect(login.auth.policies).toEqual(["default", "issuer"]);
    expect(app.token).toBe(login.auth.client_token); // node-vault keeps the token it logged in with

    await client.mount({ mount_point: "pki", type: "pki" });
    await client.write("pki/root/generate/internal", { common_name: "Test Root", key_type: "ec", ttl: "24h" });
    await client.write("pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec", ttl: "1h", generate_lease: true });
    const cert = await app.write("pki/issue/web", { common_name: "api.example.com", ttl: "30m" });
    expect(cert.lease_id).toMatch(/^pki\/issue\/web\//);
    expect(cert.renewable).toBe(false);
    expect(cert.data.private_key_type).toBe("ec");
    const serial = cert.data.serial_number as string;

    // A certificate's lease is not renewable (Vault's PKI): the renewal is refused with 400.
    expect((await failure(app.renew({ lease_id: cert.lease_id, increment: 3600 }))).response.statusCode).toBe(400);
    await app.revoke({ lease_id: cert.lease_id });
    const shown = await call(server.url, "GET", `pki/cert/${serial}`);
    expect(shown.body.data.revocation_time).toBeGreaterThan(0);

    // The AppRole token looks itself up, renews and revokes itself.
    expect((await app.tokenLookupSelf()).data.policies).toEqual(["default", "issuer"]);
    expect((await app.tokenRenewSelf({ increment: "5m" })).auth.lease_duration).toBe(300);
    await app.tokenRevokeSelf();
    expect((await failure(app.tokenLookupSelf())).response.statusCode).toBe(403);
  });

  it("refuses calls without a token", async () => {
    const anon = vault({ apiVersion: "v1", endpoint: server.url });
    const e = await failure(anon.read("secret/data/app"));
    expect(e.response.statusCode).toBe(403);
    expect(e.response.body).toEqual({ errors: ["permission denied"] });
  });
});
