import { defineConfig } from "vitest/config";

// Tests import the library as applications do; the package's exports point at dist/.
const resolve = { alias: { "leasehold/client": new URL("./src/client/library.ts", import.meta.url).pathname } };

/** What both projects share. globalSetup stays on the root config only: it must start one PostgreSQL per run, not one per project. */
const shared = {
  setupFiles: ["test/setup.ts"],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: "forks" as const,
};

/**
 * The storage-agnostic HTTP-level tests: every in-process server they start goes through
 * startTestServer (test/helpers/server.ts), which opens the store LEASEHOLD_TEST_STORAGE names.
 * The "postgresql" project runs them again, each server on a fresh database of the embedded
 * PostgreSQL. Files that start no test server, or only servers with a storage config of their own
 * (spawned processes, `storage "sqlite"` config files, a Core over SqliteStorage), or that read
 * the SQLite file itself, are left out below: they would only repeat the SQLite run, or fail.
 */
const storageAgnostic = [
  "test/e2e/*.test.ts",
  "test/security/*.test.ts",
  // From the other directories, the most storage-heavy only (the run time stays modest):
  "test/pki/revoke.test.ts", // revocation records, CRL rebuilds, tidy of the certificate store
  "test/auth/approle.test.ts", // secret IDs with use counts, accessors, tidy
  "test/auth/userpass.test.ts", // password hashes in the mount's storage, re-hashing
];

const notStorageAgnostic = [
  // Own storage config: a server process or Core over a `storage` block of their own.
  "test/e2e/config-server.test.ts", // config files with storage "sqlite", spawned processes
  "test/e2e/config-values.test.ts", // config parsing, no test server
  "test/e2e/postgres-server.test.ts", // already the PostgreSQL backend, through its config
  "test/e2e/operator-migrate.test.ts", // migrates between the two backends itself
  "test/e2e/ha*.test.ts", // HA nodes over their own PostgreSQL databases, processes of their own
  "test/e2e/mount-table.test.ts", // a Core over a SQLite file, restarted
  "test/e2e/secrets-at-rest.test.ts", // reads the SQLite file to check nothing is in clear
  "test/security/sealed.test.ts", // a server from a storage "sqlite" config
  "test/security/secrets-in-clear.test.ts", // reads the SQLite file
  "test/security/storage-at-rest.test.ts", // reads the SQLite file and its WAL
  "test/security/http-body.test.ts", // calls startDevServer directly (its own logger), SQLite in memory
  // Storage-neutral: HTTP parsing, TLS, listeners and crypto, nothing the store changes. Left out to
  // keep the PostgreSQL run short (it measured 2 min 40 s to 3 min 16 s with them on 2 busy cores).
  "test/security/listener.test.ts",
  "test/security/forwarded-headers.test.ts",
  "test/security/list-method.test.ts",
  "test/security/jwt-forgery.test.ts",
  "test/security/cert-auth.test.ts",
  "test/security/pki-constraints.test.ts",
  "test/security/username-template.test.ts",
  "test/e2e/host-info.test.ts",
  "test/e2e/dev-server.test.ts",
];

export default defineConfig({
  resolve,
  test: {
    globalSetup: ["test/global-setup.ts"],
    projects: [
      {
        resolve,
        test: {
          ...shared,
          name: "sqlite",
          include: ["src/**/*.test.ts", "plugins/**/*.test.ts", "test/**/*.test.ts"],
          // Explicit, so a LEASEHOLD_TEST_STORAGE left in the shell cannot move this project.
          env: { LEASEHOLD_TEST_STORAGE: "sqlite" },
        },
      },
      {
        resolve,
        test: {
          ...shared,
          name: "postgresql",
          include: storageAgnostic,
          exclude: notStorageAgnostic,
          env: { LEASEHOLD_TEST_STORAGE: "postgresql" },
        },
      },
    ],
  },
});
