import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";
import { ConfigError, readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";

let demo: Demo | undefined;
afterEach(async () => {
  await demo?.close();
  demo = undefined;
});

describe("demo config", () => {
  it("has defaults that work with no settings", () => {
    expect(readConfig({})).toMatchObject({
      port: 3000,
      host: "127.0.0.1",
      store: "memory",
      auth: "guest",
      resumeGraceMs: 30000,
      msgPerSec: 5,
      msgBurst: 10,
      connectPerSec: 5,
      connectBurst: 20,
      keyPrefix: "whisper:",
    });
  });
  it("rejects bad values with a message naming the setting", () => {
    expect(() => readConfig({ PORT: "http" })).toThrow(ConfigError);
    expect(() => readConfig({ WHISPER_STORE: "mongo" })).toThrow(/WHISPER_STORE/);
    expect(() => readConfig({ WHISPER_MSG_PER_SEC: "-1" })).toThrow(/WHISPER_MSG_PER_SEC/);
  });
});

describe("demo server", () => {
  it("serves the page, its assets and /healthz, and 404 elsewhere", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }));
    const page = await fetch(`${demo.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const html = await page.text();
    expect(html).toMatch(/<script type="module" src="\/app.js"><\/script>/);
    for (const [path, type] of [
      ["/app.js", /javascript/],
      ["/style.css", /text\/css/],
    ] as const) {
      const r = await fetch(demo.url + path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(type);
    }
    const health = await fetch(`${demo.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect((await fetch(`${demo.url}/../package.json`)).status).toBe(404);
    expect((await fetch(`${demo.url}/nope`)).status).toBe(404);
  });

  it("applies the message rate settings", async () => {
    demo = await startDemo(readConfig({ PORT: "0", WHISPER_MSG_PER_SEC: "1", WHISPER_MSG_BURST: "2" }));
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    const welcome = await expectFrame(ws, "welcome");
    expect(welcome.limits.messagesPerSec).toBe(1);
    expect(welcome.limits.messageBurst).toBe(2);
    await ws.close();
  });

  it("drains on SIGTERM: closes WebSockets with 1012 and exits 0", async () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=@whisperchat/source", "--import", "tsx", main], {
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start: ${out}`)), 15_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
    });
    const ws = wrapClient(new WebSocket(`${url.replace("http", "ws")}/whisper`));
    await expectFrame(ws, "welcome");
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await ws.closed).toBe(1012);
    expect(await exited).toBe(0);
  });
});
