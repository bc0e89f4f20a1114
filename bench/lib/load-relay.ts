/**
 * The load generator of the relay benchmark: a process of its own, talking to the server over
 * loopback. Driven over IPC by `bench/relay.ts`.
 *
 * Every client of a pair is a sender with a window of messages in flight: when a message
 * reaches the partner, its sender sends the next one. Each text carries its send time
 * (`performance.now()`, same process on both ends), so latency is send → partner receipt.
 */
import { createHistogram, performance } from "node:perf_hooks";
import { type Socket as IoSocket, io as ioClient } from "socket.io-client";
import { WebSocket } from "ws";
import { serve } from "./ipc.js";
import { PAYLOAD_BYTES, type ServerKind } from "./relay-config.js";

const PAD = "x".repeat(PAYLOAD_BYTES);
/** How many connections are opened at once. */
const CONNECT_BATCH = 100;
const SETUP_TIMEOUT_MS = 20_000;

interface Client {
  /** Sends one text to the partner. */
  send(text: string): void;
  /** Called with each text the partner sent. */
  onText: (text: string) => void;
  close(): Promise<void>;
}

function text(): string {
  return `${performance.now().toFixed(3)}|${PAD}`.slice(0, PAYLOAD_BYTES);
}

function withTimeout<T>(p: Promise<T>, what: string, ms = SETUP_TIMEOUT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * A normal close (1000), so that a WhisperChat session ends at once instead of waiting out its
 * resume grace in the server while the next figure is measured.
 */
function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const cutoff = setTimeout(() => ws.terminate(), 2000);
    ws.once("close", () => {
      clearTimeout(cutoff);
      resolve();
    });
    ws.close(1000);
  });
}

function openWs(url: string, protocol?: string): Promise<WebSocket> {
  const ws =
    protocol === undefined
      ? new WebSocket(url, { perMessageDeflate: false })
      : new WebSocket(url, protocol, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// ------------------------------------------------------------------------------------------------
// WhisperChat client: JSON frames, join to get matched.

interface Frame {
  type: string;
  text?: string;
  code?: string;
  message?: string;
}

class WhisperClient implements Client {
  onText: (text: string) => void = () => undefined;
  private readonly queued = new Map<string, Frame[]>();
  private readonly waiters = new Map<string, (f: Frame) => void>();

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const s = data.toString();
      // Fast path: relayed messages and acks, checked by prefix before parsing.
      if (s.startsWith('{"type":"message"')) {
        this.onText((JSON.parse(s) as Frame).text ?? "");
        return;
      }
      if (s.startsWith('{"type":"ack"')) return;
      const f = JSON.parse(s) as Frame;
      if (f.type === "error") process.stderr.write(`whisper error frame: ${f.code} ${f.message}\n`);
      const w = this.waiters.get(f.type);
      if (w !== undefined) {
        this.waiters.delete(f.type);
        w(f);
        return;
      }
      const q = this.queued.get(f.type);
      if (q === undefined) this.queued.set(f.type, [f]);
      else q.push(f);
    });
    ws.on("error", () => undefined);
  }

  static async connect(port: number): Promise<WhisperClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/whisper`, "whisperchat.v1", {
      perMessageDeflate: false,
    });
    const client = new WhisperClient(ws);
    const welcome = client.next("welcome");
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    await welcome;
    return client;
  }

  next(type: string): Promise<Frame> {
    const q = this.queued.get(type);
    const f = q?.shift();
    if (f !== undefined) return Promise.resolve(f);
    return withTimeout(
      new Promise<Frame>((resolve) => this.waiters.set(type, resolve)),
      `whisper frame ${type}`,
    );
  }

  frame(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  send(text: string): void {
    this.ws.send(JSON.stringify({ type: "message", text }));
  }

  close(): Promise<void> {
    return closeWs(this.ws);
  }
}

/**
 * Pair `i` joins at its own point, cells about 50 km apart with a 1 km range, so that each pair
 * can only match itself: A joins and waits, B joins, both get `matched`.
 */
function pairPoint(i: number): { lat: number; lng: number } {
  return { lat: -50 + (i % 200) * 0.5, lng: -170 + Math.floor(i / 200) * 1.5 };
}

async function whisperPair(port: number, i: number): Promise<[Client, Client]> {
  const [a, b] = await Promise.all([WhisperClient.connect(port), WhisperClient.connect(port)]);
  const location = pairPoint(i);
  const waiting = a.next("waiting");
  a.frame({ type: "join", location, rangeKm: 1 });
  await waiting;
  const matchedA = a.next("matched");
  const matchedB = b.next("matched");
  b.frame({ type: "join", location, rangeKm: 1 });
  await Promise.all([matchedA, matchedB]);
  return [a, b];
}

// ------------------------------------------------------------------------------------------------
// Bare ws and Socket.IO clients: the server pairs them by the pair index in the URL.

function wsClient(ws: WebSocket): Client {
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

async function wsConnect(port: number, pair: number, side: 0 | 1): Promise<Client> {
  return wsClient(await openWs(`ws://127.0.0.1:${port}/?pair=${pair}&side=${side}`));
}

