import pino from "pino";
import { describe, expect, it } from "vitest";
import { makeBarrierView } from "../../test/helpers/storage.js";
import { QuotaExceeded } from "../sdk/errors.js";
import type { LeaseRow } from "../storage/types.js";
import { LeaseQuotas, quotaPrefix } from "./quotas.js";

function row(id: string, kind: "secret" | "token" = "secret"): LeaseRow {
  return {
    id, kind, mount: id.slice(0, id.indexOf("/") + 1), path: id.slice(0, id.lastIndexOf("/")), role: "", secret_type: "creds", internal: Buffer.from("x"),
    issue_time: 1, expire_time: 2, max_expire_time: 2, last_renewal: null, renewable: 1, token_accessor: "", auth_mount: "", display_name: "",
    metadata: "{}", entity_id: "", state: "active", revoke_attempts: 0, revoke_error: null, due_at: 2,
  };
}

/** A logger that records warn/info messages. */
function recordingLogger() {
  const lines: { level: string; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => { const o = JSON.parse(s) as { level: number; msg: string }; lines.push({ level: pino.levels.labels[o.level], msg: o.msg }); } });
  return { logger, warnings: () => lines.filter((l) => l.level === "warn").map((l) => l.msg) };
}

async function setup(threshold?: number) {
  const { view, physical } = await makeBarrierView("sys/quotas/");
  const log = recordingLogger();
  const quotas = new LeaseQuotas({ storage: view, store: physical.leases, logger: log.logger, warningThreshold: threshold });
  return { quotas, view, store: physical.leases, log };
}

describe("quotaPrefix", () => {
  it("covers a path and what is below it, not its siblings; a trailing * is a plain prefix", () => {
    expect(quotaPrefix("")).toBe("");
    expect(quotaPrefix("tl/")).toBe("tl/");
    expect(quotaPrefix("tl/creds/app")).toBe("tl/creds/app/");
    expect("tl/creds/apple/x".startsWith(quotaPrefix("tl/creds/app"))).toBe(false);
    expect(quotaPrefix("tl/creds/app-*")).toBe("tl/creds/app-");
  });
});

describe("LeaseQuotas", () => {
  it("counts existing secret leases when a quota is written, and refuses at max_leases", async () => {
    const { quotas, store } = await setup();
    await store.insert(row("tl/creds/app/a"));
    await store.insert(row("tl/creds/db/b"));
    await store.insert(row("auth/token/create/c", "token"));
    await store.insert(row("other/creds/app/d"));
    const q = await quotas.put({ name: "tl", path: "tl/", maxLeases: 3, inheritable: false });
    expect(q).toEqual({ name: "tl", path: "tl/", type: "lease-count", max_leases: 3, counts: 2, inheritable: false, role: "" });

    quotas.admit("tl/creds/app/e", "secret");
    expect(quotas.get("tl")!.counts).toBe(3);
    expect(() => quotas.admit("tl/creds/app/f", "secret")).toThrow(QuotaExceeded);
    expect(quotas.get("tl")!.counts).toBe(3);
    // Elsewhere, and tokens, are not limited.
    quotas.admit("other/creds/app/g", "secret");
    quotas.admit("tl/creds/app/t", "token");
    expect(quotas.get("tl")!.counts).toBe(3);

    quotas.removed("tl/creds/app/e", "secret");
    expect(quotas.get("tl")!.counts).toBe(2);
    quotas.admit("tl/creds/app/f", "secret");
    expect(quotas.get("tl")!.counts).toBe(3);
  });

  it("applies every quota covering the lease, and a refusal counts nothing anywhere", async () => {
    const { quotas } = await setup();
    await quotas.put({ name: "mount", path: "tl/", maxLeases: 10, inheritable: false });
    await quotas.put({ name: "role", path: "tl/creds/app", maxLeases: 1, inheritable: false });
    quotas.admit("tl/creds/app/1", "secret");
    expect(() => quotas.admit("tl/creds/app/2", "secret")).toThrow("lease count quota exceeded");
    quotas.admit("tl/creds/db/1", "secret");
    expect(quotas.get("mount")!.counts).toBe(2);
    expect(quotas.get("role")!.counts).toBe(1);
  });

  it("a global quota (empty path) covers every secret lease", async () => {
    const { quotas } = await setup();
    await quotas.put({ name: "global", path: "", maxLeases: 2, inheritable: true });
    quotas.admit("a/creds/x/1", "secret");
    quotas.admit("b/creds/y/1", "secret");
    expect(() => quotas.admit("c/creds/z/1", "secret")).toThrow(QuotaExceeded);
  });

  it("persists quotas and recounts them at load; delete removes them", async () => {
    const { quotas, view, store, log } = await setup();
    await quotas.put({ name: "q1", path: "tl/creds/app", maxLeases: 5, inheritable: false });
    await store.insert(row("tl/creds/app/a"));
    await store.insert(row("tl/creds/app/b"));
    const again = new LeaseQuotas({ storage: view, store, logger: log.logger });
    await again.load();
    expect(again.names()).toEqual(["q1"]);
    expect(again.get("q1")!.counts).toBe(2);
    expect(await again.delete("q1")).toBe(true);
    expect(await again.delete("q1")).toBe(false);
    const third = new LeaseQuotas({ storage: view, store, logger: log.logger });
    await third.load();
    expect(third.names()).toEqual([]);
  });

  it("updating max_leases keeps the live count; moving the path recounts", async () => {
    const { quotas, store } = await setup();
    await store.insert(row("tl/creds/app/a"));
    await store.insert(row("kv/creds/app/a"));
    await store.insert(row("kv/creds/app/b"));
    await quotas.put({ name: "q", path: "tl/", maxLeases: 5, inheritable: false });
    quotas.admit("tl/creds/app/new", "secret"); // counted, though no row was written
    expect((await quotas.put({ name: "q", path: "tl/", maxLeases: 7, inheritable: false })).counts).toBe(2);
    expect((await quotas.put({ name: "q", path: "kv/", maxLeases: 7, inheritable: false })).counts).toBe(2);
  });

  it("warns once when the total passes the threshold, and again only after falling back under it", async () => {
    const { quotas, store, log } = await setup(3);
    await store.insert(row("a/x/1"));
    await store.insert(row("auth/token/create/1", "token"));
    await quotas.load();
    await quotas.totalCounted;
    expect(quotas.totalLeases).toBe(2);
    expect(log.warnings()).toEqual([]);
    quotas.admit("a/x/2", "secret");
    quotas.admit("a/x/3", "secret");
    quotas.admit("a/x/4", "token");
    const crossing = log.warnings().filter((m) => m.includes("warning threshold"));
    expect(crossing).toHaveLength(1);
    quotas.removed("a/x/4", "token"); // still above the threshold: no new warning
    quotas.admit("a/x/5", "secret");
    expect(log.warnings().filter((m) => m.includes("warning threshold"))).toHaveLength(1);
    for (const id of ["a/x/5", "a/x/3", "a/x/2"]) quotas.removed(id, "secret"); // 1 < 0.9 * 3: re-armed
    quotas.admit("a/x/6", "secret");
    quotas.admit("a/x/7", "secret");
    expect(log.warnings().filter((m) => m.includes("warning threshold"))).toHaveLength(2);
  });
});
