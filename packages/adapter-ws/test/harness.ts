import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ServerFrame, Store, WhisperHub, WhisperOptions } from "@whisperchat/core";
import { createWhisper } from "@whisperchat/core";
import type { ClusterNode, TestClient, TransportHarness } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { WebSocket } from "ws";
import { attachWebSocket, type WebSocketAdapter, type WebSocketAdapterOptions } from "../src/index.js";

/** Frames that carried coordinates to a client: must stay empty (docs/protocol.md, section 1, privacy rule). */
export const coordinateLeaks: string[] = [];

/** A ws client that queues every frame it receives. */
export function wrapClient(ws: WebSocket): TestClient & { ws: WebSocket } {
  const queue: ServerFrame[] = [];
  const waiters: ((f: ServerFrame) => void)[] = [];
  ws.on("message", (data) => {
    const text = data.toString();
    if (/"(lat|lng|latitude|longitude|location)"\s*:/.test(text)) coordinateLeaks.push(text);
    const frame = JSON.parse(text) as ServerFrame;
    const w = waiters.shift();
    if (w) w(frame);
    else queue.push(frame);
  });
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  return {
    ws,
    send(frame) {
      ws.send(JSON.stringify(frame));
    },
    next(timeoutMs = 3000) {
      const f = queue.shift();
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no frame within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (frame: ServerFrame) => {
          clearTimeout(timer);
          resolve(frame);
        };
        waiters.push(done);
      });
    },
    pending: () => queue,
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close(1000);
      await closed;
    },
    async drop() {
      ws.terminate();
      await closed;
    },
  };
}

export interface WsHarness extends TransportHarness {
  hub: WhisperHub;
  server: Server;
  adapter: WebSocketAdapter;
  url: string;
}

/** A hub on a memory store, mounted with adapter-ws on a loopback HTTP server. */
export async function startWsHarness(
  hubOptions: Partial<WhisperOptions> = {},
  adapterOptions: Partial<WebSocketAdapterOptions> = {},
  harnessOptions: { closeStore?: boolean } = {},
): Promise<WsHarness> {
  const store = hubOptions.store ?? createMemoryStore();
  const hub = createWhisper({ ...hubOptions, store });
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const adapter = attachWebSocket(hub, { server, ...adapterOptions });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `ws://127.0.0.1:${port}${adapter.path}`;
  const withParams = (params: Record<string, string | undefined> = {}): string => {
    const u = new URL(url);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
    return u.toString();
  };
  return {
    hub,
    server,
    adapter,
    url,
    async connect(params) {
      const ws = new WebSocket(withParams(params), "whisperchat.v1");
      const client = wrapClient(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      return client;
    },
    async connectRefused(params) {
      const { headers, ...rest } = params ?? {};
      const ws = new WebSocket(withParams(rest), { headers });
      return new Promise((resolve, reject) => {
        ws.once("open", () => reject(new Error("the connection was accepted")));
        ws.once("unexpected-response", (_req, res) => {
          const retryAfter = res.headers["retry-after"];
          resolve(
            retryAfter === undefined
              ? { status: res.statusCode ?? 0 }
              : { status: res.statusCode ?? 0, retryAfterSec: Number(retryAfter) },
          );
          res.resume();
          ws.terminate();
        });
        ws.once("error", () => undefined);
      });
    },
    sendRaw(client, data) {
      (client as TestClient & { ws: WebSocket }).ws.send(data);
    },
    async close() {
      await hub.close();
      await adapter.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      if (harnessOptions.closeStore !== false) await store.close();
    },
  };
}

/**
 * A node of a test cluster on a shared store (the store is the caller's to close). `crash()`
 * stops it as a crash would: the hub halts and its sockets are cut without a close frame.
 */
export async function startWsClusterNode(
  store: Store,
  options: Partial<WhisperOptions>,
): Promise<ClusterNode> {
  const h = await startWsHarness({ ...options, store }, {}, { closeStore: false });
  return {
    ...h,
    async crash() {
      await h.hub.halt();
      for (const ws of h.adapter.wss.clients) ws.terminate();
      await h.close();
    },
  };
}
