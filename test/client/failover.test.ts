import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  ClientConfigError,
  ConnectionError,
  Leasehold,
  LeaseholdClient,
  PermissionDeniedError,
  SealedError,
  TokenKeeper,
  resolveClientSettings,
  tokenAuth,
  type KvV2Data,
  type Secret,
} from "../../src/client/library.js";
import { shouldFailOver } from "../../src/client/client.js";
import type { RunningServer } from "../../src/server/run.js";
import { ok } from "../database/helpers.js";
import { killCliProcesses, spawnCli } from "../helpers/cli-process.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Several addresses (issue 17): the client moves to the next address on a connection failure or a
 * sealed node, at once, and stays on the address that answered. The nodes here are independent
 * dev servers sharing nothing, so each holds its own copy of the data, tagged with its name: the
 * value read back tells which node answered. Each has the root token `root`.
 */
const running = new Set<RunningServer>();

async function startNode(name: string, opts: { tls?: boolean; address?: string } = {}): Promise<RunningServer> {
  const server = await startTestServer({ rootTokenId: "root", ...opts });
  running.add(server);
  if (!opts.tls) await ok(call(server.url, "POST", "secret/data/app", { token: "root", body: { data: { node: name } } }));
  return server;
}

async function stop(server: RunningServer): Promise<void> {
  running.delete(server);
  await server.stop();
}

/** An address where nothing listens (a port that was just free). */
async function closedAddress(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

async function nodeOf(client: LeaseholdClient): Promise<unknown> {
  const res = await client.read<KvV2Data>("secret/data/app");
  return res?.data?.data.node;
}

async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An address whose connects stay pending, as a node that drops packets: a listening socket with a
 * full backlog that never accepts (Node always accepts, so a small Python process holds it).
 */
const hasPython = spawnSync("python3", ["-c", "pass"]).status === 0;
const UNANSWERED = `
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.2)
print(s.getsockname()[1], flush=True)
time.sleep(60)
`;
async function unansweredAddress(): Promise<{ address: string; stop(): void }> {
  const proc = spawn("python3", ["-c", UNANSWERED], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve, reject) => {
    proc.stdout.once("data", (b: Buffer) => resolve(b.toString().trim()));
    proc.once("exit", (code) => reject(new Error(`python3 exited with ${code}`)));
  });
  return { address: `http://127.0.0.1:${port}`, stop: () => proc.kill("SIGKILL") };
}

const clients: Array<{ close(): void }> = [];
function track<T extends { close(): void }>(c: T): T {
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await killCliProcesses();
  await Promise.all([...running].map((s) => stop(s)));
});

