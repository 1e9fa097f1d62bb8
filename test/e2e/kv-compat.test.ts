import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvPlugin, kvVersion } from "../../plugins/secrets/kv/index.js";
import type { Backend, OperationHandler, PluginFactory } from "../../src/sdk/index.js";
import type { RunningServer } from "../../src/server/run.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * KV behaviour clients rely on: tuning a version 1 mount to `options.version=2` upgrades it in
 * place (Vault's kv plugin does), and a version 1 read carries a `lease_duration` hint.
 */
const SYSTEM_DEFAULT = 2_764_800; // the dev server's 768h

describe("KV v1 to v2 upgrade through sys/mounts/<kv>/tune", () => {
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });
  const ok = async (method: string, path: string, body?: unknown) => {
    const r = await root(method, path, body);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
    return r.body;
  };

  // Names that are also where a version 2 mount keeps its own records (config, metadata,
  // versions): after the upgrade they must still be ordinary secrets.
  const SECRETS: Record<string, Record<string, unknown>> = {
    app: { user: "app", password: "s3cret", port: 5432 },
    "team/db": { url: "postgres://db" },
    "team/deep/key": { k: "v" },
    team: { also: "a secret and a folder" },
    config: { not: "the engine config" },
    "meta/x": { m: "x" },
    "versions/y/1": { v: "y1" },
  };

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("existing keys become version 1 of the same keys, and the old layout is deleted", async () => {
    await ok("POST", "sys/mounts/legacy", { type: "kv" });
    for (const [path, data] of Object.entries(SECRETS)) await ok("POST", `legacy/${path}`, data);
    const before = server.core.mounts.get("legacy/")!.entry;
    const oldView = server.core.barrier.view(`logical/${before.storage_id ?? before.uuid}/`);
    expect((await oldView.list("")).length).toBeGreaterThan(0);

    const tuned = await root("POST", "sys/mounts/legacy/tune", { options: { version: "2" } });
    expect(tuned.status, JSON.stringify(tuned.body)).toBe(200);
    expect(tuned.body.warnings.join(" ")).toContain("Upgrading mount from version 0 to version 2");
    expect((await ok("GET", "sys/mounts/legacy/tune")).data.options).toEqual({ version: "2" });
    expect((await ok("GET", "sys/mounts/legacy")).data.options).toEqual({ version: "2" });

    for (const [path, data] of Object.entries(SECRETS)) {
      const r = await ok("GET", `legacy/data/${path}`);
      expect(r.data.data, path).toEqual(data);
      expect(r.data.metadata).toMatchObject({ version: 1, destroyed: false, deletion_time: "" });
      expect((await ok("GET", `legacy/metadata/${path}`)).data).toMatchObject({ current_version: 1, oldest_version: 0 });
    }
    // The engine's own config is the default one, not the secret called "config".
    expect((await ok("GET", "legacy/config")).data).toEqual({ cas_required: false, delete_version_after: "0s", max_versions: 0 });
    // Nothing of version 1's layout is left behind.
    expect(await oldView.list("")).toEqual([]);
    expect(server.core.mounts.get("legacy/")!.entry.stale_views).toBeUndefined();
  });

  it("lists work under metadata/, and the mount behaves as version 2 from then on", async () => {
    expect((await ok("LIST", "legacy/metadata/")).data.keys.sort()).toEqual(["app", "config", "meta/", "team", "team/", "versions/"]);
    expect((await ok("LIST", "legacy/metadata/team/")).data.keys.sort()).toEqual(["db", "deep/"]);
    const w = await ok("POST", "legacy/data/app", { data: { user: "app", password: "rotated" }, options: { cas: 1 } });
    expect(w.data.version).toBe(2);
    expect((await ok("GET", "legacy/data/app?version=1")).data.data).toEqual(SECRETS.app);
    expect((await ok("GET", "legacy/data/app")).data.data).toEqual({ user: "app", password: "rotated" });
    // Version 1 paths are gone with version 1.
    expect((await root("GET", "legacy/app")).status).toBe(404);
  });

  it("a downgrade and unknown versions are refused, the mount unchanged", async () => {
    const down = await root("POST", "sys/mounts/legacy/tune", { options: { version: "1" } });
    expect(down.status).toBe(400);
    expect(down.body.errors.join(" ")).toContain("cannot downgrade mount from version 2");
    const bad = await root("POST", "sys/mounts/legacy/tune", { options: { version: "3" } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.join(" ")).toContain("invalid version provided: 3");
    expect((await ok("GET", "sys/mounts/legacy")).data.options).toEqual({ version: "2" });
    expect((await ok("GET", "legacy/data/app")).data.metadata.version).toBe(2);
    // Positive control: restating the current version is accepted and changes nothing.
    expect((await root("POST", "sys/mounts/legacy/tune", { options: { version: "2" } })).status).toBe(204);
    expect((await ok("GET", "legacy/data/team/db")).data.data).toEqual(SECRETS["team/db"]);
  });

  it("an explicit version 1 mount upgrades too, and \"1\" on an unversioned mount keeps its data in place", async () => {
    await ok("POST", "sys/mounts/v1x", { type: "kv", options: { version: "1" } });
    await ok("POST", "v1x/k", { a: "1" });
    const same = await root("POST", "sys/mounts/v1x/tune", { options: { version: "1" } });
    expect(same.status).toBe(204);
    expect((await ok("GET", "v1x/k")).data).toEqual({ a: "1" });
    const up = await root("POST", "sys/mounts/v1x/tune", { options: { version: "2" } });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body.warnings.join(" ")).toContain("Upgrading mount from version 1 to version 2");
    expect((await ok("GET", "v1x/data/k")).data).toMatchObject({ data: { a: "1" }, metadata: { version: 1 } });

    await ok("POST", "sys/mounts/v0", { type: "kv" });
    await ok("POST", "v0/k", { b: "2" });
    const one = await root("POST", "sys/mounts/v0/tune", { options: { version: "1" } });
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    expect((await ok("GET", "v0/k")).data).toEqual({ b: "2" });
  });

  it("a copy abandoned by a crash mid-upgrade is deleted at the next unseal; the mount's data stays", async () => {
    await ok("POST", "sys/mounts/crashy", { type: "kv" });
    await ok("POST", "crashy/k", { a: "1" });
    // The state a crash during the copy leaves: the table names the partial copy as stale.
    const orphanId = "0badc0de-0000-4000-8000-000000000000";
    const orphan = server.core.barrier.view(`logical/${orphanId}/`);
    await orphan.putJSON("meta/k", { partial: true });
    server.core.mounts.get("crashy/")!.entry.stale_views = [orphanId];
    await ok("POST", "sys/mounts/crashy/tune", { description: "persists the table" });
    expect(await orphan.list("")).toEqual(["meta/"]);

    expect((await root("PUT", "sys/seal")).status).toBe(204);
    expect((await call(base, "PUT", "sys/unseal", { body: { key: server.unsealKey! } })).body.sealed).toBe(false);
    expect(await orphan.list("")).toEqual([]);
    expect(server.core.mounts.get("crashy/")!.entry.stale_views).toBeUndefined();
    expect((await ok("GET", "crashy/k")).data).toEqual({ a: "1" });
    expect((await ok("GET", "sys/mounts/crashy")).data.options).toBeNull();
  });

  it("the upgrade survives a restart of the mount table (sealed and unsealed)", async () => {
    const key = server.unsealKey!;
    expect((await root("PUT", "sys/seal")).status).toBe(204);
    expect((await call(base, "PUT", "sys/unseal", { body: { key } })).body.sealed).toBe(false);
    expect((await ok("GET", "legacy/data/team/deep/key")).data).toMatchObject({ data: SECRETS["team/deep/key"], metadata: { version: 1 } });
    expect((await ok("GET", "legacy/data/app")).data.metadata.version).toBe(2);
  });
});

