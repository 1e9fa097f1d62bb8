import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { ClientConfigError, DEFAULT_ADDRESS, clientOptionsFromSettings, readPem, readTokenFile, resolveClientSettings, writeTokenFile } from "./index.js";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "leasehold-home-"));
});

describe("resolveClientSettings", () => {
  it("defaults to the dev server's plain-http address and no token", () => {
    const s = resolveClientSettings({}, {}, home);
    expect(s.address).toBe("http://127.0.0.1:8200");
    expect(s.address).toBe(DEFAULT_ADDRESS);
    expect(s.addressSource).toBe("default");
    expect(s.token).toBeUndefined();
    expect(s.tokenSource).toBeUndefined();
    expect(s.skipVerify).toBe(false);
    expect(s.tokenFile).toBe(join(home, ".leasehold-token"));
  });

  it("prefers flags, then LEASEHOLD_*, then VAULT_*, then the token file", () => {
    writeFileSync(join(home, ".leasehold-token"), "from-file\n");
    const env = {
      LEASEHOLD_ADDR: "http://leasehold:8200",
      LEASEHOLD_TOKEN: "from-leasehold-env",
      VAULT_ADDR: "http://vault:8200",
      VAULT_TOKEN: "from-vault-env",
    };
    const flagged = resolveClientSettings(env, { address: "http://flag:8200", token: "from-flag" }, home);
    expect([flagged.address, flagged.token, flagged.tokenSource]).toEqual(["http://flag:8200", "from-flag", "flag"]);

    const leaseholdEnv = resolveClientSettings(env, {}, home);
    expect([leaseholdEnv.address, leaseholdEnv.addressSource, leaseholdEnv.token, leaseholdEnv.tokenSource]).toEqual([
      "http://leasehold:8200",
      "LEASEHOLD_ADDR",
      "from-leasehold-env",
      "LEASEHOLD_TOKEN",
    ]);

    const vaultEnv = resolveClientSettings({ VAULT_ADDR: env.VAULT_ADDR, VAULT_TOKEN: env.VAULT_TOKEN }, {}, home);
    expect([vaultEnv.address, vaultEnv.token, vaultEnv.tokenSource]).toEqual(["http://vault:8200", "from-vault-env", "VAULT_TOKEN"]);

    const fileOnly = resolveClientSettings({}, {}, home);
    expect([fileOnly.token, fileOnly.tokenSource]).toEqual(["from-file", "token-file"]);
  });

  it("treats empty variables as unset", () => {
    const s = resolveClientSettings({ LEASEHOLD_ADDR: "", VAULT_ADDR: "http://vault:8200", LEASEHOLD_TOKEN: "", VAULT_TOKEN: "v" }, { token: "" }, home);
    expect(s.address).toBe("http://vault:8200");
    expect(s.token).toBe("v");
  });

  it("reads TLS and namespace settings from either prefix", () => {
    const s = resolveClientSettings(
      { VAULT_CACERT: "/etc/vault/ca.pem", LEASEHOLD_CLIENT_CERT: "/c.pem", VAULT_CLIENT_KEY: "/k.pem", VAULT_NAMESPACE: "ns1", VAULT_SKIP_VERIFY: "true" },
      {},
      home,
    );
    expect(s.caCert).toBe("/etc/vault/ca.pem");
    expect(s.clientCert).toBe("/c.pem");
    expect(s.clientKey).toBe("/k.pem");
    expect(s.namespace).toBe("ns1");
    expect(s.skipVerify).toBe(true);
    expect(resolveClientSettings({ LEASEHOLD_SKIP_VERIFY: "0", VAULT_SKIP_VERIFY: "1" }, {}, home).skipVerify).toBe(false);
    expect(resolveClientSettings({ VAULT_SKIP_VERIFY: "1" }, { skipVerify: false }, home).skipVerify).toBe(false);
  });

  it("rejects a skip-verify value that is not a boolean", () => {
    expect(() => resolveClientSettings({ LEASEHOLD_SKIP_VERIFY: "maybe" }, {}, home)).toThrow(ClientConfigError);
  });
});

describe("token file", () => {
  it("stores the token with mode 0600 and reads it back trimmed", () => {
    writeFileSync(join(home, ".leasehold-token"), "old", { mode: 0o644 });
    const file = writeTokenFile("lhs.abc", home);
    expect(file).toBe(join(home, ".leasehold-token"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readTokenFile(home)).toBe("lhs.abc");
  });

  it("is absent or empty without error", () => {
    expect(readTokenFile(home)).toBeUndefined();
    writeFileSync(join(home, ".leasehold-token"), "  \n");
    expect(readTokenFile(home)).toBeUndefined();
  });
});

describe("PEM loading", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

  it("passes PEM text through and reads a path", () => {
    expect(readPem(pem)).toBe(pem);
    const file = join(home, "ca.pem");
    writeFileSync(file, pem);
    expect(readPem(file)).toBe(pem);
    const opts = clientOptionsFromSettings(resolveClientSettings({ LEASEHOLD_CACERT: file }, {}, home));
    expect(opts.caCert).toBe(pem);
  });

  it("names the file it cannot read", () => {
    expect(() => readPem(join(home, "nope.pem"), "CA certificate")).toThrow(/cannot read the CA certificate file .*nope\.pem/);
  });
});