describe("failover between addresses", () => {
  it("skips a dead first address, then sticks to the node that answered (no round-robin)", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    const dead = await closedAddress();
    const moves: Array<{ from: string; to: string }> = [];
    const client = track(new LeaseholdClient({ address: dead, addresses: [a.url, b.url], token: "root", onFailover: ({ from, to }) => moves.push({ from, to }) }));

    expect(await nodeOf(client)).toBe("A");
    expect(client.address).toBe(a.url);
    expect(moves).toEqual([{ from: dead, to: a.url }]);
    // Every later request goes to A directly: round-robin would have reached B (or the dead one).
    for (let i = 0; i < 5; i++) expect(await nodeOf(client)).toBe("A");
    expect(moves).toHaveLength(1);
  });

  it("moves to B when A stops, without an error reaching the caller, and stays there", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    const dead = await closedAddress();
    const client = track(new LeaseholdClient({ addresses: [dead, a.url, b.url], token: "root" }));
    expect(await nodeOf(client)).toBe("A");

    await stop(a);
    // retries: 0 (the default): the failover is not a retry, and needs none.
    expect(await nodeOf(client)).toBe("B");
    expect(client.address).toBe(b.url);
    expect(await nodeOf(client)).toBe("B");
  });

  it("moves concurrent requests to B together when A stops", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "root" }));
    expect(await nodeOf(client)).toBe("A");
    await stop(a);
    const answers = await Promise.all(Array.from({ length: 8 }, () => nodeOf(client)));
    expect(answers).toEqual(Array(8).fill("B"));
    expect(client.address).toBe(b.url);
  });

  it("wraps around the list: from the last address back to the first", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "root" }));
    expect(await nodeOf(client)).toBe("A");
    await stop(a);
    expect(await nodeOf(client)).toBe("B");
    // A node comes back at A's address; B stops: the round starts at B (the current) and wraps to A.
    const again = await startNode("A again", { address: new URL(a.url).host });
    expect(again.url).toBe(a.url);
    await stop(b);
    expect(await nodeOf(client)).toBe("A again");
    expect(client.address).toBe(a.url);
  });

  it("throws one ConnectionError naming every address when none answers", async () => {
    const [d1, d2] = [await closedAddress(), await closedAddress()];
    const client = track(new LeaseholdClient({ addresses: [d1, d2], token: "root" }));
    const err = await nodeOf(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).message).toContain("none of the 2 server addresses could be reached");
    expect((err as ConnectionError).message).toContain(d1);
    expect((err as ConnectionError).message).toContain(d2);
    expect((err as ConnectionError).code).toBe("ECONNREFUSED");
  });

  it("then falls back to the retry policy: a node that comes back during the backoff is reached", async () => {
    const dead = await closedAddress();
    const port = Number(new URL(dead).port);
    const client = track(new LeaseholdClient({ addresses: [dead], token: "root", retries: 20, retryMinMs: 50, retryMaxMs: 100 }));
    const pending = nodeOf(client);
    await new Promise((r) => setTimeout(r, 150));
    await startNode("late", { address: `127.0.0.1:${port}` });
    expect(await pending).toBe("late");
  });
});

describe("what moves the client on, and what does not", () => {
  it("skips a sealed node, also for a write (a sealed node runs nothing)", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    await ok(call(a.url, "PUT", "sys/seal", { token: "root" }), 204);
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "root" }));

    await client.write("secret/data/written", { data: { by: "client" } });
    expect(client.address).toBe(b.url);
    expect((await call(b.url, "GET", "secret/data/written", { token: "root" })).body.data.data).toEqual({ by: "client" });
    expect(await nodeOf(client)).toBe("B");
  });

  it("a sealed node alone is an error (SealedError), not a silent success", async () => {
    const a = await startNode("A");
    await ok(call(a.url, "PUT", "sys/seal", { token: "root" }), 204);
    const client = track(new LeaseholdClient({ addresses: [a.url], token: "root" }));
    const err = await nodeOf(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealedError);
  });

  it("does not move on an HTTP answer: a 403 from A is the caller's error, even if B would accept", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    // A token that exists only on B.
    await ok(call(b.url, "POST", "auth/token/create", { token: "root", body: { id: "only-on-b", policies: ["root"] } }));
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "only-on-b" }));
    const err = await nodeOf(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(client.address).toBe(a.url);
    // Positive control: the same client with a token A knows reads from A.
    client.token = "root";
    expect(await nodeOf(client)).toBe("A");
  });

  it("does not move on a TLS verification failure (a misconfiguration or an interception must surface)", async () => {
    const [a, b] = [await startNode("A", { tls: true }), await startNode("B", { tls: true })];
    const bCa = b.devTls!.ca;
    // Only B's CA is trusted: A's certificate cannot be verified.
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "root", caCert: bCa }));
    const err = await client.read("sys/mounts").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).tlsFailure).toBe(true);
    expect((err as ConnectionError).message).toContain(a.url);
    expect(client.address).toBe(a.url);
    // Positive control: trusting both CAs, the same list works through A.
    const both = track(new LeaseholdClient({ addresses: [a.url, b.url], token: "root", caCert: `${a.devTls!.ca}\n${bCa}` }));
    expect((await both.read("sys/mounts"))?.data).toBeDefined();
    expect(both.address).toBe(a.url);
  });

  it("classifies errors: connection failures and sealed/standby 503s move on; other answers do not", () => {
    const http = (status: number, errors: string[]) => new SealedError({ status, errors, method: "GET", url: "http://x/v1/y" });
    expect(shouldFailOver(new ConnectionError("refused", { address: "http://x", code: "ECONNREFUSED" }))).toBe(true);
    expect(shouldFailOver(new ConnectionError("reset", { address: "http://x", code: "ECONNRESET" }))).toBe(true);
    expect(shouldFailOver(new ConnectionError("timeout", { address: "http://x", code: "ETIMEDOUT" }))).toBe(true);
    expect(shouldFailOver(new ConnectionError("bad cert", { address: "https://x", code: "CERT_HAS_EXPIRED", tlsFailure: true }))).toBe(false);
    expect(shouldFailOver(http(503, ["Vault is sealed"]))).toBe(true);
    expect(shouldFailOver(http(503, ["Vault is in standby mode"]))).toBe(true);
    // A request that ran past max_request_duration may have done its work: not sent elsewhere.
    expect(shouldFailOver(http(503, ["request took longer than max_request_duration (90s): context deadline exceeded"]))).toBe(false);
  });

  it.skipIf(!hasPython)("gives up connecting after connectTimeoutMs and moves on (a node that drops packets)", async () => {
    const b = await startNode("B");
    const silent = await unansweredAddress();
    try {
      // Positive control: the address really leaves a connect pending (it does not refuse).
      const alone = track(new LeaseholdClient({ addresses: [silent.address], token: "root", connectTimeoutMs: 300 }));
      const err = await nodeOf(alone).catch((e: unknown) => e);
      expect((err as ConnectionError).code).toBe("ETIMEDOUT");

      const client = track(new LeaseholdClient({ addresses: [silent.address, b.url], token: "root", connectTimeoutMs: 300 }));
      const started = Date.now();
      expect(await nodeOf(client)).toBe("B");
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      silent.stop();
    }
  });
});

