/**
 * Issue 15, "what already held": forwarding headers never stand in for the client address.
 * leasehold has no trusted-proxy setting (Vault's `x_forwarded_for_authorized_addrs`), so the
 * address of the TCP peer is the only one: a token or secret ID bound to 10.0.0.0/8 stays refused
 * from loopback whatever `X-Forwarded-For`, `X-Real-IP`, `Forwarded`, `True-Client-IP`, ... say, or
 * a PROXY-protocol preamble; the per-address login rate limit and the audit log's remote_address
 * are not fooled either. Positive controls: the same credentials bound to 127.0.0.1/32 work.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

const SPOOF = "10.1.2.3";
/** Every header a proxy (or an attacker) might use to name the client. */
const SPOOFS: Record<string, string>[] = [
  { "X-Forwarded-For": SPOOF },
  { "X-Forwarded-For": `${SPOOF}, 127.0.0.1` },
  { "X-Forwarded-For": `127.0.0.1, ${SPOOF}` },
  { "X-Real-IP": SPOOF },
  { Forwarded: `for=${SPOOF}` },
  { Forwarded: `for="${SPOOF}:4711";proto=https` },
  { "True-Client-IP": SPOOF },
  { "CF-Connecting-IP": SPOOF },
  { "X-Client-IP": SPOOF },
  { "X-Cluster-Client-IP": SPOOF },
  { "X-Forwarded-For": SPOOF, "X-Real-IP": SPOOF, Forwarded: `for=${SPOOF}`, "X-Forwarded-Host": "10.1.2.3" },
];

let server: RunningServer;
let base: string;
const root = { token: "root" };
const dir = mkdtempSync(join(tmpdir(), "leasehold-sec-fwd-"));
const auditPath = join(dir, "audit.log");

/** A token made from a token role bound to `cidrs`. */
async function boundToken(name: string, cidrs: string): Promise<string> {
  expect((await call(base, "POST", `auth/token/roles/${name}`, { ...root, body: { token_bound_cidrs: cidrs } })).status).toBe(204);
  const r = await call(base, "POST", `auth/token/create/${name}`, root);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.auth.client_token;
}

