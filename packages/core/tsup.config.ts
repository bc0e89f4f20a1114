import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    "testing/index": "src/testing/index.ts",
    prometheus: "src/prometheus.ts",
    auth: "src/auth/index.ts",
    jwt: "src/auth/jwt-entry.ts",
  },
  format: ["esm"],
  target: "node20",
  dts: true,
  sourcemap: true,
  clean: true,
});
