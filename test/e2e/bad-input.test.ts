import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { startTestServer } from "../helpers/server.js";
import { prng } from "../helpers/prng.js";
import { ResponseReader } from "../helpers/raw-http.js";

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * One request with node:http, the path sent exactly as given (fetch would resolve `.`/`..`).
 * Client-side failures resolve as status -1 so callers can report them.
 */
function rawRequest(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string | Buffer; headers?: Record<string, string>; chunked?: boolean; agent?: http.Agent | false } = {},
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...(opts.token ? { "X-Vault-Token": opts.token } : {}), ...opts.headers };
    if (opts.body !== undefined && !opts.chunked) headers["Content-Length"] = String(Buffer.byteLength(opts.body));
    const req = http.request({ host: u.hostname, port: Number(u.port), method, path, headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (e) => resolve({ status: -1, headers: {}, text: String(e) }));
    });
    req.on("error", (e) => resolve({ status: -1, headers: {}, text: String(e) }));
    if (opts.body !== undefined) {
      const buf = Buffer.from(opts.body);
      if (opts.chunked) for (let i = 0; i < buf.length; i += 1 << 20) req.write(buf.subarray(i, i + (1 << 20)));
      else req.write(buf);
    }
    req.end();
  });
}

/** Parses an error body; throws (with the text) when it is not `{"errors": [string...]}`. */
function errorsOf(r: RawResponse): string[] {
  expect(r.headers["content-type"] ?? "", `content-type of ${r.text}`).toMatch(/^application\/json/);
  const body = JSON.parse(r.text) as { errors?: unknown };
  expect(Object.keys(body)).toEqual(["errors"]);
  expect(Array.isArray(body.errors)).toBe(true);
  for (const e of body.errors as unknown[]) expect(typeof e).toBe("string");
  return body.errors as string[];
}



