// The console's browser code: one project, several entry points, built into static/console/
// with fixed names (Django's manifest storage adds the hashes in production). The built files
// are committed so that running the app needs no Node; .ci/run rebuilds and compares.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  // Chunks load each other by relative URL, wherever STATIC_URL points.
  base: "./",
  publicDir: false,
  logLevel: "warn",
  build: {
    outDir: "static/console",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      input: {
        canvas: "frontend/entries/canvas.jsx",
        rule_builder: "frontend/entries/rule_builder.jsx",
        message_editor: "frontend/entries/message_editor.jsx",
      },
      output: {
        entryFileNames: "[name].js",
        chunkFileNames: "[name].js",
        assetFileNames: "[name][extname]",
        manualChunks(id) {
          // elkjs stays apart: only a definition without positions loads it.
          if (id.includes("node_modules/elkjs")) return "elk";
          // React is shared by every page; the canvas's libraries load only on the workflow page.
          if (/node_modules\/(react|react-dom|scheduler)\//.test(id)) return "vendor";
          // The code editor (CodeMirror and its parsers) loads only on the message template page.
          if (/node_modules\/(@codemirror|@lezer|@marijn|style-mod|w3c-keyname|crelt)\//.test(id)) return "vendor-editor";
          if (id.includes("node_modules")) return "vendor-canvas";
          if (id.includes("/frontend/rules/")) return "rules";
          return undefined;
        },
      },
    },
  },
});
