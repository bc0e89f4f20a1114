// The app test kit's client over a real WebSocket: the same test body runs in-process and end to
// end against adapter-ws on loopback. Core does not depend on ws: the constructor is passed in.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { attachWebSocket } from "@whisperchat/adapter-ws";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { createWhisper, type WhisperHub, type WhisperOptions } from "../src/index.js";
import {
  ConnectionRefusedError,
  type ConnectOptions,
  connectInProcess,
  connectWs,
  type TestChatClient,
  type TestWebSocket,
} from "../src/testing/index.js";

interface Running {
  hub: WhisperHub;
  url: string;
  close(): Promise<void>;
}

let running: Running | undefined;
afterEach(async () => {
  vi.unstubAllGlobals();
  await running?.close();
  running = undefined;
});

/** A hub on a memory store, mounted with adapter-ws on a loopback port. */
async function serve(options: Partial<WhisperOptions> = {}): Promise<Running> {
  const store = createMemoryStore();
  const hub = createWhisper({ ...options, store });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const adapter = attachWebSocket(hub, { server });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  running = {
    hub,
    url: `ws://127.0.0.1:${port}/whisper`,
    async close() {
      await hub.close();
      await adapter.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
  return running;
}

/** One test body, whatever the way of connecting. */
async function chatScenario(connect: (options?: ConnectOptions) => Promise<TestChatClient>): Promise<void> {
  const ana = await connect();
  const ben = await connect();
  await ana.join({ location: { lat: 52.52, lng: 13.405 }, rangeKm: 5, name: "Ana" });
  await ben.join({ location: { lat: 52.51, lng: 13.39 }, rangeKm: 5, name: "Ben" });
  expect((await ana.expectFrame("matched")).partner.name).toBe("Ben");
  const { roomId } = await ben.expectFrame("matched");
  await ana.send("hallo");
  expect((await ben.expectFrame("message")).text).toBe("hallo");
  await expect(ana.join({ location: { lat: 0, lng: 0 }, rangeKm: 1 })).rejects.toMatchObject({
    code: "in_room",
  });
  await ben.drop();
  expect(await ana.expectFrame("partner_away")).toEqual({ type: "partner_away", roomId });
  const back = await connect({ resume: ben.welcome.resumeToken });
  expect(back.welcome.resumed).toBe(true);
  await ana.expectFrame("partner_back");
  await ana.next();
  expect(await back.expectFrame("partner_left")).toEqual({ type: "partner_left", roomId, reason: "next" });
  expect(await back.close()).toEqual({ code: 1000, reason: "" });
  await ana.close();
}

/** The standard WebSocket interface only, as browsers and Node 22 have it: no terminate, pause or status. */
class StandardWebSocket implements TestWebSocket {
  private readonly ws: WebSocket;
  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
  }
  get readyState(): number {
    return this.ws.readyState;
  }
  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
  set onmessage(fn: TestWebSocket["onmessage"]) {
    this.ws.onmessage = fn === null ? null : (event) => fn({ data: event.data });
  }
  set onclose(fn: TestWebSocket["onclose"]) {
    this.ws.onclose = fn === null ? null : (event) => fn({ code: event.code, reason: event.reason });
  }
  set onerror(fn: TestWebSocket["onerror"]) {
    this.ws.onerror = fn;
  }
}

describe("connectWs", () => {
  it("runs the same test body in-process and over a real WebSocket", async () => {
    const { hub, url } = await serve();
    await chatScenario((options) => connectInProcess(hub, options));
    await chatScenario((options) => connectWs(url, { ...options, WebSocket }));
  });

  it("reports a refused handshake with its status, code and message (ws's WebSocket)", async () => {
    const { url } = await serve({ allowGuests: false });
    const refused = await connectWs(url, { WebSocket }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionRefusedError);
    expect(refused).toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("works with the standard WebSocket interface, says what it cannot do, and sees refusals without a status", async () => {
    const { url } = await serve({
      allowGuests: false,
      authenticate: (_h, t) => (t === "ok" ? { userId: "u", name: "U", roles: [] } : null),
    });
    const refused = await connectWs(url, { WebSocket: StandardWebSocket }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionRefusedError);
    expect((refused as ConnectionRefusedError).status).toBeUndefined();
    const c = await connectWs(url, { WebSocket: StandardWebSocket, token: "ok" });
    expect((await c.ping()).type).toBe("pong");
    await expect(c.drop()).rejects.toThrow(
      /drop\(\) needs a WebSocket with terminate\(\), which the standard one lacks: pass \{ WebSocket \} from "ws"/,
    );
    expect(() => c.pause()).toThrow(/pause\(\) needs a WebSocket with pause\(\)/);
    expect((await c.close()).code).toBe(1000);
  });

  it("uses the global WebSocket by default, and says how to pass one when there is none", async () => {
    const { url } = await serve();
    vi.stubGlobal("WebSocket", undefined);
    await expect(connectWs(url)).rejects.toThrow(
      /no global WebSocket \(Node 20\); pass one: connectWs\(url, \{ WebSocket \}\) with the WebSocket of the ws package/,
    );
    vi.stubGlobal("WebSocket", StandardWebSocket);
    const c = await connectWs(url);
    expect(c.welcome.type).toBe("welcome");
    await c.close();
  });

  it("a bad timeoutMs is a RangeError before any socket opens", async () => {
    let opened = 0;
    class Counting extends StandardWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        opened++;
      }
    }
    await expect(
      connectWs("ws://127.0.0.1:1/whisper", { WebSocket: Counting, timeoutMs: 0 }),
    ).rejects.toThrow(/timeoutMs must be a positive number, got 0/);
    expect(opened).toBe(0);
  });

  it("refuses a URL that is not ws:// or wss://", async () => {
    await expect(connectWs("http://127.0.0.1:1/whisper", { WebSocket })).rejects.toThrow(
      /ws:\/\/ or wss:\/\//,
    );
    await expect(connectWs("nope", { WebSocket })).rejects.toThrow(/not a URL/);
  });
});
