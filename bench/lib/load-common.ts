/**
 * What the relay load generators share (`lib/load-relay.ts` for one node, `lib/cluster-load.ts`
 * for two nodes on one Redis): the clients, how a WhisperChat pair gets matched, and the
 * windowed load with its figures.
 *
 * Every client of a pair is a sender with a window of messages in flight: when a message
 * reaches the partner, its sender sends the next one. Each text carries its send time
 * (`performance.now()`, same process on both ends), so latency is send → partner receipt.
 */
import { createHistogram, performance } from "node:perf_hooks";
import { type Socket as IoSocket, io as ioClient } from "socket.io-client";
import { WebSocket } from "ws";
import { PAYLOAD_BYTES } from "./relay-config.js";

const PAD = "x".repeat(PAYLOAD_BYTES);
const SETUP_TIMEOUT_MS = 20_000;

/** One end of a pair, whatever the server kind. */
export interface Client {
  /** Sends one text to the partner. */
  send(text: string): void;
  /** Called with each text the partner sent. */
  onText: (text: string) => void;
  close(): Promise<void>;
}

/** A text of PAYLOAD_BYTES that starts with its send time. */
export function text(): string {
  return `${performance.now().toFixed(3)}|${PAD}`.slice(0, PAYLOAD_BYTES);
}

export function withTimeout<T>(p: Promise<T>, what: string, ms = SETUP_TIMEOUT_MS): Promise<T> {
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
export function closeWs(ws: WebSocket): Promise<void> {
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

/** Opens connections `batch` at a time: `make(i)` for i in [0, count). */
export async function inBatches<T>(
  count: number,
  batch: number,
  make: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += batch) {
    const pending: Promise<T>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) pending.push(make(i));
    out.push(...(await withTimeout(Promise.all(pending), `connecting clients ${start}..`)));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// WhisperChat: JSON frames; a pair is matched by joining at its own point.

/** A server frame, as the load generators read it (the fields they look at). */
export interface Frame {
  type: string;
  id?: string;
  text?: string;
  code?: string;
  message?: string;
  reason?: string;
  roomId?: string;
  messageId?: string;
  sessionId?: string;
  resumed?: boolean;
  resumeToken?: string;
}

/** Uniform in `[range[0], range[1])`. */
export const rand = (range: readonly [number, number]) => range[0] + Math.random() * (range[1] - range[0]);

/**
 * The counters of the chatting loads (`soak-load.ts`, `crash-load.ts`): texts sent, acked and
 * received (`replayed`: received after a resume, sent while away), texts received twice or out
 * of order, resumes, error frames by code, `partner_left` by reason and `partner_away`.
 */
export function chatCounters() {
  return {
    sent: 0,
    acked: 0,
    delivered: 0,
    replayed: 0,
    duplicates: 0,
    outOfOrder: 0,
    resumeAttempts: 0,
    resumeOk: 0,
    resumeFailed: 0,
    errors: {} as Record<string, number>,
    partnerLeft: {} as Record<string, number>,
    partnerAway: 0,
  };
}

/** Counts one more `key` in `map`. */
export function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

export class WhisperClient implements Client {
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

  /** Connects to the node's `/whisper` and waits for `welcome`. */
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

/**
 * Pair `i` joins at its own point, cells about 50 km apart with a 1 km range, so that each pair
 * can only match itself.
 */
export function pairPoint(i: number): { lat: number; lng: number } {
  return { lat: -50 + (i % 200) * 0.5, lng: -170 + Math.floor(i / 200) * 1.5 };
}

/** Pair `i`: A connects to `ports[0]`, joins and waits; B connects to `ports[1]` and joins. */
export async function whisperPair(ports: readonly [number, number], i: number): Promise<[Client, Client]> {
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
// Socket.IO: texts as the event "m".

export async function ioConnect(
  port: number,
  query?: Record<string, string>,
): Promise<{ client: Client; socket: IoSocket }> {
  const socket: IoSocket = ioClient(`http://127.0.0.1:${port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    ...(query === undefined ? {} : { query }),
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

// ------------------------------------------------------------------------------------------------
// The load.

function cpuNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Clients in pairs (0-1, 2-3, ...), the load on them, and the figures of a window. */
export class WindowedLoad {
  clients: Client[] = [];
  private running = false;
  private received = 0;
  private readonly latencyUs = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  private markAt = 0;
  private markCpu = 0;

  private record(t: string): void {
    this.latencyUs.record(Math.max(1, Math.round((performance.now() - Number.parseFloat(t)) * 1000)));
    this.received++;
  }

  /** Every client sends `window` messages, then one each time its partner receives one. */
  start(window: number): void {
    for (let i = 0; i < this.clients.length; i += 2) {
      const a = this.clients[i] as Client;
      const b = this.clients[i + 1] as Client;
      a.onText = (t) => {
        this.record(t);
        if (this.running) b.send(text());
      };
      b.onText = (t) => {
        this.record(t);
        if (this.running) a.send(text());
      };
    }
    this.running = true;
    this.mark();
    for (const c of this.clients) for (let k = 0; k < window; k++) c.send(text());
  }

  /** A ping-pong on the first pair: one message in flight, each receiver answers. */
  pingPong(): void {
    const a = this.clients[0] as Client;
    const b = this.clients[1] as Client;
    a.onText = (t) => {
      this.record(t);
      if (this.running) a.send(text());
    };
    b.onText = (t) => {
      this.record(t);
      if (this.running) b.send(text());
    };
    this.running = true;
    this.mark();
    a.send(text());
  }

  /** Zeroes the counters: the measuring window starts now. */
  mark(): void {
    this.received = 0;
    this.latencyUs.reset();
    this.markAt = performance.now();
    this.markCpu = cpuNow();
  }

  /** Ends the window and stops sending; resolves its figures once what is in flight landed. */
  async stop(settleMs: number) {
    const elapsedMs = performance.now() - this.markAt;
    const h = this.latencyUs;
    const out = {
      received: this.received,
      elapsedMs,
      perSec: (this.received * 1000) / elapsedMs,
      p50Ms: h.count === 0 ? Number.NaN : h.percentile(50) / 1000,
      p99Ms: h.count === 0 ? Number.NaN : h.percentile(99) / 1000,
      meanMs: h.count === 0 ? Number.NaN : h.mean / 1000,
      /** This process's CPU use over the window, as a fraction of one core. */
      loadCpu: (cpuNow() - this.markCpu) / 1000 / elapsedMs,
    };
    this.running = false;
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return out;
  }

  async closeAll(): Promise<void> {
    this.running = false;
    const all = this.clients;
    this.clients = [];
    await withTimeout(Promise.all(all.map((c) => c.close())), "closing clients");
  }
}
