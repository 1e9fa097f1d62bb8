import { describe, expect, it } from "vitest";
import { UserError } from "../sdk/errors.js";
import { DEFAULT_LEASE_TTL_SECONDS, loadDevServerConfig, loadServerConfig, type ServerConfig } from "./config.js";

/** The UserError message loading produces (fails the test when it loads). */
function configError(text: string, fileName = "leasehold.hcl"): string {
  try {
    loadServerConfig(text, fileName);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("expected loadServerConfig to fail");
}

const STORAGE = `storage "sqlite" { path = "/data/leasehold.db" }`;
const PLAIN_LISTENER = `listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}`;
/** A valid config plus `extra` lines, for testing one key at a time. */
const withBase = (extra: string) => `${STORAGE}\n${PLAIN_LISTENER}\n${extra}`;

const FULL_HCL = `
# leasehold server configuration
storage "sqlite" {
  path        = "/var/lib/leasehold/leasehold.db"
  synchronous = "full"
}

listener "tcp" {
  address            = "0.0.0.0:8200"
  tls_cert_file      = "/etc/leasehold/tls.crt"
  tls_key_file       = "/etc/leasehold/tls.key"
  tls_client_ca_file = "/etc/leasehold/clients.pem"
}

listener "tcp" {
  address     = "127.0.0.1:8201"
  tls_disable = true
}

seal "static" {
  key_file = "/etc/leasehold/unseal.key"
}

api_addr          = "https://leasehold.example:8200"
cluster_name      = "prod"
default_lease_ttl = "1h"
max_lease_ttl     = "72h"
log_level         = "debug"
disable_mlock     = true
ui                = false
`;

const FULL_EXPECTED: ServerConfig = {
  storage: { type: "sqlite", path: "/var/lib/leasehold/leasehold.db", synchronous: "FULL" },
  listeners: [
    {
      address: "0.0.0.0:8200",
      tlsDisable: false,
      tlsCertFile: "/etc/leasehold/tls.crt",
      tlsKeyFile: "/etc/leasehold/tls.key",
      tlsClientCaFile: "/etc/leasehold/clients.pem",
    },
    { address: "127.0.0.1:8201", tlsDisable: true },
  ],
  seal: { type: "static", keyFile: "/etc/leasehold/unseal.key" },
  apiAddr: "https://leasehold.example:8200",
  clusterName: "prod",
  defaultLeaseTtl: 3600,
  maxLeaseTtl: 72 * 3600,
  logLevel: "debug",
};

const FULL_JSON = JSON.stringify({
  storage: { sqlite: { path: "/var/lib/leasehold/leasehold.db", synchronous: "full" } },
  listener: [
    {
      tcp: {
        address: "0.0.0.0:8200",
        tls_cert_file: "/etc/leasehold/tls.crt",
        tls_key_file: "/etc/leasehold/tls.key",
        tls_client_ca_file: "/etc/leasehold/clients.pem",
      },
    },
    { tcp: { address: "127.0.0.1:8201", tls_disable: true } },
  ],
  seal: { static: { key_file: "/etc/leasehold/unseal.key" } },
  api_addr: "https://leasehold.example:8200",
  cluster_name: "prod",
  default_lease_ttl: "1h",
  max_lease_ttl: "72h",
  log_level: "debug",
  disable_mlock: true,
  ui: false,
});

describe("loadServerConfig: valid configs", () => {
  it("reads a full HCL config", () => {
    expect(loadServerConfig(FULL_HCL, "leasehold.hcl")).toEqual(FULL_EXPECTED);
  });

  it("reads the same config written as JSON", () => {
    expect(loadServerConfig(FULL_JSON, "leasehold.json")).toEqual(FULL_EXPECTED);
  });

  it("reads JSON with blocks as objects keyed by type, and listeners as an array of bodies", () => {
    const json = JSON.stringify({
      storage: { sqlite: [{ path: "/var/lib/leasehold/leasehold.db", synchronous: "full" }] },
      listener: {
        tcp: [
          { address: "0.0.0.0:8200", tls_cert_file: "/etc/leasehold/tls.crt", tls_key_file: "/etc/leasehold/tls.key", tls_client_ca_file: "/etc/leasehold/clients.pem" },
          { address: "127.0.0.1:8201", tls_disable: "true" },
        ],
      },
      seal: { static: { key_file: "/etc/leasehold/unseal.key" } },
      api_addr: "https://leasehold.example:8200",
      cluster_name: "prod",
      default_lease_ttl: 3600,
      max_lease_ttl: "259200",
      log_level: "debug",
    });
    expect(loadServerConfig(json, "leasehold.json")).toEqual(FULL_EXPECTED);
  });

  it("detects JSON by a leading { whatever the file name", () => {
    expect(loadServerConfig(`\n  ${FULL_JSON}`, "leasehold.conf")).toEqual(FULL_EXPECTED);
  });

  it("fills Vault's defaults for everything optional", () => {
    expect(loadServerConfig(`${STORAGE}\nlistener "tcp" { tls_disable = true }`, "leasehold.hcl")).toEqual({
      storage: { type: "sqlite", path: "/data/leasehold.db", synchronous: "NORMAL" },
      listeners: [{ address: "127.0.0.1:8200", tlsDisable: true }],
      clusterName: "leasehold",
      defaultLeaseTtl: DEFAULT_LEASE_TTL_SECONDS,
      maxLeaseTtl: DEFAULT_LEASE_TTL_SECONDS,
      logLevel: "info",
    });
    expect(DEFAULT_LEASE_TTL_SECONDS).toBe(768 * 3600);
  });

  it("loads a typical Vault config unchanged (HCL1 commas, tls_disable = 1, disable_mlock, ui)", () => {
    const vault = `
      storage "sqlite" { path = "/vault/data.db", synchronous = "NORMAL" }
      listener "tcp" { address = "0.0.0.0:8200"
        tls_disable = 1 }
      disable_mlock = true
      ui = true
      api_addr = "http://127.0.0.1:8200"
    `;
    expect(loadServerConfig(vault, "vault.hcl")).toMatchObject({
      storage: { synchronous: "NORMAL" },
      listeners: [{ address: "0.0.0.0:8200", tlsDisable: true }],
      apiAddr: "http://127.0.0.1:8200",
    });
  });

  it("accepts IPv6 and host-name listener addresses", () => {
    const config = loadServerConfig(`${STORAGE}\nlistener "tcp" {\n address = "[::1]:8200"\n tls_disable = true\n}\nlistener "tcp" {\n address = "leasehold.internal:443"\n tls_disable = true\n}`, "l.hcl");
    expect(config.listeners.map((l) => l.address)).toEqual(["[::1]:8200", "leasehold.internal:443"]);
  });

  it.each([
    [true, true],
    ["true", true],
    ["1", true],
    [1, true],
    [false, false],
    ["false", false],
    ["0", false],
    [0, false],
  ])("reads tls_disable = %j as %j", (value, expected) => {
    const text = `${STORAGE}\nlistener "tcp" {\n tls_disable = ${JSON.stringify(value)}\n tls_cert_file = "c"\n tls_key_file = "k"\n}`;
    expect(loadServerConfig(text, "l.hcl").listeners[0].tlsDisable).toBe(expected);
  });

  it.each([
    ["normal", "NORMAL"],
    ["NORMAL", "NORMAL"],
    ["full", "FULL"],
    ["Full", "FULL"],
  ])("reads synchronous = %j", (value, expected) => {
    const text = `storage "sqlite" {\n path = "/d.db"\n synchronous = "${value}"\n}\n${PLAIN_LISTENER}`;
    expect(loadServerConfig(text, "l.hcl").storage).toMatchObject({ type: "sqlite", synchronous: expected });
  });

  it("reads lease TTLs as Go durations or seconds", () => {
    expect(loadServerConfig(withBase(`default_lease_ttl = "90m"\nmax_lease_ttl = 86400`), "l.hcl")).toMatchObject({ defaultLeaseTtl: 5400, maxLeaseTtl: 86400 });
    expect(loadServerConfig(withBase(`default_lease_ttl = "3600"\nmax_lease_ttl = "1h"`), "l.hcl")).toMatchObject({ defaultLeaseTtl: 3600, maxLeaseTtl: 3600 });
  });

  it.each(["trace", "debug", "info", "warn", "error"] as const)("reads log_level = %j", (level) => {
    expect(loadServerConfig(withBase(`log_level = "${level.toUpperCase()}"`), "l.hcl").logLevel).toBe(level);
  });

  it("reads Vault's spelling log_level = \"warning\" as warn", () => {
    expect(loadServerConfig(withBase(`log_level = "warning"`), "l.hcl").logLevel).toBe("warn");
  });
});

describe("loadServerConfig: errors", () => {
  it("names the line, the block and a close key for an unknown key", () => {
    const text = `${STORAGE}\n\nlistener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n\n  adress = "x"\n}`;
    expect(configError(text)).toBe('leasehold.hcl:7: unknown key "adress" in listener "tcp" (did you mean "address"?)');
  });

  it("names unknown top-level keys, storage keys and seal keys", () => {
    expect(configError(withBase(`log_levle = "info"`))).toBe('leasehold.hcl:6: unknown key "log_levle" (did you mean "log_level"?)');
    expect(configError(withBase(`plugin_directory = "/x"`))).toBe('leasehold.hcl:6: unknown key "plugin_directory"');
    expect(configError(`storage "sqlite" {\n path = "/d"\n synchronus = "full"\n}\n${PLAIN_LISTENER}`)).toBe(
      'leasehold.hcl:3: unknown key "synchronus" in storage "sqlite" (did you mean "synchronous"?)',
    );
    expect(configError(withBase(`seal "static" {\n  keyfile = "/k"\n}`))).toBe('leasehold.hcl:7: unknown key "keyfile" in seal "static" (did you mean "key_file"?)');
  });

  it("names the key without a line for JSON", () => {
    const json = JSON.stringify({ storage: { sqlite: { path: "/d" } }, listener: { tcp: { tls_disable: true, tls_disbale: true } } });
    expect(configError(json, "leasehold.json")).toBe('leasehold.json: unknown key "tls_disbale" in listener "tcp" (did you mean "tls_disable"?)');
  });

  it("reports HCL syntax errors with line and column, and duplicate attributes", () => {
    expect(configError(`${STORAGE}\nlistener "tcp" {\n  address = "x" tls_disable = yes\n}`)).toBe(
      'leasehold.hcl:3:31: expected a value, got "yes" (quote strings: "yes")',
    );
    expect(configError(withBase(`api_addr = "http://a:1"\napi_addr = "http://b:1"`))).toBe('leasehold.hcl:7:1: duplicate attribute "api_addr" (already set on line 6)');
  });

  it("reports invalid JSON", () => {
    expect(configError(`{"storage": `, "leasehold.json")).toMatch(/^leasehold\.json: invalid JSON: /);
    expect(configError(`{"storage": null}`, "leasehold.json")).toBe("leasehold.json: storage: null is not allowed");
  });

  describe("storage", () => {
    it("requires a storage block", () => {
      expect(configError(PLAIN_LISTENER)).toBe('leasehold.hcl: no storage block: add storage "sqlite" { path = "/var/lib/leasehold/leasehold.db" }');
    });

    it("allows only one storage block", () => {
      expect(configError(`${STORAGE}\n${PLAIN_LISTENER}\nstorage "sqlite" { path = "/other.db" }`)).toBe(
        "leasehold.hcl:6: only one storage block is allowed (found 2)",
      );
    });

    it("supports only sqlite and postgresql", () => {
      expect(configError(`storage "raft" { path = "/raft" }\n${PLAIN_LISTENER}`)).toBe('leasehold.hcl:1: storage type "raft" is not supported (supported: sqlite, postgresql)');
    });

    it("requires a non-empty string path", () => {
      expect(configError(`storage "sqlite" {}\n${PLAIN_LISTENER}`)).toBe('leasehold.hcl:1: storage "sqlite": path is required (the SQLite database file)');
      expect(configError(`storage "sqlite" { path = "" }\n${PLAIN_LISTENER}`)).toBe('leasehold.hcl:1: storage "sqlite": path must not be empty');
      expect(configError(`storage "sqlite" {\n path = 5\n}\n${PLAIN_LISTENER}`)).toBe('leasehold.hcl:2: storage "sqlite": path must be a string, got number 5');
    });

    it("accepts only normal or full for synchronous", () => {
      expect(configError(`storage "sqlite" {\n path = "/d"\n synchronous = "off"\n}\n${PLAIN_LISTENER}`)).toBe(
        'leasehold.hcl:3: storage "sqlite": synchronous must be "normal" or "full", got "off"',
      );
    });

    it("refuses storage written as an attribute", () => {
      expect(configError(`storage = "sqlite"\n${PLAIN_LISTENER}`)).toBe(
        'leasehold.hcl:1: storage: expected a block such as storage "<label>" { ... }, got string "sqlite"',
      );
    });
  });

  describe("listener", () => {
    it("requires at least one listener", () => {
      expect(configError(STORAGE)).toBe('leasehold.hcl: no listener block: add listener "tcp" { address = "127.0.0.1:8200" ... }');
    });

    it("supports only tcp", () => {
      expect(configError(`${STORAGE}\nlistener "unix" { address = "/run/l.sock" }`)).toBe('leasehold.hcl:2: listener type "unix" is not supported (supported: tcp)');
    });

    it("requires both TLS files unless tls_disable is set", () => {
      expect(configError(`${STORAGE}\nlistener "tcp" {\n  address = "0.0.0.0:8200"\n}`)).toBe(
        'leasehold.hcl:2: listener "tcp" on 0.0.0.0:8200: TLS is enabled, so tls_cert_file and tls_key_file are required (set tls_disable = true to serve plain HTTP)',
      );
      expect(configError(`${STORAGE}\nlistener "tcp" {\n  tls_cert_file = "/c"\n}`)).toBe(
        'leasehold.hcl:2: listener "tcp" on 127.0.0.1:8200: TLS is enabled, so tls_key_file is required (set tls_disable = true to serve plain HTTP)',
      );
      expect(configError(`${STORAGE}\nlistener "tcp" {\n  tls_disable = "false"\n  tls_key_file = "/k"\n}`)).toMatch(/so tls_cert_file is required/);
    });

    it.each(["yes", 2, "[]"])("refuses tls_disable = %j", (value) => {
      const literal = value === "[]" ? "[]" : JSON.stringify(value);
      const shown = value === "[]" ? "a list" : typeof value === "number" ? `number ${value}` : `string "${value}"`;
      expect(configError(`${STORAGE}\nlistener "tcp" {\n  tls_disable = ${literal}\n}`)).toBe(`leasehold.hcl:3: listener "tcp": tls_disable must be true or false, got ${shown}`);
    });

    it.each(["8200", "localhost", "127.0.0.1:", ":8200", "127.0.0.1:99999", "127.0.0.1:port", "http://127.0.0.1:8200", "::1:8200"])(
      "refuses address = %j",
      (address) => {
        expect(configError(`${STORAGE}\nlistener "tcp" {\n  address = "${address}"\n  tls_disable = true\n}`)).toBe(
          `leasehold.hcl:3: listener "tcp": address must be host:port, such as "127.0.0.1:8200", "0.0.0.0:8200" or "[::1]:8200", got "${address}"`,
        );
      },
    );

    it("refuses two listeners on the same address", () => {
      expect(configError(`${STORAGE}\n${PLAIN_LISTENER}\nlistener "tcp" {\n  tls_disable = true\n}`)).toBe(
        'leasehold.hcl:6: two listeners use the address "127.0.0.1:8200" (the first on line 2)',
      );
    });

    it("refuses an empty TLS file name", () => {
      expect(configError(`${STORAGE}\nlistener "tcp" {\n  tls_cert_file = ""\n  tls_key_file = "/k"\n}`)).toBe('leasehold.hcl:3: listener "tcp": tls_cert_file must not be empty');
    });
  });

  describe("seal", () => {
    it("supports only static", () => {
      expect(configError(withBase(`seal "awskms" { kms_key_id = "x" }`))).toBe('leasehold.hcl:6: seal type "awskms" is not supported (supported: static)');
    });

    it("requires key_file", () => {
      expect(configError(withBase(`seal "static" {}`))).toBe('leasehold.hcl:6: seal "static": key_file is required (the file holding the unseal key)');
    });

    it("allows only one seal", () => {
      expect(configError(withBase(`seal "static" { key_file = "/a" }\nseal "static" { key_file = "/b" }`))).toBe("leasehold.hcl:7: only one seal block is allowed (found 2)");
    });
  });

  describe("top-level values", () => {
    it("requires api_addr to be an http(s) URL", () => {
      for (const bad of ["leasehold.example:8200", "ftp://x", "not a url"]) {
        expect(configError(withBase(`api_addr = "${bad}"`))).toBe(`leasehold.hcl:6: api_addr must be a URL such as "https://leasehold.example:8200", got "${bad}"`);
      }
      expect(configError(withBase(`api_addr = 8200`))).toBe("leasehold.hcl:6: api_addr must be a string, got number 8200");
    });

    it("requires a non-empty cluster_name", () => {
      expect(configError(withBase(`cluster_name = ""`))).toBe("leasehold.hcl:6: cluster_name must not be empty");
    });

    it("refuses invalid, zero and non-duration lease TTLs", () => {
      expect(configError(withBase(`default_lease_ttl = "1 hour"`))).toBe('leasehold.hcl:6: default_lease_ttl: invalid duration "1 hour"');
      expect(configError(withBase(`max_lease_ttl = 0`))).toBe("leasehold.hcl:6: max_lease_ttl must be greater than zero");
      expect(configError(withBase(`max_lease_ttl = -5`))).toBe("leasehold.hcl:6: max_lease_ttl: must be a non-negative duration");
      expect(configError(withBase(`default_lease_ttl = true`))).toBe(
        'leasehold.hcl:6: default_lease_ttl: expected a duration such as "768h" or a number of seconds, got boolean true',
      );
    });

    it("requires max_lease_ttl >= default_lease_ttl, including against the 768h default", () => {
      expect(configError(withBase(`default_lease_ttl = "2h"\nmax_lease_ttl = "1h"`))).toBe(
        "leasehold.hcl:7: max_lease_ttl (3600s) must be at least default_lease_ttl (7200s)",
      );
      expect(configError(withBase(`default_lease_ttl = "1000h"`))).toBe(
        "leasehold.hcl:6: max_lease_ttl (2764800s) must be at least default_lease_ttl (3600000s)",
      );
    });

    it("refuses unknown log levels", () => {
      expect(configError(withBase(`log_level = "verbose"`))).toBe('leasehold.hcl:6: log_level must be one of trace, debug, info, warn, error, got "verbose"');
    });

    it("still checks the values of the ignored disable_mlock and ui", () => {
      expect(configError(withBase(`disable_mlock = "maybe"`))).toBe('leasehold.hcl:6: disable_mlock must be true or false, got string "maybe"');
      expect(configError(withBase(`ui = [true]`))).toBe("leasehold.hcl:6: ui must be true or false, got a list");
    });
  });
});

describe("loadServerConfig: safety mode and the lease count warning", () => {
  it("reads disable_revocation and lease_count_warning_threshold, in HCL and JSON", () => {
    const c = loadServerConfig(withBase(`disable_revocation = true\nlease_count_warning_threshold = 1000`), "leasehold.hcl");
    expect(c.disableRevocation).toBe(true);
    expect(c.leaseCountWarningThreshold).toBe(1000);
    expect(loadServerConfig(withBase(`disable_revocation = false`), "leasehold.hcl").disableRevocation).toBe(false);
    const json = loadServerConfig(
      JSON.stringify({ storage: { sqlite: { path: "/d.db" } }, listener: { tcp: { address: "127.0.0.1:8200", tls_disable: true } }, disable_revocation: true, lease_count_warning_threshold: 5 }),
      "leasehold.json",
    );
    expect(json).toMatchObject({ disableRevocation: true, leaseCountWarningThreshold: 5 });
  });

  it("leaves both unset when absent (revocation on, the core's 500000 default)", () => {
    const c = loadServerConfig(withBase(""), "leasehold.hcl");
    expect(c.disableRevocation).toBeUndefined();
    expect(c.leaseCountWarningThreshold).toBeUndefined();
  });

  it("refuses a non-boolean disable_revocation and a bad threshold, naming the key and line", () => {
    expect(configError(withBase(`disable_revocation = "soon"`))).toBe('leasehold.hcl:6: disable_revocation must be true or false, got string "soon"');
    expect(configError(withBase(`disable_revocation = 2`))).toMatch(/^leasehold\.hcl:6: disable_revocation must be true or false/);
    expect(configError(withBase(`lease_count_warning_threshold = 0`))).toBe("leasehold.hcl:6: lease_count_warning_threshold must be a positive whole number, got number 0");
    expect(configError(withBase(`lease_count_warning_threshold = 1.5`))).toMatch(/lease_count_warning_threshold must be a positive whole number/);
    expect(configError(withBase(`lease_count_warning_threshold = "many"`))).toMatch(/lease_count_warning_threshold must be a positive whole number/);
    expect(configError(withBase(`disable_revocaton = true`))).toContain('(did you mean "disable_revocation"?)');
  });
});

describe("lease revocation retry keys", () => {
  const base = `storage "sqlite" { path = "/tmp/x.db" }\nlistener "tcp" { tls_disable = true }\n`;
  it("reads the retry base, cap and attempts", () => {
    const c = loadServerConfig(base + `lease_revoke_retry_base = "2s"\nlease_revoke_retry_cap = "10m"\nlease_revoke_max_attempts = 5\n`, "l.hcl");
    expect(c.leaseRetry).toEqual({ baseMs: 2000, capMs: 600_000, maxAttempts: 5 });
  });
  it("leaves the policy to the defaults when no key is given", () => {
    expect(loadServerConfig(base, "l.hcl").leaseRetry).toBeUndefined();
  });
  it("refuses a cap below the base and a zero attempt count, naming the key", () => {
    expect(() => loadServerConfig(base + `lease_revoke_retry_base = "1m"\nlease_revoke_retry_cap = "10s"\n`, "l.hcl")).toThrow(/l\.hcl:4.*lease_revoke_retry_cap/);
    expect(() => loadServerConfig(base + `lease_revoke_max_attempts = 0\n`, "l.hcl")).toThrow(/lease_revoke_max_attempts/);
  });
});

describe("loadDevServerConfig (-dev -config=FILE)", () => {
  it("reads the top-level settings and needs no storage or listener", () => {
    const c = loadDevServerConfig(`max_lease_ttl = "87600h"\ndefault_lease_ttl = "1h"\nlog_level = "warn"\ndisable_revocation = true\nlease_revoke_max_attempts = 3\n`, "dev.hcl");
    expect(c).toEqual({ listeners: [], defaultLeaseTtl: 3600, maxLeaseTtl: 87600 * 3600, logLevel: "warn", disableRevocation: true, leaseRetry: { maxAttempts: 3 } });
  });

  it("keeps the dev cluster name unless the file names one, and reads extra listeners", () => {
    expect(loadDevServerConfig("", "dev.hcl").clusterName).toBeUndefined();
    const c = loadDevServerConfig(`cluster_name = "lab"\nlistener "tcp" {\n  address = "127.0.0.1:8300"\n  tls_disable = true\n}\n`, "dev.hcl");
    expect(c.clusterName).toBe("lab");
    expect(c.listeners).toEqual([{ address: "127.0.0.1:8300", tlsDisable: true }]);
  });

  it("refuses storage and seal blocks, saying why and what to do, and checks keys as the server does", () => {
    expect(() => loadDevServerConfig(`max_lease_ttl = "87600h"\n${STORAGE}\n`, "dev.hcl")).toThrow(/^dev\.hcl:2: -dev keeps its store in memory: remove the storage block, or start without -dev/);
    expect(() => loadDevServerConfig(`seal "static" { key_file = "/k" }\n`, "dev.hcl")).toThrow(/^dev\.hcl:1: -dev starts unsealed with its own key: remove the seal block/);
    expect(() => loadDevServerConfig(`max_lease_tl = "1h"\n`, "dev.hcl")).toThrow(/did you mean "max_lease_ttl"/);
    expect(() => loadDevServerConfig(`default_lease_ttl = "2h"\nmax_lease_ttl = "1h"\n`, "dev.hcl")).toThrow(/max_lease_ttl \(3600s\) must be at least default_lease_ttl/);
  });
});

describe("listener limits and timeouts (Vault's listener keys)", () => {
  const listener = (lines: string) => `${STORAGE}\nlistener "tcp" {\n  tls_disable = true\n${lines}\n}`;

  it("reads the timeouts as durations (in ms) and max_request_size in bytes", () => {
    const l = loadServerConfig(
      listener(
        `  http_read_header_timeout = "500ms"\n  http_read_timeout = "1m"\n  http_write_timeout = 0\n  http_idle_timeout = "2m30s"\n  max_request_duration = 120\n  max_request_size = 1048576`,
      ),
      "l.hcl",
    ).listeners[0];
    expect(l).toEqual({
      address: "127.0.0.1:8200",
      tlsDisable: true,
      readHeaderTimeoutMs: 500,
      readTimeoutMs: 60_000,
      writeTimeoutMs: 0,
      idleTimeoutMs: 150_000,
      maxRequestDurationMs: 120_000,
      maxRequestSize: 1048576,
    });
  });

  it("reads them from JSON too, and leaves them unset when absent (the defaults apply at listen time)", () => {
    const json = JSON.stringify({ storage: { sqlite: { path: "/d" } }, listener: [{ tcp: { tls_disable: true, http_read_timeout: "45s", max_request_size: "2048" } }] });
    expect(loadServerConfig(json, "l.json").listeners[0]).toEqual({ address: "127.0.0.1:8200", tlsDisable: true, readTimeoutMs: 45_000, maxRequestSize: 2048 });
    expect(loadServerConfig(listener(""), "l.hcl").listeners[0]).toEqual({ address: "127.0.0.1:8200", tlsDisable: true });
  });

  it("refuses bad values, naming the key and line", () => {
    expect(configError(listener(`  http_read_timeout = "soon"`))).toMatch(/^leasehold\.hcl:4: .*http_read_timeout.*invalid duration "soon"/);
    expect(configError(listener(`  http_idle_timeout = true`))).toMatch(/^leasehold\.hcl:4: .*http_idle_timeout: expected a duration/);
    expect(configError(listener(`  max_request_size = -1`))).toMatch(/^leasehold\.hcl:4: listener "tcp": max_request_size must not be negative/);
    expect(configError(listener(`  max_request_size = "32MiB"`))).toMatch(/^leasehold\.hcl:4: listener "tcp": max_request_size must be a whole number of bytes/);
    expect(configError(listener(`  max_request_duraton = "1s"`))).toMatch(/did you mean "max_request_duration"/);
  });
});