async function ioConnect(port: number, pair: number, side: 0 | 1): Promise<Client> {
  const socket: IoSocket = ioClient(`http://127.0.0.1:${port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    query: { pair: String(pair), side: String(side) },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  const client: Client = {
    onText: () => undefined,
    send(text) {
      socket.emit("m", text);
    },
    close() {
      if (socket.disconnected) return Promise.resolve();
      return new Promise<void>((resolve) => {
        socket.once("disconnect", () => resolve());
        socket.disconnect();
      });
    },
  };
  socket.on("m", (t: string) => client.onText(t));
  return client;
}

async function connectPair(kind: ServerKind, port: number, i: number): Promise<[Client, Client]> {
  if (kind === "whisper") return whisperPair(port, i);
  const connect = kind === "ws" ? wsConnect : ioConnect;
  return Promise.all([connect(port, i, 0), connect(port, i, 1)]);
}

/** One idle connection: connected and, for WhisperChat, welcomed (not joined). */
async function connectIdle(kind: ServerKind, port: number, i: number): Promise<Client> {
  if (kind === "whisper") return WhisperClient.connect(port);
  return kind === "ws" ? wsConnect(port, i, 0) : ioConnect(port, i, 0);
}

async function inBatches<T>(count: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += CONNECT_BATCH) {
    const batch: Promise<T>[] = [];
    for (let i = start; i < Math.min(count, start + CONNECT_BATCH); i++) batch.push(make(i));
    out.push(...(await withTimeout(Promise.all(batch), `connecting clients ${start}..`)));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// The load.

let clients: Client[] = [];
let running = false;
let received = 0;
const latencyUs = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
let markAt = 0;
let markCpu = 0;

function cpuNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function record(t: string): void {
  const sentAt = Number.parseFloat(t);
  latencyUs.record(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
  received++;
}

/** Wires pairs so that a receipt makes the sender send the next message (windowed load). */
function wireWindowed(): void {
  for (let i = 0; i < clients.length; i += 2) {
    const a = clients[i]!;
    const b = clients[i + 1]!;
    a.onText = (t) => {
      record(t);
      if (running) b.send(text());
    };
    b.onText = (t) => {
      record(t);
      if (running) a.send(text());
    };
  }
}

/** Wires the first pair as a ping-pong: one message in flight, the receiver answers. */
function wirePingPong(): void {
  const a = clients[0]!;
  const b = clients[1]!;
  a.onText = (t) => {
    record(t);
    if (running) a.send(text());
  };
  b.onText = (t) => {
    record(t);
    if (running) b.send(text());
  };
}

function summary() {
  const elapsedMs = performance.now() - markAt;
  return {
    received,
    elapsedMs,
    perSec: (received * 1000) / elapsedMs,
    p50Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(50) / 1000,
    p99Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(99) / 1000,
    meanMs: latencyUs.count === 0 ? Number.NaN : latencyUs.mean / 1000,
    /** This process's CPU use over the window, as a fraction of one core. */
    loadCpu: (cpuNow() - markCpu) / 1000 / elapsedMs,
  };
}

function mark(): void {
  received = 0;
  latencyUs.reset();
  markAt = performance.now();
  markCpu = cpuNow();
}

serve({
  async connectPairs(arg) {
    const { kind, port, pairs } = arg as { kind: ServerKind; port: number; pairs: number };
    const made = await inBatches(pairs, (i) => connectPair(kind, port, i));
    clients = made.flat();
    return clients.length;
  },
  async connectIdle(arg) {
    const { kind, port, count } = arg as { kind: ServerKind; port: number; count: number };
    clients = await inBatches(count, (i) => connectIdle(kind, port, i));
    return clients.length;
  },
  /** Starts the windowed load: every client sends `window` messages, then one per receipt. */
  start(arg) {
    const { window } = arg as { window: number };
    wireWindowed();
    running = true;
    mark();
    for (const c of clients) for (let k = 0; k < window; k++) c.send(text());
    return null;
  },
  /** Starts a ping-pong on the first pair: one message in flight. */
  pingPong() {
    wirePingPong();
    running = true;
    mark();
    clients[0]!.send(text());
    return null;
  },
  /** Zeroes the counters: the measuring window starts now. */
  mark() {
    mark();
    return null;
  },
  /** Ends the window and stops sending; resolves the figures of the window. */
  async stop() {
    const out = summary();
    running = false;
    // Let what is in flight land before the clients close.
    await new Promise((resolve) => setTimeout(resolve, 100));
    return out;
  },
  async closeAll() {
    running = false;
    const all = clients;
    clients = [];
    await withTimeout(Promise.all(all.map((c) => c.close())), "closing clients");
    return null;
  },
});
