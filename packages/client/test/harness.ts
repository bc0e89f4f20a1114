import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { createWhisper, type WhisperHub, type WhisperOptions } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { WebSocket } from "ws";
import {
  type ClientState,
  createClient,
  type ServerFrame,
  type WebSocketLike,
  type WhisperClient,
  type WhisperClientEvents,
  type WhisperClientOptions,
} from "../src/index.js";

/** A real server: hub on a memory store, mounted with adapter-ws on a loopback HTTP server. */
export interface TestServer {
  url: string;
  server: Server;
  hub: WhisperHub;
  adapter: WebSocketAdapter;
  /** Terminates the server side of a client's connection (a drop: the client sees 1006). */
  drop(client: ControlledSocketClass): void;
  /** Replaces the hub with a new one on a new store, as a restart would (closes sessions with 1012). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(hubOptions: Partial<WhisperOptions> = {}): Promise<TestServer> {
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  let store = createMemoryStore();
  let hub = createWhisper({ store, ...hubOptions });
  let adapter = attachWebSocket(hub, { server });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const t: TestServer = {
    url: `ws://127.0.0.1:${port}/whisper`,
    server,
    hub,
    adapter,
    drop(client) {
      const port = client.localPort();
      for (const ws of adapter.wss.clients) {
        const socket = (ws as unknown as { _socket?: Socket })._socket;
        if (socket?.remotePort === port) ws.terminate();
      }
    },
    async restart() {
      await hub.close({ code: 1012 });
      await adapter.close();
      await store.close();
      store = createMemoryStore();
      hub = createWhisper({ store, ...hubOptions });
      adapter = attachWebSocket(hub, { server });
      t.hub = hub;
      t.adapter = adapter;
    },
    async close() {
      await hub.close();
      await adapter.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await store.close();
    },
  };
  return t;
}

/**
 * A WebSocket class (for the client's `WebSocket` option) on top of `ws`, which a test can
 * steer: refuse new connections, hide incoming frames, and find the connection's local port.
 */
export interface ControlledSocketClass {
  new (url: string, protocols?: string | string[]): WebSocketLike;
  /** While true, connections go to a closed port and fail. */
  blocked: boolean;
  /** Incoming frames for which this returns true are dropped before the client sees them. */
  swallow: ((frame: ServerFrame) => boolean) | undefined;
  /** Every socket made, newest last. */
  readonly sockets: WebSocket[];
  /** The local port of the newest socket. */
  localPort(): number | undefined;
}

export function controlledSocket(): ControlledSocketClass {
  const sockets: WebSocket[] = [];
  const C = class ControlledSocket implements WebSocketLike {
    static blocked = false;
    static swallow: ((frame: ServerFrame) => boolean) | undefined;
    static readonly sockets = sockets;
    static localPort(): number | undefined {
      const ws = sockets.at(-1);
      return (ws as unknown as { _socket?: Socket } | undefined)?._socket?.localPort;
    }
    readonly inner: WebSocket;
    onopen: WebSocketLike["onopen"] = null;
    onmessage: WebSocketLike["onmessage"] = null;
    onclose: WebSocketLike["onclose"] = null;
    onerror: WebSocketLike["onerror"] = null;
    constructor(url: string, protocols?: string | string[]) {
      const target = C.blocked ? url.replace(/:\d+\//, ":1/") : url;
      this.inner = new WebSocket(target, protocols);
      sockets.push(this.inner);
      this.inner.on("open", () => this.onopen?.({}));
      this.inner.on("message", (data) => {
        const text = data.toString();
        if (C.swallow?.(JSON.parse(text) as ServerFrame)) return;
        this.onmessage?.({ data: text });
      });
      this.inner.on("close", (code, reason) => this.onclose?.({ code, reason: reason.toString() }));
      this.inner.on("error", (error) => this.onerror?.(error));
    }
    get readyState(): number {
      return this.inner.readyState;
    }
    send(data: string): void {
      this.inner.send(data);
    }
    close(code?: number, reason?: string): void {
      this.inner.close(code, reason);
    }
  };
  return C;
}

/** Fast reconnects for tests. */
export const FAST_RECONNECT = { initialDelayMs: 20, maxDelayMs: 100 } as const;

export function client(url: string, options: Partial<WhisperClientOptions> = {}): WhisperClient {
  return createClient({ url, WebSocket, reconnect: FAST_RECONNECT, ...options });
}

/** Resolves with the next payload of `event` (optionally the next one that passes `filter`). */
export function next<K extends keyof WhisperClientEvents>(
  c: WhisperClient,
  event: K,
  filter: (payload: WhisperClientEvents[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<WhisperClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = c.on(event, (payload) => {
      if (!filter(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Resolves when the client reaches `state`. */
export function reach(c: WhisperClient, state: ClientState): Promise<unknown> {
  if (c.state === state) return Promise.resolve();
  return next(c, "state", (s) => s.state === state);
}

/** Records every payload of an event. */
export function record<K extends keyof WhisperClientEvents>(
  c: WhisperClient,
  event: K,
): WhisperClientEvents[K][] {
  const seen: WhisperClientEvents[K][] = [];
  c.on(event, (payload) => seen.push(payload));
  return seen;
}

export const PARIS = { lat: 48.8566, lng: 2.3522 };
export const NEAR_PARIS = { lat: 48.86, lng: 2.36 };

/** Two connected clients in a room; resolves once both saw `matched`. */
export async function pair(a: WhisperClient, b: WhisperClient): Promise<void> {
  await a.connect();
  await b.connect();
  const matchedA = next(a, "matched");
  const matchedB = next(b, "matched");
  await a.join({ location: PARIS, rangeKm: 10, name: "Ana" });
  await b.join({ location: NEAR_PARIS, rangeKm: 10, name: "Ben" });
  await Promise.all([matchedA, matchedB]);
}
