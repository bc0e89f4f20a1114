import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["@whisperchat/source"] },
  ssr: { resolve: { conditions: ["@whisperchat/source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
