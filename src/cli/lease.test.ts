import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../server/run.js";
import { leasingEngine, type LeasingEngineControl } from "../../test/helpers/leasing-engine.js";
import { call, startTestServer } from "../../test/helpers/server.js";
import { parseSelector, selectorBody, selectorQuery, withProgress } from "./commands/lease.js";
import { UsageError } from "./context.js";
import { memoryIo } from "./memory-io.js";
import { runCli } from "./program.js";

/** `leasehold lease ...` in-process against the real dev server, with the test engine issuing credentials. */
let server: RunningServer;
let control: LeasingEngineControl;
let home: string;

interface Issued {
  lease_id: string;
  username: string;
  who: "web" | "api";
  role: string;
}
const issued: Issued[] = [];
const tokens: Record<"web" | "api", string> = { web: "", api: "" };

async function cli(argv: string[], opts: { stderrTTY?: boolean } = {}) {
  const io = memoryIo({ env: { LEASEHOLD_ADDR: server.url, LEASEHOLD_TOKEN: "root" }, homeDir: home });
  if (opts.stderrTTY) {
    const write = io.stderr.write.bind(io.stderr);
    io.stderr = { write, isTTY: true };
  }
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

async function issue(who: "web" | "api", mount: string, role: string): Promise<Issued> {
  const r = await call(server.url, "GET", `${mount}/creds/${role}?ttl=1h`, { token: tokens[who] });
  expect(r.status).toBe(200);
  const i = { lease_id: r.body.lease_id as string, username: r.body.data.username as string, who, role };
  issued.push(i);
  return i;
}

const live = (i: Issued) => control.issued.has(i.username);
/** The LEASE ID column of a `lease list` table. */
const tableIds = (out: string) =>
  out
    .trim()
    .split("\n")
    .slice(2)
    .map((l) => l.split(/\s+/)[0]);

beforeAll(async () => {
  const engine = leasingEngine();
  control = engine.control;
  server = await startTestServer({ rootTokenId: "root", extraPlugins: [engine.plugin] });
  home = mkdtempSync(join(tmpdir(), "lh-lease-cli-"));
  const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
  for (const m of ["tl", "bulk", "pre"]) expect((await root("POST", `sys/mounts/${m}`, { type: "test-leases" })).status).toBe(204);
  expect((await root("PUT", "sys/policies/acl/user", { policy: 'path "+/creds/*" { capabilities = ["read"] }' })).status).toBe(204);
  for (const who of ["web", "api"] as const) {
    const r = await root("POST", "auth/token/create", { meta: { app: who }, display_name: who, policies: ["user"], ttl: "2h" });
    tokens[who] = r.body.auth.client_token;
  }
  for (const role of ["ro", "ro", "ro", "rw"]) await issue("web", "tl", role);
  for (const role of ["ro", "rw"]) await issue("api", "tl", role);
});

afterAll(async () => {
  await server?.stop();
});

describe("selector parsing", () => {
  it("splits key=value pairs, metadata.<key> and escaped commas", () => {
    const sel = parseSelector(["role=ro,metadata.app=web, mount=database", "metadata.note=a\\,b"], ["role", "mount"]);
    expect(sel).toEqual({ fields: { role: "ro", mount: "database" }, metadata: { app: "web", note: "a,b" } });
    expect(selectorBody(sel)).toEqual({ role: "ro", mount: "database", metadata: { app: "web", note: "a,b" } });
    expect(selectorQuery(sel)).toEqual({ role: "ro", mount: "database", "metadata.app": "web", "metadata.note": "a,b" });
  });

  it("refuses unknown keys, missing values and repeats with a usage error", () => {
    expect(() => parseSelector(["rolle=ro"], ["role", "mount"])).toThrow(/^Unknown selector key "rolle" \(valid keys: role, mount, metadata\.<key>\)$/);
    expect(() => parseSelector(["role"], ["role"])).toThrow(UsageError);
    expect(() => parseSelector(["role="], ["role"])).toThrow(/role needs a value/);
    expect(() => parseSelector(["role=a,role=b"], ["role"])).toThrow(/given twice/);
    expect(() => parseSelector(["metadata.=x"], ["role"])).toThrow(/needs a key/);
  });
});

describe("progress line", () => {
  it("redraws one line on a terminal and erases it at the end", async () => {
    let text = "";
    const r = await withProgress({ write: (s: string) => (text += s), isTTY: true }, true, "working", new Promise((res) => setTimeout(() => res(7), 130)), 50);
    expect(r).toBe(7);
    expect(text.startsWith("\r\x1b[2K| working (0s elapsed)")).toBe(true);
    expect(text.match(/\r\x1b\[2K[|/\\-] working \(\d+s elapsed\)/g)!.length).toBeGreaterThanOrEqual(3);
    expect(text.endsWith("\r\x1b[2K")).toBe(true);
    expect(text).not.toContain("\n");
  });

  it("writes whole lines when not a terminal, and nothing when disabled", async () => {
    let text = "";
    await withProgress({ write: (s: string) => (text += s) }, true, "working", new Promise((res) => setTimeout(res, 80)), 50);
    expect(text).toMatch(/^\| working \(0s elapsed\)\n\/ working \(0s elapsed\)\n/);
    let none = "";
    await withProgress({ write: (s: string) => (none += s), isTTY: true }, false, "working", Promise.resolve());
    expect(none).toBe("");
  });
});

describe("leasehold lease against the dev server", () => {
  it("lookup and renew speak sys/leases with vault's output", async () => {
    const l = issued[0];
    const look = await cli(["lease", "lookup", l.lease_id]);
    expect(look.code).toBe(0);
    expect(look.out).toMatch(new RegExp(`\\nid +${l.lease_id.replace(/\//g, "\\/")}\\n`));
    expect(look.out).toMatch(/\nrenewable +true\n/);
    const json = JSON.parse((await cli(["lease", "lookup", "-format=json", l.lease_id])).out);
    expect(json.data).toMatchObject({ id: l.lease_id, renewable: true });

    const renew = await cli(["lease", "renew", "-increment=30m", l.lease_id]);
    expect(renew.code).toBe(0);
    expect(renew.out).toMatch(new RegExp(`\\nlease_id +${l.lease_id.replace(/\//g, "\\/")}\\n`));
    expect(renew.out).toMatch(/\nlease_duration +30m\n/);
    const after = JSON.parse((await cli(["lease", "lookup", "-format=json", l.lease_id])).out);
    expect(after.data.ttl).toBeGreaterThan(1790);
    expect(after.data.ttl).toBeLessThanOrEqual(1800);

    const missing = await cli(["lease", "lookup", "tl/creds/ro/nope"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^Error looking up lease: Code: 400\. Errors:\n\n\* invalid lease/);
  });

  it("list --selector prints a table of the matches and follows pages", async () => {
    const r = await cli(["lease", "list", "--selector", "role=ro,metadata.app=web,mount=tl"]);
    expect(r.code).toBe(0);
    expect(r.out.split("\n")[0]).toMatch(/^LEASE ID +STATE +EXPIRES +ROLE +DISPLAY NAME$/);
    const want = issued.filter((i) => i.who === "web" && i.role === "ro").map((i) => i.lease_id).sort();
    expect(tableIds(r.out)).toEqual(want);
    expect(r.out).toMatch(/\ntl\/creds\/ro\/\S+ +active +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +ro +token-web\n/);

    // -limit caps the rows and says there are more.
    const limited = await cli(["lease", "list", "-selector=mount=tl", "-limit=2"]);
    expect(limited.code).toBe(0);
    expect(tableIds(limited.out)).toHaveLength(2);
    expect(limited.err).toBe(`Showing 2 of ${issued.length} leases (raise -limit to see more)\n`);

    // JSON gathers every page into one envelope.
    const all = JSON.parse((await cli(["lease", "list", "-format=json", "--selector", "mount=tl,kind=secret"])).out);
    expect(all.data.leases.map((l: { lease_id: string }) => l.lease_id).sort()).toEqual(issued.map((i) => i.lease_id).sort());
    expect(all.data).toMatchObject({ next_after: null, total: issued.length });
    expect(all).toHaveProperty("request_id");

    const none = await cli(["lease", "list", "--selector", "metadata.app=nobody"]);
    expect(none).toMatchObject({ code: 0, out: "", err: "No leases found\n" });
  });

  it("list PREFIX lists the leases under a path, alone or with a selector", async () => {
    const rw = await cli(["lease", "list", "tl/creds/rw/"]);
    expect(rw.code, rw.err).toBe(0);
    expect(tableIds(rw.out)).toEqual(issued.filter((i) => i.role === "rw").map((i) => i.lease_id).sort());
    const webRw = await cli(["lease", "list", "tl/creds/rw", "-selector=metadata.app=web"]);
    expect(tableIds(webRw.out)).toEqual(issued.filter((i) => i.role === "rw" && i.who === "web").map((i) => i.lease_id));
    const twice = await cli(["lease", "list", "tl/", "-selector=path_prefix=tl/"]);
    expect(twice).toMatchObject({ code: 2, err: "Give the prefix once: as the PREFIX argument or as path_prefix in -selector\n" });
  });

  it("list follows next_after past the server's page size", async () => {
    // 1,005 leases: more than one 1,000-row page.
    const r = await call(server.url, "GET", "sys/leasehold/leases?mount=tl&limit=1", { token: "root" });
    expect(r.body.data.total).toBe(issued.length);
    const many: string[] = [];
    for (let n = 0; n < 1005; n++) {
      const x = await call(server.url, "GET", "bulk/creds/many?ttl=1h", { token: tokens.api });
      many.push(x.body.lease_id);
    }
    const out = await cli(["lease", "list", "--selector", "mount=bulk"]);
    expect(out.code).toBe(0);
    const ids = tableIds(out.out);
    expect(ids).toHaveLength(1005);
    expect(new Set(ids).size).toBe(1005);
    expect([...ids].sort()).toEqual([...many].sort());
    expect(out.err).toBe("");

    // A large revocation: the answer names the first 100 ids and counts the rest.
    const dry = JSON.parse((await cli(["lease", "revoke", "-format=json", "--selector", "mount=bulk", "--dry-run"])).out);
    expect(dry.data).toMatchObject({ matched: 1005, revoked: 0, failed: 0 });
    expect(dry.data.leases).toEqual([...many].sort().slice(0, 100));
    const usernames = [...control.issued.keys()].filter((u) => u.startsWith("u-many-"));
    expect(usernames).toHaveLength(1005);
    const real = await cli(["lease", "revoke", "--selector", "mount=bulk"]);
    expect(real.code).toBe(0);
    expect(real.out).toMatch(/\nmatched +1005\nrevoked +1005\nfailed +0\n/);
    expect(real.out).toContain("Lease IDs (first 100 of 1005)");
    expect(usernames.some((u) => control.issued.has(u))).toBe(false);
  });

  it("unknown selector keys and bad combinations are usage errors (exit 2)", async () => {
    const bad = await cli(["lease", "list", "--selector", "app=web"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('Unknown selector key "app" (valid keys: mount, role, path_prefix, token_accessor, auth_mount, display_name, issued_after, issued_before, kind, state, metadata.<key>)\n');
    const state = await cli(["lease", "revoke", "--selector", "state=active"]);
    expect(state.code).toBe(2);
    expect(state.err).toMatch(/^Unknown selector key "state"/);
    expect((await cli(["lease", "revoke", "--selector", ""])).err).toMatch(/^Refusing to revoke every lease/);
    expect((await cli(["lease", "revoke", "--selector", "role=ro", "tl/"])).code).toBe(2);
    expect((await cli(["lease", "revoke", "-prefix", "--selector", "role=ro"])).code).toBe(2);
    expect((await cli(["lease", "revoke", "-dry-run", "tl/"])).code).toBe(2);
    expect((await cli(["lease", "revoke"])).code).toBe(2);
    expect((await cli(["lease", "list", "-limit=0"])).code).toBe(2);
    // A value the server refuses is a server error (exit 1) with its message.
    const time = await cli(["lease", "list", "--selector", "issued_after=soon"]);
    expect(time.code).toBe(1);
    expect(time.err).toMatch(/Code: 400\. Errors:\n\n\* issued_after: expected an RFC 3339 time/);
    expect(issued.every(live)).toBe(true);
  });

  it("revoke --selector --dry-run names the matches and revokes nothing", async () => {
    const calls = control.revokeCalls;
    const r = await cli(["lease", "revoke", "--selector", "role=ro,metadata.app=web", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Dry run: 3 leases would be revoked; nothing was changed\.\n/);
    expect(r.out).toMatch(/\nmatched +3\nrevoked +0\nfailed +0\n/);
    const want = issued.filter((i) => i.who === "web" && i.role === "ro").map((i) => i.lease_id).sort();
    expect(r.out).toContain(`Lease IDs (first 3 of 3)\n${"-".repeat("Lease IDs (first 3 of 3)".length)}\n${want.join("\n")}\n`);
    expect(r.err).toBe("");
    expect(control.revokeCalls).toBe(calls);
    expect(issued.every(live)).toBe(true);

    const json = JSON.parse((await cli(["lease", "revoke", "-format=json", "-selector=role=ro,metadata.app=web", "-dry-run"])).out);
    expect(json.data).toEqual({ dry_run: true, matched: 3, revoked: 0, failed: 0, leases: want });
    expect(issued.every(live)).toBe(true);
  });

  it("revoke --selector revokes exactly the matches and shows progress when asked", async () => {
    const target = issued.filter((i) => i.who === "web" && i.role === "ro");
    const rest = issued.filter((i) => !target.includes(i));
    control.revokeDelayMs = 2500; // one request that takes well over a second, even on a loaded machine
    let r;
    try {
      r = await cli(["lease", "revoke", "--selector", "role=ro,metadata.app=web,mount=tl", "--progress"]);
    } finally {
      control.revokeDelayMs = 0;
    }
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Key +Value\n-+ +-+\nmatched +3\nrevoked +3\nfailed +0\n/);
    // One progress line per second while the request runs (the first at 0 s); timers may run late on a loaded machine.
    expect(r.err).toMatch(/^\| revoking leases matching role=ro,metadata\.app=web,mount=tl \(\d+s elapsed\)\n/);
    expect((r.err.match(/[|/\\-] revoking leases matching .* \(\d+s elapsed\)\n/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(target.some(live)).toBe(false);
    expect(rest.every(live)).toBe(true);
    const left = JSON.parse((await cli(["lease", "list", "-format=json", "-selector=mount=tl"])).out);
    expect(left.data.leases.map((l: { lease_id: string }) => l.lease_id).sort()).toEqual(rest.map((i) => i.lease_id).sort());
  });

  it("revoke --selector without --progress is quiet off a terminal and uses a redrawn line on one", async () => {
    const a = await issue("api", "tl", "tmp");
    const b = await issue("api", "tl", "tmp2");
    const quiet = await cli(["lease", "revoke", "--selector", "role=tmp"]);
    expect(quiet.code).toBe(0);
    expect(quiet.err).toBe("");
    expect(live(a)).toBe(false);
    const tty = await cli(["lease", "revoke", "--selector", "role=tmp2"], { stderrTTY: true });
    expect(tty.code).toBe(0);
    expect(tty.err.startsWith("\r\x1b[2K| revoking leases matching role=tmp2")).toBe(true);
    expect(tty.err.endsWith("\r\x1b[2K")).toBe(true);
    expect(live(b)).toBe(false);
  });

  it("revoke --selector reports failures and exits 1", async () => {
    const f = await issue("api", "tl", "flaky");
    control.failRevoke = true;
    let r;
    try {
      r = await cli(["lease", "revoke", "--selector", "role=flaky"]);
    } finally {
      control.failRevoke = false;
    }
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\nmatched +1\nrevoked +0\nfailed +1\n/);
    expect(r.err).toContain(`Errors (first 1 of 1):\n  ${f.lease_id}: external system unreachable\n`);
    expect(r.err).toMatch(/will be retried with backoff/);
    expect(live(f)).toBe(true);
  });

  it("revoke ID, -prefix, -sync=false and -force use vault's endpoints and messages", async () => {
    const one = await issue("api", "pre", "a");
    const r = await cli(["lease", "revoke", one.lease_id]);
    expect(r).toMatchObject({ code: 0, out: `Success! Revoked lease: ${one.lease_id}\n` });
    expect(live(one)).toBe(false);

    const p1 = await issue("api", "pre", "b");
    const p2 = await issue("api", "pre", "b");
    const keep = await issue("api", "pre", "c");
    const prefix = await cli(["lease", "revoke", "-prefix", "pre/creds/b"]);
    expect(prefix).toMatchObject({ code: 0, out: "Success! Revoked any leases with prefix: pre/creds/b\n" });
    expect(live(p1) || live(p2)).toBe(false);
    expect(live(keep)).toBe(true);

    const q = await issue("api", "pre", "q");
    const queued = await cli(["lease", "revoke", "-sync=false", q.lease_id]);
    expect(queued).toMatchObject({ code: 0, out: "All revocation operations queued successfully!\n" });
    for (let n = 0; n < 50 && live(q); n++) await new Promise((res) => setTimeout(res, 50));
    expect(live(q)).toBe(false);

    // -force removes the record even though the engine fails (and implies -prefix).
    control.failRevoke = true;
    let forced;
    try {
      forced = await cli(["lease", "revoke", "-force", "pre/creds/c"]);
    } finally {
      control.failRevoke = false;
    }
    expect(forced.code).toBe(0);
    expect(forced.out).toBe("Success! Force revoked any leases with prefix: pre/creds/c\n");
    expect(forced.err).toMatch(/^Warning! Force-removing leases/);
    expect(forced.err).toContain(`lease ${keep.lease_id} removed although its revocation failed: external system unreachable`);
    expect(live(keep)).toBe(true); // the engine failed: the credential is still out there
    expect((await call(server.url, "PUT", "sys/leases/lookup", { token: "root", body: { lease_id: keep.lease_id } })).status).toBe(400);
  });
});