describe("bad input", () => {
  let server: RunningServer;
  let base: string;

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  const json = { "Content-Type": "application/json" };

  it("refuses malformed JSON and non-object bodies with 400", async () => {
    for (const body of ["{bad", '{"a":1,}', '{"a":}', '{"data": {"x": "y"', "\u0000", "\ufeff{}", "{'a': 1}", "[]", "[1,2]", '"a string"', "42", "true", "null"]) {
      const r = await rawRequest(base, "POST", "/v1/secret/data/x", { token: "root", body, headers: json });
      expect(r.status, `body ${JSON.stringify(body)} → ${r.text}`).toBe(400);
      expect(errorsOf(r)[0]).toMatch(/failed to parse JSON input/);
    }
    // nothing was written
    expect((await rawRequest(base, "GET", "/v1/secret/data/x", { token: "root" })).status).toBe(404);
  });

  it("refuses wrong field types with 400 naming the field", async () => {
    const cases: { path: string; body: unknown; field: string }[] = [
      { path: "auth/token/create", body: { ttl: {} }, field: "ttl" },
      { path: "auth/token/create", body: { ttl: "forever" }, field: "ttl" },
      { path: "auth/token/create", body: { policies: 5 }, field: "policies" },
      { path: "auth/token/create", body: { num_uses: -1 }, field: "num_uses" },
      { path: "auth/token/create", body: { num_uses: "abc" }, field: "num_uses" },
      { path: "auth/token/create", body: { no_parent: "maybe" }, field: "no_parent" },
      { path: "auth/token/create", body: { meta: { a: { b: 1 } } }, field: "meta" },
      { path: "auth/token/create", body: { display_name: ["x"] }, field: "display_name" },
      { path: "sys/init", body: { secret_shares: "x", secret_threshold: 1 }, field: "secret_shares" },
      { path: "secret/data/typed", body: { data: "a string" }, field: "data" },
      { path: "secret/data/typed", body: { data: [1, 2] }, field: "data" },
      { path: "secret/data/typed", body: { data: { a: 1 }, options: { cas: "abc" } }, field: "cas" },
      { path: "secret/metadata/typed", body: { max_versions: "many" }, field: "max_versions" },
      { path: "sys/mounts/typed", body: { type: 5 }, field: "type" },
      { path: "sys/policies/acl/typed", body: { policy: 5 }, field: "policy" },
      { path: "auth/token/roles/typed", body: { allowed_policies: {} }, field: "allowed_policies" },
      { path: "auth/token/renew-self", body: { increment: "soon" }, field: "increment" },
    ];
    for (const c of cases) {
      const r = await rawRequest(base, "POST", `/v1/${c.path}`, { token: "root", body: JSON.stringify(c.body), headers: json });
      expect(r.status, `${c.path} ${JSON.stringify(c.body)} → ${r.text}`).toBe(400);
      expect(errorsOf(r).join(" "), c.path).toContain(c.field);
    }
    // none of them stored anything
    expect((await rawRequest(base, "GET", "/v1/secret/data/typed", { token: "root" })).status).toBe(404);
    expect((await rawRequest(base, "GET", "/v1/sys/policies/acl/typed", { token: "root" })).status).toBe(404);
    expect((await rawRequest(base, "GET", "/v1/sys/mounts/typed", { token: "root" })).status).toBe(404);
  });

  it("refuses invalid names in paths and out-of-range durations with 400", async () => {
    for (const name of ["%C3%BC", "a%20b", "x".repeat(129), "%25", "a,b"]) {
      const r = await rawRequest(base, "POST", `/v1/auth/token/roles/${name}`, { token: "root", body: "{}", headers: json });
      expect(r.status, `role ${name} → ${r.text}`).toBe(400);
      expect(errorsOf(r)[0]).toMatch(/invalid role name/);
      const p = await rawRequest(base, "PUT", `/v1/sys/policies/acl/${name}`, { token: "root", body: JSON.stringify({ policy: 'path "a" { capabilities = ["read"] }' }), headers: json });
      expect(p.status, `policy ${name} → ${p.text}`).toBe(400);
      errorsOf(p);
    }
    for (const [path, body] of [
      ["secret/config", { delete_version_after: 1e308 }],
      ["secret/config", { delete_version_after: "99999999999h" }],
      ["secret/metadata/dur", { delete_version_after: "1e400" }],
      ["auth/token/create", { ttl: 1e20 }],
      ["auth/token/create", { explicit_max_ttl: "300000000000" }],
      ["sys/mounts/dur", { type: "kv", config: { max_lease_ttl: 1e300 } }],
    ] as const) {
      const r = await rawRequest(base, "POST", `/v1/${path}`, { token: "root", body: JSON.stringify(body), headers: json });
      expect(r.status, `${path} ${JSON.stringify(body)} → ${r.text}`).toBe(400);
      errorsOf(r);
    }
    // KV still writes and reads (the mount config was not changed)
    const w = await rawRequest(base, "POST", "/v1/secret/data/dur", { token: "root", body: JSON.stringify({ data: { a: 1 } }), headers: json });
    expect(w.status, w.text).toBe(200);
    expect(JSON.parse(w.text).data.deletion_time).toBe("");
  });

  it("answers an unknown mount with 404 no handler for route", async () => {
    const r = await rawRequest(base, "GET", "/v1/nope/x", { token: "root" });
    expect(r.status).toBe(404);
    expect(errorsOf(r)[0]).toContain("no handler for route");
    const w = await rawRequest(base, "POST", "/v1/nope/x", { token: "root", body: "{}", headers: json });
    expect(w.status).toBe(404);
    expect(errorsOf(w)[0]).toContain("no handler for route");
  });

  it("refuses paths with '..', '.' or '//' segments with 400", async () => {
    for (const path of [
      "/v1/secret/../sys/mounts",
      "/v1/secret/data/../../sys/policies/acl/x",
      "/v1/secret/./data/x",
      "/v1/secret/data/x/..",
      "/v1/secret/data/.",
      "/v1/secret//data/x",
      "/v1//sys/health",
      "/v1/secret/data/%2e%2e/x",
      "/v1/secret/data/%2E/x",
      "/v1/secret/data/a%2F%2Fb",
      "/v1/secret/data/a%00b",
      "/v1/",
    ]) {
      for (const token of ["root", undefined]) {
        const r = await rawRequest(base, "GET", path, { token });
        expect(r.status, `${path} → ${r.text}`).toBe(400);
        expect(errorsOf(r)[0]).toMatch(/invalid request path/);
      }
    }
    // A well-formed neighbour still works.
    expect((await rawRequest(base, "GET", "/v1/sys/mounts", { token: "root" })).status).toBe(200);
    // Invalid percent-encoding is a 400 too.
    const bad = await rawRequest(base, "GET", "/v1/secret/data/%zz", { token: "root" });
    expect(bad.status).toBe(400);
    errorsOf(bad);
  });

  it("reads query parameters from the request target, whether origin-form or absolute-form (as proxies send it)", async () => {
    const write = (v: string) => rawRequest(base, "POST", "/v1/secret/data/query-target", { token: "root", body: JSON.stringify({ data: { v } }), headers: json });
    expect((await write("one")).status).toBe(200);
    expect((await write("two")).status).toBe(200);
    for (const prefix of ["", `http://${new URL(base).host}`]) {
      const v1 = await rawRequest(base, "GET", `${prefix}/v1/secret/data/query-target?version=1`, { token: "root" });
      expect(v1.status, v1.text).toBe(200);
      expect(JSON.parse(v1.text).data.data.v).toBe("one");
      const latest = await rawRequest(base, "GET", `${prefix}/v1/secret/data/query-target`, { token: "root" });
      expect(JSON.parse(latest.text).data.data.v).toBe("two");
      const list = await rawRequest(base, "GET", `${prefix}/v1/secret/metadata/?list=true`, { token: "root" });
      expect(list.status, list.text).toBe(200);
      expect(JSON.parse(list.text).data.keys).toContain("query-target");
    }
  });

  it("refuses unknown methods with 405 or 400, never 5xx", async () => {
    for (const method of ["PROPFIND", "OPTIONS", "TRACE", "MKCOL", "COPY", "SEARCH", "PURGE", "REPORT"]) {
      const r = await rawRequest(base, method, "/v1/secret/data/x", { token: "root" });
      expect([400, 405], `${method} → ${r.status} ${r.text}`).toContain(r.status);
      errorsOf(r);
    }
    // Methods Node's parser does not know, and CONNECT, over a raw socket.
    for (const line of ["FOO /v1/secret/data/x HTTP/1.1", "BREW /v1/sys/health HTTP/1.1", "CONNECT example.com:443 HTTP/1.1"]) {
      const sock = net.connect(Number(new URL(base).port), new URL(base).hostname);
      const reader = new ResponseReader(sock);
      sock.write(`${line}\r\nHost: x\r\nX-Vault-Token: root\r\n\r\n`);
      const r = await reader.next();
      sock.destroy();
      expect([400, 405], `${line} → ${r.status} ${r.body}`).toContain(r.status);
      expect(JSON.parse(r.body).errors.length).toBeGreaterThan(0);
    }
    const head = await rawRequest(base, "HEAD", "/v1/sys/health");
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
  });

  it("accepts application/x-www-form-urlencoded bodies", async () => {
    const text = 'path "secret/data/form/*" {\n  capabilities = ["read"]\n}';
    const w = await rawRequest(base, "POST", "/v1/sys/policies/acl/formpol", {
      token: "root",
      body: new URLSearchParams({ policy: text }).toString(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(w.status, w.text).toBe(204);
    const r = await rawRequest(base, "GET", "/v1/sys/policies/acl/formpol", { token: "root" });
    expect(JSON.parse(r.text).data.policy).toBe(text);

    const t = await rawRequest(base, "POST", "/v1/auth/token/create", {
      token: "root",
      body: "policies=formpol,other&ttl=90m&no_default_policy=true&num_uses=3",
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" },
    });
    expect(t.status, t.text).toBe(200);
    const auth = JSON.parse(t.text).auth;
    expect(auth.policies).toEqual(["formpol", "other"]);
    expect(auth.lease_duration).toBe(5400);
    expect(auth.num_uses).toBe(3);
  });

  it("reads JSON sent with the form content type as JSON, as Vault does (curl --data @payload.json)", async () => {
    const w = await rawRequest(base, "POST", "/v1/secret/data/curl-form", {
      token: "root",
      body: '  {"data": {"user": "app", "n": 2}}',
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(w.status, w.text).toBe(200);
    const r = await rawRequest(base, "GET", "/v1/secret/data/curl-form", { token: "root" });
    expect(JSON.parse(r.text).data.data).toEqual({ user: "app", n: 2 });
  });

  it("refuses a body over 32 MiB with 413 and keeps serving", async () => {
    const big = Buffer.alloc(32 * 1024 * 1024 + 1024, 0x61);
    big.write('{"data":{"x":"');
    for (const chunked of [false, true]) {
      const r = await rawRequest(base, "POST", "/v1/secret/data/big", { token: "root", body: big, headers: json, chunked });
      expect(r.status, `chunked=${chunked}: ${r.text.slice(0, 200)}`).toBe(413);
      expect(errorsOf(r)[0]).toMatch(/too large/);
    }
    const h = await rawRequest(base, "GET", "/v1/sys/health");
    expect(h.status).toBe(200);
    expect(JSON.parse(h.text).sealed).toBe(false);
    expect((await rawRequest(base, "GET", "/v1/secret/data/big", { token: "root" })).status).toBe(404);
    // Just under the limit is fine (with keep-alive agents too).
    const agent = new http.Agent({ keepAlive: true });
    const ok = await rawRequest(base, "POST", "/v1/secret/data/small", { token: "root", body: JSON.stringify({ data: { x: "y".repeat(1024 * 1024) } }), headers: json, agent });
    expect(ok.status).toBe(200);
    const big2 = await rawRequest(base, "POST", "/v1/secret/data/big", { token: "root", body: big, headers: json, agent, chunked: true });
    expect(big2.status).toBe(413);
    expect((await rawRequest(base, "GET", "/v1/sys/health", { agent })).status).toBe(200);
    agent.destroy();
  });

  it("refuses absurdly nested JSON with 400 instead of crashing", async () => {
    for (const depth of [600, 5000, 100_000]) {
      const deep = '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
      const r = await rawRequest(base, "POST", "/v1/secret/data/deep", { token: "root", body: `{"data":${deep}}`, headers: json });
      expect(r.status, `depth ${depth}: ${r.text.slice(0, 200)}`).toBe(400);
      errorsOf(r);
      // nesting inside a policy's text
      const p = await rawRequest(base, "POST", "/v1/sys/policies/acl/deep", { token: "root", body: JSON.stringify({ policy: `{"path":${deep}}` }), headers: json });
      expect(p.status, `policy depth ${depth}: ${p.text.slice(0, 200)}`).toBe(400);
      errorsOf(p);
      const h = 'path "a" { capabilities = ' + "[".repeat(depth) + "]".repeat(depth) + " }";
      const ph = await rawRequest(base, "POST", "/v1/sys/policies/acl/deep", { token: "root", body: JSON.stringify({ policy: h }), headers: json });
      expect(ph.status, `hcl depth ${depth}: ${ph.text.slice(0, 200)}`).toBe(400);
      errorsOf(ph);
    }
    // Reasonable nesting is stored and read back.
    const ok = '{"a":'.repeat(50) + '"leaf"' + "}".repeat(50);
    expect((await rawRequest(base, "POST", "/v1/secret/data/deep", { token: "root", body: `{"data":${ok}}`, headers: json })).status).toBe(200);
    const back = JSON.parse((await rawRequest(base, "GET", "/v1/secret/data/deep", { token: "root" })).text);
    expect(JSON.stringify(back.data.data)).toBe(ok);
  });

  it("refuses a request for response wrapping (X-Vault-Wrap-TTL) with 400 and does nothing, rather than answer in clear", async () => {
    const before = JSON.parse((await rawRequest(base, "GET", "/v1/auth/token/accessors?list=true", { token: "root" })).text).data.keys.length;
    const wrapped = await rawRequest(base, "POST", "/v1/auth/token/create", { token: "root", body: JSON.stringify({ ttl: "1h" }), headers: { ...json, "X-Vault-Wrap-TTL": "60s" } });
    expect(wrapped.status).toBe(400);
    expect(errorsOf(wrapped)[0]).toMatch(/^response wrapping \(X-Vault-Wrap-TTL\) is not supported by this server: nothing was done/);
    expect(wrapped.text).not.toContain("client_token");
    const after = JSON.parse((await rawRequest(base, "GET", "/v1/auth/token/accessors?list=true", { token: "root" })).text).data.keys.length;
    expect(after).toBe(before); // no token was created
    const read = await rawRequest(base, "GET", "/v1/secret/config", { token: "root", headers: { "X-Vault-Wrap-TTL": "5m" } });
    expect(read.status).toBe(400);
    expect(read.text).not.toContain("max_versions");
    // An empty header is no request for wrapping.
    expect((await rawRequest(base, "GET", "/v1/secret/config", { token: "root", headers: { "X-Vault-Wrap-TTL": "" } })).status).toBe(200);
  });

  it("serves LIST on a raw keep-alive socket, twice, then a GET", async () => {
    for (const k of ["a", "b/c"]) {
      const w = await rawRequest(base, "POST", `/v1/secret/data/${k}`, { token: "root", body: JSON.stringify({ data: { k } }), headers: json });
      expect(w.status).toBe(200);
    }
    const sock = net.connect(Number(new URL(base).port), new URL(base).hostname);
    const reader = new ResponseReader(sock);
    const req = (line: string) => `${line}\r\nHost: 127.0.0.1\r\nX-Vault-Token: root\r\nConnection: keep-alive\r\n\r\n`;
    const keysOf = (r: { body: string }) => (JSON.parse(r.body).data.keys as string[]).slice().sort();
    try {
      sock.write(req("LIST /v1/secret/metadata/ HTTP/1.1"));
      const l1 = await reader.next("l1");
      expect(l1.status, l1.body).toBe(200);
      expect(keysOf(l1)).toContain("a");
      expect(keysOf(l1)).toContain("b/");

      sock.write(req("LIST /v1/secret/metadata/b HTTP/1.1"));
      const l2 = await reader.next("l2");
      expect(l2.status, l2.body).toBe(200);
      expect(keysOf(l2)).toEqual(["c"]);

      sock.write(req("GET /v1/secret/data/b/c HTTP/1.1"));
      const g = await reader.next("g");
      expect(g.status).toBe(200);
      expect(JSON.parse(g.body).data.data).toEqual({ k: "b/c" });

      // Pipelined: LIST, LIST, GET in one packet.
      sock.write(req("LIST /v1/secret/metadata/ HTTP/1.1") + req("LIST /v1/sys/policies/acl HTTP/1.1") + req("GET /v1/sys/health HTTP/1.1"));
      const p1 = await reader.next("p1");
      const p2 = await reader.next("p2");
      const p3 = await reader.next("p3");
      expect(p1.status).toBe(200);
      expect(keysOf(p1)).toEqual(keysOf(l1));
      expect(p2.status).toBe(200);
      expect(keysOf(p2)).toContain("default");
      expect(p3.status).toBe(200);
      expect(JSON.parse(p3.body).initialized).toBe(true);

      // LIST without a token on the same connection: 403 JSON, connection still usable.
      sock.write("LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: x\r\n\r\n");
      const denied = await reader.next("denied");
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body)).toEqual({ errors: ["permission denied"] });
      sock.write(req("GET /v1/sys/health HTTP/1.1"));
      expect((await reader.next()).status).toBe(200);
    } finally {
      sock.destroy();
    }
  });
});

describe("fuzzing the HTTP API", () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
  });
  afterAll(async () => {
    await server.stop();
  });

  // Fixed by default so a failure reproduces; LEASEHOLD_FUZZ_SEED / LEASEHOLD_FUZZ_REQUESTS explore further.
  const SEED = Number(process.env.LEASEHOLD_FUZZ_SEED ?? 0x1ea5e);
  const MAX_REQUESTS = Number(process.env.LEASEHOLD_FUZZ_REQUESTS ?? 300);
  const TIME_LIMIT_MS = MAX_REQUESTS > 300 ? 10 * 60_000 : 20_000;

  const PREFIXES = [
    "sys/", "sys/policies/acl/", "sys/policy/", "sys/mounts/", "sys/auth/", "sys/capabilities-self", "sys/capabilities", "sys/internal/ui/mounts/",
    "sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/audit-hash/", "sys/leases/lookup/", "sys/metrics",
    "auth/token/", "auth/token/create", "auth/token/create/", "auth/token/lookup", "auth/token/lookup-accessor", "auth/token/renew-self",
    "auth/token/renew", "auth/token/revoke", "auth/token/revoke-orphan", "auth/token/roles/", "auth/token/accessors/",
    "secret/data/", "secret/metadata/", "secret/config", "secret/delete/", "secret/undelete/", "secret/destroy/", "secret/subkeys/", "secret/",
    "nope/", "", "auth/", "auth/nope/",
  ];
  // No "seal" (it would seal the server: 503 is correct there) and no "file" (audit devices).
  const WORDS = ["app", "db", "x", "root", "default", "tune", "config", "data", "metadata", "kv", "token", "r", "1", "-", "_", "a.b", "UPPER", "ü", "name with space", "*", "+", "%", "?", "#"];
  const ENCODINGS = ["%00", "%2F", "%2f", "%2e", "%2e%2e", "%zz", "%", "%C3%A9", "%FF", "%E2%82", "%20", "%0A", "%25", "%3F", "%23"];
  const FIELDS = [
    "data", "options", "cas", "policy", "policies", "rules", "ttl", "type", "config", "version", "versions", "paths", "path", "token", "accessor",
    "increment", "num_uses", "meta", "max_versions", "custom_metadata", "secret_shares", "secret_threshold", "key", "description", "no_parent",
    "period", "explicit_max_ttl", "display_name", "allowed_policies", "delete_version_after", "cas_required", "lease_id", "renewable",
    "no_default_policy", "max_lease_ttl", "default_lease_ttl", "input", "reset", "id", "role_name", "__proto__", "constructor", "",
  ];
  const STRINGS = ["", "1h", "90s", "-1", "0", "kv", "2", "root", "default", 'path "x/*" { capabilities = ["read"] }', '{"path":{"a":{"capabilities":["deny"]}}}', "true", "a,b", "k=v", "\u0000", "ü🙂", "x".repeat(5000), "lhs.nope", "1e400"];

  it(`~${MAX_REQUESTS} seeded random requests never produce a 5xx or a non-JSON error`, async () => {
    const rnd = prng(SEED);
    const int = (n: number) => Math.floor(rnd() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 4 || r < 0.25) return pick(STRINGS);
      if (r < 0.35) return pick([0, -1, 1, 42, 3.5, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER]);
      if (r < 0.42) return null;
      if (r < 0.5) return rnd() < 0.5;
      if (r < 0.7) return Array.from({ length: int(4) }, () => value(depth + 1));
      return object(depth + 1);
    };
    const object = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      // defineProperty: a "__proto__" field must become an own key that is sent, not the prototype.
      for (let i = int(5); i > 0; i--) Object.defineProperty(o, pick(FIELDS), { value: value(depth), enumerable: true, writable: true, configurable: true });
      return o;
    };
    const bodyText = (): { text?: string; contentType?: string } => {
      const r = rnd();
      if (r < 0.1) return {};
      if (r < 0.6) return { text: JSON.stringify(object(0)), contentType: "application/json" };
      if (r < 0.68) {
        // deep nesting: sometimes over the limit
        const d = pick([10, 200, 499, 501, 3000]);
        const open = rnd() < 0.5 ? ['{"a":', "}"] : ["[", "]"];
        return { text: `{"${pick(FIELDS)}":${open[0].repeat(d)}1${open[1].repeat(d)}}`, contentType: "application/json" };
      }
      if (r < 0.74) {
        // huge numbers as literal text
        return { text: `{"${pick(FIELDS)}": ${pick(["1e400", "-1e400", "123456789012345678901234567890", "0.0000000000000000000001", "-0"])}}`, contentType: "application/json" };
      }
      if (r < 0.82) return { text: pick(["{", "[]", "null", '"s"', "1", "{]", "\u0000\u0001", '{"a":1}{"b":2}', "   "]), contentType: pick(["application/json", "text/plain", ""]) };
      if (r < 0.9) {
        const form = new URLSearchParams();
        for (let i = int(4); i >= 0; i--) form.append(pick(FIELDS), ((v) => (typeof v === "string" ? v : JSON.stringify(v)))(value(3)));
        return { text: form.toString(), contentType: "application/x-www-form-urlencoded" };
      }
      return { text: JSON.stringify(object(0)), contentType: pick(["application/merge-patch+json", "application/x-www-form-urlencoded", "text/plain"]) };
    };
    const segment = (): string => {
      const r = rnd();
      if (r < 0.45) return encodeURIComponent(pick(WORDS));
      if (r < 0.65) return pick(ENCODINGS);
      if (r < 0.8) return Array.from({ length: 1 + int(8) }, () => "abcdefghijklmnopqrstuvwxyz0123456789-_.~!$&'()*+,;=:@"[int(54)]).join("");
      if (r < 0.9) return pick(["..", ".", "", "...", "%2e%2e"]);
      return "x".repeat(1 + int(300));
    };
    const word = () => encodeURIComponent(pick(["app", "db", "x", "y/z", "team/one", "default", "root", "kv", "r", "ü", "a.b", "x".repeat(200)]));
    const duration = () => pick<unknown>(["1h", "30s", "0", 0, -5, "-1s", 3600, "1e400", "1h30m", "5d", "", "forever", 1e308, null, {}, []]);
    const policyText = () =>
      pick([
        `path "secret/data/${pick(["*", "app/*", "+/x", "a*b", "+*", ""])}" { capabilities = [${pick(['"read"', '"deny"', '"sudo", "list"', '"fly"', "1", ""])}] }`,
        `{"path": {"${pick(["secret/*", "", "a+b"])}": {"capabilities": ${pick(['["read"]', '"read"', "null", "[[]]"])}}}}`,
        `path "x" { policy = "${pick(["read", "write", "nope"])}" }`,
        'path "a" { capabilities = ["read"] } name = "x"',
        "path {",
        "}}}",
        "",
      ]);
    /** Stands for a deeply nested value, spliced into the JSON text (JSON.stringify would recurse). */
    const DEEP = "\u0001deep\u0001";
    const spliceDeep = (text: string): string =>
      text.replaceAll(JSON.stringify(DEEP), () => {
        const d = pick([20, 300, 499, 501, 4000]);
        return rnd() < 0.5 ? '{"a":'.repeat(d) + "1" + "}".repeat(d) : "[".repeat(d) + "]".repeat(d);
      });
    /** Requests shaped like real ones, with wrong or extreme values mixed in. */
    const template = (): { method: string; path: string; body?: unknown } => {
      const t = int(14);
      switch (t) {
        case 0:
          return { method: "POST", path: `secret/data/${word()}`, body: { data: rnd() < 0.2 ? { deep: DEEP } : rnd() < 0.7 ? object(1) : value(0), ...(rnd() < 0.3 ? { options: { cas: pick([0, 1, -1, "x", null, 1e308]) } } : {}) } };
        case 1:
          return { method: "PATCH", path: `secret/data/${word()}`, body: { data: rnd() < 0.2 ? { deep: DEEP } : object(1) } };
        case 2:
          return { method: "GET", path: `secret/data/${word()}?version=${encodeURIComponent(String(pick([1, 2, 0, -1, "x", 1e308, ""])))}` };
        case 3:
          return { method: "POST", path: `secret/metadata/${word()}`, body: { max_versions: pick([0, 1, -1, "x", 1e308]), custom_metadata: rnd() < 0.5 ? object(1) : pick(["a=b", "", "=x", null]), delete_version_after: duration() } };
        case 4:
          return { method: "POST", path: `secret/${pick(["delete", "undelete", "destroy"])}/${word()}`, body: { versions: pick<unknown>([[1], [1, 2, 99], "1,2", [], ["x"], [-1], null, [1e308]]) } };
        case 5:
          return { method: pick(["POST", "PUT"]), path: `sys/policies/acl/${word()}`, body: { policy: policyText() } };
        case 6:
          return {
            method: "POST",
            path: pick(["auth/token/create", "auth/token/create-orphan", `auth/token/create/${word()}`]),
            body: { policies: pick<unknown>([["default"], "a,b", [], ["root"], [1], null]), ttl: duration(), explicit_max_ttl: duration(), period: duration(), num_uses: pick([0, 1, -1, "2", 1e308]), meta: rnd() < 0.5 ? { k: "v" } : value(2), renewable: pick([true, "false", "maybe", 1]), no_parent: pick([true, "t", 7]), display_name: pick(["x", "", "ü🙂", "x".repeat(300)]) },
          };
        case 7:
          return { method: "POST", path: `auth/token/roles/${word()}`, body: { allowed_policies: pick<unknown>([["a"], "a,b", {}, null]), orphan: pick([true, "x"]), token_period: duration(), path_suffix: pick(["ok", "../x", "a b", ""]) } };
        case 8:
          return { method: "POST", path: `sys/mounts/${word()}`, body: { type: pick(["kv", "pki", "nope", "", "system", "token"]), options: pick<unknown>([{ version: pick(["1", "2", "3", ""]) }, "version=2", null]), config: { default_lease_ttl: duration(), max_lease_ttl: duration() } } };
        case 9:
          return { method: pick(["GET", "POST"]), path: `sys/mounts/${word()}/tune`, body: { default_lease_ttl: duration(), max_lease_ttl: duration(), description: value(3) } };
        case 10:
          return { method: "POST", path: pick(["sys/capabilities-self", "sys/capabilities", "sys/capabilities-accessor"]), body: { paths: pick<unknown>([["secret/data/x"], "a,b", [], [1, null], "../x"]), token: pick(["root", "", "lhs.x"]), accessor: pick(["x", ""]) } };
        case 11:
          return { method: "POST", path: `auth/token/${pick(["lookup", "lookup-accessor", "renew", "renew-accessor", "revoke-accessor", "lookup-self"])}`, body: { token: pick(["", "lhs.nope", "x".repeat(300)]), accessor: pick(["", "nope", "../../x"]), increment: duration() } };
        case 12:
          return { method: pick(["GET", "POST"]), path: pick(["sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader", "sys/internal/ui/mounts/secret", "sys/metrics"]), body: { secret_shares: pick([1, 0, -1, "x", 1e308]), secret_threshold: pick([1, 2, 0]), key: pick(["", "zz", "00", "x".repeat(100)]), reset: pick([true, "x"]) } };
        default:
          return { method: "POST", path: `secret/config`, body: { max_versions: pick([1, -1, "x", 1e308]), cas_required: pick([true, "nope", 1]), delete_version_after: duration() } };
      }
    };

    const pathOf = (): string => {
      let p = pick(PREFIXES);
      for (let i = int(4); i > 0; i--) p += (p === "" || p.endsWith("/") ? "" : "/") + segment();
      if (rnd() < 0.2) p += "/";
      return p;
    };

    // The fuzzer may revoke its own token (revoke-self, num_uses...): keep a root token at hand.
    let rootToken = (await server.core.createRootToken()).token;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const failures: { i: number; method: string; path: string; body?: string; contentType?: string; token: boolean; status: number; response: string; problem: string }[] = [];
    const started = Date.now();
    let sent = 0;
    try {
      for (let i = 0; i < MAX_REQUESTS && Date.now() - started < TIME_LIMIT_MS; i++) {
        if (i % 20 === 0 && !(await server.core.tokens.lookup(rootToken))) rootToken = (await server.core.createRootToken()).token;
        let method: string;
        let path: string;
        let text: string | undefined;
        let contentType: string | undefined;
        if (rnd() < 0.45) {
          const t = template();
          method = t.method;
          path = "/v1/" + t.path;
          if (method !== "GET" && t.body !== undefined) {
            text = spliceDeep(JSON.stringify(t.body));
            contentType = method === "PATCH" ? "application/merge-patch+json" : "application/json";
          }
        } else {
          method = pick(["GET", "POST", "PUT", "DELETE", "PATCH", "LIST"]);
          path = "/v1/" + pathOf();
          if (method === "LIST") path += (path.includes("?") ? "&" : "?") + "list=true";
          if (method !== "GET" && method !== "LIST" && method !== "DELETE") ({ text, contentType } = bodyText());
        }
        const withToken = rnd() < 0.75;
        const r = await rawRequest(server.url, method === "LIST" ? "GET" : method, path, {
          token: withToken ? rootToken : rnd() < 0.5 ? "lhs.bogus" : undefined,
          body: text,
          headers: contentType ? { "Content-Type": contentType } : {},
          agent,
        });
        sent++;
        const record = (problem: string) =>
          failures.push({ i, method, path: path.length > 300 ? path.slice(0, 300) + "…" : path, body: text && text.length > 300 ? text.slice(0, 300) + "…" : text, contentType, token: withToken, status: r.status, response: r.text.slice(0, 300), problem });
        if (r.status === -1 || r.status >= 500) {
          record("5xx or no response");
          continue;
        }
        if (r.status === 204 && r.text !== "") record("204 with a body");
        if (r.status >= 400) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(r.text);
          } catch {
            record("error body is not JSON");
            continue;
          }
          if (!/^application\/json/.test(String(r.headers["content-type"]))) record("error without application/json");
          const errors = (parsed as { errors?: unknown }).errors;
          // Vault's one documented exception: a deleted KV v2 version answers 404 with its metadata.
          const kvDeleted = r.status === 404 && /^\/v1\/secret\/data\//.test(path) && (parsed as { data?: { metadata?: unknown } }).data?.metadata !== undefined;
          if (!kvDeleted && !(Array.isArray(errors) && errors.every((e) => typeof e === "string"))) record('error body is not {"errors": [...]}');
        } else if (r.status === 200 && r.text !== "" && /json/.test(String(r.headers["content-type"]))) {
          try {
            JSON.parse(r.text);
          } catch {
            record("200 with invalid JSON");
          }
        }
      }
    } finally {
      agent.destroy();
    }
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(failures, `seed ${SEED}: failing requests`).toEqual([]);

    const health = await rawRequest(server.url, "GET", "/v1/sys/health");
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toMatchObject({ initialized: true, sealed: false });
  });
});
