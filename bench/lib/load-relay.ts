/**
 * The load generator of the relay benchmark: a process of its own, talking to the server over
 * loopback. Driven over IPC by `bench/relay.ts`. The load itself is in `lib/load-common.ts`.
 */
import { WebSocket } from "ws";
import { serve } from "./ipc.js";
import {
  type Client,
  closeWs,
  inBatches,
  ioConnect,
  WhisperClient,
  WindowedLoad,
  whisperPair,
} from "./load-common.js";
import type { ServerKind } from "./relay-config.js";

/** How many connections are opened at once. */
const CONNECT_BATCH = 100;

// Bare ws and Socket.IO clients: the server pairs them by the pair index in the URL.

function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function wsConnect(port: number, pair: number, side: 0 | 1): Promise<Client> {
  const ws = await openWs(`ws://127.0.0.1:${port}/?pair=${pair}&side=${side}`);
  const client: Client = {
    onText: () => undefined,
    send(text) {
      ws.send(text);
    },
    close: () => closeWs(ws),
  };
  ws.on("message", (data) => client.onText(data.toString()));
  ws.on("error", () => undefined);
  return client;
}

async function bareConnect(
  kind: "ws" | "socketio",
  port: number,
  pair: number,
  side: 0 | 1,
): Promise<Client> {
  if (kind === "ws") return wsConnect(port, pair, side);
  return (await ioConnect(port, { pair: String(pair), side: String(side) })).client;
}

async function connectPair(kind: ServerKind, port: number, i: number): Promise<[Client, Client]> {
  if (kind === "ws" || kind === "socketio")
    return Promise.all([bareConnect(kind, port, i, 0), bareConnect(kind, port, i, 1)]);
  return whisperPair([port, port], i);
}

/** One idle connection: connected and, for WhisperChat, welcomed (not joined). */
async function connectIdle(kind: ServerKind, port: number, i: number): Promise<Client> {
  if (kind === "ws" || kind === "socketio") return bareConnect(kind, port, i, 0);
  return WhisperClient.connect(port);
}

const load = new WindowedLoad();

serve({
  async connectPairs(arg) {
    const { kind, port, pairs } = arg as { kind: ServerKind; port: number; pairs: number };
    load.clients = (await inBatches(pairs, CONNECT_BATCH, (i) => connectPair(kind, port, i))).flat();
    return load.clients.length;
  },
  async connectIdle(arg) {
    const { kind, port, count } = arg as { kind: ServerKind; port: number; count: number };
    load.clients = await inBatches(count, CONNECT_BATCH, (i) => connectIdle(kind, port, i));
    return load.clients.length;
  },
  /** Starts the windowed load: every client sends `window` messages, then one per receipt. */
  start(arg) {
    load.start((arg as { window: number }).window);
    return null;
  },
  /** Starts a ping-pong on the first pair: one message in flight. */
  pingPong() {
    load.pingPong();
    return null;
  },
  /** Zeroes the counters: the measuring window starts now. */
  mark() {
    load.mark();
    return null;
  },
  /** Ends the window and stops sending; resolves the figures of the window. */
  stop: () => load.stop(100),
  async closeAll() {
    await load.closeAll();
    return null;
  },
});
