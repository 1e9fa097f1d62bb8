/**
 * `leasehold login -method=<type> K=V...` in process against the real server: the token from the
 * auth method is stored and later commands use it.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";
import { TestKubernetesApi } from "./helpers/k8s-api.js";

let server: RunningServer;
let api: TestKubernetesApi;

async function cli(home: string, argv: string[], env: Record<string, string> = {}) {
  const io = memoryIo({ env: { LEASEHOLD_ADDR: server.url, ...env }, homeDir: home });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  api = await TestKubernetesApi.start();
});
afterAll(async () => {
  await server?.stop();
  await api?.close();
});

describe("leasehold login with auth methods", () => {
  it("-method=approle role_id=... secret_id=... stores a working token", async () => {
    const home = mkdtempSync(join(tmpdir(), "lh-approle-cli-"));
    expect((await call(server.url, "POST", "sys/auth/approle", { token: "root", body: { type: "approle" } })).status).toBe(204);
    await call(server.url, "PUT", "sys/policies/acl/app", { token: "root", body: { policy: 'path "secret/data/app" { capabilities = ["read"] }' } });
    await call(server.url, "POST", "secret/data/app", { token: "root", body: { data: { password: "from-approle" } } });
    expect((await call(server.url, "POST", "auth/approle/role/app", { token: "root", body: { token_policies: "app" } })).status).toBe(204);
    const roleId = (await call(server.url, "GET", "auth/approle/role/app/role-id", { token: "root" })).body.data.role_id;
    const secretId = (await call(server.url, "POST", "auth/approle/role/app/secret-id", { token: "root" })).body.data.secret_id;

    const r = await cli(home, ["login", "-method=approle", `role_id=${roleId}`, `secret_id=${secretId}`]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^Success! You are now authenticated\./);
    expect(r.out).toMatch(/\ntoken_policies +\[app default\]\n/);
    expect(r.out).toMatch(/\ntoken_meta_role_name +app\n/);
    const token = readFileSync(join(home, ".leasehold-token"), "utf8");
    expect(token).toMatch(/^lhs\./);

    const read = await cli(home, ["kv", "get", "-field=password", "secret/app"]);
    expect(read).toEqual({ code: 0, out: "from-approle", err: "" });
    // The token only reads what its policy grants.
    const other = await cli(home, ["kv", "get", "secret/other"]);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/Code: 403/);

    const bad = await cli(home, ["login", "-method=approle", "-no-store", `role_id=${roleId}`, "secret_id=wrong"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^Error authenticating: Code: 400\. Errors:\n\n\* invalid role or secret ID/);
    expect(readFileSync(join(home, ".leasehold-token"), "utf8")).toBe(token);
  });

  it("-method=kubernetes role=web jwt=@<token file> stores a working token", async () => {
    const home = mkdtempSync(join(tmpdir(), "lh-k8s-cli-"));
    api.reviewers.add("reviewer");
    expect((await call(server.url, "POST", "sys/auth/kubernetes", { token: "root", body: { type: "kubernetes" } })).status).toBe(204);
    expect((await call(server.url, "POST", "auth/kubernetes/config", { token: "root", body: { kubernetes_host: api.url, kubernetes_ca_cert: api.ca.cert, token_reviewer_jwt: "reviewer" } })).status).toBe(204);
    expect((await call(server.url, "POST", "auth/kubernetes/role/web", { token: "root", body: { bound_service_account_names: "web", bound_service_account_namespaces: "prod" } })).status).toBe(204);
    const { privateKey } = await generateKeyPair("RS256");
    const uid = randomUUID();
    const jwt = await new SignJWT({ "kubernetes.io": { namespace: "prod", serviceaccount: { name: "web", uid } } })
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("system:serviceaccount:prod:web")
      .setExpirationTime("1h")
      .sign(privateKey);
    api.tokens.set(jwt, { namespace: "prod", name: "web", uid });
    const tokenFile = join(home, "token");
    writeFileSync(tokenFile, jwt);

    const r = await cli(home, ["login", "-method=kubernetes", "role=web", `jwt=@${tokenFile}`]);
    expect(r.code, r.err).toBe(0);
    const lookup = await cli(home, ["token", "lookup", "-format=json"]);
    expect(JSON.parse(lookup.out).data).toMatchObject({ path: "auth/kubernetes/login", display_name: "kubernetes-prod-web", meta: { service_account_uid: uid } });
  });
});