describe("renewals keep working through a failover", () => {
  it("a watched KV secret is re-read from B after A stops", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    const dead = await closedAddress();
    const app = new Leasehold({ env: { VAULT_ADDR: `${dead},${a.url},${b.url}`, VAULT_TOKEN: "root" } });
    try {
      const first = (await app.kv.get("app")) as Secret<KvV2Data>;
      expect(first.data.data.node).toBe("A");
      let latest: unknown;
      const errors: Error[] = [];
      app.watch(first, { staticIntervalMs: 200, onReplaced: (next) => void (latest = next.data.data.node), onError: (e) => void errors.push(e) });
      await stop(a);
      expect(await waitFor(() => latest, "the watch to read from B")).toBe("B");
      expect(errors).toEqual([]);
      expect(app.client.address).toBe(b.url);
    } finally {
      await app.close();
    }
  });

  it("the token keeper renews through the failover (the same token on both nodes)", async () => {
    const [a, b] = [await startNode("A"), await startNode("B")];
    // The nodes share nothing, so B's copy is not renewed while A serves: it lives longer.
    for (const [node, ttl] of [[a, "3s"], [b, "1m"]] as const) {
      await ok(call(node.url, "POST", "auth/token/create", { token: "root", body: { id: "shared-token", ttl, explicit_max_ttl: "1h", policies: ["default"] } }));
    }
    const client = track(new LeaseholdClient({ addresses: [a.url, b.url] }));
    const renewedAt: number[] = [];
    const errors: Error[] = [];
    const keeper = new TokenKeeper({ client, method: tokenAuth("shared-token"), minBackoffMs: 100, maxBackoffMs: 200, onRenewed: () => void renewedAt.push(Date.now()), onError: (e) => void errors.push(e) });
    await keeper.start({ retry: false });
    try {
      await waitFor(() => renewedAt[0], "a first renewal via A");
      await stop(a);
      const stoppedAt = Date.now();
      await waitFor(() => renewedAt.find((t) => t > stoppedAt), "a renewal after A stopped");
      expect(client.address).toBe(b.url);
      expect(errors).toEqual([]);
    } finally {
      await keeper.stop();
    }
  });
});