describe("KV v1 reads carry lease_duration (Vault's kv passthrough)", () => {
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root" });
    base = server.url;
    expect((await root("POST", "sys/mounts/kv1", { type: "kv" })).status).toBe(204);
  });
  afterAll(async () => {
    await server.stop();
  });

  const read = async (path: string) => {
    const r = await root("GET", path);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };

  it("without a ttl key: the mount's default lease TTL, no lease id, not renewable", async () => {
    expect((await root("POST", "kv1/plain", { foo: "bar" })).status).toBe(204);
    const r = await read("kv1/plain");
    expect(r).toMatchObject({ lease_id: "", renewable: false, lease_duration: SYSTEM_DEFAULT, data: { foo: "bar" } });
  });

  it("the secret's ttl (or lease) key, parsed as a duration", async () => {
    await root("POST", "kv1/with-ttl", { foo: "bar", ttl: "1h" });
    expect((await read("kv1/with-ttl")).lease_duration).toBe(3600);
    await root("POST", "kv1/with-seconds", { foo: "bar", ttl: 90 });
    expect((await read("kv1/with-seconds")).lease_duration).toBe(90);
    await root("POST", "kv1/with-lease", { foo: "bar", lease: "30m" });
    expect((await read("kv1/with-lease")).lease_duration).toBe(1800);
    // ttl wins over lease; an unparsable ttl falls back to the mount's default.
    await root("POST", "kv1/both", { ttl: "2m", lease: "30m" });
    expect((await read("kv1/both")).lease_duration).toBe(120);
    await root("POST", "kv1/bad-ttl", { ttl: "whenever" });
    expect((await read("kv1/bad-ttl")).lease_duration).toBe(SYSTEM_DEFAULT);
    // The key stays part of the data.
    expect((await read("kv1/with-ttl")).data).toEqual({ foo: "bar", ttl: "1h" });
    expect((await read("kv1/with-ttl")).lease_id).toBe("");
  });

  it("follows the mount's default_lease_ttl once tuned", async () => {
    expect((await root("POST", "sys/mounts/kv1/tune", { default_lease_ttl: "2h" })).status).toBe(204);
    expect((await read("kv1/plain")).lease_duration).toBe(7200);
    expect((await read("kv1/with-ttl")).lease_duration).toBe(3600);
    expect((await root("POST", "sys/mounts/kv1/tune", { default_lease_ttl: "system" })).status).toBe(204);
    expect((await read("kv1/plain")).lease_duration).toBe(SYSTEM_DEFAULT);
  });

  it("creates no lease, and version 2 reads keep lease_duration 0", async () => {
    const leases = await root("LIST", "sys/leases/lookup/kv1/");
    expect(leases.status).toBe(404);
    expect((await root("POST", "secret/data/v2", { data: { foo: "bar", ttl: "1h" } })).status).toBe(200);
    expect((await read("secret/data/v2")).lease_duration).toBe(0);
  });
});

