import { X509Certificate } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../../src/cli/memory-io.js";
import { runCli } from "../../src/cli/program.js";
import type { RunningServer } from "../../src/server/run.js";
import { call } from "../helpers/server.js";
import { certText, mountWithRoot, ok, openssl, Scratch, startPkiServer, TOKEN } from "./helpers.js";

/** What clients fetch without a token, the URLs written into certificates, and the CLI. */
let server: RunningServer;
let base: string;
let rootPem: string;
let leaf: Record<string, string>;
const scratch = new Scratch();

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  rootPem = await mountWithRoot(base, "pki");
  await ok(base, "POST", "pki/config/urls", { issuing_certificates: `${base}/v1/pki/ca`, crl_distribution_points: `${base}/v1/pki/crl`, ocsp_servers: `${base}/v1/pki/ocsp` });
  await ok(base, "POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, key_type: "ec" });
  leaf = (await ok(base, "POST", "pki/issue/web", { common_name: "www.example.com" })).data;
});

afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

describe("unauthenticated fetches", () => {
  it("serves ca, ca/pem, ca_chain, crl, crl/pem and cert/:serial without a token, with Vault's media types", async () => {
    const get = (p: string) => fetch(`${base}/v1/pki/${p}`);
    const der = await get("ca");
    expect(der.status).toBe(200);
    expect(der.headers.get("content-type")).toBe("application/pkix-cert");
    expect(new X509Certificate(Buffer.from(await der.arrayBuffer())).toString().trim()).toBe(rootPem);
    const pem = await get("ca/pem");
    expect((await pem.text()).trim()).toBe(rootPem);
    expect((await (await get("ca_chain")).text()).trim()).toBe(rootPem);
    const crl = await get("crl");
    expect(crl.headers.get("content-type")).toBe("application/pkix-crl");
    expect((await (await get("crl/pem")).text())).toMatch(/^-----BEGIN X509 CRL-----/);
    const cert = await call(base, "GET", `pki/cert/${leaf.serial_number}`);
    expect(cert.status).toBe(200);
    expect(cert.body.data).toMatchObject({ certificate: leaf.certificate, revocation_time: 0, revocation_time_rfc3339: "" });
    expect((await call(base, "GET", "pki/cert/ca")).body.data.certificate).toBe(rootPem);
    expect((await call(base, "GET", "pki/cert/ca_chain")).body.data.ca_chain).toBe(rootPem);
    expect((await call(base, "GET", "pki/cert/crl")).body.data.certificate).toMatch(/^-----BEGIN X509 CRL-----/);
    const raw = await get(`cert/${leaf.serial_number}/raw/pem`);
    expect((await raw.text()).trim()).toBe(leaf.certificate);
  });

  it("serves an issuer's certificate as JSON, PEM and DER without a token, as Vault does", async () => {
    const json = await call(base, "GET", "pki/issuer/default/json");
    expect(json.status).toBe(200);
    expect(json.body.data.certificate.trim()).toBe(rootPem);
    const id = json.body.data.issuer_id as string;
    expect((await (await fetch(`${base}/v1/pki/issuer/${id}/pem`)).text()).trim()).toBe(rootPem);
    const der = await fetch(`${base}/v1/pki/issuer/default/der`);
    expect(der.headers.get("content-type")).toBe("application/pkix-cert");
    expect(new X509Certificate(Buffer.from(await der.arrayBuffer())).toString().trim()).toBe(rootPem);
    // The issuer's configuration is not public: only those three forms are.
    expect((await call(base, "GET", "pki/issuer/default")).status).toBe(403);
    expect((await call(base, "POST", "pki/issuer/default", { body: { issuer_name: "x" } })).status).toBe(403);
  });

  it("keeps everything else behind a token", async () => {
    for (const [method, path] of [
      ["GET", "pki/certs?list=true"],
      ["GET", "pki/crl/rotate"],
      ["POST", "pki/issue/web"],
      ["POST", "pki/revoke"],
      ["GET", "pki/roles/web"],
      ["GET", "pki/config/urls"],
      ["DELETE", "pki/root"],
    ] as const) {
      const r = await call(base, method, path, method === "POST" ? { body: { common_name: "x.example.com", serial_number: leaf.serial_number } } : {});
      expect(r.status, `${method} ${path}`).toBe(403);
    }
    expect((await call(base, "GET", `pki/cert/${leaf.serial_number}`)).body.data.revocation_time).toBe(0);
  });

  it("answers 404 for unknown serials", async () => {
    expect((await call(base, "GET", "pki/cert/01:02:03")).status).toBe(404);
    expect((await call(base, "GET", "pki/cert/not-hex")).status).toBe(400);
  });
});

