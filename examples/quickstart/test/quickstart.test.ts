import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const serverFile = here("../src/server.ts");
let child: ChildProcess | undefined;

afterEach(() => {
  child?.kill("SIGKILL");
  child = undefined;
});

/** Runs the quickstart as a user would, and returns its printed URL. */
function start(): Promise<{ url: string; output: () => string }> {
  child = spawn(process.execPath, ["--conditions=@whisperchat/source", "--import", "tsx", serverFile], {
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`quickstart did not start: ${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /chat on (ws:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ url: m[1], output: () => out });
      }
    };
    child?.stdout?.on("data", onData);
    child?.stderr?.on("data", onData);
    child?.once("exit", (code) => reject(new Error(`quickstart exited ${code}: ${out}`)));
  });
}

describe("examples/quickstart", () => {
  it("is the snippet the README shows", () => {
    const readme = readFileSync(here("../../../README.md"), "utf8");
    const code = readFileSync(serverFile, "utf8").trim();
    expect(readme).toContain(code);
  });

  it("runs: two nearby clients get matched and chat, and the app's own routes still answer", async () => {
    const { url, output } = await start();
    const a = wrapClient(new WebSocket(url.replace("localhost", "127.0.0.1")));
    const b = wrapClient(new WebSocket(url.replace("localhost", "127.0.0.1")));
    await expectFrame(a, "welcome");
    await expectFrame(b, "welcome");
    a.send({ type: "join", location: { lat: 35.68, lng: 139.76 }, rangeKm: 10, name: "Aiko" });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: { lat: 35.69, lng: 139.7 }, rangeKm: 10, name: "Ben" });
    await expectFrame(b, "waiting");
    expect((await expectFrame(a, "matched")).partner.name).toBe("Ben");
    await expectFrame(b, "matched");
    b.send({ type: "message", id: "1", text: "konnichiwa" });
    expect((await expectFrame(a, "message")).text).toBe("konnichiwa");
    const page = await fetch(url.replace("ws://localhost", "http://127.0.0.1").replace("/whisper", "/"));
    expect(await page.text()).toBe("my app\n");
    expect(output()).toMatch(/(Ben matched Aiko|Aiko matched Ben), within \d+ km/);
    await a.close();
    await b.close();
  });
});