/** An AppRole role and one secret ID; `field` binds one of them to `cidrs`. */
async function approle(name: string, where: "role" | "secret-id", cidrs: string[]): Promise<{ role_id: string; secret_id: string }> {
  const roleBody = where === "role" ? { secret_id_bound_cidrs: cidrs } : {};
  expect((await call(base, "POST", `auth/approle/role/${name}`, { ...root, body: roleBody })).status).toBe(204);
  const roleId = (await call(base, "GET", `auth/approle/role/${name}/role-id`, root)).body.data.role_id;
  const s = await call(base, "POST", `auth/approle/role/${name}/secret-id`, { ...root, body: where === "secret-id" ? { cidr_list: cidrs } : {} });
  expect(s.status, JSON.stringify(s.body)).toBe(200);
  return { role_id: roleId, secret_id: s.body.data.secret_id };
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 1000, burst: 1000 } });
  base = server.url;
  expect((await call(base, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
  expect((await call(base, "PUT", "sys/audit/file", { ...root, body: { type: "file", options: { file_path: auditPath } } })).status).toBe(204);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("forwarding headers are ignored for CIDR binding", () => {
  it("a token bound to 10.0.0.0/8 is refused from loopback whatever the headers say; one bound to 127.0.0.1/32 works", async () => {
    const far = await boundToken("far", "10.0.0.0/8");
    const near = await boundToken("near", "127.0.0.1/32");
    for (const headers of [{}, ...SPOOFS]) {
      const r = await call(base, "GET", "auth/token/lookup-self", { token: far, headers });
      expect(r.status, `far ${JSON.stringify(headers)}`).toBe(403);
      expect(r.body.data, JSON.stringify(headers)).toBeUndefined();
      // Positive control: the headers do not make a correctly bound token fail either.
      expect((await call(base, "GET", "auth/token/lookup-self", { token: near, headers })).status, `near ${JSON.stringify(headers)}`).toBe(200);
    }
  });

  it("AppRole: a secret ID or role bound to 10.0.0.0/8 does not log in from loopback with spoofed headers", async () => {
    for (const where of ["role", "secret-id"] as const) {
      const far = await approle(`far-${where}`, where, ["10.0.0.0/8"]);
      for (const headers of SPOOFS) {
        const r = await call(base, "POST", "auth/approle/login", { body: far, headers });
        // 400 for the role's block and 403 for the secret ID's, as in Vault; the peer is named.
        expect([400, 403], `${where} ${JSON.stringify(headers)}: ${JSON.stringify(r.body)}`).toContain(r.status);
        expect(r.body.auth).toBeUndefined();
        expect(JSON.stringify(r.body)).not.toContain(SPOOF);
      }
      // Positive control: bound to 127.0.0.1/32, the same login (headers and all) works.
      const near = await approle(`near-${where}`, where, ["127.0.0.1/32"]);
      const ok = await call(base, "POST", "auth/approle/login", { body: near, headers: SPOOFS[SPOOFS.length - 1] });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    }
  });

  it("a PROXY-protocol preamble naming 10.1.2.3 is not honoured", async () => {
    const far = await boundToken("far-proxy", "10.0.0.0/8");
    const u = new URL(base);
    const answer = await new Promise<string>((resolve) => {
      const sock = net.connect(Number(u.port), u.hostname);
      let buf = "";
      sock.on("data", (d: Buffer) => (buf += d.toString("latin1")));
      sock.on("error", () => undefined);
      sock.on("close", () => resolve(buf));
      sock.write(`PROXY TCP4 ${SPOOF} 127.0.0.1 40000 ${u.port}\r\nGET /v1/auth/token/lookup-self HTTP/1.1\r\nHost: ${u.host}\r\nX-Vault-Token: ${far}\r\nConnection: close\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(answer).not.toContain('"accessor"');
  });

  it("the audit log records the TCP peer, not the forwarded address", async () => {
    const near = await boundToken("near-audit", "127.0.0.1/32");
    expect((await call(base, "GET", "auth/token/lookup-self", { token: near, headers: { "X-Forwarded-For": SPOOF, Forwarded: `for=${SPOOF}` } })).status).toBe(200);
    const lines = readFileSync(auditPath, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { request: { path?: string; remote_address?: string } });
    const mine = lines.filter((l) => l.request.path === "auth/token/lookup-self");
    expect(mine.length).toBeGreaterThan(0);
    for (const l of mine) expect(l.request.remote_address).toBe("127.0.0.1");
    expect(readFileSync(auditPath, "utf8")).not.toContain(SPOOF);
  });
});

describe("forwarding headers do not reset the per-address login rate limit", () => {
  it("a fresh X-Forwarded-For per attempt still hits the limit", async () => {
    const limited = await startTestServer({ rootTokenId: "root", loginRateLimit: { rate: 0.01, burst: 3 } });
    try {
      expect((await call(limited.url, "POST", "sys/auth/approle", { ...root, body: { type: "approle" } })).status).toBe(204);
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const headers = { "X-Forwarded-For": `10.9.${i}.1`, "X-Real-IP": `10.9.${i}.1`, Forwarded: `for=10.9.${i}.1` };
        statuses.push((await call(limited.url, "POST", "auth/approle/login", { body: { role_id: "nope", secret_id: "nope" }, headers })).status);
      }
      // Three attempts pass the limiter (and fail on the bad credentials), the rest are 429.
      expect(statuses.slice(0, 3).every((s) => s !== 429), statuses.join(",")).toBe(true);
      expect(statuses.slice(3), statuses.join(",")).toEqual([429, 429, 429]);
    } finally {
      await limited.stop();
    }
  });
});
