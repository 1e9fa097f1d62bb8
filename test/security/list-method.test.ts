import net from "node:net";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { ResponseReader } from "../helpers/raw-http.js";
import { call, startTestServer } from "../helpers/server.js";


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("LIST rewrite (issue 15, item 11)", () => {
  let server: RunningServer;
  let port: number;
  /** The server side of the connections the tests open (to count their listeners). */
  const serverSockets: Socket[] = [];

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    port = Number(new URL(server.url).port);
    server.listeners[0].server.on("connection", (s: Socket) => serverSockets.push(s));
    for (const k of ["a", "b"]) expect((await call(server.url, "POST", `secret/data/list/${k}`, { token: "root", body: { data: { k } } })).status).toBe(200);
  });
  afterAll(async () => {
    await server.stop();
  });

  const connect = async (): Promise<{ sock: Socket; res: ResponseReader }> => {
    const sock = net.connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    await new Promise<void>((r) => sock.once("connect", () => r()));
    return { sock, res: new ResponseReader(sock) };
  };
  const list = (path: string) => `LIST /v1/${path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n\r\n`;
  const post = (path: string, body: string) =>
    `POST /v1/${path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  /** A complete hidden write, as text: what a smuggler puts in a body. */
  const hidden = (name: string) => {
    const b = JSON.stringify({ data: { smuggled: true } });
    return `LIST /v1/secret/metadata/list/ HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n\r\n` + post(`secret/data/${name}`, b);
  };
  const versionOf = async (name: string) => {
    const r = await call(server.url, "GET", `secret/metadata/${name}`, { token: "root" });
    return r.status === 404 ? 0 : (r.body.data.current_version as number);
  };

  it("a body holding LIST text followed by an invalid method: only the first request runs, nothing hidden in its body", async () => {
    const { sock, res } = await connect();
    try {
      const body = JSON.stringify({ data: { note: hidden("smuggled-1") } });
      sock.write(post("secret/data/carrier-1", body) + "BREW /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
      const first = await res.next("carrier");
      expect(first.status, first.body).toBe(200);
      const second = await res.next("brew");
      expect(second.status).toBe(400);
      expect(JSON.parse(second.body)).toEqual({ errors: ["malformed HTTP request"] });
      expect(await res.nothingWithin(200)).toBe(true); // no third answer
    } finally {
      sock.destroy();
    }
    expect(await versionOf("carrier-1")).toBe(1); // the legitimate write ran once
    expect(await versionOf("smuggled-1")).toBe(0); // the write hidden in its body never ran
  });

  it("a body holding LIST text followed by a real LIST: exactly those two requests run", async () => {
    const { sock, res } = await connect();
    try {
      const body = JSON.stringify({ data: { note: hidden("smuggled-2") } });
      sock.write(post("secret/data/carrier-2", body) + list("secret/metadata/list/"));
      expect((await res.next("carrier")).status).toBe(200);
      const l = await res.next("list");
      expect(l.status, l.body).toBe(200);
      expect(JSON.parse(l.body).data.keys).toEqual(["a", "b"]);
      expect(await res.nothingWithin(200)).toBe(true);
    } finally {
      sock.destroy();
    }
    expect(await versionOf("carrier-2")).toBe(1);
    expect(await versionOf("smuggled-2")).toBe(0);
  });

  it("the same when the body arrives in its own segment and the LIST in a later one", async () => {
    const { sock, res } = await connect();
    try {
      const body = JSON.stringify({ data: { note: hidden("smuggled-3") } });
      sock.write(post("secret/data/carrier-3", body));
      expect((await res.next("carrier")).status).toBe(200);
      sock.write("LI");
      await sleep(50);
      sock.write(list("secret/metadata/list/").slice(2));
      const l = await res.next("list");
      expect(l.status, l.body).toBe(200);
      expect(JSON.parse(l.body).data.keys).toEqual(["a", "b"]);
    } finally {
      sock.destroy();
    }
    expect(await versionOf("smuggled-3")).toBe(0);
  });

  it("a method that only ends in LIST (UNLIST) is refused, not run as LIST", async () => {
    const { sock, res } = await connect();
    try {
      sock.write("UN" + list("secret/metadata/list/"));
      const r = await res.next("unlist");
      expect(r.status).toBe(400);
    } finally {
      sock.destroy();
    }
    // Positive control on a fresh connection: the same LIST without the prefix works.
    const { sock: s2, res: r2 } = await connect();
    try {
      s2.write(list("secret/metadata/list/"));
      expect((await r2.next("list")).status).toBe(200);
    } finally {
      s2.destroy();
    }
  });

  it("serves a LIST whose bytes arrive in several segments (LI | ST ..., LIS | T ..., mid-line)", async () => {
    const whole = list("secret/metadata/list/");
    for (const cuts of [[2], [1], [3], [4], [5], [20], [2, 9, 30]]) {
      const { sock, res } = await connect();
      try {
        let from = 0;
        for (const cut of [...cuts, whole.length]) {
          sock.write(whole.slice(from, cut));
          from = cut;
          await sleep(30);
        }
        const r = await res.next(`cuts ${cuts.join(",")}`);
        expect(r.status, `cuts ${cuts.join(",")}: ${r.body}`).toBe(200);
        expect(JSON.parse(r.body).data.keys).toEqual(["a", "b"]);
        // The connection stays usable.
        sock.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n");
        expect((await res.next("health")).status).toBe(200);
      } finally {
        sock.destroy();
      }
    }
  });

  it("several LISTs in a row and pipelined on one keep-alive connection (positive control)", async () => {
    const { sock, res } = await connect();
    try {
      for (let i = 0; i < 5; i++) {
        sock.write(list("secret/metadata/list/"));
        const r = await res.next(`list ${i}`);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).data.keys).toEqual(["a", "b"]);
      }
      sock.write(list("secret/metadata/list/") + "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n" + list("sys/policies/acl"));
      expect((await res.next("p1")).status).toBe(200);
      expect((await res.next("p2")).status).toBe(200);
      const p3 = await res.next("p3");
      expect(p3.status).toBe(200);
      expect(JSON.parse(p3.body).data.keys).toContain("default");
    } finally {
      sock.destroy();
    }
  });

  it("3,000 LISTs on one keep-alive connection: the socket's listener count stays constant, no listener-leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    const before = serverSockets.length;
    const { sock, res } = await connect();
    const events = ["data", "end", "close", "drain", "error", "timeout", "resume", "pause", "finish"];
    const counts = (s: Socket) => Object.fromEntries(events.map((e) => [e, s.listenerCount(e)]));
    try {
      const one = async (i: number) => {
        sock.write(list("secret/metadata/list/"));
        const r = await res.next(`list ${i}`);
        if (r.status !== 200) throw new Error(`list ${i}: ${r.status} ${r.body}`);
      };
      for (let i = 0; i < 10; i++) await one(i);
      await sleep(20);
      const serverSide = serverSockets[before];
      expect(serverSide).toBeDefined();
      const early = counts(serverSide);
      const t0 = performance.now();
      for (let i = 10; i < 1500; i++) await one(i);
      const firstHalf = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 1500; i < 3000; i++) await one(i);
      const secondHalf = performance.now() - t1;
      await sleep(20);
      expect(counts(serverSide)).toEqual(early);
      // Not a timing assertion (the machine is shared), only a record of the per-request cost.
      console.info(`3000 LISTs: ${(firstHalf / 1490).toFixed(2)} ms then ${(secondHalf / 1500).toFixed(2)} ms per request`);
    } finally {
      sock.destroy();
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
  }, 60_000);
});
