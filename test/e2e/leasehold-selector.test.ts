import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../helpers/leasing-engine.js";
import { call, startTestServer } from "../helpers/server.js";

/**
 * `sys/leasehold/leases` and `sys/leasehold/leases/revoke` against the real dev server, with the
 * test engine standing in for an external system: three tokens with different metadata issue
 * credentials, then selectors pick them apart.
 */
let server: RunningServer;
let control: LeasingEngineControl;

interface Issued {
  lease_id: string;
  username: string;
  who: "a" | "b" | "c";
  mount: string;
  role: string;
}
const issued: Issued[] = [];
const tokens: Record<"a" | "b" | "c" | "nosudo", { token: string; accessor: string }> = {} as never;
/** An instant between the first batch of leases (a, b) and the second (c). */
let mark = 0;

const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });

async function issue(who: "a" | "b" | "c", mount: string, role: string): Promise<void> {
  const r = await call(server.url, "GET", `${mount}/creds/${role}?ttl=1h`, { token: tokens[who].token });
  expect(r.status).toBe(200);
  expect(r.body.lease_id).toMatch(new RegExp(`^${mount}/creds/${role}/`));
  issued.push({ lease_id: r.body.lease_id, username: r.body.data.username, who, mount, role });
}

async function createToken(meta: Record<string, string>, displayName: string, policies: string[]) {
  const r = await root("POST", "auth/token/create", { meta, display_name: displayName, policies, ttl: "2h" });
  expect(r.status).toBe(200);
  return { token: r.body.auth.client_token as string, accessor: r.body.auth.accessor as string };
}

/** Every lease id a listing query returns, following `next_after`. */
async function listAll(query: string, limit = 1000): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = "";
  while (after !== null) {
    const q: string = `${query}${query ? "&" : ""}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const r = await root("GET", `sys/leasehold/leases?${q}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    ids.push(...r.body.data.leases.map((l: { lease_id: string }) => l.lease_id));
    after = r.body.data.next_after;
  }
  return ids;
}

const idsOf = (pred: (i: Issued) => boolean) => issued.filter(pred).map((i) => i.lease_id).sort();
const secretOnly = (ids: string[]) => ids.filter((id) => !id.startsWith("auth/")).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const engine = leasingEngine();
  control = engine.control;
  server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
  for (const m of ["tl", "tl2", "tlf"]) expect((await root("POST", `sys/mounts/${m}`, { type: "test-leases" })).status).toBe(204);
  const policy = 'path "tl/*" { capabilities = ["read", "update"] }\npath "tl2/*" { capabilities = ["read"] }\npath "tlf/*" { capabilities = ["read"] }\npath "sys/leasehold/*" { capabilities = ["read", "update"] }\n';
  expect((await root("PUT", "sys/policies/acl/lease-user", { policy })).status).toBe(204);

  tokens.a = await createToken({ app: "web" }, "web-a", ["lease-user"]);
  tokens.b = await createToken({ app: "api" }, "api-b", ["lease-user"]);
  tokens.c = await createToken({ app: "web", team: "blue" }, "web-c", ["lease-user"]);
  tokens.nosudo = tokens.a;

  for (const role of ["ro", "ro", "ro", "rw"]) await issue("a", "tl", role);
  await issue("b", "tl", "ro");
  await issue("b", "tl", "ro");
  await issue("b", "tl2", "ro");
  await sleep(15);
  mark = Date.now();
  await sleep(15);
  await issue("c", "tl", "ro");
  await issue("c", "tl", "ro");
});

afterAll(async () => {
  await server?.stop();
});

