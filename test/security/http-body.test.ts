import net from "node:net";
import type { Socket } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Log lines of the server under test (debug and up). */
const logs: { level: number; msg: string }[] = [];
const logStream = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
    cb();
  },
});

/** `{"data":{"x":[[],[],...` filler: 1 MiB of tiny arrays, written again and again (the client holds only this). */
const TINY_ARRAYS = Buffer.from("[],".repeat(Math.floor(MiB / 3)));

/**
 * Sends a request over a raw socket: the headers, then `bodyChunks` chunks of body (announced with
 * Content-Length) as fast as the socket takes them. Resolves with the first response's status line and
 * body, and when it arrived relative to the end of the headers.
 */
function rawPost(port: number, path: string, headers: Record<string, string>, prefix: Buffer, chunk: Buffer, chunks: number, suffix: Buffer): Promise<{ status: number; body: string; ms: number; bodyBytesSent: number }> {
  return new Promise((resolve, reject) => {
    const length = prefix.length + chunk.length * chunks + suffix.length;
    const sock: Socket = net.connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let started = 0;
    let sent = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      sock.destroy();
      if (err) return reject(err);
      const text = received.toString("utf8");
      const end = text.indexOf("\r\n\r\n");
      resolve({ status: Number(text.split(" ")[1]), body: text.slice(end + 4), ms: performance.now() - started, bodyBytesSent: sent });
    };
    sock.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const text = received.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const n = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? "-1");
      if (end !== -1 && n >= 0 && received.length >= end + 4 + n) finish();
    });
    sock.on("error", () => finish()); // the server may close while we still send: the answer is what counts
    sock.on("close", () => finish(received.length ? undefined : new Error("closed without an answer")));
    sock.on("connect", async () => {
      const head = Object.entries({ Host: "x", "Content-Type": "application/json", "Content-Length": String(length), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      sock.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
      started = performance.now();
      const write = (b: Buffer) => new Promise<void>((r) => (sock.write(b) ? r() : sock.once("drain", () => r())));
      await write(prefix);
      for (let i = 0; i < chunks && !done; i++) {
        await write(chunk);
        sent += chunk.length;
      }
      if (!done) await write(suffix);
    });
  });
}

/** Polls sys/health every 20 ms while `during` runs; returns the slowest answer (ms). */
async function slowestHealth(base: string, during: Promise<unknown>): Promise<number> {
  let worst = 0;
  let running = true;
  void during.finally(() => (running = false));
  while (running) {
    const t = performance.now();
    const r = await fetch(`${base}/v1/sys/health`);
    await r.arrayBuffer();
    expect(r.status).toBe(200);
    worst = Math.max(worst, performance.now() - t);
    await sleep(20);
  }
  return worst;
}

