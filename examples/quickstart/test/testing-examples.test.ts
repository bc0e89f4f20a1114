// The "Testing your app" examples: the node:test ones run under node's own runner here (vitest
// runs the vitest one), and both READMEs show the vitest and node:test examples as they are.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const examples = { vitest: here("./kit.test.ts"), "node:test": here("./kit.node-test.ts") };
/** Every test file for node's own runner, and how many tests each holds. */
const nodeTests = { [examples["node:test"]]: 1, [here("./fake-timers.node-test.ts")]: 2 };

describe("the test kit examples", () => {
  it("the node:test examples pass under node --test", async () => {
    const child = spawn(
      process.execPath,
      ["--test", "--conditions=@whisperchat/source", "--import", "tsx", ...Object.keys(nodeTests)],
      { cwd: here(".."), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const total = Object.values(nodeTests).reduce((a, b) => a + b, 0);
    expect(out, out).toMatch(new RegExp(`^# pass ${total}$`, "m"));
    expect(out, out).toMatch(/^# fail 0$/m);
    expect(code, out).toBe(0);
  });

  for (const readme of ["../../../README.md", "../../../packages/core/README.md"]) {
    it(`${readme.slice("../../../".length)} shows both examples as they are`, () => {
      const text = readFileSync(here(readme), "utf8");
      for (const file of Object.values(examples)) expect(text).toContain(readFileSync(file, "utf8").trim());
    });
  }
});
