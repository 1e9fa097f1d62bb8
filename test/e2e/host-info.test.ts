/**
 * `sys/host-info` over HTTP, as a Vault client reads it: Vault's shape (gopsutil field names),
 * sane values, and Vault's access rule (the `read` capability on the path; no sudo).
 */
import { statfsSync } from "node:fs";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
let base: string;
const root = { token: "root" };

async function tokenWith(policies: string[]): Promise<string> {
  const r = await call(base, "POST", "auth/token/create", { ...root, body: { policies, ttl: "1h" } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.auth.client_token as string;
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
  base = server.url;
  expect((await call(base, "PUT", "sys/policies/acl/host-reader", { ...root, body: { policy: 'path "sys/host-info" { capabilities = ["read"] }' } })).status).toBe(204);
  expect((await call(base, "PUT", "sys/policies/acl/elsewhere", { ...root, body: { policy: 'path "sys/mounts" { capabilities = ["read"] }' } })).status).toBe(204);
});
afterAll(async () => {
  await server?.stop();
});

describe("sys/host-info", () => {
  it("answers Vault's shape with sane values", async () => {
    const before = Date.now();
    const r = await call(base, "GET", "sys/host-info", root);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const d = r.body.data;
    expect(Object.keys(d).sort()).toEqual(["cpu", "cpu_times", "disk", "host", "memory", "timestamp"]);
    expect(r.body.warnings ?? null).toBeNull();

    // Collected now, in UTC RFC 3339.
    expect(d.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const at = Date.parse(d.timestamp);
    expect(at).toBeGreaterThanOrEqual(before - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1000);

    // One cpu entry per logical CPU, with gopsutil's field names.
    expect(d.cpu).toHaveLength(os.cpus().length);
    for (const c of d.cpu) {
      expect(Object.keys(c).sort()).toEqual(["cacheSize", "coreId", "cores", "cpu", "family", "flags", "mhz", "microcode", "model", "modelName", "physicalId", "stepping", "vendorId"]);
      expect(typeof c.cpu).toBe("number");
      expect(Array.isArray(c.flags)).toBe(true);
    }
    expect(d.cpu.map((c: { cpu: number }) => c.cpu)).toEqual(os.cpus().map((_, i) => i));

    expect(d.cpu_times).toHaveLength(os.cpus().length);
    for (const [i, t] of d.cpu_times.entries()) {
      expect(Object.keys(t).sort()).toEqual(["cpu", "guest", "guestNice", "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]);
      expect(t.cpu).toBe(`cpu${i}`);
      // Seconds since boot: the CPU has done something, and not more than it could have.
      expect(t.user + t.system + t.idle).toBeGreaterThan(0);
      expect(t.user + t.system + t.idle).toBeLessThan(os.uptime() * 2 + 60);
    }

    // At least one real filesystem, its numbers consistent with each other and with statfs.
    expect(d.disk.length).toBeGreaterThan(0);
    for (const disk of d.disk) {
      expect(Object.keys(disk).sort()).toEqual(["free", "fstype", "inodesFree", "inodesTotal", "inodesUsed", "inodesUsedPercent", "path", "total", "used", "usedPercent"]);
      expect(disk.used + disk.free).toBeLessThanOrEqual(disk.total);
      expect(disk.usedPercent).toBeGreaterThanOrEqual(0);
      expect(disk.usedPercent).toBeLessThanOrEqual(100);
    }
    const big = d.disk.find((x: { total: number }) => x.total > 0);
    expect(big).toBeDefined();
    const s = statfsSync(big.path);
    expect(big.total).toBe(s.blocks * s.bsize);

    expect(d.host).toMatchObject({ hostname: os.hostname(), os: process.platform, kernelVersion: os.release(), kernelArch: os.machine() });
    for (const k of ["platform", "platformFamily", "platformVersion", "virtualizationSystem", "virtualizationRole", "hostId", "hostid"]) expect(typeof d.host[k], k).toBe("string");
    expect(d.host.hostid).toBe(d.host.hostId);
    expect(Math.abs(d.host.uptime - os.uptime())).toBeLessThan(10);
    expect(Math.abs(d.host.bootTime + d.host.uptime - Date.now() / 1000)).toBeLessThan(10);
    if (process.platform === "linux") expect(d.host.procs).toBeGreaterThan(0);

    expect(d.memory.total).toBe(os.totalmem());
    expect(d.memory.available).toBeGreaterThan(0);
    expect(d.memory.available).toBeLessThanOrEqual(d.memory.total);
    expect(d.memory.used).toBeGreaterThan(0);
    expect(d.memory.used).toBeLessThan(d.memory.total);
    expect(d.memory.usedPercent).toBeCloseTo((d.memory.used / d.memory.total) * 100, 5);
    // Vault sends gopsutil's v3 names and, beside them, the v2 ones.
    expect(d.memory.swaptotal).toBe(d.memory.swapTotal);
    expect(d.memory.pagetables).toBe(d.memory.pageTables);
  });

  it("a token with read on sys/host-info gets it; one without is refused 403", async () => {
    const reader = await tokenWith(["host-reader"]);
    const ok = await call(base, "GET", "sys/host-info", { token: reader });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.data.memory.total).toBe(os.totalmem());

    const other = await tokenWith(["elsewhere"]);
    expect(await call(base, "GET", "sys/host-info", { token: other })).toEqual({ status: 403, body: { errors: ["permission denied"] } });
    // Positive control for the refused token: it works where its policy allows.
    expect((await call(base, "GET", "sys/mounts", { token: other })).status).toBe(200);
    expect((await call(base, "GET", "sys/host-info", {})).status).toBe(403);
  });
});
