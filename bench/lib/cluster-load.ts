/**
 * The load generator of the cross-node relay benchmark (`bench/redis.ts`): a process of its
 * own, talking over loopback to two server nodes that share one Redis. Every pair is split
 * across the nodes: its first client connects to node 0, its partner to node 1, so every
 * message crosses Redis.
 *
 * Same load as the single-node relay benchmark (`lib/load-relay.ts`): every client keeps a
 * window of messages in flight (when a message reaches the partner, its sender sends the next
 * one); each text carries its send time, so latency is send → partner receipt.
 */
import { createHistogram, performance } from "node:perf_hooks";
import { type Socket as IoSocket, io as ioClient } from "socket.io-client";
import { WebSocket } from "ws";
import type { ClusterKind } from "./cluster-node.js";
import { serve } from "./ipc.js";
import { PAYLOAD_BYTES } from "./relay-config.js";

const PAD = "x".repeat(PAYLOAD_BYTES);
const CONNECT_BATCH = 50;
const SETUP_TIMEOUT_MS = 20_000;

interface Client {
  send(text: string): void;
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

/** A normal close (1000): the WhisperChat session ends at once (no resume grace). */
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

// ------------------------------------------------------------------------------------------------
// WhisperChat: JSON frames; a pair is matched by joining at its own point on both nodes.

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
    const f = this.queued.get(type)?.shift();
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

/** Pair `i` joins at its own point (cells 50 km apart, 1 km range): it can only match itself. */
function pairPoint(i: number): { lat: number; lng: number } {
  return { lat: -50 + (i % 200) * 0.5, lng: -170 + Math.floor(i / 200) * 1.5 };
}

async function whisperPair(ports: readonly [number, number], i: number): Promise<[Client, Client]> {
  const [a, b] = await Promise.all([WhisperClient.connect(ports[0]), WhisperClient.connect(ports[1])]);
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
// Socket.IO: each client tells its node its partner's socket id.

async function ioConnect(port: number): Promise<{ client: Client; socket: IoSocket }> {
  const socket: IoSocket = ioClient(`http://127.0.0.1:${port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  const client: Client = {
    onText: () => undefined,
    send(t) {
      socket.emit("m", t);
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
  return { client, socket };
}

async function ioPair(ports: readonly [number, number]): Promise<[Client, Client]> {
  const [a, b] = await Promise.all([ioConnect(ports[0]), ioConnect(ports[1])]);
  const tell = (from: IoSocket, partner: IoSocket) =>
    new Promise<void>((resolve) => from.emit("partner", partner.id, () => resolve()));
  await Promise.all([tell(a.socket, b.socket), tell(b.socket, a.socket)]);
  return [a.client, b.client];
}

function connectPair(
  kind: ClusterKind,
  ports: readonly [number, number],
  i: number,
): Promise<[Client, Client]> {
  return kind === "whisper" ? whisperPair(ports, i) : ioPair(ports);
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
  latencyUs.record(Math.max(1, Math.round((performance.now() - Number.parseFloat(t)) * 1000)));
  received++;
}

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

function mark(): void {
  received = 0;
  latencyUs.reset();
  markAt = performance.now();
  markCpu = cpuNow();
}

serve({
  async connectPairs(arg) {
    const { kind, ports, pairs } = arg as { kind: ClusterKind; ports: [number, number]; pairs: number };
    clients = (await inBatches(pairs, (i) => connectPair(kind, ports, i))).flat();
    return clients.length;
  },
  start(arg) {
    const { window } = arg as { window: number };
    wireWindowed();
    running = true;
    mark();
    for (const c of clients) for (let k = 0; k < window; k++) c.send(text());
    return null;
  },
  mark() {
    mark();
    return null;
  },
  async stop() {
    const elapsedMs = performance.now() - markAt;
    const out = {
      received,
      elapsedMs,
      perSec: (received * 1000) / elapsedMs,
      p50Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(50) / 1000,
      p99Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(99) / 1000,
      loadCpu: (cpuNow() - markCpu) / 1000 / elapsedMs,
    };
    running = false;
    // Let what is in flight land before the clients close.
    await new Promise((resolve) => setTimeout(resolve, 200));
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
