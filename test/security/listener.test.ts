import net from "node:net";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PluginFactory } from "../../src/sdk/types.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A secrets engine whose `sleep/:ms` read takes that long (a slow backend). */
const slowEngine: PluginFactory = {
  type: "test-slow",
  kind: "secrets",
  description: "answers after a delay",
  async create() {
    return {
      paths: [
        {
          pattern: "sleep/(?<ms>\\d+)",
          operations: {
            read: {
              handler: async (req) => {
                await sleep(Number(req.params.ms));
                return { data: { slept: Number(req.params.ms) } };
              },
            },
          },
        },
      ],
    };
  },
};

/** Opens a raw connection; `closedAt` resolves with the ms from `since()` to the close, `text()` with what was received. */
async function open(port: number): Promise<{ sock: Socket; closed: Promise<number>; text: () => string; mark: () => void }> {
  const sock = net.connect(port, "127.0.0.1");
  sock.setNoDelay(true);
  let start = performance.now();
  let received = "";
  sock.on("data", (d: Buffer) => (received += d.toString("latin1")));
  sock.on("error", () => undefined);
  const closed = new Promise<number>((r) => sock.once("close", () => r(performance.now() - start)));
  await new Promise<void>((r) => sock.once("connect", () => r()));
  return { sock, closed, text: () => received, mark: () => (start = performance.now()) };
}

async function withSlowMount(server: RunningServer): Promise<void> {
  expect((await call(server.url, "POST", "sys/mounts/slow", { token: "root", body: { type: "test-slow" } })).status).toBe(204);
}

describe("listener timeouts (issue 15, item 19)", () => {
  let server: RunningServer;
  let port: number;

  beforeAll(async () => {
    server = await startTestServer({
      rootTokenId: "root",
      extraPlugins: [slowEngine],
      http: { readHeaderTimeoutMs: 600, readTimeoutMs: 1200, idleTimeoutMs: 500, maxRequestDurationMs: 400 },
    });
    port = Number(new URL(server.url).port);
    await withSlowMount(server);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("Vault's defaults when nothing is configured: 10s headers, 30s request, 5m idle", async () => {
    const plain = await startTestServer({ rootTokenId: "root" });
    try {
      const s = plain.listeners[0].server;
      expect([s.headersTimeout, s.requestTimeout, s.keepAliveTimeout]).toEqual([10_000, 30_000, 300_000]);
    } finally {
      await plain.stop();
    }
    const s = server.listeners[0].server;
    expect([s.headersTimeout, s.requestTimeout, s.keepAliveTimeout]).toEqual([600, 1200, 500]);
  });

  it("closes a slowloris connection that never finishes its headers after the header timeout", async () => {
    const c = await open(port);
    c.sock.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n");
    c.mark();
    const drip = setInterval(() => c.sock.writable && c.sock.write(`X-Drip-${Date.now()}: 1\r\n`), 100);
    try {
      const ms = await c.closed;
      expect(ms).toBeGreaterThan(450);
      expect(ms).toBeLessThan(2500);
      expect(c.text()).toMatch(/^HTTP\/1\.1 408 /);
      expect(c.text()).toContain('{"errors":["request timed out');
    } finally {
      clearInterval(drip);
      c.sock.destroy();
    }
  });

  it("positive control: headers sent slowly but within the timeout are answered", async () => {
    const c = await open(port);
    try {
      c.sock.write("GET /v1/sys/health HTTP/1.1\r\n");
      await sleep(200);
      c.sock.write("Host: x\r\n");
      await sleep(200);
      c.sock.write("\r\n");
      for (let i = 0; i < 50 && !c.text().includes("\r\n\r\n"); i++) await sleep(20);
      expect(c.text()).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      c.sock.destroy();
    }
  });

  it("closes a connection whose body does not arrive within the read timeout (and that is no internal error)", async () => {
    const fivexx = async () => (await server.core.metrics.requests.get()).values.filter((v) => String(v.labels.status).startsWith("5")).reduce((n, v) => n + v.value, 0);
    const before = await fivexx();
    const c = await open(port);
    c.sock.write("POST /v1/secret/data/slow-body HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    c.mark();
    const ms = await c.closed;
    expect(ms).toBeGreaterThan(900);
    expect(ms).toBeLessThan(3000);
    await sleep(50);
    expect(await fivexx()).toBe(before);
    expect((await call(server.url, "GET", "secret/data/slow-body", { token: "root" })).status).toBe(404);
    // Positive control: the same write, sent at once.
    expect((await call(server.url, "POST", "secret/data/slow-body", { token: "root", body: { data: { a: 1 } } })).status).toBe(200);
  });

  it("closes an idle keep-alive connection after the idle timeout; a request before it is served", async () => {
    const c = await open(port);
    try {
      c.sock.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
      await sleep(200);
      c.sock.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
      await sleep(100);
      expect(c.text().match(/HTTP\/1\.1 200 /g)?.length).toBe(2);
      c.mark();
      const ms = await c.closed;
      expect(ms).toBeGreaterThan(300);
      expect(ms).toBeLessThan(3000);
    } finally {
      c.sock.destroy();
    }
  });

  it("answers 503 when a request runs past max_request_duration; a quick one is fine", async () => {
    const t = performance.now();
    const slow = await call(server.url, "GET", "slow/sleep/1500", { token: "root" });
    expect(performance.now() - t).toBeLessThan(1200);
    expect(slow.status).toBe(503);
    expect(slow.body.errors[0]).toMatch(/max_request_duration/);
    const quick = await call(server.url, "GET", "slow/sleep/20", { token: "root" });
    expect(quick.status).toBe(200);
    expect(quick.body.data.slept).toBe(20);
  });

  it("http_write_timeout: a response not written in time closes the connection; the read timeout does not cut a slow answer", async () => {
    const w = await startTestServer({ rootTokenId: "root", extraPlugins: [slowEngine], http: { writeTimeoutMs: 800, readTimeoutMs: 300 } });
    try {
      await withSlowMount(w);
      const c = await open(Number(new URL(w.url).port));
      c.sock.write("GET /v1/slow/sleep/2000 HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n\r\n");
      c.mark();
      const ms = await c.closed;
      expect(ms).toBeGreaterThan(700);
      expect(ms).toBeLessThan(1900);
      expect(c.text()).toBe("");
      // Longer than the read timeout (the request itself arrived at once), shorter than the write timeout.
      const slowish = await call(w.url, "GET", "slow/sleep/500", { token: "root" });
      expect(slowish.status).toBe(200);
      expect(slowish.body.data.slept).toBe(500);
    } finally {
      await w.stop();
    }
  });

  it("a config file's listener block applies its own limits to that listener only", async () => {
    const multi = await startTestServer({ rootTokenId: "root", listeners: [{ address: "127.0.0.1:0", tlsDisable: true, readHeaderTimeoutMs: 700, maxRequestSize: 2048 }] });
    try {
      expect(multi.listeners[1].server.headersTimeout).toBe(700);
      expect(multi.listeners[0].server.headersTimeout).toBe(10_000);
      const body = { data: { x: "y".repeat(4096) } };
      expect((await call(multi.listeners[1].url, "POST", "secret/data/sized", { token: "root", body })).status).toBe(413);
      expect((await call(multi.listeners[0].url, "POST", "secret/data/sized", { token: "root", body })).status).toBe(200);
      expect((await call(multi.listeners[1].url, "POST", "secret/data/small", { token: "root", body: { data: { x: "y" } } })).status).toBe(200);
    } finally {
      await multi.stop();
    }
  });
});
