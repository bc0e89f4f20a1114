import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { createClient, type MessageFrame, type WhisperClient } from "@whisperchat/client";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type ChatApp, createChatApp } from "../src/app.js";

let running: ChatApp | undefined;
const logged: string[] = [];
const clients: WhisperClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await running?.close();
  running = undefined;
});

async function start(): Promise<{ http: string; ws: string }> {
  running = createChatApp({ log: (line) => logged.push(line) });
  const server = running.server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/whisper` };
}

function nextMessage(c: WhisperClient): Promise<MessageFrame> {
  return new Promise((resolve) => {
    const off = c.on("message", (m) => {
      off();
      resolve(m);
    });
  });
}

describe("examples/express", () => {
  it("serves the app's own routes and WhisperChat on the same server", async () => {
    const url = await start();
    const hello = await fetch(`${url.http}/api/hello`);
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: "world" });
    expect((await fetch(`${url.http}/api/nope`)).status).toBe(404); // Express's own 404

    const a = createClient({ url: url.ws, WebSocket });
    const b = createClient({ url: url.ws, WebSocket });
    clients.push(a, b);
    await a.connect();
    await b.connect();
    const matched = new Promise<void>((resolve) => b.once("matched", () => resolve()));
    await a.join({ location: { lat: 52.52, lng: 13.405 }, rangeKm: 5, name: "Anna" });
    await b.join({ location: { lat: 52.51, lng: 13.39 }, rangeKm: 5, name: "Bruno" });
    await matched;

    const toB = nextMessage(b);
    await a.send("hallo Bruno");
    expect((await toB).text).toBe("hallo Bruno");
    const toA = nextMessage(a);
    await b.send("hallo Anna");
    expect((await toA).text).toBe("hallo Anna");

    // An app route that reads the hub.
    const stats = await (await fetch(`${url.http}/api/chat/stats`)).json();
    expect(stats).toEqual({ sessions: 2, waiting: 0, rooms: 1, messages: 2 });
    expect(logged.at(-1)).toMatch(/matched/);
  });

  it("npm start runs it; SIGTERM drains and exits 0", async () => {
    const main = fileURLToPath(new URL("../src/server.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=@whisperchat/source", "--import", "tsx", main], {
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`did not start: ${out}`)), 15_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /app on (http:\/\/localhost:\d+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1].replace("localhost", "127.0.0.1"));
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
    });
    expect(await (await fetch(`${base}/api/hello`)).json()).toEqual({ hello: "world" });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
