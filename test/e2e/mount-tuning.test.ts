import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * Mount TTLs and options, driven as the Vault CLI and hvac send them. Vault lets a mount's own
 * max_lease_ttl exceed the system max (step two of its PKI tutorial: `secrets tune
 * -max-lease-ttl=87600h pki`); it refuses only a default above the max that applies. The dev
 * server's system TTLs are 768h (2764800s) for both.
 */
const SYSTEM_MAX = 2_764_800;
const TEN_YEARS = 87_600 * 3600;
const ONE_YEAR = 8_760 * 3600;

describe("mount TTLs above the system max (Vault's rules)", () => {
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });
  const ok = async (method: string, path: string, body?: unknown) => {
    const r = await root(method, path, body);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
    return r.body;
  };
  const refused = async (method: string, path: string, body: unknown, message: string) => {
    const r = await root(method, path, body);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.errors.join(" ")).toContain(message);
  };
  const tune = async (path: string) => (await ok("GET", `sys/mounts/${path}/tune`)).data;

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("the PKI tutorial: secrets tune -max-lease-ttl=87600h pki, then a ten-year root CA", async () => {
    await ok("POST", "sys/mounts/pki", { type: "pki" });
    expect((await tune("pki")).max_lease_ttl).toBe(SYSTEM_MAX);
    // Before the tune the mount's max is the system's: a ten-year CA is capped to 768h.
    const capped = await ok("POST", "pki/root/generate/internal", { common_name: "capped.example.com", ttl: "87600h", key_type: "ec" });
    expect(Math.abs(capped.data.expiration - (Date.now() / 1000 + SYSTEM_MAX))).toBeLessThanOrEqual(60);
    await ok("DELETE", "sys/mounts/pki");

    await ok("POST", "sys/mounts/pki", { type: "pki" });
    const tuned = await root("POST", "sys/mounts/pki/tune", { max_lease_ttl: "87600h" });
    expect(tuned.status, JSON.stringify(tuned.body)).toBe(204);
    expect(await tune("pki")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: SYSTEM_MAX });
    const ca = await ok("POST", "pki/root/generate/internal", { common_name: "example.com", issuer_name: "root-2023", ttl: "87600h", key_type: "ec" });
    expect(Math.abs(ca.data.expiration - (Date.now() / 1000 + TEN_YEARS))).toBeLessThanOrEqual(60);
    // sys/mounts lists the mount's own values.
    expect((await ok("GET", "sys/mounts")).data["pki/"].config).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: 0 });
  });

  it("a certificate lease on that mount gets a one-year TTL, past the system max", async () => {
    await ok("POST", "pki/roles/long", { allow_any_name: true, key_type: "ec", generate_lease: true, max_ttl: "8760h" });
    const r = await ok("POST", "pki/issue/long", { common_name: "long.example.com", ttl: "8760h" });
    expect(r.lease_id).toMatch(/^pki\/issue\/long\//);
    expect(r.lease_duration).toBeGreaterThan(SYSTEM_MAX);
    expect(Math.abs(r.lease_duration - ONE_YEAR)).toBeLessThanOrEqual(5);
    expect(Math.abs(r.data.expiration - (Date.now() / 1000 + ONE_YEAR))).toBeLessThanOrEqual(60);
    const lookup = await ok("PUT", "sys/leases/lookup", { lease_id: r.lease_id });
    expect(lookup.data.ttl).toBeGreaterThan(SYSTEM_MAX);
  });

  it("enable takes config.max_lease_ttl above the system max, and a default above it when a mount max allows", async () => {
    await ok("POST", "sys/mounts/ca10", { type: "pki", config: { max_lease_ttl: "87600h" } });
    expect(await tune("ca10")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: SYSTEM_MAX });
    await ok("POST", "sys/mounts/ca-long-default", { type: "pki", config: { default_lease_ttl: "8760h", max_lease_ttl: "87600h" } });
    expect(await tune("ca-long-default")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: ONE_YEAR });
    // Numbers are seconds, as hvac sends them.
    await ok("POST", "sys/mounts/ca-secs", { type: "pki", config: { max_lease_ttl: TEN_YEARS } });
    expect((await tune("ca-secs")).max_lease_ttl).toBe(TEN_YEARS);
  });

  it("enable refuses a default above the max that would apply, with Vault's messages", async () => {
    await refused("POST", "sys/mounts/bad1", { type: "pki", config: { default_lease_ttl: "8760h" } }, `given default lease TTL greater than system max lease TTL of ${SYSTEM_MAX}`);
    await refused("POST", "sys/mounts/bad2", { type: "pki", config: { default_lease_ttl: "2h", max_lease_ttl: "1h" } }, "given default lease TTL greater than given max lease TTL");
    await refused("POST", "sys/mounts/bad3", { type: "pki", config: { max_lease_ttl: "forever" } }, "unable to parse max TTL of forever");
    for (const p of ["bad1", "bad2", "bad3"]) expect((await root("GET", `sys/mounts/${p}`)).status).toBe(404);
    // "system" means the system's value, as unset.
    await ok("POST", "sys/mounts/sys-ttls", { type: "kv", config: { default_lease_ttl: "system", max_lease_ttl: "system" } });
    expect(await tune("sys-ttls")).toMatchObject({ max_lease_ttl: SYSTEM_MAX, default_lease_ttl: SYSTEM_MAX });
  });

  it("tune checks the TTLs against each other only, and \"system\" resets one", async () => {
    await ok("POST", "sys/mounts/t", { type: "pki" });
    await refused("POST", "sys/mounts/t/tune", { default_lease_ttl: "2h", max_lease_ttl: "1h" }, "backend max lease TTL of 3600 would be less than backend default lease TTL of 7200");
    expect(await tune("t")).toMatchObject({ max_lease_ttl: SYSTEM_MAX, default_lease_ttl: SYSTEM_MAX });
    await ok("POST", "sys/mounts/t/tune", { max_lease_ttl: "87600h", default_lease_ttl: "8760h" });
    expect(await tune("t")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: ONE_YEAR });
    // Lowering the max under the mount's default is refused; the settings stay.
    await refused("POST", "sys/mounts/t/tune", { max_lease_ttl: "1h" }, `backend max lease TTL of 3600 would be less than backend default lease TTL of ${ONE_YEAR}`);
    expect(await tune("t")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: ONE_YEAR });
    await ok("POST", "sys/mounts/t/tune", { default_lease_ttl: "system", max_lease_ttl: "system" });
    expect(await tune("t")).toMatchObject({ max_lease_ttl: SYSTEM_MAX, default_lease_ttl: SYSTEM_MAX });
    expect((await ok("GET", "sys/mounts/t")).config).toMatchObject({ max_lease_ttl: 0, default_lease_ttl: 0 });
    await refused("POST", "sys/mounts/t/tune", { max_lease_ttl: "soon" }, "unable to parse max_lease_ttl");
    // JSON null is "not given": nothing changes.
    await ok("POST", "sys/mounts/t/tune", { max_lease_ttl: "87600h" });
    await ok("POST", "sys/mounts/t/tune", { max_lease_ttl: null, default_lease_ttl: null, description: null, options: null });
    expect(await tune("t")).toMatchObject({ max_lease_ttl: TEN_YEARS, default_lease_ttl: SYSTEM_MAX });
  });

  it("an auth mount's max may exceed the system max too, and tokens get it", async () => {
    await ok("POST", "sys/auth/token/tune", { max_lease_ttl: "87600h" });
    const t = await ok("POST", "auth/token/create", { policies: ["default"], ttl: "8760h" });
    expect(t.auth.lease_duration).toBe(ONE_YEAR);
    await ok("POST", "sys/auth/token/tune", { max_lease_ttl: "system" });
    const capped = await ok("POST", "auth/token/create", { policies: ["default"], ttl: "8760h" });
    expect(capped.auth.lease_duration).toBe(SYSTEM_MAX);
    await ok("POST", "sys/auth/ar", { type: "approle", config: { max_lease_ttl: "87600h" } });
    expect((await ok("GET", "sys/auth/ar/tune")).data.max_lease_ttl).toBe(TEN_YEARS);
    await refused("POST", "sys/auth/ar2", { type: "approle", config: { default_lease_ttl: "8760h" } }, "given default lease TTL greater than system max lease TTL");
  });
});

