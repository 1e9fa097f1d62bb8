import { defineConfig } from "vite";

/**
 * The console's build: `vite build src/ui` (the `build:ui` script), output in dist/ui, served by
 * the server at /ui/. No plugin: Vite's own transform compiles TSX for Preact. Nothing is inlined
 * into index.html (the server's Content-Security-Policy allows no inline script or style).
 */
export default defineConfig({
  base: "/ui/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../../dist/ui",
    emptyOutDir: true,
    target: "es2022",
    // The polyfill would be bundled, not inlined, but every browser the console supports has modulepreload.
    modulePreload: { polyfill: false },
    // Keep assets as files: a data: URL for a script or style would be refused by the CSP.
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
