import { createServer, type Server } from "node:https";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDevTls, type DevTlsFiles } from "../server/dev-tls.js";
import { ConnectionError, LeaseholdClient, clientOptionsFromSettings, resolveClientSettings } from "./index.js";

/** A stand-in https peer using the dev-TLS CA: checks CA trust, skip-verify and client certificates. */
let tls: DevTlsFiles;
let server: Server;
let address: string;
let lastPeerSubject: string | undefined;

beforeAll(async () => {
  tls = await generateDevTls(mkdtempSync(join(tmpdir(), "leasehold-client-tls-")));
  server = createServer({ cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    lastPeerSubject = peer && Object.keys(peer).length > 0 ? JSON.stringify(peer.subject) : undefined;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: { tls: true }, wrap_info: null, warnings: null, auth: null }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("LeaseholdClient over https", () => {
  it("trusts the server when given its CA (as a file path through the settings)", async () => {
    const settings = resolveClientSettings({ LEASEHOLD_ADDR: address, LEASEHOLD_CACERT: tls.caFile }, {}, mkdtempSync(join(tmpdir(), "lh-home-")));
    const client = new LeaseholdClient(clientOptionsFromSettings(settings));
    const resp = await client.read("secret/foo");
    client.close();
    expect(resp?.data).toEqual({ tls: true });
    expect(lastPeerSubject).toBeUndefined();
  });

  it("fails verification without the CA, with a hint to set LEASEHOLD_CACERT", async () => {
    const client = new LeaseholdClient({ address });
    const err = await client.read("secret/foo").catch((e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).message).toContain("LEASEHOLD_CACERT");
  });

  it("connects without the CA when verification is skipped", async () => {
    const client = new LeaseholdClient({ address, skipVerify: true });
    const resp = await client.read("secret/foo");
    client.close();
    expect(resp?.data).toEqual({ tls: true });
  });

  it("presents the client certificate", async () => {
    const client = new LeaseholdClient({ address, caCert: tls.ca, clientCert: tls.cert, clientKey: tls.key });
    await client.read("secret/foo");
    client.close();
    expect(lastPeerSubject).toBeDefined();
  });

  it("says to check the scheme when an http address reaches a TLS listener", async () => {
    const client = new LeaseholdClient({ address: address.replace("https:", "http:"), timeoutMs: 2000 });
    const err = await client.read("secret/foo").catch((e: unknown) => e);
    client.close();
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).message).toContain("does the scheme (http/https) match");
  });

  it("says the server may speak plain http when an https address reaches an http listener", async () => {
    const { createServer: createHttpServer } = await import("node:http");
    const plain = createHttpServer((_req, res) => res.end("{}"));
    await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
    const client = new LeaseholdClient({ address: `https://127.0.0.1:${(plain.address() as AddressInfo).port}` });
    const err = await client.read("secret/foo").catch((e: unknown) => e);
    client.close();
    plain.closeAllConnections();
    await new Promise((resolve) => plain.close(resolve));
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe("EPROTO");
    expect((err as ConnectionError).message).toContain("(wrong version number): does the server speak plain http?");
  });
});
