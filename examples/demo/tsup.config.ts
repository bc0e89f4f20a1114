import { defineConfig } from "tsup";

// `npm start` runs this build (dist/main.js) on the built packages: what users run, not the
// TypeScript sources through a loader. The packages stay imports (they are dependencies).
export default defineConfig({
  entry: { main: "src/main.ts" },
  format: ["esm"],
  target: "node20",
  sourcemap: true,
  clean: true,
});