describe("mount options on enable and tune", () => {
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("options given at enable read back from sys/mounts/x, sys/mounts and the tune endpoint", async () => {
    expect((await root("POST", "sys/mounts/opts", { type: "kv", options: { version: "1", team: "payments" } })).status).toBe(204);
    expect((await root("GET", "sys/mounts/opts")).body.data.options).toEqual({ version: "1", team: "payments" });
    expect((await root("GET", "sys/mounts")).body.data["opts/"].options).toEqual({ version: "1", team: "payments" });
    expect((await root("GET", "sys/mounts/opts/tune")).body.data.options).toEqual({ version: "1", team: "payments" });
  });

  it("tune merges options: a key replaces, an empty value removes (Vault's rules)", async () => {
    const r = await root("POST", "sys/mounts/opts/tune", { options: { team: "", owner: "ops" } });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    expect((await root("GET", "sys/mounts/opts/tune")).body.data.options).toEqual({ version: "1", owner: "ops" });
    expect((await root("GET", "sys/mounts/opts")).body.data.options).toEqual({ version: "1", owner: "ops" });
    // Positive control: a tune without options leaves them alone.
    expect((await root("POST", "sys/mounts/opts/tune", { description: "d" })).status).toBe(204);
    expect((await root("GET", "sys/mounts/opts/tune")).body.data).toMatchObject({ options: { version: "1", owner: "ops" }, description: "d" });
  });

  it("a mount without options shows none in its tune view, as Vault", async () => {
    expect((await root("POST", "sys/mounts/plain-pki", { type: "pki" })).status).toBe(204);
    expect((await root("GET", "sys/mounts/plain-pki/tune")).body.data.options).toBeUndefined();
  });

  it("kv-v1 and kv-v2 are kv with the version option; other engines refuse a version", async () => {
    expect((await root("POST", "sys/mounts/alias2", { type: "kv-v2" })).status).toBe(204);
    expect((await root("GET", "sys/mounts/alias2")).body.data).toMatchObject({ type: "kv", options: { version: "2" } });
    expect((await root("POST", "alias2/data/k", { data: { a: "1" } })).status).toBe(200);
    expect((await root("POST", "sys/mounts/alias1", { type: "kv-v1" })).status).toBe(204);
    expect((await root("GET", "sys/mounts/alias1")).body.data).toMatchObject({ type: "kv", options: { version: "1" } });
    const r = await root("POST", "sys/mounts/vpki", { type: "pki", options: { version: "2" } });
    expect(r.status).toBe(400);
    expect(r.body.errors.join(" ")).toContain('secrets engine "pki" does not allow setting a version');
    expect((await root("GET", "sys/mounts/vpki")).status).toBe(404);
    const a = await root("POST", "sys/auth/vapprole", { type: "approle", options: { version: "2" } });
    expect(a.status).toBe(400);
    expect(a.body.errors.join(" ")).toContain('auth method "approle" does not allow setting a version');
  });
});