/**
 * A KV engine whose version 1 writes wait for the test before storing: lets a write be inside the
 * engine, past routing and policy, when the upgrade copies the data.
 */
function pausingKv(): { plugin: PluginFactory; pause(): { arrived: Promise<void>; release(): void } } {
  let gate: Promise<void> = Promise.resolve();
  let onArrive: () => void = () => undefined;
  const wrap = (h: OperationHandler): OperationHandler => ({
    ...h,
    handler: async (req) => {
      onArrive();
      await gate;
      return h.handler(req);
    },
  });
  const plugin: PluginFactory = {
    type: "pausing-kv",
    kind: "secrets",
    description: "kv whose version 1 writes wait for the test",
    async create(ctx): Promise<Backend> {
      const inner = await kvPlugin.create(ctx);
      if (kvVersion(ctx.mount) === 2) return inner;
      return {
        ...inner,
        paths: inner.paths.map((p) => ({
          ...p,
          operations: { ...p.operations, create: p.operations.create && wrap(p.operations.create), update: p.operations.update && wrap(p.operations.update) },
        })),
      };
    },
    retune: kvPlugin.retune,
  };
  return {
    plugin,
    pause() {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      const arrived = new Promise<void>((r) => (onArrive = r));
      return { arrived, release };
    },
  };
}

describe("a write inside the engine while the upgrade copies", () => {
  const engine = pausingKv();
  let server: RunningServer;
  let base: string;
  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: "root", body });

  beforeAll(async () => {
    server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("is refused rather than acknowledged into the old layout and lost", async () => {
    expect((await root("POST", "sys/mounts/p", { type: "pausing-kv" })).status).toBe(204);
    expect((await root("POST", "p/before", { v: "1" })).status).toBe(204);
    const oldEntry = server.core.mounts.get("p/")!.entry;
    const oldView = server.core.barrier.view(`logical/${oldEntry.storage_id ?? oldEntry.uuid}/`);

    const paused = engine.pause();
    const late = root("POST", "p/late", { v: "2" });
    await paused.arrived;
    const tune = await root("POST", "sys/mounts/p/tune", { options: { version: "2" } });
    expect(tune.status, JSON.stringify(tune.body)).toBe(200);
    // The write reaches storage only now, after the copy: the closed view refuses it.
    paused.release();
    const r = await late;
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.errors.join(" ")).toContain("Upgrading from non-versioned to versioned data");
    expect(await oldView.list("")).toEqual([]);
    expect((await root("GET", "p/data/late")).status).toBe(404);

    // Positive control: what was written before the upgrade is there, and writes work again.
    expect((await root("GET", "p/data/before")).body.data).toMatchObject({ data: { v: "1" }, metadata: { version: 1 } });
    expect((await root("POST", "p/data/late", { data: { v: "2" } })).status).toBe(200);
    expect((await root("GET", "p/data/late")).body.data.data).toEqual({ v: "2" });
  });
});