describe("config/urls", () => {
  it("writes AIA and CRL distribution points into issued certificates, and a client can follow them", async () => {
    const text = await certText(scratch, leaf.certificate);
    expect(text).toContain(`OCSP - URI:${base}/v1/pki/ocsp`);
    expect(text).toContain(`CA Issuers - URI:${base}/v1/pki/ca`);
    expect(text).toMatch(new RegExp(`CRL Distribution Points:[\\s\\S]*URI:${base.replace(/[.]/g, "\\.")}/v1/pki/crl`));
    expect((await ok(base, "GET", "pki/config/urls")).data).toMatchObject({ ocsp_servers: [`${base}/v1/pki/ocsp`] });
    // Follow the certificate's own URLs: the issuer from AIA, the CRL from the distribution point.
    const cert = new X509Certificate(leaf.certificate);
    const caUrl = /CA Issuers - URI:(\S+)/.exec(cert.infoAccess ?? "")![1];
    const issuer = new X509Certificate(Buffer.from(await (await fetch(caUrl)).arrayBuffer()));
    expect(cert.verify(issuer.publicKey)).toBe(true);
    const crlUrl = /URI:(\S+)/.exec(/CRL Distribution Points:[\s\S]*?URI:\S+/.exec(text)![0])![1];
    const crlDer = scratch.file(Buffer.from(await (await fetch(crlUrl)).arrayBuffer()), "dp.crl");
    const crlPem = (await openssl(["crl", "-inform", "DER", "-in", crlDer])).out;
    const v = await openssl(["verify", "-crl_check", "-CAfile", scratch.file(issuer.toString()), "-CRLfile", scratch.file(crlPem), scratch.file(leaf.certificate)]);
    expect(v.code, v.out).toBe(0);
    // OCSP through the URL in the certificate.
    const o = await openssl(["ocsp", "-issuer", scratch.file(rootPem), "-cert", scratch.file(leaf.certificate), "-url", /OCSP - URI:(\S+)/.exec(text)![1], "-CAfile", scratch.file(rootPem)]);
    expect(o.out).toMatch(/: good/);
  });

  it("clears a URL with an empty string and refuses non-URLs", async () => {
    await ok(base, "POST", "pki/config/urls", { ocsp_servers: "" });
    expect((await ok(base, "GET", "pki/config/urls")).data.ocsp_servers).toEqual([]);
    const text = await certText(scratch, (await ok(base, "POST", "pki/issue/web", { common_name: "n.example.com" })).data.certificate);
    expect(text).not.toMatch(/OCSP - URI/);
    expect(text).toMatch(/CA Issuers - URI/);
    const bad = await call(base, "POST", "pki/config/urls", { token: TOKEN, body: { crl_distribution_points: "not a url" } });
    expect(bad.status).toBe(400);
  });
});

describe("the leasehold CLI", () => {
  it("`write pki/issue/web` prints the certificate fields; -field=certificate prints just the certificate", async () => {
    const io = () => memoryIo({ env: { LEASEHOLD_ADDR: base, LEASEHOLD_TOKEN: TOKEN }, homeDir: mkdtempSync(join(tmpdir(), "lh-pki-cli-")) });
    const table = io();
    expect(await runCli(["write", "pki/issue/web", "common_name=cli.example.com", "ttl=1h"], table)).toBe(0);
    for (const key of ["certificate", "expiration", "issuing_ca", "private_key", "private_key_type", "serial_number"]) expect(table.out()).toMatch(new RegExp(`\\n${key} +`));
    const field = io();
    expect(await runCli(["write", "-field=certificate", "pki/issue/web", "common_name=cli.example.com", "ttl=1h"], field)).toBe(0);
    expect(field.out()).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    expect(new X509Certificate(field.out()).subject).toBe("CN=cli.example.com");
  });
});