describe("address settings", () => {
  const env = (value: string) => ({ VAULT_ADDR: value });

  it("splits LEASEHOLD_ADDR/VAULT_ADDR at commas, trims, drops empty entries and duplicates", () => {
    const s = resolveClientSettings(env(" http://a:8200 , ,http://b:8200/,http://a:8200,"), {}, "/nonexistent");
    expect(s.addresses).toEqual(["http://a:8200", "http://b:8200"]);
    expect(s.address).toBe("http://a:8200");
    expect(s.addressSource).toBe("VAULT_ADDR");
    // One address is a list of one, as before.
    expect(resolveClientSettings(env("http://a:8200"), {}, "/nonexistent").addresses).toEqual(["http://a:8200"]);
    expect(resolveClientSettings({}, {}, "/nonexistent").addresses).toEqual(["http://127.0.0.1:8200"]);
  });

  it("names the bad entry", () => {
    expect(() => resolveClientSettings({ LEASEHOLD_ADDR: "http://a:8200,a-host:8200" }, {}, "/nonexistent")).toThrow(ClientConfigError);
    expect(() => resolveClientSettings({ LEASEHOLD_ADDR: "http://a:8200,a-host:8200" }, {}, "/nonexistent")).toThrow(
      'LEASEHOLD_ADDR entry 2 of 2 "a-host:8200" is not a server address: the scheme must be http or https',
    );
    expect(() => resolveClientSettings(env("http://a:8200,http//b"), {}, "/nonexistent")).toThrow(/VAULT_ADDR entry 2 of 2 "http\/\/b" is not a server address/);
    expect(() => resolveClientSettings(env(" , "), {}, "/nonexistent")).toThrow('VAULT_ADDR=" , " names no server address');
  });

  it("refuses a list mixing http and https (a failover must not drop TLS)", () => {
    expect(() => resolveClientSettings(env("https://a:8200,http://b:8200"), {}, "/nonexistent")).toThrow(/mixes http and https/);
    expect(() => new LeaseholdClient({ address: "https://a:8200", addresses: ["http://b:8200"] })).toThrow(/mixes http and https/);
    // Positive control: https everywhere is fine.
    expect(resolveClientSettings(env("https://a:8200,https://b:8200"), {}, "/nonexistent").addresses).toHaveLength(2);
  });

  it("the library: `address` is one URL, `addresses` the list; options replace the environment's list", () => {
    expect(() => new LeaseholdClient({ address: "http://a:8200,http://b:8200" })).toThrow(/contains a comma/);
    expect(() => new LeaseholdClient({})).toThrow(/no server address/);
    expect(() => new LeaseholdClient({ addresses: ["http://a:8200", "ftp://b"] })).toThrow('addresses[1] "ftp://b" is not a server address: the scheme must be http or https');
    const app = new Leasehold({ env: { VAULT_ADDR: "http://env-a:8200,http://env-b:8200" }, addresses: ["http://own:8200"] });
    expect(app.client.addresses).toEqual(["http://own:8200"]);
    void app.close();
    const fromEnv = new Leasehold({ env: { VAULT_ADDR: "http://env-a:8200,http://env-b:8200" } });
    expect(fromEnv.client.addresses).toEqual(["http://env-a:8200", "http://env-b:8200"]);
    void fromEnv.close();
  });

  it("the CLI takes the list from VAULT_ADDR: `leasehold status` past a dead address, and a bad entry is a clear error", async () => {
    const a = await startNode("A");
    const dead = await closedAddress();
    const good = spawnCli(["status", "-format=json"], { VAULT_ADDR: `${dead},${a.url}`, LEASEHOLD_ADDR: "" });
    const goodExit = await good.exited;
    expect(goodExit.code, good.stderr()).toBe(0);
    expect(JSON.parse(good.stdout()).sealed).toBe(false);

    const bad = spawnCli(["status"], { VAULT_ADDR: `${a.url},127.0.0.1:8200`, LEASEHOLD_ADDR: "" });
    const badExit = await bad.exited;
    expect(badExit.code).not.toBe(0);
    expect(bad.stderr()).toContain('VAULT_ADDR entry 2 of 2 "127.0.0.1:8200" is not a server address');
  }, 60_000);
});
