import { execFile } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type ClientRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AbortError } from "./backoff.js";
import {
  BadRequestError,
  ConnectionError,
  LeaseholdClient,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  SealedError,
  ServerError,
  VaultHttpError,
  isRetryable,
} from "./index.js";
import { DEFAULT_MAX_RETRIES, clientOptionsFromSettings, resolveClientSettings } from "./settings.js";

/**
 * The client's retries against a stand-in peer: a node:http server whose answers are scripted
 * per path (a list of statuses, the last one repeated), counting the attempts it receives.
 */
let server: Server;
let address: string;
const scripts = new Map<string, number[]>();
const attempts = new Map<string, number>();
const bodies = new Map<string, string[]>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const n = attempts.get(path) ?? 0;
      attempts.set(path, n + 1);
      bodies.set(path, [...(bodies.get(path) ?? []), Buffer.concat(chunks).toString("utf8")]);
      if (path === "/v1/never-answers") return; // holds the request open until the client gives up
      const script = scripts.get(path) ?? [200];
      const status = script[Math.min(n, script.length - 1)];
      res.writeHead(status, { "Content-Type": "application/json" });
      if (status === 200) res.end(JSON.stringify({ request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: { attempt: n + 1 }, wrap_info: null, warnings: null, auth: null }));
      else res.end(JSON.stringify({ errors: [`scripted ${status}`] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  scripts.clear();
  attempts.clear();
  bodies.clear();
});

/** Short delays keep the tests fast; the backoff itself is tested in backoff.test.ts. */
const fast = { retryMinMs: 5, retryMaxMs: 20 };

describe("LeaseholdClient retries", () => {
  it("retries a 503 and succeeds on the next attempt", async () => {
    scripts.set("/v1/flaky", [503, 200]);
    const c = new LeaseholdClient({ address, retries: 2, ...fast });
    try {
      const res = await c.read<{ attempt: number }>("flaky");
      expect(res?.data?.attempt).toBe(2);
      expect(attempts.get("/v1/flaky")).toBe(2);
    } finally {
      c.close();
    }
  });

  it("resends the same body on each attempt", async () => {
    scripts.set("/v1/write", [502, 500, 200]);
    const c = new LeaseholdClient({ address, retries: 3, ...fast });
    try {
      await c.write("write", { a: 1 });
      expect(bodies.get("/v1/write")).toEqual(['{"a":1}', '{"a":1}', '{"a":1}']);
    } finally {
      c.close();
    }
  });

  it("gives up after `retries` retries of a 5xx and throws the last answer", async () => {
    scripts.set("/v1/down", [500]);
    const c = new LeaseholdClient({ address, retries: 2, ...fast });
    try {
      const err = await c.read("down").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerError);
      expect((err as VaultHttpError).status).toBe(500);
      expect(attempts.get("/v1/down")).toBe(3);
    } finally {
      c.close();
    }
  });

  it("does not retry by default (retries: 0)", async () => {
    scripts.set("/v1/once", [503, 200]);
    const c = new LeaseholdClient({ address, ...fast });
    try {
      expect(c.retries).toBe(0);
      await expect(c.read("once")).rejects.toBeInstanceOf(SealedError);
      expect(attempts.get("/v1/once")).toBe(1);
    } finally {
      c.close();
    }
  });

  it("takes a per-request `retries` over the client's", async () => {
    scripts.set("/v1/per-request", [503, 503, 200]);
    const c = new LeaseholdClient({ address, retries: 0, ...fast });
    try {
      const res = await c.request<{ data: { attempt: number } }>("GET", "per-request", { retries: 2 });
      expect(res.body?.data.attempt).toBe(3);
      expect(attempts.get("/v1/per-request")).toBe(3);
    } finally {
      c.close();
    }
    scripts.set("/v1/per-request-none", [503, 200]);
    const d = new LeaseholdClient({ address, retries: 5, ...fast });
    try {
      await expect(d.request("GET", "per-request-none", { retries: 0 })).rejects.toBeInstanceOf(SealedError);
      expect(attempts.get("/v1/per-request-none")).toBe(1);
    } finally {
      d.close();
    }
  });

  it.each([400, 403, 404, 405, 412, 429])("never retries a %i", async (status) => {
    const path = `/v1/client-error-${status}`;
    scripts.set(path, [status, 200]);
    const c = new LeaseholdClient({ address, retries: 3, ...fast });
    try {
      const err = await c.request("PUT", path.slice(4), { body: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VaultHttpError);
      expect((err as VaultHttpError).status).toBe(status);
      expect(attempts.get(path)).toBe(1);
    } finally {
      c.close();
    }
  });

  it("does not retry a 501 (not implemented is not transient)", async () => {
    scripts.set("/v1/unimplemented", [501, 200]);
    const c = new LeaseholdClient({ address, retries: 3, ...fast });
    try {
      const err = await c.read("unimplemented").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerError);
      expect((err as VaultHttpError).status).toBe(501);
      expect(attempts.get("/v1/unimplemented")).toBe(1);
    } finally {
      c.close();
    }
  });

  it("does not retry an error status the caller asked to see (allowErrorStatus)", async () => {
    scripts.set("/v1/sys/health", [503, 200]);
    const c = new LeaseholdClient({ address, retries: 3, ...fast });
    try {
      const res = await c.request("GET", "sys/health", { allowErrorStatus: true });
      expect(res.status).toBe(503);
      expect(attempts.get("/v1/sys/health")).toBe(1);
    } finally {
      c.close();
    }
  });

  it("retries a refused connection `retries` times, then throws ConnectionError", async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    // Count the attempts as node:http starts them (no peer can count refused connections).
    let started = 0;
    const onStart = (message: unknown) => {
      const req = (message as { request: ClientRequest }).request;
      if (String(req.getHeader("host")).endsWith(`:${port}`)) started++;
    };
    diagnostics.subscribe("http.client.request.start", onStart);
    const c = new LeaseholdClient({ address: `http://127.0.0.1:${port}`, retries: 3, ...fast });
    try {
      const err = await c.read("anything").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).code).toBe("ECONNREFUSED");
      expect(started).toBe(4);
    } finally {
      diagnostics.unsubscribe("http.client.request.start", onStart);
      c.close();
    }
  });

  it("waits between retries with exponential backoff (at least half of each ceiling)", async () => {
    scripts.set("/v1/slowly", [503, 503, 503, 200]);
    // Ceilings 40, 80, 160 ms: with equal jitter at least 20 + 40 + 80 = 140 ms in all.
    const c = new LeaseholdClient({ address, retries: 3, retryMinMs: 40, retryMaxMs: 1_000 });
    try {
      const started = performance.now();
      await c.read("slowly");
      expect(performance.now() - started).toBeGreaterThanOrEqual(130);
      expect(attempts.get("/v1/slowly")).toBe(4);
    } finally {
      c.close();
    }
  });

  it("stops waiting between retries when the signal aborts", async () => {
    scripts.set("/v1/abort", [503]);
    // A first retry delay of at least 30 s: only the abort can end the wait in time.
    const c = new LeaseholdClient({ address, retries: 5, retryMinMs: 60_000, retryMaxMs: 60_000 });
    const ac = new AbortController();
    try {
      const started = performance.now();
      const pending = c.request("GET", "abort", { signal: ac.signal });
      const watcher = setInterval(() => {
        if ((attempts.get("/v1/abort") ?? 0) >= 1) ac.abort();
      }, 10);
      const err = await pending.catch((e: unknown) => e).finally(() => clearInterval(watcher));
      expect(err).toBeInstanceOf(AbortError);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(attempts.get("/v1/abort")).toBe(1);
    } finally {
      c.close();
    }
  });

  it("makes no attempt with an already aborted signal", async () => {
    scripts.set("/v1/pre-aborted", [503, 200]);
    const c = new LeaseholdClient({ address, retries: 3, ...fast });
    const ac = new AbortController();
    ac.abort();
    try {
      await expect(c.request("GET", "pre-aborted", { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
      expect(attempts.get("/v1/pre-aborted") ?? 0).toBe(0);
    } finally {
      c.close();
    }
  });

  it("aborts a request in flight at once (shutdown does not wait for the timeout)", async () => {
    const c = new LeaseholdClient({ address, retries: 3, timeoutMs: 30_000, ...fast });
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 100);
    try {
      await expect(c.request("GET", "never-answers", { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(attempts.get("/v1/never-answers")).toBe(1);
    } finally {
      c.close();
    }
  });
});

describe("the wait between attempts", () => {
  it("keeps the process alive until the retried request is answered", async () => {
    // With nothing else to do (the keep-alive agent unrefs its idle socket after the 503), an
    // unref'd retry timer let the process exit, silently and with status 0, mid-request.
    scripts.set("/v1/lonely", [503, 200]);
    const dir = mkdtempSync(join(tmpdir(), "leasehold-retry-"));
    const script = join(dir, "lonely.ts");
    const clientModule = fileURLToPath(new URL("./client.ts", import.meta.url));
    writeFileSync(
      script,
      `import { LeaseholdClient } from ${JSON.stringify(clientModule)};
const c = new LeaseholdClient({ address: ${JSON.stringify(address)}, retries: 2, retryMinMs: 200, retryMaxMs: 200 });
c.read("lonely").then((r) => { console.log("answer " + JSON.stringify(r?.data)); c.close(); }, (e) => { console.log("error " + e.message); c.close(); });
`,
    );
    try {
      const cwd = fileURLToPath(new URL("../..", import.meta.url));
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ["--import", "tsx", script], { cwd, timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
      );
      expect(out.trim()).toBe('answer {"attempt":2}');
      expect(attempts.get("/v1/lonely")).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("error classes by status", () => {
  const cases: Array<[number, new (...args: never[]) => VaultHttpError, string]> = [
    [400, BadRequestError, "BadRequestError"],
    [403, PermissionDeniedError, "PermissionDeniedError"],
    [404, NotFoundError, "NotFoundError"],
    [429, RateLimitedError, "RateLimitedError"],
    [503, SealedError, "SealedError"],
    [500, ServerError, "ServerError"],
    [502, ServerError, "ServerError"],
  ];

  it.each(cases)("HTTP %i gives %o", async (status, Kind, name) => {
    const path = `/v1/status-${status}`;
    scripts.set(path, [status]);
    const c = new LeaseholdClient({ address });
    try {
      const err = await c.request("PUT", path.slice(4), { body: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Kind);
      expect(err).toBeInstanceOf(VaultHttpError);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe(name);
      expect((err as VaultHttpError).status).toBe(status);
      expect((err as VaultHttpError).errors).toEqual([`scripted ${status}`]);
      expect((err as VaultHttpError).method).toBe("PUT");
      expect((err as VaultHttpError).url).toBe(`${address}${path}`);
    } finally {
      c.close();
    }
  });

  it("a 4xx without a subclass is a plain VaultHttpError", async () => {
    scripts.set("/v1/status-409", [409]);
    const c = new LeaseholdClient({ address });
    try {
      const err = await c.read("status-409").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VaultHttpError);
      expect(err).not.toBeInstanceOf(BadRequestError);
      expect(err).not.toBeInstanceOf(ServerError);
      expect((err as Error).name).toBe("VaultHttpError");
    } finally {
      c.close();
    }
  });

  it("a 403 is not confused with the other subclasses", async () => {
    scripts.set("/v1/status-403b", [403]);
    const c = new LeaseholdClient({ address });
    try {
      const err = await c.read("status-403b").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermissionDeniedError);
      expect(err).not.toBeInstanceOf(NotFoundError);
      expect(err).not.toBeInstanceOf(SealedError);
    } finally {
      c.close();
    }
  });
});

describe("isRetryable", () => {
  const http = (status: number) => new VaultHttpError({ status, errors: [], method: "GET", url: "http://x/v1/y" });

  it("is true for connection errors and 5xx other than 501", () => {
    expect(isRetryable(new ConnectionError("refused", { address: "http://x", code: "ECONNREFUSED" }))).toBe(true);
    for (const s of [500, 502, 503, 504]) expect(isRetryable(http(s))).toBe(true);
    expect(isRetryable(new SealedError({ status: 503, errors: [], method: "GET", url: "u" }))).toBe(true);
  });

  it("is false for 4xx, 501 and anything that is not a client error", () => {
    for (const s of [400, 401, 403, 404, 412, 429, 501]) expect(isRetryable(http(s))).toBe(false);
    expect(isRetryable(new Error("boom"))).toBe(false);
    expect(isRetryable(new AbortError())).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
    expect(isRetryable("ECONNREFUSED")).toBe(false);
  });
});

describe("maxRetries settings", () => {
  it("defaults to 2, as Vault's client", () => {
    expect(DEFAULT_MAX_RETRIES).toBe(2);
    expect(resolveClientSettings({}, {}, "/nonexistent-home").maxRetries).toBe(2);
  });

  it("reads LEASEHOLD_MAX_RETRIES before VAULT_MAX_RETRIES", () => {
    expect(resolveClientSettings({ VAULT_MAX_RETRIES: "5" }, {}, "/nonexistent-home").maxRetries).toBe(5);
    expect(resolveClientSettings({ VAULT_MAX_RETRIES: "5", LEASEHOLD_MAX_RETRIES: "0" }, {}, "/nonexistent-home").maxRetries).toBe(0);
    expect(resolveClientSettings({ LEASEHOLD_MAX_RETRIES: "" , VAULT_MAX_RETRIES: "7" }, {}, "/nonexistent-home").maxRetries).toBe(7);
  });

  it.each(["-1", "1.5", "two", "Infinity"])("rejects %s naming the variable", (raw) => {
    expect(() => resolveClientSettings({ LEASEHOLD_MAX_RETRIES: raw }, {}, "/nonexistent-home")).toThrow(/LEASEHOLD_MAX_RETRIES/);
  });

  it("reaches the client options", () => {
    const settings = resolveClientSettings({ LEASEHOLD_MAX_RETRIES: "4", LEASEHOLD_TOKEN: "t" }, {}, "/nonexistent-home");
    const options = clientOptionsFromSettings(settings);
    expect(options.retries).toBe(4);
    expect(new LeaseholdClient(options).retries).toBe(4);
  });
});