describe("request bodies (issue 15, item 5; item 19 client aborts)", () => {
  let server: RunningServer;
  let port: number;

  beforeAll(async () => {
    server = await startDevServer({ address: "127.0.0.1:0", rootTokenId: "root", logger: pino({ level: "debug" }, logStream), loginRateLimit: { rate: 0, burst: 0 } });
    port = Number(new URL(server.url).port);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("refuses a 32 MiB body of tiny arrays sent without a token before reading it; the server keeps answering", async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const rssBefore = process.memoryUsage().rss;
    const attack = rawPost(port, "/v1/secret/data/attack", {}, Buffer.from('{"data":{"x":['), TINY_ARRAYS, 32, Buffer.from("[]]}}"));
    const worstHealth = await slowestHealth(server.url, attack);
    const r = await attack;
    delay.disable();
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ errors: ["permission denied"] });
    expect(r.ms).toBeLessThan(1000);
    expect(r.bodyBytesSent).toBeLessThan(32 * MiB); // answered before the body was all sent
    expect(worstHealth).toBeLessThan(500);
    expect(delay.max / 1e6).toBeLessThan(500);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MiB);
    // The same without a token on an unknown token: refused the same way.
    const unknown = await rawPost(port, "/v1/secret/data/attack", { "X-Vault-Token": "lhs.nope" }, Buffer.from('{"data":{"x":['), TINY_ARRAYS, 8, Buffer.from("[]]}}"));
    expect(unknown.status).toBe(403);
    expect((await call(server.url, "GET", "secret/data/attack", { token: "root" })).status).toBe(404);
  }, 60_000);

  it("a valid token that could never write here is refused before its body is read; a token that may write is not", async () => {
    expect((await call(server.url, "PUT", "sys/policies/acl/reader", { token: "root", body: { policy: 'path "secret/data/*" { capabilities = ["read"] }\npath "secret/data/mine/*" { capabilities = ["create", "update"] }' } })).status).toBe(204);
    const created = await call(server.url, "POST", "auth/token/create", { token: "root", body: { policies: ["reader"], ttl: "1h" } });
    const token = created.body.auth.client_token as string;
    const r = await rawPost(port, "/v1/secret/data/other", { "X-Vault-Token": token }, Buffer.from('{"data":{"x":"'), Buffer.alloc(MiB, 0x61), 16, Buffer.from('"}}'));
    expect(r.status).toBe(403);
    expect(r.bodyBytesSent).toBeLessThan(16 * MiB);
    // Positive control: where the policy allows writes, the same token writes a large body.
    const ok = await rawPost(port, "/v1/secret/data/mine/big", { "X-Vault-Token": token }, Buffer.from('{"data":{"x":"'), Buffer.alloc(MiB, 0x61), 2, Buffer.from('"}}'));
    expect(ok.status, ok.body).toBe(200);
  }, 60_000);

  it("with a valid token, a body of too many values is refused with 400 without stopping the server", async () => {
    const attack = rawPost(port, "/v1/secret/data/many", { "X-Vault-Token": "root" }, Buffer.from('{"data":{"x":['), TINY_ARRAYS, 31, Buffer.from("[]]}}"));
    const worstHealth = await slowestHealth(server.url, attack);
    const r = await attack;
    expect(r.status, r.body).toBe(400);
    expect(JSON.parse(r.body).errors[0]).toMatch(/more than 100000 values/);
    expect(worstHealth).toBeLessThan(500);
    expect((await call(server.url, "GET", "secret/data/many", { token: "root" })).status).toBe(404);
    // Positive control: many values, but within the limit, are stored.
    const ok = Array.from({ length: 5000 }, (_, i) => [i]);
    expect((await call(server.url, "POST", "secret/data/many", { token: "root", body: { data: { x: ok } } })).status).toBe(200);
  }, 60_000);

  it("a 5 MiB KV write with a valid token works (data writes keep the 32 MiB limit)", async () => {
    const value = "v".repeat(5 * MiB);
    const w = await call(server.url, "POST", "secret/data/large", { token: "root", body: { data: { value } } });
    expect(w.status, JSON.stringify(w.body).slice(0, 200)).toBe(200);
    const back = await call(server.url, "GET", "secret/data/large", { token: "root" });
    expect(back.body.data.data.value.length).toBe(5 * MiB);
  }, 60_000);

  it("elsewhere (sys/, auth/, unauthenticated paths) bodies above 1 MiB get 413; below, they work", async () => {
    const big = JSON.stringify({ policy: `# ${"x".repeat(MiB + 10)}\npath "a" { capabilities = ["read"] }` });
    const p = await call(server.url, "POST", "sys/policies/acl/big", { token: "root", body: big });
    expect(p.status).toBe(413);
    expect(p.body.errors[0]).toMatch(/^http: request body too large/);
    const small = JSON.stringify({ policy: `# ${"x".repeat(100_000)}\npath "a" { capabilities = ["read"] }` });
    expect((await call(server.url, "POST", "sys/policies/acl/big", { token: "root", body: small })).status).toBe(204);
    // An unauthenticated path (no token needed) gets the small limit too.
    const unseal = await call(server.url, "POST", "sys/unseal", { body: JSON.stringify({ key: "x".repeat(2 * MiB) }) });
    expect(unseal.status).toBe(413);
  });

  it("a login (unauthenticated path) with a body still works, and an oversized one is refused", async () => {
    expect((await call(server.url, "POST", "sys/auth/approle", { token: "root", body: { type: "approle" } })).status).toBe(204);
    expect((await call(server.url, "POST", "auth/approle/role/app", { token: "root", body: { token_policies: ["default"] } })).status).toBe(204);
    const roleId = (await call(server.url, "GET", "auth/approle/role/app/role-id", { token: "root" })).body.data.role_id as string;
    const secretId = (await call(server.url, "POST", "auth/approle/role/app/secret-id", { token: "root", body: {} })).body.data.secret_id as string;
    const login = await call(server.url, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.auth.client_token).toMatch(/\S/);
    const huge = await call(server.url, "POST", "auth/approle/login", { body: JSON.stringify({ role_id: roleId, secret_id: secretId, pad: "x".repeat(2 * MiB) }) });
    expect(huge.status).toBe(413);
  });

  it("a client that hangs up mid-body is no internal error: no 500 in the metrics, no error log", async () => {
    const fivexx = async () => (await server.core.metrics.requests.get()).values.filter((v) => String(v.labels.status).startsWith("5")).reduce((n, v) => n + v.value, 0);
    const closed = async () => (await server.core.metrics.requests.get()).values.filter((v) => String(v.labels.status) === "499").reduce((n, v) => n + v.value, 0);
    const before = { fivexx: await fivexx(), closed: await closed(), logs: logs.length };
    for (let i = 0; i < 3; i++) {
      const sock = net.connect(port, "127.0.0.1");
      await new Promise<void>((r) => sock.once("connect", () => r()));
      sock.write(`POST /v1/secret/data/aborted HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"data":{"x":"`);
      await sleep(50);
      sock.destroy();
    }
    await sleep(200);
    expect(await fivexx()).toBe(before.fivexx);
    expect(await closed()).toBe(before.closed + 3);
    const newLogs = logs.slice(before.logs);
    expect(newLogs.filter((l) => l.level >= 50)).toEqual([]);
    expect(newLogs.filter((l) => /client closed the connection/.test(l.msg)).length).toBe(3);
    // Positive control: a complete write on the same path works.
    expect((await call(server.url, "POST", "secret/data/aborted", { token: "root", body: { data: { x: "y" } } })).status).toBe(200);
  });
});
