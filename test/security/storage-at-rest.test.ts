/**
 * Issue 15, item 14 (leases): a copy of the SQLite file must not yield token accessors (handles
 * for `lookup-accessor` / `revoke-accessor`) nor the creator tokens' metadata and display names
 * (user names, hosts) from the lease table. A file-backed server with the test leasing engine
 * issues leases with tokens carrying metadata; the file and its WAL are then read byte by byte.
 * Positive controls: the incident-response selector on that metadata, the listing (which shows
 * the clear accessor to an authorised caller), `revoke-accessor` and token revocation still find
 * and revoke those leases, also after a restart.
 */
import "reflect-metadata";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinPlugins } from "../../plugins/index.js";
import { Core } from "../../src/core/core.js";
import { buildApp } from "../../src/server/app.js";
import { listen, type RunningListener } from "../../src/server/listen.js";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import { leasingEngine } from "../helpers/leasing-engine.js";
import { call } from "../helpers/server.js";

const silent = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? "silent" });

/** The SQLite file and its companions, as they are on disk right now. */
function storeBytes(dbPath: string): { name: string; bytes: Buffer }[] {
  return [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`].filter((p) => existsSync(p)).map((p) => ({ name: p, bytes: readFileSync(p) }));
}

/** Every place `needle` occurs in clear (UTF-8, UTF-16LE, or base64 in case a layer re-encodes it). */
function findInClear(files: { name: string; bytes: Buffer }[], needle: string): string[] {
  const forms = [Buffer.from(needle, "utf8"), Buffer.from(needle, "utf16le"), Buffer.from(Buffer.from(needle, "utf8").toString("base64"), "utf8")];
  const hits: string[] = [];
  for (const f of files) for (const form of forms) if (f.bytes.includes(form)) hits.push(`${f.name} (${form.length} bytes form)`);
  return hits;
}

const rand = () => randomBytes(8).toString("hex");

describe("lease creator fields at rest", () => {
  const dir = mkdtempSync(join(tmpdir(), "leasehold-sec-at-rest-"));
  const dbPath = join(dir, "leasehold.db");
  const engine = leasingEngine();
  let core: Core | undefined;
  let listener: RunningListener | undefined;
  let base = "";
  let unsealKey = "";
  let rootToken = "";

  // Values that must never be in the file in clear.
  const host = `db-host-${rand()}`;
  const user = `alice-${rand()}`;
  const displayName = `ops-${rand()}`;
  const tokens: Record<"meta" | "other" | "byAccessor" | "revoked", { token: string; accessor: string }> = {} as never;
  const leases: Record<keyof typeof tokens, string[]> = { meta: [], other: [], byAccessor: [], revoked: [] };

  async function boot(): Promise<void> {
    core = new Core({ physical: new SqliteStorage({ path: dbPath }), plugins: [...builtinPlugins, engine.plugin], logger: silent, defaultLeaseTtl: 3600, maxLeaseTtl: 86_400 });
    await core.start();
    listener = await listen(buildApp(core, silent), { address: "127.0.0.1:0" });
    base = listener.url;
  }

  async function shutdown(): Promise<void> {
    await listener?.close();
    await core?.shutdown();
    listener = undefined;
    core = undefined;
  }

  const root = (method: string, path: string, body?: unknown) => call(base, method, path, { token: rootToken, body });

  async function createToken(meta: Record<string, string>, display: string) {
    const r = await root("POST", "auth/token/create", { meta, display_name: display, policies: ["lease-user"], ttl: "2h" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { token: r.body.auth.client_token as string, accessor: r.body.auth.accessor as string };
  }

  async function issue(who: keyof typeof tokens, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const r = await call(base, "GET", "tl/creds/ro?ttl=1h", { token: tokens[who].token });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      leases[who].push(r.body.lease_id);
    }
  }

  /** Usernames the engine issued and nobody revoked yet, by lease. */
  const live = () => engine.control.issued.size;

  beforeAll(async () => {
    await boot();
    const init = await call(base, "PUT", "sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    expect(init.status).toBe(200);
    unsealKey = init.body.keys[0];
    rootToken = init.body.root_token;
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);
    expect((await root("POST", "sys/mounts/tl", { type: "test-leases" })).status).toBe(204);
    expect((await root("PUT", "sys/policies/acl/lease-user", { policy: 'path "tl/*" { capabilities = ["read"] }\n' })).status).toBe(204);

    tokens.meta = await createToken({ host, user }, displayName);
    tokens.other = await createToken({ host: "other-host", user: "bob" }, "other");
    tokens.byAccessor = await createToken({ host, user: `${user}-2` }, `${displayName}-2`);
    tokens.revoked = await createToken({ host, user: `${user}-3` }, `${displayName}-3`);
    await issue("meta", 3);
    await issue("other", 2);
    await issue("byAccessor", 2);
    await issue("revoked", 2);
    expect(live()).toBe(9);
  });

  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps no token accessor, metadata value or display name of a lease's creator in clear in the file", async () => {
    const files = storeBytes(dbPath);
    // The scan can see what is stored in clear: lease ids (paths) are.
    expect(findInClear(files, leases.meta[0]).length).toBeGreaterThan(0);
    for (const t of Object.values(tokens)) expect(findInClear(files, t.accessor), `accessor ${t.accessor}`).toEqual([]);
    for (const v of [host, user, `${user}-2`, `${user}-3`, displayName]) expect(findInClear(files, v), v).toEqual([]);

    // After a checkpoint (the WAL folded into the main file) it is the same.
    core!.barrier.physical instanceof SqliteStorage && core!.barrier.physical.db.pragma("wal_checkpoint(TRUNCATE)");
    const folded = storeBytes(dbPath);
    expect(findInClear(folded, leases.meta[0]).length).toBeGreaterThan(0);
    for (const t of Object.values(tokens)) expect(findInClear(folded, t.accessor)).toEqual([]);
    for (const v of [host, user, displayName]) expect(findInClear(folded, v)).toEqual([]);
  });

  it("still lists the leases by metadata, accessor and display name, showing the clear values to an authorised caller", async () => {
    const r = await root("GET", `sys/leasehold/leases?metadata.host=${host}&metadata.user=${user}&kind=secret`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.leases.map((l: { lease_id: string }) => l.lease_id).sort()).toEqual([...leases.meta].sort());
    for (const l of r.body.data.leases) {
      expect(l.token_accessor).toBe(tokens.meta.accessor);
      expect(l.metadata).toEqual({ host, user });
      expect(l.display_name).toBe(`token-${displayName}`);
    }
    const byAccessor = await root("GET", `sys/leasehold/leases?token_accessor=${tokens.meta.accessor}&kind=secret`);
    expect(byAccessor.body.data.total).toBe(3);
    const byName = await root("GET", `sys/leasehold/leases?display_name=token-${displayName}&kind=secret`);
    expect(byName.body.data.total).toBe(3);
    // A value that is not the token's matches nothing (the match is on the whole value).
    expect((await root("GET", `sys/leasehold/leases?metadata.host=${host.slice(0, -1)}`)).body.data.total).toBe(0);
  });

  it("after a restart, revokes by selector on that metadata, by revoke-accessor and by token revocation", async () => {
    await shutdown();
    await boot();
    expect((await call(base, "PUT", "sys/unseal", { body: { key: unsealKey } })).body.sealed).toBe(false);

    // Selector on metadata: dry run, then the real thing; the other token's leases stay.
    const sel = { metadata: { host, user }, kind: "secret" };
    const dry = await root("POST", "sys/leasehold/leases/revoke", { selector: sel, dry_run: true });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    expect(dry.body.data.matched).toBe(3);
    const real = await root("POST", "sys/leasehold/leases/revoke", { selector: sel });
    expect(real.body.data.revoked).toBe(3);
    expect(live()).toBe(6);
    for (const id of leases.meta) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(400);
    for (const id of leases.other) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(200);

    // revoke-accessor takes the token's leases with it.
    expect((await root("POST", "auth/token/revoke-accessor", { accessor: tokens.byAccessor.accessor })).status).toBe(204);
    expect(live()).toBe(4);
    for (const id of leases.byAccessor) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(400);

    // Revoking the token itself does too.
    expect((await call(base, "POST", "auth/token/revoke-self", { token: tokens.revoked.token })).status).toBe(204);
    expect(live()).toBe(2);
    for (const id of leases.revoked) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(400);
    for (const id of leases.other) expect((await root("PUT", "sys/leases/lookup", { lease_id: id })).status).toBe(200);
  });
});
