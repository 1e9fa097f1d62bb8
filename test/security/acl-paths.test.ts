/**
 * Issue 15, "what already held": ACL path canonicalisation. A token that may read
 * `secret/data/app/*` (and list `secret/metadata/app/*`) must not reach `secret/data/other` by any
 * spelling of the path: `..` and `.` segments (plain, percent-encoded, mixed), `//`, encoded
 * slashes, case changes, absolute-form request targets (as proxies send them), double encoding,
 * fragments, or headers some proxies use to rewrite the path. The ACL and the handler see one and
 * the same path, decoded once. Each attack sits next to the legitimate request it imitates.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
let token: string;
const OTHER = "other-secret-value";
const APP = "app-secret-value";

/** One request with node:http: the path goes on the wire exactly as given (fetch would resolve `..`). */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), method, path, headers: { "X-Vault-Token": token, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", (e) => resolve({ status: -1, text: String(e) }));
    req.end();
  });
}

/** A request line written on a raw socket (absolute-form targets, which node:http cannot send). */
function rawLine(requestLine: string): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let buf = "";
    sock.on("data", (d: Buffer) => (buf += d.toString("utf8")));
    sock.on("error", () => undefined);
    sock.on("close", () => resolve({ status: Number(buf.split(" ")[1] ?? -1), text: buf.slice(buf.indexOf("\r\n\r\n") + 4) }));
    sock.write(`${requestLine}\r\nHost: ${u.host}\r\nX-Vault-Token: ${token}\r\nConnection: close\r\n\r\n`);
  });
}

/** The attack reached nothing: refused (4xx), and the other secret's value is not in the answer. */
function expectRefused(r: { status: number; text: string }, what: string): void {
  expect(r.status, `${what} → ${r.status} ${r.text}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what} → ${r.status} ${r.text}`).toBeLessThan(500);
  expect(r.text, what).not.toContain(OTHER);
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  const root = { token: "root" };
  const policy = 'path "secret/data/app/*" { capabilities = ["read"] }\npath "secret/metadata/app/*" { capabilities = ["list"] }';
  expect((await call(base, "PUT", "sys/policies/acl/app-only", { ...root, body: { policy } })).status).toBe(204);
  for (const [k, v] of [["other", OTHER], ["app/db", APP], ["app", OTHER]] as const) {
    expect((await call(base, "POST", `secret/data/${k}`, { ...root, body: { data: { v } } })).status).toBe(200);
  }
  const t = await call(base, "POST", "auth/token/create", { ...root, body: { policies: ["app-only"] } });
  token = t.body.auth.client_token;
});
afterAll(async () => {
  await server?.stop();
});

describe("ACL path canonicalisation", () => {
  it("positive control: the allowed path reads, in its plain and harmlessly encoded spellings", async () => {
    for (const path of ["/v1/secret/data/app/db", "/v1/secret/data/%61pp/db", "/v1/secret/data/app%2Fdb", "/v1/secret/data/app/db#../../other"]) {
      const r = await raw("GET", path);
      expect(r.status, `${path} → ${r.text}`).toBe(200);
      expect(JSON.parse(r.text).data.data.v).toBe(APP);
    }
    // A trailing slash where Vault takes one: a LIST of the allowed folder.
    const list = await raw("GET", "/v1/secret/metadata/app/?list=true");
    expect(list.status, list.text).toBe(200);
    expect(JSON.parse(list.text).data.keys).toEqual(["db"]);
  });

  it("refuses the other secret directly, and every '..', '.', '//' and encoded-slash spelling of it", async () => {
    expectRefused(await raw("GET", "/v1/secret/data/other"), "direct");
    for (const path of [
      "/v1/secret/data/app/../other",
      "/v1/secret/data/app/db/../../other",
      "/v1/secret/data/app/%2e%2e/other",
      "/v1/secret/data/app/%2E%2E/other",
      "/v1/secret/data/app/.%2e/other",
      "/v1/secret/data/app/%2e%2e%2fother",
      "/v1/secret/data/app%2f..%2fother",
      "/v1/secret/data/app/..%2Fother",
      "/v1/secret/data/app/%252e%252e/other", // double encoding: decoded once, a key literally named `%2e%2e`
      "/v1/secret/data/app/./../other",
      "/v1/secret/data/app//../other",
      "/v1/secret/data/app/;/../other",
      "/v1/secret/data/app\\..\\other",
      "/v1/secret//data/other",
      "/v1//secret/data/other",
      "/v1/./secret/data/other",
      "/../v1/secret/data/other",
      "/v1/secret/data/app/x/..%00/../other",
    ]) {
      expectRefused(await raw("GET", path), path);
    }
    // Writes take the same path: the read-only token writes nothing through `..`.
    expectRefused(await raw("POST", "/v1/secret/data/app/../other", { "Content-Type": "application/json" }), "POST ..");
  });

  it("is case-sensitive like Vault: a changed case is another (unknown or unallowed) path", async () => {
    for (const path of ["/v1/SECRET/data/other", "/v1/Secret/data/app/db", "/v1/secret/DATA/other", "/v1/secret/data/APP/db", "/V1/secret/data/other"]) {
      expectRefused(await raw("GET", path), path);
    }
  });

  it("the glob covers what is below app/, not app itself, nor app with a trailing slash", async () => {
    // `secret/data/app` holds OTHER: the glob `app/*` must not open it.
    expectRefused(await raw("GET", "/v1/secret/data/app"), "app");
    expectRefused(await raw("GET", "/v1/secret/data/app/"), "app/");
    expectRefused(await raw("GET", "/v1/secret/data/app%2F"), "app%2F");
    // Nor does list on metadata/app/* open the mount's root listing.
    expectRefused(await raw("GET", "/v1/secret/metadata/?list=true"), "list root");
    expectRefused(await raw("GET", "/v1/secret/metadata/app/../?list=true"), "list app/..");
  });

  it("absolute-form request targets are checked on the path they resolve to", async () => {
    const host = new URL(base).host;
    const ok = await rawLine(`GET http://${host}/v1/secret/data/app/db HTTP/1.1`);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toContain(APP);
    for (const target of [
      `http://${host}/v1/secret/data/other`,
      `http://${host}/v1/secret/data/app/../other`,
      `http://${host}/v1/secret/data/app/%2e%2e/other`,
      `http://${host}/v1/secret/data/app/.%2E/other`,
      `http://${host}/v1/secret/data/app/..%2fother`,
      `http://${host}/v1//secret/data/other`,
      `http://${host}/v1/SECRET/data/other`,
      `http://evil.example/v1/secret/data/app/../other`,
      `HTTP://${host}/v1/secret/data/other`,
      `//v1/secret/data/other`,
    ]) {
      expectRefused(await rawLine(`GET ${target} HTTP/1.1`), target);
    }
  });

  it("ignores path-rewriting and method-override headers", async () => {
    for (const header of ["X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Uri", "X-Forwarded-Prefix"]) {
      const r = await raw("GET", "/v1/secret/data/app/db", { [header]: "/v1/secret/data/other" });
      expect(r.status, header).toBe(200);
      expect(JSON.parse(r.text).data.data.v, header).toBe(APP);
    }
    const del = await raw("GET", "/v1/secret/data/app/db", { "X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "DELETE" });
    expect(del.status).toBe(200);
    // Still there, undeleted (root checks).
    const after = await call(base, "GET", "secret/data/app/db", { token: "root" });
    expect(after.body.data.data.v).toBe(APP);
  });
});
