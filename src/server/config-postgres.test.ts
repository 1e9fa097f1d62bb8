import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadServerConfig } from "./config.js";

const LISTENER = `listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}`;
const URL_ = "postgres://leasehold:pw@db.example:5432/leasehold?sslmode=verify-full";
const ENV_KEYS = ["LEASEHOLD_PG_CONNECTION_URL", "VAULT_PG_CONNECTION_URL"] as const;

function configError(text: string): string {
  try {
    loadServerConfig(text, "leasehold.hcl");
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected a config error");
}

describe('storage "postgresql"', () => {
  const saved: Partial<Record<(typeof ENV_KEYS)[number], string>> = {};
  beforeEach(() => {
    for (const k of ENV_KEYS) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
  });
  afterEach(() => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it("reads Vault's keys with leasehold's defaults", () => {
    expect(loadServerConfig(`storage "postgresql" {\n  connection_url = "${URL_}"\n}\n${LISTENER}`, "l.hcl").storage).toEqual({
      type: "postgresql", connectionUrl: URL_, table: "leasehold_kv_store", maxParallel: 16, haTable: "leasehold_ha_locks",
    });
    const full = `storage "postgresql" {\n  connection_url = "${URL_}"\n  table = "vault_kv"\n  schema = "vault"\n  max_parallel = "32"\n  max_idle_connections = 0\n  ha_enabled = "false"\n  ha_table = "vault_ha_locks"\n}\n${LISTENER}`;
    expect(loadServerConfig(full, "l.hcl").storage).toEqual({ type: "postgresql", connectionUrl: URL_, table: "vault_kv", schema: "vault", maxParallel: 32, haTable: "vault_ha_locks" });
    // The JSON form of the same block.
    const json = JSON.stringify({ storage: { postgresql: { connection_url: URL_, max_parallel: 4 } }, listener: { tcp: { address: "127.0.0.1:8200", tls_disable: true } } });
    expect(loadServerConfig(json, "l.json").storage).toMatchObject({ type: "postgresql", maxParallel: 4 });
  });

  it("takes the connection URL from LEASEHOLD_PG_CONNECTION_URL, then VAULT_PG_CONNECTION_URL, when the key is absent", () => {
    const text = `storage "postgresql" {}\n${LISTENER}`;
    expect(configError(text)).toBe('leasehold.hcl:1: storage "postgresql": connection_url is required (or set LEASEHOLD_PG_CONNECTION_URL), e.g. "postgres://leasehold:PASSWORD@db.example:5432/leasehold?sslmode=verify-full"');
    process.env.VAULT_PG_CONNECTION_URL = "postgres://vault-env/db";
    expect(loadServerConfig(text, "l.hcl").storage).toMatchObject({ connectionUrl: "postgres://vault-env/db" });
    process.env.LEASEHOLD_PG_CONNECTION_URL = "postgresql://leasehold-env/db";
    expect(loadServerConfig(text, "l.hcl").storage).toMatchObject({ connectionUrl: "postgresql://leasehold-env/db" });
    // The file's key wins over both.
    expect(loadServerConfig(`storage "postgresql" { connection_url = "${URL_}" }\n${LISTENER}`, "l.hcl").storage).toMatchObject({ connectionUrl: URL_ });
  });

  it("ha_enabled = true needs api_addr; SQLite refuses it; false is accepted", () => {
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  ha_enabled = "true"\n}\n${LISTENER}`)).toBe(
      'leasehold.hcl:3: storage "postgresql": ha_enabled = true needs api_addr (this node\'s address as clients reach it, e.g. api_addr = "https://node1.example:8200")',
    );
    const ha = loadServerConfig(`storage "postgresql" {\n  connection_url = "${URL_}"\n  ha_enabled = true\n  ha_lock_lifetime = "5s"\n}\n${LISTENER}\napi_addr = "https://n1.example:8200"\ncluster_addr = "https://n1.example:8201"\n`, "l.hcl");
    expect(ha.storage).toMatchObject({ type: "postgresql", haEnabled: true, haLockLifetimeMs: 5000 });
    expect(ha).toMatchObject({ apiAddr: "https://n1.example:8200", clusterAddr: "https://n1.example:8201" });
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  ha_lock_lifetime = "100ms"\n}\n${LISTENER}`)).toMatch(/^leasehold\.hcl:3: .*ha_lock_lifetime must be between 1s and 10m/);
    expect(configError(`storage "sqlite" {\n  path = "/tmp/x.db"\n  ha_enabled = true\n}\n${LISTENER}`)).toMatch(/^leasehold\.hcl:3: storage "sqlite": ha_enabled is not available on SQLite/);
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  ha_enabled = "yes"\n}\n${LISTENER}`)).toBe('leasehold.hcl:3: storage "postgresql": ha_enabled must be true or false, got string "yes"');
    const off = loadServerConfig(`storage "postgresql" {\n  connection_url = "${URL_}"\n  ha_enabled = false\n}\n${LISTENER}`, "l.hcl").storage;
    expect(off.type === "postgresql" && off.haEnabled).toBeFalsy();
  });

  it("refuses unknown keys, bad names and sizes, and a connection string that is not a URL without echoing it", () => {
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  tabel = "x"\n}\n${LISTENER}`)).toBe('leasehold.hcl:3: unknown key "tabel" in storage "postgresql" (did you mean "table"?)');
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  path = "/x.db"\n}\n${LISTENER}`)).toMatch(/^leasehold\.hcl:3: unknown key "path" in storage "postgresql"/);
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  table = "kv; DROP TABLE x"\n}\n${LISTENER}`)).toMatch(/^leasehold\.hcl:3: storage "postgresql": table must be letters, digits and _/);
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  table = "${"t".repeat(41)}"\n}\n${LISTENER}`)).toMatch(/table must be .*at most 40/);
    expect(configError(`storage "postgresql" {\n  connection_url = "${URL_}"\n  max_parallel = 0\n}\n${LISTENER}`)).toBe("leasehold.hcl:3: max_parallel must be a positive whole number, got number 0");
    const dsn = configError(`storage "postgresql" {\n  connection_url = "host=db password=hunter2"\n}\n${LISTENER}`);
    expect(dsn).toBe('leasehold.hcl:2: storage "postgresql": connection_url must be a URL starting with postgres:// or postgresql://');
    expect(dsn).not.toContain("hunter2");
    // The sqlite keys stay sqlite's.
    expect(configError(`storage "sqlite" {\n  path = "/d.db"\n  connection_url = "${URL_}"\n}\n${LISTENER}`)).toMatch(/^leasehold\.hcl:3: unknown key "connection_url" in storage "sqlite"/);
  });
});
