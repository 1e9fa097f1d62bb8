import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ClientConfigError, ConnectionError, LeaseholdClient, VaultHttpError } from "./index.js";

/**
 * A stand-in peer: a plain node:http server that records each request and answers with canned,
 * Vault-shaped JSON. It exercises the client's wire behaviour only; the CLI tests use the real server.
 */
interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const envelope = (data: unknown, extra: Record<string, unknown> = {}) => ({
  request_id: "req-1",
  lease_id: "",
  renewable: false,
  lease_duration: 0,
  data,
  wrap_info: null,
  warnings: null,
  auth: null,
  ...extra,
});

let server: Server;
let address: string;
const requests: Recorded[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const url = new URL(req.url ?? "/", "http://x");
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      switch (url.pathname) {
        case "/v1/secret/foo":
          if (req.method === "GET") return json(200, envelope({ password: "hunter2" }, { lease_duration: 2764800 }));
          if (req.method === "DELETE") return res.writeHead(204).end();
          return res.writeHead(204).end();
        case "/v1/secret/":
        case "/v1/secret":
          return json(200, envelope({ keys: ["foo", "bar/"] }));
        case "/v1/secret/missing":
          return json(404, { errors: [] });
        case "/v1/nohandler":
          return json(404, { errors: ["no handler for route \"nohandler\""] });
        case "/v1/kv2/data/deleted":
          return json(404, envelope({ data: null, metadata: { version: 2, deletion_time: "2024-01-01T00:00:00Z" } }));
        case "/v1/secret/denied":
          return json(403, { errors: ["permission denied"] });
        case "/v1/sys/health":
          return json(503, { initialized: true, sealed: true });
        case "/v1/multi":
          return json(400, { errors: ["missing role", "missing jwt"] });
        case "/v1/pki/ca/pem":
          res.writeHead(200, { "Content-Type": "application/pem-certificate-chain" });
          return res.end("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        case "/v1/gateway":
          res.writeHead(502, { "Content-Type": "text/html" });
          return res.end("Bad Gateway");
        case "/v1/slow":
          return setTimeout(() => json(200, envelope({})), 500);
        default:
          return json(200, envelope({ echo: true }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests.length = 0;
});

const last = () => requests[requests.length - 1];

describe("LeaseholdClient wire behaviour", () => {
  it("sends the token as X-Vault-Token and the namespace as X-Vault-Namespace", async () => {
    const client = new LeaseholdClient({ address, token: "s.root", namespace: "team-a" });
    const resp = await client.read("secret/foo");
    client.close();
    expect(resp?.data).toEqual({ password: "hunter2" });
    expect(resp?.lease_duration).toBe(2764800);
    expect(last().method).toBe("GET");
    expect(last().url).toBe("/v1/secret/foo");
    expect(last().headers["x-vault-token"]).toBe("s.root");
    expect(last().headers["x-vault-namespace"]).toBe("team-a");
  });

  it("sends no token header when there is no token, and a per-request null overrides the client's token", async () => {
    const anonymous = new LeaseholdClient({ address });
    await anonymous.read("anything");
    expect(last().headers["x-vault-token"]).toBeUndefined();
    anonymous.close();

    const client = new LeaseholdClient({ address, token: "s.root" });
    await client.request("GET", "sys/seal-status", { token: null });
    expect(last().headers["x-vault-token"]).toBeUndefined();
    await client.request("GET", "auth/token/lookup-self", { token: "s.other" });
    expect(last().headers["x-vault-token"]).toBe("s.other");
    client.close();
  });

  it("lists with GET ?list=true and returns the keys", async () => {
    const client = new LeaseholdClient({ address, token: "t" });
    const resp = await client.list("secret/");
    client.close();
    expect(last().method).toBe("GET");
    expect(last().url).toBe("/v1/secret/?list=true");
    expect(resp?.data?.keys).toEqual(["foo", "bar/"]);
  });

  it("writes with PUT and a JSON body, and a 204 answer gives undefined", async () => {
    const client = new LeaseholdClient({ address, token: "t" });
    const resp = await client.write("secret/foo", { password: "hunter2", ttl: "1h" });
    client.close();
    expect(resp).toBeUndefined();
    expect(last().method).toBe("PUT");
    expect(last().headers["content-type"]).toBe("application/json");
    expect(JSON.parse(last().body)).toEqual({ password: "hunter2", ttl: "1h" });
  });

  it("deletes with DELETE and passes query parameters", async () => {
    const client = new LeaseholdClient({ address, token: "t" });
    const resp = await client.delete("secret/foo", { versions: ["1", "2"] });
    client.close();
    expect(resp).toBeUndefined();
    expect(last().method).toBe("DELETE");
    expect(last().url).toBe("/v1/secret/foo?versions=1&versions=2");
  });

  it("request() returns status, parsed body and headers; a non-JSON body comes back as text", async () => {
    const client = new LeaseholdClient({ address });
    const res = await client.request("POST", "/v1/auth/jwt/login", { body: { role: "r" }, query: { x: 1, skip: undefined } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { echo: true } });
    expect(res.headers["content-type"]).toBe("application/json");
    expect(last().url).toBe("/v1/auth/jwt/login?x=1");
    const pem = await client.request("GET", "pki/ca/pem");
    expect(pem.body).toBe("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    client.close();
  });

  it("keeps a path prefix in the address", async () => {
    const client = new LeaseholdClient({ address: `${address}/prefix/` });
    await client.read("secret/foo");
    client.close();
    expect(last().url).toBe("/prefix/v1/secret/foo");
  });

  it("maps 4xx/5xx to VaultHttpError with the errors array", async () => {
    const client = new LeaseholdClient({ address, token: "t" });
    const denied = await client.read("secret/denied").catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(VaultHttpError);
    expect((denied as VaultHttpError).status).toBe(403);
    expect((denied as VaultHttpError).errors).toEqual(["permission denied"]);
    expect((denied as VaultHttpError).message).toBe("permission denied");
    expect((denied as VaultHttpError).url).toBe(`${address}/v1/secret/denied`);

    const multi = await client.write("multi", {}).catch((e: unknown) => e);
    expect((multi as VaultHttpError).status).toBe(400);
    expect((multi as VaultHttpError).errors).toEqual(["missing role", "missing jwt"]);
    expect((multi as VaultHttpError).message).toBe("missing role; missing jwt");

    const gateway = await client.read("gateway").catch((e: unknown) => e);
    expect((gateway as VaultHttpError).status).toBe(502);
    expect((gateway as VaultHttpError).errors).toEqual(["Bad Gateway"]);
    client.close();
  });

  it("read() and list() give undefined for an empty 404, but throw a 404 that carries messages", async () => {
    const client = new LeaseholdClient({ address, token: "t" });
    expect(await client.read("secret/missing")).toBeUndefined();
    const noHandler = await client.read("nohandler").catch((e: unknown) => e);
    expect((noHandler as VaultHttpError).status).toBe(404);
    expect((noHandler as VaultHttpError).errors).toEqual(['no handler for route "nohandler"']);
    const deleted = await client.read("kv2/data/deleted");
    expect(deleted?.data).toEqual({ data: null, metadata: { version: 2, deletion_time: "2024-01-01T00:00:00Z" } });
    client.close();
  });

  it("returns error statuses when asked to (sys/health encodes state in them)", async () => {
    const client = new LeaseholdClient({ address });
    const res = await client.request("GET", "sys/health", { allowErrorStatus: true });
    client.close();
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ initialized: true, sealed: true });
  });

  it("raises ConnectionError naming the address and LEASEHOLD_ADDR when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const client = new LeaseholdClient({ address: `http://127.0.0.1:${port}` });
    const err = await client.read("secret/foo").catch((e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe("ECONNREFUSED");
    expect((err as ConnectionError).message).toContain(`is the server running at http://127.0.0.1:${port}?`);
    expect((err as ConnectionError).message).toContain("LEASEHOLD_ADDR");
  });

  it("raises ConnectionError when the server stays silent past timeoutMs", async () => {
    const client = new LeaseholdClient({ address, timeoutMs: 100 });
    const err = await client.read("slow").catch((e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe("ETIMEDOUT");
  });

  it("rejects an address that is not an http(s) URL", () => {
    expect(() => new LeaseholdClient({ address: "127.0.0.1:8200" })).toThrow(ClientConfigError);
    expect(() => new LeaseholdClient({ address: "ftp://127.0.0.1" })).toThrow(/scheme must be http or https/);
  });
});
