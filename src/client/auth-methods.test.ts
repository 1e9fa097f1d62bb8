import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KUBERNETES_TOKEN_PATH, appRoleAuth, authMountPath, certAuth, jwtAuth, kubernetesAuth, tokenAuth } from "./auth-methods.js";
import { ClientConfigError, LeaseholdClient, PermissionDeniedError } from "./index.js";

/**
 * A stand-in peer recording each request: `.../login` answers an auth block (with a fresh token),
 * `auth/token/lookup-self` answers the looked-up token's data, `auth/empty/login` answers no auth.
 */
interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

let server: Server;
let address: string;
let dir: string;
const requests: Recorded[] = [];
let issued = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "leasehold-auth-methods-"));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const path = new URL(req.url ?? "/", "http://x").pathname;
      requests.push({ method: req.method ?? "", path, headers: req.headers, body: text ? JSON.parse(text) : undefined });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const envelope = (extra: Record<string, unknown>) => ({ request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: null, ...extra });
      if (path === "/v1/auth/empty/login") return json(200, envelope({}));
      if (path === "/v1/auth/denied/login") return json(403, { errors: ["invalid role or secret ID"] });
      if (path === "/v1/auth/token/lookup-self") {
        if (req.headers["x-vault-token"] !== "s.looked-up") return json(403, { errors: ["permission denied"] });
        return json(
          200,
          envelope({
            data: {
              accessor: "acc-9",
              policies: ["default", "app"],
              identity_policies: ["group-pol"],
              meta: { team: "a" },
              ttl: 1234,
              renewable: true,
              entity_id: "ent-1",
              type: "service",
              orphan: true,
            },
          }),
        );
      }
      if (path.endsWith("/login")) {
        issued++;
        return json(
          200,
          envelope({
            auth: {
              client_token: `s.issued-${issued}`,
              accessor: `acc-${issued}`,
              policies: ["default"],
              token_policies: ["default"],
              metadata: null,
              lease_duration: 60,
              renewable: true,
              entity_id: "",
              token_type: "service",
              orphan: true,
            },
          }),
        );
      }
      return json(404, { errors: [] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

let client: LeaseholdClient;
beforeEach(() => {
  requests.length = 0;
  client?.close();
  // The client's own token must never be sent with a login.
  client = new LeaseholdClient({ address, token: "s.client-token" });
});

let fileCounter = 0;
function file(content?: string): string {
  const path = join(dir, `cred-${++fileCounter}`);
  if (content !== undefined) writeFileSync(path, content);
  return path;
}

describe("authMountPath", () => {
  it("normalises the forms of a mount path", () => {
    expect(authMountPath("approle", undefined)).toBe("auth/approle");
    expect(authMountPath("approle", "approle")).toBe("auth/approle");
    expect(authMountPath("approle", "/auth/approle/")).toBe("auth/approle");
    expect(authMountPath("approle", "auth/approle")).toBe("auth/approle");
    expect(authMountPath("approle", "//my-approle//")).toBe("auth/my-approle");
    expect(authMountPath("jwt", "gitlab/jwt")).toBe("auth/gitlab/jwt");
  });

  it("rejects an empty mount path", () => {
    expect(() => authMountPath("approle", "/")).toThrow(ClientConfigError);
    expect(() => authMountPath("approle", "///")).toThrow(/empty mount path for the approle auth method/);
  });

  it("is what each method reports and uses", async () => {
    const m = appRoleAuth({ roleId: "r", mountPath: "/team-approle/" });
    expect(m.mountPath).toBe("auth/team-approle");
    expect(m.type).toBe("approle");
    await m.login(client);
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(["PUT /v1/auth/team-approle/login"]);
  });
});

describe("login bodies", () => {
  it("approle sends role_id and secret_id, without the client's token", async () => {
    const auth = await appRoleAuth({ roleId: "role-1", secretId: "secret-1" }).login(client);
    expect(auth.client_token).toMatch(/^s\.issued-/);
    expect(requests).toHaveLength(1);
    expect(requests[0].method).toBe("PUT");
    expect(requests[0].path).toBe("/v1/auth/approle/login");
    expect(requests[0].body).toEqual({ role_id: "role-1", secret_id: "secret-1" });
    expect(requests[0].headers["x-vault-token"]).toBeUndefined();
    // Logging in does not change the client's token: the caller (TokenKeeper) decides.
    expect(client.token).toBe("s.client-token");
  });

  it("approle without a SecretID sends only role_id", async () => {
    await appRoleAuth({ roleId: { value: "role-2" } }).login(client);
    expect(requests[0].body).toEqual({ role_id: "role-2" });
  });

  it("kubernetes sends the role and the service-account token file's content, trimmed", async () => {
    const path = file("  eyJhbGciOi.sa-token.sig\n");
    const m = kubernetesAuth({ role: "web", tokenPath: path });
    expect(m.mountPath).toBe("auth/kubernetes");
    await m.login(client);
    expect(requests[0].path).toBe("/v1/auth/kubernetes/login");
    expect(requests[0].body).toEqual({ role: "web", jwt: "eyJhbGciOi.sa-token.sig" });
    expect(requests[0].headers["x-vault-token"]).toBeUndefined();
  });

  it("kubernetes reads the in-pod token path by default", async () => {
    expect(KUBERNETES_TOKEN_PATH).toBe("/var/run/secrets/kubernetes.io/serviceaccount/token");
    if (existsSync(KUBERNETES_TOKEN_PATH)) return; // running inside a pod: nothing to assert
    const err = await kubernetesAuth({ role: "web" }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientConfigError);
    expect((err as Error).message).toContain(KUBERNETES_TOKEN_PATH);
    expect(requests).toHaveLength(0);
  });

  it("jwt sends the jwt, and the role only when given", async () => {
    await jwtAuth({ jwt: "a.b.c", role: "ci" }).login(client);
    await jwtAuth({ jwt: { value: "d.e.f" }, mountPath: "gitlab" }).login(client);
    expect(requests.map((r) => r.path)).toEqual(["/v1/auth/jwt/login", "/v1/auth/gitlab/login"]);
    expect(requests[0].body).toEqual({ jwt: "a.b.c", role: "ci" });
    expect(requests[1].body).toEqual({ jwt: "d.e.f" });
  });

  it("cert sends the role name when given, an empty body otherwise", async () => {
    await certAuth({ name: "web" }).login(client);
    await certAuth().login(client);
    expect(requests.map((r) => r.path)).toEqual(["/v1/auth/cert/login", "/v1/auth/cert/login"]);
    expect(requests[0].body).toEqual({ name: "web" });
    expect(requests[1].body).toEqual({});
    expect(requests[1].headers["x-vault-token"]).toBeUndefined();
  });

  it("returns the auth block of the answer", async () => {
    const auth = await appRoleAuth({ roleId: "r", secretId: "s" }).login(client);
    expect(auth).toMatchObject({ accessor: expect.stringMatching(/^acc-/), lease_duration: 60, renewable: true, policies: ["default"] });
  });

  it("fails clearly when the mount answers without a token", async () => {
    const err = await appRoleAuth({ roleId: "r", mountPath: "empty" }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientConfigError);
    expect((err as Error).message).toMatch(/auth\/empty\/login answered without a token: is auth\/empty an auth method\?/);
  });

  it("passes a refused login through as the server's error", async () => {
    const err = await appRoleAuth({ roleId: "r", secretId: "wrong", mountPath: "denied" }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toBe("invalid role or secret ID");
  });
});

describe("credential files", () => {
  it("are re-read at each login (a rotated token is picked up)", async () => {
    const path = file("first-token\n");
    const m = kubernetesAuth({ role: "web", tokenPath: path });
    await m.login(client);
    writeFileSync(path, "second-token\n");
    await m.login(client);
    expect(requests.map((r) => (r.body as { jwt: string }).jwt)).toEqual(["first-token", "second-token"]);
    // Without remove-after-reading, the file stays.
    expect(existsSync(path)).toBe(true);
  });

  it("work for the RoleID and SecretID of approle", async () => {
    const role = file("role-from-file");
    const secret = file("secret-from-file\n\n");
    const m = appRoleAuth({ roleId: { file: role }, secretId: { file: secret } });
    await m.login(client);
    writeFileSync(secret, "secret-2");
    await m.login(client);
    expect(requests.map((r) => r.body)).toEqual([
      { role_id: "role-from-file", secret_id: "secret-from-file" },
      { role_id: "role-from-file", secret_id: "secret-2" },
    ]);
  });

  it("remove-after-reading deletes the SecretID file, keeps the value, and picks up a new file", async () => {
    const secret = file("secret-a");
    const m = appRoleAuth({ roleId: "r", secretId: { file: secret }, removeSecretIdFileAfterReading: true });
    await m.login(client);
    expect(existsSync(secret)).toBe(false);
    // No file: the remembered SecretID is used again.
    await m.login(client);
    // An empty file (being written) does not replace it either.
    writeFileSync(secret, "  \n");
    await m.login(client);
    // A new SecretID appears: it is used, and its file removed in turn.
    writeFileSync(secret, "secret-b\n");
    await m.login(client);
    expect(existsSync(secret)).toBe(false);
    await m.login(client);
    expect(requests.map((r) => (r.body as { secret_id: string }).secret_id)).toEqual(["secret-a", "secret-a", "secret-a", "secret-b", "secret-b"]);
  });

  it("remove-after-reading works for the JWT too", async () => {
    const path = file("jwt-1");
    const m = jwtAuth({ jwt: { file: path }, removeJwtAfterReading: true });
    await m.login(client);
    expect(existsSync(path)).toBe(false);
    await m.login(client);
    writeFileSync(path, "jwt-2");
    await m.login(client);
    expect(requests.map((r) => (r.body as { jwt: string }).jwt)).toEqual(["jwt-1", "jwt-1", "jwt-2"]);
  });

  it("a missing file is an error naming the file and what it should hold", async () => {
    const missing = join(dir, "no-such-secret-id");
    const err = await appRoleAuth({ roleId: "r", secretId: { file: missing } }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientConfigError);
    expect((err as Error).message).toContain(`cannot read the SecretID file ${missing}`);
    expect(requests).toHaveLength(0);
  });

  it("a missing file is an error even with remove-after-reading when nothing was read yet", async () => {
    const missing = join(dir, "never-written");
    const err = await jwtAuth({ jwt: { file: missing }, removeJwtAfterReading: true }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientConfigError);
    expect((err as Error).message).toContain(`cannot read the JWT file ${missing}`);
  });

  it("an empty file is an error naming the file", async () => {
    const empty = file(" \n\t");
    const err = await kubernetesAuth({ role: "web", tokenPath: empty }).login(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientConfigError);
    expect((err as Error).message).toBe(`the service-account token file ${empty} is empty`);
    const roleFile = file("");
    await expect(appRoleAuth({ roleId: { file: roleFile } }).login(client)).rejects.toThrow(`the RoleID file ${roleFile} is empty`);
    expect(requests).toHaveLength(0);
  });

  it("without remove-after-reading, a file that disappears is an error (nothing is remembered)", async () => {
    const path = file("jwt-x");
    const m = jwtAuth({ jwt: { file: path } });
    await m.login(client);
    rmSync(path);
    await expect(m.login(client)).rejects.toThrow(`cannot read the JWT file ${path}`);
  });
});

describe("tokenAuth", () => {
  it("looks the token up with the token itself and answers its auth block", async () => {
    const m = tokenAuth("s.looked-up");
    expect(m.type).toBe("token");
    expect(m.mountPath).toBe("auth/token");
    const auth = await m.login(client);
    expect(requests).toHaveLength(1);
    expect(requests[0].method).toBe("GET");
    expect(requests[0].path).toBe("/v1/auth/token/lookup-self");
    expect(requests[0].headers["x-vault-token"]).toBe("s.looked-up");
    expect(auth).toEqual({
      client_token: "s.looked-up",
      accessor: "acc-9",
      policies: ["default", "app"],
      token_policies: ["default", "app"],
      identity_policies: ["group-pol"],
      metadata: { team: "a" },
      lease_duration: 1234,
      renewable: true,
      entity_id: "ent-1",
      token_type: "service",
      orphan: true,
    });
  });

  it("reads the token from a file at each login", async () => {
    const path = file("s.looked-up\n");
    const m = tokenAuth({ file: path });
    expect((await m.login(client)).client_token).toBe("s.looked-up");
    writeFileSync(path, "s.revoked");
    await expect(m.login(client)).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(requests.map((r) => r.headers["x-vault-token"])).toEqual(["s.looked-up", "s.revoked"]);
  });
});
