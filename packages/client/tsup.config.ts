import { defineConfig } from "tsup";

// One ESM file that runs unchanged in browsers and in Node: no Node built-ins, no dependencies.
export default defineConfig({
  entry: { index: "src/index.ts" },
  format: ["esm"],
  platform: "neutral",
  target: "es2022",
  dts: true,
  sourcemap: true,
  clean: true,
});
