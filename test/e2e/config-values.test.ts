/**
 * Config values read back as Vault reads them back, through calls shaped like hashi-vault-js's
 * (`POST pki/config/crl {expiry: "48h"}` then `GET pki/config/crl`). Vault stores the CRL
 * durations as the strings it was given (builtin/logical/pki path_config_crl.go), prints the
 * auto-tidy intervals as integer seconds and `pause_duration` in Go's form (path_tidy.go), and a
 * role's `ttl`/`max_ttl` as integer seconds (path_roles.go).
 */
import { X509Crl } from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { fails, mountPki, mountWithRoot, ok, startPkiServer } from "../pki/helpers.js";

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startPkiServer();
  base = server.url;
  await mountWithRoot(base, "pki");
});
afterAll(async () => {
  await server?.stop();
});

describe("pki/config/crl", () => {
  it("a fresh mount reads Vault's defaults, spelled as Vault spells them", async () => {
    await mountPki(base, "pki-fresh");
    const d = (await ok(base, "GET", "pki-fresh/config/crl")).data;
    expect(d).toMatchObject({ expiry: "72h", ocsp_expiry: "12h", auto_rebuild_grace_period: "12h", delta_rebuild_interval: "15m", disable: false, ocsp_disable: false, auto_rebuild: false });
  });

  it("reads back 48h as 48h, not 48h0m0s", async () => {
    const written = await ok(base, "POST", "pki/config/crl", { expiry: "48h" });
    expect(written.data.expiry).toBe("48h");
    expect((await ok(base, "GET", "pki/config/crl")).data.expiry).toBe("48h");
  });

  it("keeps each field as written, and fields not sent as they were", async () => {
    await ok(base, "POST", "pki/config/crl", { expiry: "72h", disable: false });
    await ok(base, "POST", "pki/config/crl", { ocsp_expiry: "30m", auto_rebuild: true, auto_rebuild_grace_period: "90m" });
    const d = (await ok(base, "GET", "pki/config/crl")).data;
    expect(d).toMatchObject({ expiry: "72h", disable: false, ocsp_expiry: "30m", auto_rebuild: true, auto_rebuild_grace_period: "90m" });
    await ok(base, "POST", "pki/config/crl", { auto_rebuild: false, expiry: "1h30m" });
    expect((await ok(base, "GET", "pki/config/crl")).data).toMatchObject({ expiry: "1h30m", ocsp_expiry: "30m", auto_rebuild_grace_period: "90m", auto_rebuild: false });
  });

  it("the written text is what is stored, so it survives the engine's cache", async () => {
    await ok(base, "POST", "pki/config/crl", { expiry: "36h" });
    const stored = await server.core.mounts.get("pki/")!.storage.getJSON<Record<string, unknown>>("config/crl");
    expect(stored).toMatchObject({ expiry: 36 * 3600, written_as: { expiry: "36h" } });
  });

  it("the value written still governs the CRL: its nextUpdate follows the new expiry", async () => {
    await ok(base, "POST", "pki/config/crl", { expiry: "5h" });
    await ok(base, "GET", "pki/crl/rotate");
    const crl = await fetch(`${base}/v1/pki/crl/pem`).then((r) => r.text());
    expect(crl).toMatch(/-----BEGIN X509 CRL-----/);
    const parsed = new X509Crl(crl);
    const hours = (parsed.nextUpdate!.getTime() - parsed.thisUpdate.getTime()) / 3_600_000;
    expect(hours).toBeCloseTo(5, 1);
  });

  it("refuses what is not a duration, and keeps the previous value", async () => {
    await ok(base, "POST", "pki/config/crl", { expiry: "48h" });
    await fails(base, "POST", "pki/config/crl", { expiry: "soon" });
    expect((await ok(base, "GET", "pki/config/crl")).data.expiry).toBe("48h");
  });
});

describe("values Vault prints as numbers stay numbers", () => {
  it("config/auto-tidy: interval_duration and safety_buffer in seconds, pause_duration in Go's form", async () => {
    const d = (await ok(base, "POST", "pki/config/auto-tidy", { enabled: false, interval_duration: "2h", tidy_cert_store: true, safety_buffer: "48h", pause_duration: "1m" })).data;
    expect(d).toMatchObject({ interval_duration: 7200, safety_buffer: 172800, pause_duration: "1m0s", tidy_cert_store: true });
    expect((await ok(base, "GET", "pki/config/auto-tidy")).data).toMatchObject({ interval_duration: 7200, safety_buffer: 172800, pause_duration: "1m0s" });
  });

  it("roles: ttl and max_ttl in seconds", async () => {
    await ok(base, "POST", "pki/roles/web", { allowed_domains: "example.com", allow_subdomains: true, ttl: "1h", max_ttl: "24h" });
    expect((await ok(base, "GET", "pki/roles/web")).data).toMatchObject({ ttl: 3600, max_ttl: 86400 });
  });

  it("config/urls reads back the lists as written", async () => {
    const urls = { issuing_certificates: ["http://127.0.0.1:8200/v1/pki/ca"], crl_distribution_points: ["http://127.0.0.1:8200/v1/pki/crl"], ocsp_servers: [] };
    await ok(base, "POST", "pki/config/urls", urls);
    expect((await ok(base, "GET", "pki/config/urls")).data).toMatchObject(urls);
  });
});
