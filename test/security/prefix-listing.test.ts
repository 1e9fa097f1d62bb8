/**
 * Issue 15, item 16: keys with a character outside the Basic Multilingual Plane right after a
 * listed prefix were missing from LIST and survived a mount disable (the range scan's upper bound
 * was `prefix + U+FFFF`, and a 4-byte UTF-8 character sorts above it). Positive controls: ordinary
 * keys list as before, and the raw store query used to check the purge does see the keys before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/run.js";
import { PostgresStorage } from "../../src/storage/postgres.js";
import { SqliteStorage } from "../../src/storage/sqlite.js";
import { call, startTestServer } from "../helpers/server.js";

let server: RunningServer;
const root = (method: string, path: string, body?: unknown) => call(server.url, method, path, { token: "root", body });
const EMOJI_KEY = "😀x";
const enc = (key: string) => key.split("/").map(encodeURIComponent).join("/");

/** Every physical key under a mount's storage, straight from the table (not through `list`), on either store. */
async function rawKeys(uuid: string): Promise<string[]> {
  const physical = server.core.barrier.physical;
  const prefix = `logical/${uuid}/`;
  if (physical instanceof SqliteStorage) return (physical.db.prepare("SELECT key FROM kv WHERE substr(key, 1, ?) = ?").all(prefix.length, prefix) as { key: string }[]).map((r) => r.key);
  if (physical instanceof PostgresStorage) return (await physical.pool.query<{ key: string }>(`SELECT key FROM ${physical.names.kv} WHERE starts_with(key, $1)`, [prefix])).rows.map((r) => r.key);
  throw new Error(`no raw key reader for the ${physical.kind} store`);
}

async function mountUuid(path: string): Promise<string> {
  const r = await root("GET", "sys/mounts");
  expect(r.status).toBe(200);
  const uuid = (r.body.data ?? r.body)[path]?.uuid as string | undefined;
  expect(uuid).toBeTruthy();
  return uuid!;
}

beforeAll(async () => {
  server = await startTestServer({ rootTokenId: "root" });
});

afterAll(async () => {
  await server?.stop();
});

describe("LIST and mount purge with characters outside the BMP", () => {
  it("lists a key whose first character after the prefix is outside the BMP, next to ordinary keys", async () => {
    for (const k of [`app/${EMOJI_KEY}`, "app/plain", "app/sub/deep", "app0"]) {
      expect((await root("POST", `secret/data/${enc(k)}`, { data: { v: "1" } })).status).toBe(200);
    }
    const r = await root("LIST", "secret/metadata/app/");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.keys).toEqual(["plain", "sub/", EMOJI_KEY]);
    // The key reads back under its listed name.
    expect((await root("GET", `secret/data/app/${enc(EMOJI_KEY)}`)).body.data.data).toEqual({ v: "1" });
    // A prefix ending in the astral character itself lists what follows it.
    expect((await root("POST", `secret/data/${enc("app2/😀/a")}`, { data: { v: "2" } })).status).toBe(200);
    expect((await root("LIST", `secret/metadata/${enc("app2/😀/")}`)).body.data.keys).toEqual(["a"]);
  });

  it("deletes such keys when the mount is disabled", async () => {
    expect((await root("POST", "sys/mounts/kvx", { type: "kv", options: { version: "2" } })).status).toBe(204);
    const uuid = await mountUuid("kvx/");
    for (const k of [`app/${EMOJI_KEY}`, "app/plain", `${EMOJI_KEY}`]) {
      expect((await root("POST", `kvx/data/${enc(k)}`, { data: { v: "1" } })).status).toBe(200);
    }
    // The raw query sees the mount's keys, the astral ones included.
    const before = await rawKeys(uuid);
    expect(before.some((k) => k.endsWith(`app/${EMOJI_KEY}`))).toBe(true);
    expect(before.some((k) => k.endsWith("app/plain"))).toBe(true);

    expect((await root("DELETE", "sys/mounts/kvx")).status).toBe(204);
    expect(await rawKeys(uuid)).toEqual([]);

    // Enabled again at the same path: empty.
    expect((await root("POST", "sys/mounts/kvx", { type: "kv", options: { version: "2" } })).status).toBe(204);
    expect((await root("LIST", "kvx/metadata/app/")).status).toBe(404);
    expect((await root("GET", `kvx/data/app/${enc(EMOJI_KEY)}`)).status).toBe(404);
  });
});
