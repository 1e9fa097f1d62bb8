/**
 * The physical storage contract, run unchanged against every backend: SQLite (in memory) and
 * PostgreSQL (the embedded test server, a fresh database for this file and fresh tables per test).
 * Whatever the core may rely on from `PhysicalStorage` and `LeaseStore` is asserted here, so a
 * backend cannot pass by differing from the other one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database/helpers.js";
import { PostgresStorage } from "./postgres.js";
import { SqliteStorage } from "./sqlite.js";
import type { BulkStorage, LeaseFilter, LeaseRow, LeaseState, PhysicalStorage } from "./types.js";

let pgDb: TestDatabase | undefined;
let tables = 0;

beforeAll(async () => {
  pgDb = await createTestDatabase(inject("pgUrl"), "contract");
});
afterAll(async () => {
  await pgDb?.drop();
});

const backends: { name: string; open: () => Promise<PhysicalStorage & BulkStorage> }[] = [
  { name: "sqlite", open: async () => new SqliteStorage({ path: ":memory:" }) },
  // A new set of tables per test: every test starts from an empty store, as with `:memory:`.
  { name: "postgresql", open: () => PostgresStorage.open({ connectionUrl: pgDb!.url, table: `kv_${process.pid}_${++tables}`, maxParallel: 4 }) },
];

const v = (s: string) => Buffer.from(s, "utf8");

function lease(id: string, over: Partial<LeaseRow> = {}): LeaseRow {
  const path = id.slice(0, id.lastIndexOf("/"));
  return {
    id, kind: "secret", mount: `${id.split("/")[0]}/`, path, role: path.split("/").pop() ?? "", secret_type: "creds", internal: Buffer.from([0, 1, 2, 255]),
    issue_time: 1_700_000_000_000, expire_time: 1_700_000_360_000, max_expire_time: 1_700_086_400_000, last_renewal: null, renewable: 1,
    token_accessor: "", auth_mount: "", display_name: "", metadata: "", entity_id: "", state: "active", revoke_attempts: 0, revoke_error: null, due_at: 1_700_000_360_000,
    ...over,
  };
}

describe.each(backends)("PhysicalStorage contract: $name", ({ open }) => {
  let store: PhysicalStorage & BulkStorage;
  const opened: PhysicalStorage[] = [];
  const fresh = async () => {
    store = await open();
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  describe("key/value", () => {
    it("gets what was put, overwrites, deletes, and answers undefined for a missing key", async () => {
      await fresh();
      expect(await store.get("a/b")).toBeUndefined();
      const bytes = Buffer.from([0, 0xff, 0x00, 0x80, 0x7f]);
      await store.put("a/b", bytes);
      expect(await store.get("a/b")).toEqual(bytes);
      await store.put("a/b", v("second"));
      expect((await store.get("a/b"))?.toString()).toBe("second");
      await store.put("a/c", Buffer.alloc(0));
      expect(await store.get("a/c")).toEqual(Buffer.alloc(0));
      await store.delete("a/b");
      expect(await store.get("a/b")).toBeUndefined();
      await store.delete("a/b"); // deleting a missing key is not an error
      expect((await store.get("a/c"))?.length).toBe(0);
    });

    it("lists immediate children of nested prefixes, sorted, with folders once and a trailing slash", async () => {
      await fresh();
      for (const k of ["sys/token/id/h1", "sys/token/id/h2", "sys/token/accessor/a1", "sys/policy/default", "sys/policy/app", "sys", "logical/x"]) await store.put(k, v("x"));
      expect(await store.list("")).toEqual(["logical/", "sys", "sys/"]);
      expect(await store.list("sys/")).toEqual(["policy/", "token/"]);
      expect(await store.list("sys/token/")).toEqual(["accessor/", "id/"]);
      expect(await store.list("sys/token/id/")).toEqual(["h1", "h2"]);
      expect(await store.list("sys/policy/")).toEqual(["app", "default"]);
      expect(await store.list("nothing/")).toEqual([]);
      // A prefix that is not a folder boundary still cuts at the next slash.
      expect(await store.list("sys/to")).toEqual(["ken/"]);
    });

    it("orders and bounds keys by code point, including characters past U+FFFF, never listing a sibling prefix", async () => {
      await fresh();
      for (const k of ["app/😀x", "app/plain", "app/\uffffz", "app/\ue000", "app/Zed", "app/é", "app/dir/😀/deep", "app0", "apq/x", "ap/x", "app/\u{10ffff}"]) await store.put(k, v("v"));
      // Code point order: Z < p < é (U+E9) < U+E000 < U+FFFF < U+1F600 < U+10FFFF; byte order under any collation.
      expect(await store.list("app/")).toEqual(["Zed", "dir/", "plain", "é", "\ue000", "\uffffz", "😀x", "\u{10ffff}"]);
      expect(await store.list("app/dir/")).toEqual(["😀/"]);
      expect(await store.list("app/dir/😀/")).toEqual(["deep"]);
      expect(await store.list("app/\u{10ffff}")).toEqual([]);
      expect(await store.list("")).toEqual(["ap/", "app/", "app0", "apq/"]);
    });

    it("applies a batch of puts and deletes together", async () => {
      await fresh();
      await store.put("b/old", v("old"));
      await store.batch([
        { key: "b/1", value: v("one") },
        { key: "b/old", value: null },
        { key: "b/2", value: v("two") },
        { key: "b/1", value: v("one again") },
      ]);
      expect(await store.list("b/")).toEqual(["1", "2"]);
      expect((await store.get("b/1"))?.toString()).toBe("one again");
      await store.batch([]);
      expect(await store.list("b/")).toEqual(["1", "2"]);
    });

    it("applies nothing of a batch when one of its writes fails", async () => {
      await fresh();
      await store.put("c/keep", v("before"));
      // A NULL value violates NOT NULL in both backends, after two writes already ran.
      const broken = [
        { key: "c/new", value: v("new") },
        { key: "c/keep", value: null },
        { key: "c/bad", value: undefined as unknown as Buffer }, // a bug in the caller, to make the batch fail midway
      ];
      await expect(store.batch(broken)).rejects.toThrow();
      expect(await store.get("c/new")).toBeUndefined();
      expect((await store.get("c/keep"))?.toString()).toBe("before");
      // Positive control: the same batch without the bad write goes through.
      await store.batch(broken.slice(0, 2));
      expect(await store.list("c/")).toEqual(["new"]);
    });
  });

  describe("bulk copy (operator migrate)", () => {
    it("pages every entry and lease row of a snapshot in key order, with all columns, and counts them", async () => {
      await fresh();
      const keys = ["b", "a/2", "a/1", "😀", "\uffff", "a/10", ""];
      for (const k of keys) await store.put(k, Buffer.from([k.length, 0, 255]));
      const rows = [lease("m/c/r/2", { creator: Buffer.from("sealed"), token_accessor: "mac", metadata: " t " }), lease("m/c/r/1"), lease("m/c/r/3", { state: "revoking", revoke_error: "x", due_at: null })];
      for (const r of rows) await store.leases.insert(r);
      const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
      await store.snapshot(async (snap) => {
        expect(await snap.size()).toEqual({ entries: 7, leases: 3 });
        const first = await snap.entries(null, 3);
        const rest = await snap.entries(first.at(-1)!.key, 10);
        expect([...first, ...rest].map((e) => e.key)).toEqual([...keys].sort(byBytes));
        expect(first[0]).toEqual({ key: "", value: Buffer.from([0, 0, 255]) });
        expect(await snap.entries(rest.at(-1)!.key, 10)).toEqual([]);
        const l1 = await snap.leaseRows(null, 2);
        expect([...l1, ...(await snap.leaseRows(l1[1].id, 2))]).toEqual([{ ...rows[1], creator: null }, rows[0], { ...rows[2], creator: null }]);
      });
    });

    it("loads entries and lease rows in one transaction, lease counts following, and nothing of a load that conflicts", async () => {
      await fresh();
      await store.load([{ key: "k/1", value: Buffer.from("one") }, { key: "k/2", value: Buffer.alloc(0) }], [lease("m/c/r/1", { creator: Buffer.from("s") }), lease("n/c/r/2", { mount: "n/", state: "pending" })]);
      expect(await store.get("k/2")).toEqual(Buffer.alloc(0));
      expect(await store.leases.get("m/c/r/1")).toEqual(lease("m/c/r/1", { creator: Buffer.from("s") }));
      expect(await store.leases.stats()).toEqual({ byState: { active: 1, pending: 1 }, byMount: { "m/": 1, "n/": 1 } });
      // A key already present is not overwritten: the whole load fails, its new rows included.
      await expect(store.load([{ key: "k/3", value: Buffer.from("new") }, { key: "k/1", value: Buffer.from("clobber") }], [lease("m/c/r/9")])).rejects.toThrow();
      await expect(store.load([], [lease("m/c/r/8"), lease("m/c/r/1")])).rejects.toThrow();
      expect((await store.get("k/1"))?.toString()).toBe("one");
      expect(await store.get("k/3")).toBeUndefined();
      expect(await store.leases.get("m/c/r/9")).toBeUndefined();
      expect(await store.leases.get("m/c/r/8")).toBeUndefined();
      expect(await store.leases.count({})).toBe(2);
      await store.load([], []);
    });
  });

  describe("leases", () => {
    it("inserts, reads back every column with its type, updates named columns, deletes", async () => {
      await fresh();
      const row = lease("database/creds/ro/a1", { last_renewal: 1_700_000_100_000, token_accessor: "hmac-acc", display_name: "hmac-dn", metadata: " t1 t2 ", creator: Buffer.from("sealed") });
      await store.leases.insert(row);
      expect(await store.leases.get(row.id)).toEqual(row);
      // Without a creator, the row reads back with creator null (a legacy row).
      const bare = lease("database/creds/ro/a2");
      await store.leases.insert(bare);
      expect(await store.leases.get(bare.id)).toEqual({ ...bare, creator: null });
      await expect(store.leases.insert(bare)).rejects.toThrow();

      await store.leases.update(row.id, { state: "revoking", revoke_attempts: 3, revoke_error: "connection refused", due_at: null, renewable: 0 });
      expect(await store.leases.get(row.id)).toEqual({ ...row, state: "revoking", revoke_attempts: 3, revoke_error: "connection refused", due_at: null, renewable: 0 });
      await store.leases.update(row.id, {}); // nothing to change
      await store.leases.update(row.id, { id: "other" } as Partial<LeaseRow>); // the id is never updated
      expect((await store.leases.get(row.id))?.state).toBe("revoking");
      expect(await store.leases.get("other")).toBeUndefined();

      expect(await store.leases.delete(row.id)).toBe(true);
      expect(await store.leases.delete(row.id)).toBe(false);
      expect(await store.leases.get(row.id)).toBeUndefined();
      expect(await store.leases.get(bare.id)).toBeDefined();
    });

    it("reads, updates and deletes leases by the batch, each row once, skipping ids without a row", async () => {
      await fresh();
      const rows = ["b/creds/r/1", "b/creds/r/2", "b/creds/r/3", "b/creds/r/4", "c/creds/r/5"].map((id, i) => lease(id, { due_at: 1000 + i, creator: Buffer.from(`sealed-${i}`) }));
      for (const r of rows) await store.leases.insert(r);
      const byId = (list: LeaseRow[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));

      expect(await store.leases.getMany([])).toEqual([]);
      // Every column as `get` reads it; a missing id is skipped, a repeated one answered once.
      const got = await store.leases.getMany(["b/creds/r/3", "missing/x", "b/creds/r/1", "b/creds/r/3"]);
      expect(byId(got)).toEqual([await store.leases.get("b/creds/r/1"), await store.leases.get("b/creds/r/3")]);
      expect(byId(got)).toEqual([rows[0], rows[2]]);

      await store.leases.updateMany(["b/creds/r/1", "b/creds/r/2", "missing/x", "b/creds/r/2"], { state: "revoking", due_at: 77, revoke_error: null });
      await store.leases.updateMany([], { state: "irrevocable" });
      await store.leases.updateMany(["b/creds/r/3"], {}); // nothing to change
      await store.leases.updateMany(["b/creds/r/3"], { id: "other" } as Partial<LeaseRow>); // the id is never updated
      expect(byId(await store.leases.getMany(rows.map((r) => r.id)))).toEqual([
        { ...rows[0], state: "revoking", due_at: 77 },
        { ...rows[1], state: "revoking", due_at: 77 },
        rows[2],
        rows[3],
        rows[4],
      ]);
      expect(await store.leases.get("other")).toBeUndefined();
      expect((await store.leases.due(100, 10)).map((d) => d.id).sort()).toEqual(["b/creds/r/1", "b/creds/r/2"]);

      expect(await store.leases.deleteMany([])).toEqual([]);
      const removed = await store.leases.deleteMany(["b/creds/r/2", "missing/x", "c/creds/r/5", "b/creds/r/2"]);
      expect(removed.sort()).toEqual(["b/creds/r/2", "c/creds/r/5"]);
      expect(await store.leases.deleteMany(["b/creds/r/2", "c/creds/r/5"])).toEqual([]);
      expect((await store.leases.getMany(rows.map((r) => r.id))).map((r) => r.id).sort()).toEqual(["b/creds/r/1", "b/creds/r/3", "b/creds/r/4"]);
      // The trigger-kept counts follow batch changes as they follow single ones.
      expect(await store.leases.countsByMountAndState()).toEqual([
        { mount: "b/", state: "active", n: 2 },
        { mount: "b/", state: "revoking", n: 1 },
      ]);
      expect(await store.leases.count({})).toBe(3);
    });

    it("takes batches of thousands of ids (past SQLite's former 999-variable limit) in one call", async () => {
      await fresh();
      // Not tens of thousands: on PostgreSQL, the per-row count trigger of one statement rewrites
      // the same counter row again and again, which grows quadratically (40,000 state changes took
      // about 70 s here); the expiration manager caps its batches far below this.
      const n = 5_000;
      const rows = Array.from({ length: n }, (_, i) => lease(`big/creds/r/${String(i).padStart(5, "0")}`));
      await store.load([], rows);
      const ids = rows.map((r) => r.id);
      expect((await store.leases.getMany(ids)).length).toBe(n);
      await store.leases.updateMany(ids.slice(0, n - 1), { state: "revoking", due_at: 5 });
      expect(await store.leases.count({ state: "revoking" })).toBe(n - 1);
      expect((await store.leases.deleteMany([...ids, "big/creds/r/none"])).length).toBe(n);
      expect(await store.leases.count({})).toBe(0);
    });

    it("lists due deadlines soonest first, up to a time and a limit, skipping leases with nothing scheduled", async () => {
      await fresh();
      const dues: [string, number | null][] = [["m/c/r/a", 500], ["m/c/r/b", 100], ["m/c/r/c", null], ["m/c/r/d", 300], ["m/c/r/e", 900], ["m/c/r/f", 300]];
      for (const [id, due_at] of dues) await store.leases.insert(lease(id, { due_at }));
      const due = await store.leases.due(500, 10);
      expect(due.map((d) => d.due_at)).toEqual([100, 300, 300, 500]);
      expect(due[0]).toEqual({ id: "m/c/r/b", due_at: 100 });
      expect(new Set(due.slice(1, 3).map((d) => d.id))).toEqual(new Set(["m/c/r/d", "m/c/r/f"]));
      expect((await store.leases.due(10_000, 2)).map((d) => d.id)).toEqual(["m/c/r/b", expect.stringMatching(/^m\/c\/r\/[df]$/)]);
      expect(await store.leases.due(99, 10)).toEqual([]);
      await store.leases.update("m/c/r/b", { due_at: 1000 });
      expect((await store.leases.due(10_000, 10)).at(-1)).toEqual({ id: "m/c/r/b", due_at: 1000 });
    });

    describe("select and count with each filter", () => {
      const rows: LeaseRow[] = [
        lease("database/creds/ro/1", { token_accessor: "accA", auth_mount: "auth/token/", display_name: "dnA", metadata: " tagX tagY ", issue_time: 100 }),
        lease("database/creds/ro/2", { token_accessor: "accB", auth_mount: "auth/ldap/", display_name: "dnB", metadata: " tagX ", issue_time: 200, state: "pending" }),
        lease("database/creds/rw/3", { token_accessor: "accA", auth_mount: "auth/token/", display_name: "dnA", metadata: " tagY tagXX ", issue_time: 300, state: "revoking" }),
        lease("database/creds/rw/😀", { token_accessor: "accC", auth_mount: "auth/ldap/", display_name: "dnC", metadata: "", issue_time: 400, state: "irrevocable" }),
        lease("pki/issue/web/5", { role: "web", token_accessor: "accA", issue_time: 500 }),
        lease("auth/token/create/6", { kind: "token", mount: "auth/token/", role: "", token_accessor: "accB", issue_time: 600 }),
        lease("database/creds0/x/7", { mount: "database/", role: "x", issue_time: 700 }),
      ];
      const cases: [string, LeaseFilter, string[]][] = [
        ["no filter", {}, rows.map((r) => r.id)],
        ["id", { id: "database/creds/ro/2" }, ["database/creds/ro/2"]],
        ["mount", { mount: "database/" }, ["database/creds/ro/1", "database/creds/ro/2", "database/creds/rw/3", "database/creds/rw/😀", "database/creds0/x/7"]],
        ["mount and role", { mount: "database/", role: "rw" }, ["database/creds/rw/3", "database/creds/rw/😀"]],
        ["path prefix (not its sibling creds0/)", { pathPrefix: "database/creds/" }, ["database/creds/ro/1", "database/creds/ro/2", "database/creds/rw/3", "database/creds/rw/😀"]],
        ["path prefix whose next character is past U+FFFF", { pathPrefix: "database/creds/rw/" }, ["database/creds/rw/3", "database/creds/rw/😀"]],
        ["empty path prefix", { pathPrefix: "" }, rows.map((r) => r.id)],
        ["token accessor", { tokenAccessor: "accA" }, ["database/creds/ro/1", "database/creds/rw/3", "pki/issue/web/5"]],
        ["auth mount and display name", { authMount: "auth/ldap/", displayName: "dnB" }, ["database/creds/ro/2"]],
        ["display name", { displayName: "dnA" }, ["database/creds/ro/1", "database/creds/rw/3"]],
        ["one metadata tag (whole tags only: tagX is not tagXX)", { metadataTags: ["tagX"] }, ["database/creds/ro/1", "database/creds/ro/2"]],
        ["two metadata tags", { metadataTags: ["tagX", "tagY"] }, ["database/creds/ro/1"]],
        ["issued window", { issuedAfter: 200, issuedBefore: 500 }, ["database/creds/ro/2", "database/creds/rw/3", "database/creds/rw/😀"]],
        ["state", { state: "pending" }, ["database/creds/ro/2"]],
        ["kind", { kind: "token" }, ["auth/token/create/6"]],
        ["several fields", { mount: "database/", tokenAccessor: "accA", state: "revoking" }, ["database/creds/rw/3"]],
        ["nothing matches", { mount: "database/", kind: "token" }, []],
      ];

      it.each(cases)("%s", async (_name, filter, expected) => {
        await fresh();
        for (const r of rows) await store.leases.insert(r);
        const sorted = [...expected].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(await store.leases.select(filter, "", 100)).toEqual(sorted);
        expect(await store.leases.count(filter)).toBe(expected.length);
      });

      it("pages by id after a cursor with a limit, and refuses clear metadata", async () => {
        await fresh();
        for (const r of rows) await store.leases.insert(r);
        const all = await store.leases.select({ mount: "database/" }, "", 100);
        expect(await store.leases.select({ mount: "database/" }, "", 2)).toEqual(all.slice(0, 2));
        expect(await store.leases.select({ mount: "database/" }, all[1], 2)).toEqual(all.slice(2, 4));
        expect(await store.leases.select({ mount: "database/" }, all[3], 2)).toEqual(all.slice(4));
        expect(await store.leases.select({ mount: "database/" }, all.at(-1)!, 2)).toEqual([]);
        await expect(store.leases.select({ metadata: { a: "b" } }, "", 10)).rejects.toThrow(/metadataTags/);
      });
    });

    it("keeps counts by mount and state equal to the rows through inserts, state and mount changes and deletes", async () => {
      await fresh();
      const model = new Map<string, { mount: string; state: LeaseState }>();
      const truth = () => {
        const m = new Map<string, number>();
        for (const r of model.values()) m.set(`${r.mount}|${r.state}`, (m.get(`${r.mount}|${r.state}`) ?? 0) + 1);
        return [...m].map(([k, n]) => ({ mount: k.split("|")[0], state: k.split("|")[1], n })).sort((a, b) => (a.mount + a.state < b.mount + b.state ? -1 : 1));
      };
      const kept = async () => [...(await store.leases.countsByMountAndState())].sort((a, b) => (a.mount + a.state < b.mount + b.state ? -1 : 1));
      for (let i = 0; i < 30; i++) {
        const r = lease(`m${i % 3}/creds/r/${i}`, { mount: `m${i % 3}/`, state: i % 2 ? "active" : "pending" });
        await store.leases.insert(r);
        model.set(r.id, { mount: r.mount, state: r.state });
      }
      expect(await kept()).toEqual(truth());
      for (let i = 0; i < 30; i += 4) {
        await store.leases.update(`m${i % 3}/creds/r/${i}`, { state: "revoking" });
        model.get(`m${i % 3}/creds/r/${i}`)!.state = "revoking";
      }
      for (let i = 1; i < 30; i += 5) await store.leases.update(`m${i % 3}/creds/r/${i}`, { due_at: 9 }); // not a counted column
      await store.leases.update("m1/creds/r/1", { state: "active" }); // unchanged state
      await store.leases.update("m1/creds/r/7", { mount: "moved/", state: "irrevocable" });
      model.set("m1/creds/r/7", { mount: "moved/", state: "irrevocable" });
      for (let i = 2; i < 30; i += 3) {
        await store.leases.delete(`m${i % 3}/creds/r/${i}`);
        model.delete(`m${i % 3}/creds/r/${i}`);
      }
      await store.leases.delete("m2/creds/r/2"); // already gone: counts do not move
      expect(await kept()).toEqual(truth());
      expect(await store.leases.count({})).toBe(model.size);
      const stats = await store.leases.stats();
      const byState: Record<string, number> = {};
      const byMount: Record<string, number> = {};
      for (const r of model.values()) {
        byState[r.state] = (byState[r.state] ?? 0) + 1;
        byMount[r.mount] = (byMount[r.mount] ?? 0) + 1;
      }
      expect(stats).toEqual({ byState, byMount });
      // Mounts and states with nothing left are not reported.
      for (let i = 0; i < 30; i += 3) await store.leases.delete(`m0/creds/r/${i}`);
      expect((await store.leases.stats()).byMount["m0/"]).toBeUndefined();
      expect((await store.leases.countsByMountAndState()).some((r) => r.mount === "m0/")).toBe(false);
    });

    it("lists the ids in each state, paged by id", async () => {
      await fresh();
      const states: LeaseState[] = ["pending", "active", "revoking", "irrevocable"];
      for (let i = 0; i < 12; i++) await store.leases.insert(lease(`m/creds/r/${String(i).padStart(2, "0")}`, { state: states[i % 4] }));
      for (const [k, st] of states.entries()) {
        const ids = [k, k + 4, k + 8].map((i) => `m/creds/r/${String(i).padStart(2, "0")}`);
        expect(await store.leases.inState(st, "", 10)).toEqual(ids);
        expect(await store.leases.inState(st, "", 2)).toEqual(ids.slice(0, 2));
        expect(await store.leases.inState(st, ids[1], 2)).toEqual(ids.slice(2));
      }
      await store.leases.update("m/creds/r/00", { state: "active" });
      expect(await store.leases.inState("pending", "", 10)).toEqual(["m/creds/r/04", "m/creds/r/08"]);
    });

    it("lists rows whose creator is still in clear and rewrites them in one go", async () => {
      await fresh();
      await store.leases.insert(lease("m/creds/r/legacy1", { token_accessor: "clear-acc", display_name: "clear-dn", metadata: '{"host":"h"}' }));
      await store.leases.insert(lease("m/creds/r/legacy2", { token_accessor: "clear-acc2" }));
      await store.leases.insert(lease("m/creds/r/sealed", { creator: Buffer.from("sealed") }));
      const legacy = await store.leases.legacyCreators(10);
      expect(legacy.map((r) => r.id)).toEqual(["m/creds/r/legacy1", "m/creds/r/legacy2"]);
      expect(legacy[0].token_accessor).toBe("clear-acc");
      expect((await store.leases.legacyCreators(1)).map((r) => r.id)).toEqual(["m/creds/r/legacy1"]);
      await store.leases.rewriteCreators(
        legacy.map((r) => ({ id: r.id, token_accessor: `mac-${r.id}`, display_name: "mac-dn", metadata: " tag ", creator: Buffer.from(`sealed-${r.id}`) })),
        false,
      );
      await store.leases.rewriteCreators([], true);
      expect(await store.leases.legacyCreators(10)).toEqual([]);
      expect(await store.leases.get("m/creds/r/legacy1")).toMatchObject({ token_accessor: "mac-m/creds/r/legacy1", display_name: "mac-dn", metadata: " tag ", creator: Buffer.from("sealed-m/creds/r/legacy1") });
      expect(await store.leases.select({ tokenAccessor: "clear-acc" }, "", 10)).toEqual([]);
      expect(await store.leases.select({ metadataTags: ["tag"] }, "", 10)).toEqual(["m/creds/r/legacy1", "m/creds/r/legacy2"]);
      expect(await store.leases.count({})).toBe(3);
    });
  });
});

describe("PostgreSQL lease batches under a write fence", () => {
  it("runs each batch write in one transaction behind one fence check, and writes nothing when the fence refuses", async () => {
    let fenceChecks = 0;
    let refuse = false;
    const store = await PostgresStorage.open({
      connectionUrl: pgDb!.url,
      table: `kv_${process.pid}_${++tables}`,
      maxParallel: 4,
      fence: async (tx) => {
        fenceChecks++;
        // A real query in the transaction, as the HA fence's SELECT ... FOR KEY SHARE is.
        await tx.query("SELECT 1");
        if (refuse) throw new Error("fenced: not the active node");
      },
    });
    try {
      const rows = Array.from({ length: 600 }, (_, i) => lease(`f/creds/r/${String(i).padStart(3, "0")}`));
      await store.load([], rows);
      const ids = rows.map((r) => r.id);
      fenceChecks = 0;
      await store.leases.updateMany(ids, { state: "revoking", due_at: 1 });
      expect(fenceChecks).toBe(1);
      expect((await store.leases.deleteMany(ids.slice(0, 300))).length).toBe(300);
      expect(fenceChecks).toBe(2);
      await store.leases.getMany(ids); // a read: no fence
      expect(fenceChecks).toBe(2);

      refuse = true;
      await expect(store.leases.updateMany(ids, { state: "irrevocable" })).rejects.toThrow(/fenced/);
      await expect(store.leases.deleteMany(ids)).rejects.toThrow(/fenced/);
      refuse = false;
      expect(await store.leases.count({})).toBe(300);
      expect(await store.leases.count({ state: "revoking" })).toBe(300);
    } finally {
      await store.close();
    }
  });
});
