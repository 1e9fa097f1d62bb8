import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests import the library as applications do; the package's exports point at dist/.
    alias: { "leasehold/client": new URL("./src/client/library.ts", import.meta.url).pathname },
  },
  test: {
    include: ["src/**/*.test.ts", "plugins/**/*.test.ts", "test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