describe("GET sys/leasehold/leases", () => {
  it("filters by role, mount (with or without the slash) and their combination", async () => {
    expect((await listAll("role=ro")).sort()).toEqual(idsOf((i) => i.role === "ro"));
    expect((await listAll("role=rw")).sort()).toEqual(idsOf((i) => i.role === "rw"));
    expect((await listAll("mount=tl")).sort()).toEqual(idsOf((i) => i.mount === "tl"));
    expect((await listAll("mount=tl/")).sort()).toEqual(idsOf((i) => i.mount === "tl"));
    expect((await listAll("mount=tl2")).sort()).toEqual(idsOf((i) => i.mount === "tl2"));
    expect((await listAll("mount=tl&role=ro")).sort()).toEqual(idsOf((i) => i.mount === "tl" && i.role === "ro"));
    expect(await listAll("mount=nowhere")).toEqual([]);
  });

  it("filters by the creating token's metadata, accessor and display name", async () => {
    // The tokens' own leases carry their metadata too; kind=secret leaves them out.
    const web = await listAll("metadata.app=web");
    expect(secretOnly(web)).toEqual(idsOf((i) => i.who !== "b"));
    expect(web.filter((id) => id.startsWith("auth/token/create/"))).toHaveLength(2);
    expect((await listAll("metadata.app=web&kind=secret")).sort()).toEqual(idsOf((i) => i.who !== "b"));
    expect(secretOnly(await listAll("metadata.app=web&metadata.team=blue"))).toEqual(idsOf((i) => i.who === "c"));
    expect(await listAll("metadata.app=nobody")).toEqual([]);

    expect(secretOnly(await listAll(`token_accessor=${tokens.b.accessor}`))).toEqual(idsOf((i) => i.who === "b"));
    expect((await listAll(`token_accessor=${tokens.b.accessor}&kind=token`))).toHaveLength(1);
    expect(secretOnly(await listAll("display_name=token-web-a"))).toEqual(idsOf((i) => i.who === "a"));
    expect(secretOnly(await listAll("auth_mount=auth/token&role=ro"))).toEqual(idsOf((i) => i.role === "ro"));
    expect(await listAll("auth_mount=token&role=ro")).toEqual(await listAll("auth_mount=auth/token/&role=ro"));
    expect(await listAll("auth_mount=approle")).toEqual([]);
  });

  it("filters by issue time, as RFC 3339 or unix seconds", async () => {
    const at = new Date(mark).toISOString();
    expect((await listAll(`issued_after=${at}&kind=secret`)).sort()).toEqual(idsOf((i) => i.who === "c"));
    expect((await listAll(`issued_before=${at}&kind=secret`)).sort()).toEqual(idsOf((i) => i.who !== "c"));
    expect((await listAll(`issued_after=${mark / 1000}&kind=secret`)).sort()).toEqual(idsOf((i) => i.who === "c"));
    expect((await listAll(`issued_after=${at}&issued_before=${Math.ceil(Date.now() / 1000) + 60}&mount=tl`)).sort()).toEqual(idsOf((i) => i.who === "c"));
    expect(await listAll(`issued_after=${Math.ceil(Date.now() / 1000) + 60}`)).toEqual([]);
  });

  it("answers rows with the lease's public fields and never its internal data", async () => {
    const lease = issued.find((i) => i.who === "c")!;
    const r = await root("GET", `sys/leasehold/leases?token_accessor=${tokens.c.accessor}&kind=secret&limit=1`);
    expect(r.status).toBe(200);
    expect(r.body.data.total).toBe(2);
    expect(r.body.data.leases).toHaveLength(1);
    const row = r.body.data.leases[0];
    expect(row).toEqual({
      lease_id: idsOf((i) => i.who === "c")[0],
      kind: "secret",
      mount: "tl/",
      role: "ro",
      path: "tl/creds/ro",
      state: "active",
      issue_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      expire_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      display_name: "token-web-c",
      auth_mount: "auth/token/",
      token_accessor: tokens.c.accessor,
      metadata: { app: "web", team: "blue" },
      revoke_attempts: 0,
      revoke_error: "",
    });
    expect(Date.parse(row.expire_time) - Date.parse(row.issue_time)).toBe(3600_000);
    expect(JSON.stringify(r.body)).not.toContain(lease.username);
    expect(r.body.data.next_after).toBe(row.lease_id);
  });

  it("pages with after/limit through every lease exactly once", async () => {
    const everything = await listAll("", 1000);
    const total = (await root("GET", "sys/leasehold/leases")).body.data.total;
    expect(everything.length).toBe(total);
    expect(everything.length).toBeGreaterThanOrEqual(issued.length + 3);
    for (const limit of [1, 3, 4]) {
      const pages: string[][] = [];
      let after: string | null = "";
      while (after !== null) {
        const r = await root("GET", `sys/leasehold/leases?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
        expect(r.status).toBe(200);
        expect(r.body.data.total).toBe(total);
        pages.push(r.body.data.leases.map((l: { lease_id: string }) => l.lease_id));
        after = r.body.data.next_after;
      }
      const flat = pages.flat();
      expect(flat).toEqual(everything);
      expect(new Set(flat).size).toBe(flat.length);
      expect(pages.every((p) => p.length <= limit)).toBe(true);
      expect(pages.length).toBe(Math.max(1, Math.ceil(total / limit)));
    }
    // The default page is 100.
    const def = await root("GET", "sys/leasehold/leases?kind=secret");
    expect(def.body.data.leases).toHaveLength(issued.length);
    expect(def.body.data.next_after).toBeNull();
  });

  it("refuses unknown parameters and bad values with 400", async () => {
    const bad = await root("GET", "sys/leasehold/leases?rolle=ro");
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/unknown query parameter: rolle \(valid: mount, role, path_prefix/);
    for (const [q, msg] of [
      ["limit=0", /limit must be at least 1/],
      ["limit=1001", /limit must be at most 1000/],
      ["limit=x", /expected an integer/],
      ["issued_after=yesterday", /^issued_after: expected an RFC 3339 time/],
      ["state=gone", /^state: must be one of/],
      ["role=", /^role: must not be empty/],
      ["metadata=app", /metadata\.<key>=value/],
    ] as const) {
      const r = await root("GET", `sys/leasehold/leases?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.errors[0], q).toMatch(msg);
    }
  });
});

describe("POST sys/leasehold/leases/revoke", () => {
  it("refuses an empty selector, unknown fields and bad values", async () => {
    for (const body of [{}, { selector: {} }, { selector: { metadata: {} } }, { dry_run: true }]) {
      const r = await root("POST", "sys/leasehold/leases/revoke", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors).toEqual(["refusing to revoke every lease: give at least one selector field"]);
    }
    const unknown = await root("POST", "sys/leasehold/leases/revoke", { selector: { role: "ro", rolle: "x", app: "web" } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0]).toMatch(/^unknown selector fields: rolle, app \(valid: mount, role, path_prefix, token_accessor, auth_mount, display_name, metadata, issued_after, issued_before, kind\)$/);
    const state = await root("POST", "sys/leasehold/leases/revoke", { selector: { state: "active" } });
    expect(state.status).toBe(400);
    expect(state.body.errors[0]).toMatch(/unknown selector field: state/);
    const time = await root("POST", "sys/leasehold/leases/revoke", { selector: { issued_before: "last week" } });
    expect(time.status).toBe(400);
    expect(time.body.errors[0]).toMatch(/^selector\.issued_before: expected an RFC 3339 time/);
    const order = await root("POST", "sys/leasehold/leases/revoke", { selector: { issued_after: 2000, issued_before: 1000 } });
    expect(order.status).toBe(400);
    expect(order.body.errors[0]).toBe("issued_after must be earlier than issued_before");
    const notObject = await root("POST", "sys/leasehold/leases/revoke", { selector: "role=ro" });
    expect(notObject.status).toBe(400);
    expect(notObject.body.errors[0]).toMatch(/selector must be an object/);
    expect(control.issued.size).toBe(issued.length);
  });

  it("needs sudo: a token with update but no sudo is denied", async () => {
    const denied = await call(server.url, "POST", "sys/leasehold/leases/revoke", { token: tokens.nosudo.token, body: { selector: { role: "ro" }, dry_run: true } });
    expect(denied.status).toBe(403);
    const list = await call(server.url, "GET", "sys/leasehold/leases?role=ro", { token: tokens.nosudo.token });
    expect(list.status).toBe(403);
    expect(control.issued.size).toBe(issued.length);
  });

  it("dry_run counts and names the matches and changes nothing", async () => {
    const before = (await root("GET", "sys/leasehold/leases")).body.data.total;
    const callsBefore = control.revokeCalls;
    const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { role: "ro", metadata: { app: "web" } }, dry_run: true });
    expect(r.status).toBe(200);
    const expected = idsOf((i) => i.role === "ro" && i.who !== "b");
    expect(expected).toHaveLength(5);
    expect(r.body.data).toEqual({ dry_run: true, matched: 5, revoked: 0, failed: 0, leases: expected });
    expect(control.revokeCalls).toBe(callsBefore);
    expect(control.issued.size).toBe(issued.length);
    expect((await root("GET", "sys/leasehold/leases")).body.data.total).toBe(before);
  });

  it("revokes exactly the matched leases through the engine and leaves the rest", async () => {
    const callsBefore = control.revokeCalls;
    const target = issued.filter((i) => i.role === "ro" && i.who !== "b");
    const rest = issued.filter((i) => !target.includes(i));
    const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { mount: "tl/", role: "ro", metadata: { app: "web" } } });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ dry_run: false, matched: 5, revoked: 5, failed: 0, leases: target.map((i) => i.lease_id).sort() });
    expect(r.body.warnings).toBeNull();
    expect(control.revokeCalls - callsBefore).toBe(5);
    for (const t of target) {
      expect(control.issued.has(t.username), t.username).toBe(false);
      expect((await root("PUT", "sys/leases/lookup", { lease_id: t.lease_id })).status).toBe(400);
    }
    for (const t of rest) expect(control.issued.has(t.username), t.username).toBe(true);
    expect((await listAll("kind=secret")).sort()).toEqual(rest.map((i) => i.lease_id).sort());
    // The tokens themselves were not matched (their leases have no role): they still work.
    expect((await call(server.url, "GET", "auth/token/lookup-self", { token: tokens.a.token })).status).toBe(200);

    // Nothing left to match: a second run matches nothing.
    const again = await root("POST", "sys/leasehold/leases/revoke", { selector: { mount: "tl", role: "ro", metadata: { app: "web" } } });
    expect(again.body.data).toMatchObject({ matched: 0, revoked: 0, failed: 0, leases: [] });
  });

  it("revokes by issue-time window and token accessor", async () => {
    // b's leases were all issued before the mark; the window [mark, now] holds none of them.
    const empty = await root("POST", "sys/leasehold/leases/revoke", { selector: { token_accessor: tokens.b.accessor, issued_after: new Date(mark).toISOString() } });
    expect(empty.body.data).toMatchObject({ matched: 0, revoked: 0 });
    const bTl = issued.filter((i) => i.who === "b" && i.mount === "tl");
    const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { token_accessor: tokens.b.accessor, mount: "tl", issued_before: Math.floor(mark / 1000) + 1 } });
    expect(r.body.data).toMatchObject({ matched: 2, revoked: 2, failed: 0 });
    for (const t of bTl) expect(control.issued.has(t.username)).toBe(false);
    const bTl2 = issued.find((i) => i.who === "b" && i.mount === "tl2")!;
    expect(control.issued.has(bTl2.username)).toBe(true);
  });

  it("reports failures, keeps the failed leases scheduled for retry and says so", async () => {
    const t = await createToken({ app: "flaky" }, "flaky", ["lease-user"]);
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const r = await call(server.url, "GET", "tlf/creds/x?ttl=1h", { token: t.token });
      ids.push(r.body.lease_id);
    }
    control.failRevoke = true;
    try {
      const r = await root("POST", "sys/leasehold/leases/revoke", { selector: { mount: "tlf" } });
      expect(r.status).toBe(200);
      expect(r.body.data).toMatchObject({ matched: 3, revoked: 0, failed: 3, leases: [...ids].sort() });
      expect(r.body.data.errors_sample).toHaveLength(3);
      expect(r.body.data.errors_sample[0]).toEqual({ lease_id: expect.stringMatching(/^tlf\/creds\/x\//), error: "external system unreachable" });
      expect(r.body.warnings[0]).toMatch(/^3 of 3 matched leases could not be revoked; they stay scheduled and will be retried with backoff/);
      const rows = (await root("GET", "sys/leasehold/leases?mount=tlf&state=revoking")).body.data.leases;
      expect(rows.map((x: { lease_id: string }) => x.lease_id).sort()).toEqual([...ids].sort());
      expect(rows[0]).toMatchObject({ state: "revoking", revoke_attempts: 1, revoke_error: "external system unreachable" });
    } finally {
      control.failRevoke = false;
    }
  });
});
