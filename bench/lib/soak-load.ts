/**
 * The load of the soak benchmark (`bench/soak.ts`): a process of its own that keeps many
 * WhisperChat sessions chatting and churning against one node over loopback, and checks the
 * protocol's promises from the client side as it goes. Driven over IPC:
 *
 * - `start(config)` connects every client (each joins near a few others) and sets them going;
 * - `mark()` zeroes the figures: the measured window starts;
 * - `snapshot()` resolves the figures so far (for progress lines);
 * - `stop()` stops every client's behaviour, lets what is in flight land, resolves the figures
 *   of the window, then closes every connection normally (1000);
 * - `readerSetup({ port })`, `flood(...)`, `readerClose()`: the "reader that never reads"
 *   measurement.
 *
 * Each client, once matched, sends a message every so often; at random moments it goes `next`,
 * leaves and joins again, drops its connection (terminates the socket) and comes back with its
 * resume token, or disconnects (1000) and connects afresh. Its texts carry the sender's number,
 * a per-sender sequence number and the send time, so a receiver can tell a message received
 * twice, one out of order (per sender), and the latency. Every frame is also checked for
 * coordinates (`"lat"` / `"lng"`), which the protocol never sends to a client.
 */
import { createHistogram, performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { serve } from "./ipc.js";
import { bump, chatCounters, type Frame, rand, withTimeout as timeout } from "./load-common.js";

/** What `start` takes. */
export interface SoakConfig {
  port: number;
  sessions: number;
  /** Clients per place: each place is far from the others, so that its clients match each other. */
  perSpot: number;
  rangeKm: number;
  /** Each matched client sends a message every `chatMs[0]` to `chatMs[1]` ms (uniform). */
  chatMs: [number, number];
  /** Each client does one churn action every `actionMs[0]` to `actionMs[1]` ms. */
  actionMs: [number, number];
  /** Relative weights of the churn actions. */
  weights: { next: number; rejoin: number; drop: number; reconnect: number };
  /** A dropped client comes back after this long (ms, uniform); must be under the resume grace. */
  dropMs: [number, number];
  textBytes: number;
}

/** The figures of a window (see `stop`). */
export interface SoakFigures {
  elapsedMs: number;
  sent: number;
  acked: number;
  delivered: number;
  /** Delivered after a resume, sent while the receiver was away (not in the latency figures). */
  replayed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  duplicates: number;
  outOfOrder: number;
  coordinates: number;
  resumeAttempts: number;
  resumeOk: number;
  resumeFailed: number;
  /** Error frames by code. */
  errors: Record<string, number>;
  /** Requests sent (every frame a client sent). */
  requests: number;
  /** Connections the server closed, or that broke, by close code. */
  unexpectedCloses: Record<string, number>;
  actions: Record<string, number>;
  matched: number;
  partnerLeft: Record<string, number>;
  partnerAway: number;
  partnerBack: number;
  connects: number;
  /** Clients by state at the end of the window. */
  states: Record<string, number>;
  loadCpu: number;
}

const CONNECT_BATCH = 100;
const SETUP_TIMEOUT_MS = 60_000;

function withTimeout<T>(p: Promise<T>, what: string, ms = SETUP_TIMEOUT_MS): Promise<T> {
  return timeout(p, what, ms);
}

// ------------------------------------------------------------------------------------------------
// The figures.

const latencyUs = createHistogram({ lowest: 1, highest: 600_000_000, figures: 3 });
let figures = blankFigures();
let markAt = performance.now();
let markCpu = cpuNow();
/** `${sender}:${seq}` of every message received, for the whole run (a duplicate may cross a mark). */
const seen = new Set<string>();

function blankFigures() {
  return {
    ...chatCounters(),
    coordinates: 0,
    requests: 0,
    unexpectedCloses: {} as Record<string, number>,
    actions: {} as Record<string, number>,
    matched: 0,
    partnerBack: 0,
    connects: 0,
  };
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// ------------------------------------------------------------------------------------------------
// One client.

type State = "connecting" | "idle" | "waiting" | "room" | "away" | "off";

let config: SoakConfig;
let running = false;
let clients: Client[] = [];

class Client {
  state: State = "off";
  private ws: WebSocket | undefined;
  private token: string | undefined;
  /** When the current connection was welcomed (performance.now()). */
  private connectedAt = 0;
  private seq = 0;
  private requestNo = 0;
  /** The last sequence number received from each sender. */
  private readonly lastFrom = new Map<number, number>();
  private chatTimer: NodeJS.Timeout | undefined;
  private actionTimer: NodeJS.Timeout | undefined;
  private pendingLeave: string | undefined;
  private readonly pad: string;

  constructor(
    readonly index: number,
    readonly location: { lat: number; lng: number },
  ) {
    this.pad = "x".repeat(config.textBytes);
  }

  /** Connects (with the resume token when `resume`), resolves once welcomed. */
  connect(resume: boolean): Promise<void> {
    const url = new URL(`ws://127.0.0.1:${config.port}/whisper`);
    if (resume && this.token !== undefined) url.searchParams.set("resume", this.token);
    this.state = "connecting";
    figures.connects++;
    if (resume) figures.resumeAttempts++;
    const ws = new WebSocket(url, "whisperchat.v1", { perMessageDeflate: false });
    this.ws = ws;
    return new Promise<void>((resolve, reject) => {
      let welcomed = false;
      ws.on("message", (data) => {
        if (ws !== this.ws) return;
        const raw = data.toString();
        if (raw.includes('"lat"') || raw.includes('"lng"')) figures.coordinates++;
        const frame = JSON.parse(raw) as Frame;
        if (frame.type === "welcome") {
          welcomed = true;
          this.welcome(frame, resume);
          resolve();
          return;
        }
        this.onFrame(frame);
      });
      ws.on("error", (error) => {
        if (!welcomed) reject(error);
      });
      ws.on("close", (code) => {
        if (!welcomed) {
          reject(new Error(`closed with ${code} before welcome`));
          return;
        }
        if (ws !== this.ws) return; // a connection this client already let go of
        this.ws = undefined;
        bump(figures.unexpectedCloses, String(code));
        this.stopChat();
        this.state = "off";
        // The server (or the network) ended the session: start afresh, like an app would.
        if (running) this.later(rand([200, 1000]), () => this.fresh());
      });
    });
  }

  private welcome(frame: Frame, resume: boolean): void {
    this.token = frame.resumeToken;
    this.connectedAt = performance.now();
    if (resume) {
      if (frame.resumed === true) {
        figures.resumeOk++;
        // The replayed frames follow and set the state; until then it is what it was.
        this.state = this.stateBeforeDrop;
        if (this.state === "room") this.startChat();
      } else {
        figures.resumeFailed++;
        this.state = "idle";
        this.join();
      }
    } else {
      this.state = "idle";
    }
  }

  private stateBeforeDrop: State = "idle";

  private onFrame(f: Frame): void {
    switch (f.type) {
      case "message":
        this.received(f.text ?? "");
        return;
      case "ack":
        if (f.id !== undefined && f.id === this.pendingLeave) {
          this.pendingLeave = undefined;
          this.state = "idle";
          this.stopChat();
          if (running) this.later(rand([100, 500]), () => this.join());
        } else if (f.id?.startsWith("m") === true) {
          figures.acked++;
        }
        return;
      case "waiting":
        if (this.state !== "room") this.state = "waiting";
        return;
      case "matched":
        figures.matched++;
        this.state = "room";
        this.startChat();
        return;
      case "partner_left":
        bump(figures.partnerLeft, f.reason ?? "?");
        this.state = "idle";
        this.stopChat();
        if (running) this.later(rand([200, 1000]), () => this.join());
        return;
      case "partner_away":
        figures.partnerAway++;
        return;
      case "partner_back":
        figures.partnerBack++;
        return;
      case "error":
        bump(figures.errors, f.code ?? "?");
        return;
      default:
        return;
    }
  }

  private received(text: string): void {
    const now = performance.now();
    const [sender, seq, sentAt] = text.split("|", 1)[0]!.split(":").map(Number) as [number, number, number];
    const key = `${sender}:${seq}`;
    figures.delivered++;
    if (seen.has(key)) {
      figures.duplicates++;
      return;
    }
    seen.add(key);
    const last = this.lastFrom.get(sender);
    if (last !== undefined && seq < last) figures.outOfOrder++;
    else this.lastFrom.set(sender, seq);
    if (sentAt < this.connectedAt) figures.replayed++;
    else latencyUs.record(Math.max(1, Math.round((now - sentAt) * 1000)));
  }

  private send(frame: object): boolean {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    figures.requests++;
    return true;
  }

  private id(kind: string): string {
    return `${kind}${this.requestNo++}`;
  }

  join(): void {
    if (!running || this.state !== "idle") return;
    if (this.send({ type: "join", id: this.id("j"), location: this.location, rangeKm: config.rangeKm })) {
      this.state = "waiting";
    }
  }

  private startChat(): void {
    if (this.chatTimer !== undefined) return;
    const tick = () => {
      this.chatTimer = undefined;
      if (!running || this.state !== "room") return;
      const sentAt = performance.now();
      const seq = this.seq++;
      const text = `${this.index}:${seq}:${sentAt.toFixed(3)}|${this.pad}`.slice(0, config.textBytes);
      if (this.send({ type: "message", id: this.id("m"), text })) figures.sent++;
      this.chatTimer = setTimeout(tick, rand(config.chatMs));
    };
    this.chatTimer = setTimeout(tick, rand(config.chatMs));
  }

  private stopChat(): void {
    if (this.chatTimer !== undefined) clearTimeout(this.chatTimer);
    this.chatTimer = undefined;
  }

  private later(ms: number, fn: () => void): void {
    setTimeout(() => {
      if (running) fn();
    }, ms);
  }

  /** A fresh connection and session; then join. */
  private fresh(): void {
    this.connect(false).then(
      () => this.join(),
      () => {
        this.state = "off";
        if (running) this.later(rand([500, 2000]), () => this.fresh());
      },
    );
  }

  /** Sets the churn going. */
  scheduleActions(): void {
    this.actionTimer = setTimeout(() => {
      this.actionTimer = undefined;
      if (!running) return;
      this.act();
      this.scheduleActions();
    }, rand(config.actionMs));
  }

  private act(): void {
    const { next, rejoin, drop, reconnect } = config.weights;
    const r = Math.random() * (next + rejoin + drop + reconnect);
    const connected = this.ws !== undefined && this.ws.readyState === WebSocket.OPEN;
    if (!connected || this.state === "connecting" || this.state === "away" || this.state === "off") return;
    if (r < next) {
      bump(figures.actions, "next");
      if (this.send({ type: "next", id: this.id("n") })) {
        this.stopChat();
        this.state = "waiting";
      }
    } else if (r < next + rejoin) {
      bump(figures.actions, "leave+join");
      const id = this.id("l");
      this.pendingLeave = id;
      this.send({ type: "leave", id });
    } else if (r < next + rejoin + drop) {
      // Only a session that waits or chats has something to resume.
      if (this.state !== "waiting" && this.state !== "room") return;
      bump(figures.actions, "drop+resume");
      this.stateBeforeDrop = this.state;
      this.stopChat();
      const ws = this.ws!;
      this.ws = undefined;
      this.state = "away";
      ws.terminate();
      this.later(rand(config.dropMs), () => {
        this.connect(true).catch(() => {
          this.state = "off";
          if (running) this.later(rand([500, 2000]), () => this.fresh());
        });
      });
    } else {
      bump(figures.actions, "disconnect+connect");
      this.stopChat();
      const ws = this.ws!;
      this.ws = undefined;
      this.state = "off";
      ws.close(1000);
      this.later(rand([100, 1000]), () => this.fresh());
    }
  }

  halt(): void {
    this.stopChat();
    if (this.actionTimer !== undefined) clearTimeout(this.actionTimer);
    this.actionTimer = undefined;
  }

  close(): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    this.state = "off";
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const cutoff = setTimeout(() => ws.terminate(), 2000);
      ws.once("close", () => {
        clearTimeout(cutoff);
        resolve();
      });
      ws.close(1000);
    });
  }
}

/** Place of spot `i`: spots about 200 km apart. */
function spot(i: number): { lat: number; lng: number } {
  return { lat: -40 + (i % 40) * 2, lng: -170 + Math.floor(i / 40) * 3 };
}

function summary(): SoakFigures {
  const states: Record<string, number> = {};
  for (const c of clients) bump(states, c.state);
  const elapsedMs = performance.now() - markAt;
  return {
    ...figures,
    elapsedMs,
    p50Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(50) / 1000,
    p99Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(99) / 1000,
    maxMs: latencyUs.count === 0 ? Number.NaN : latencyUs.max / 1000,
    states,
    loadCpu: (cpuNow() - markCpu) / 1000 / elapsedMs,
  };
}

// ------------------------------------------------------------------------------------------------
// A reader that never reads.

interface Raw {
  ws: WebSocket;
  frames: Frame[];
  wait(type: string, ms?: number): Promise<Frame>;
}

function rawClient(port: number): Promise<Raw> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/whisper`, "whisperchat.v1", { perMessageDeflate: false });
  const frames: Frame[] = [];
  const waiters: { type: string; resolve: (f: Frame) => void }[] = [];
  ws.on("message", (data) => {
    const f = JSON.parse(data.toString()) as Frame;
    const i = waiters.findIndex((w) => w.type === f.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(f);
    else if (f.type !== "ack" && f.type !== "message") frames.push(f);
  });
  ws.on("error", () => undefined);
  const raw: Raw = {
    ws,
    frames,
    wait(type, ms = 20_000) {
      const i = frames.findIndex((f) => f.type === type);
      if (i >= 0) return Promise.resolve(frames.splice(i, 1)[0]!);
      return withTimeout(
        new Promise<Frame>((resolve) => waiters.push({ type, resolve })),
        `frame ${type}`,
        ms,
      );
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(raw));
    ws.once("error", reject);
  });
}

let flooder: Raw | undefined;
let reader: Raw | undefined;

// ------------------------------------------------------------------------------------------------

serve({
  async start(arg) {
    config = arg as SoakConfig;
    running = true;
    clients = [];
    for (let i = 0; i < config.sessions; i++) {
      const s = spot(Math.floor(i / config.perSpot));
      // Within about 1 km of the spot's centre.
      const location = {
        lat: s.lat + (Math.random() - 0.5) * 0.01,
        lng: s.lng + (Math.random() - 0.5) * 0.01,
      };
      clients.push(new Client(i, location));
    }
    for (let start = 0; start < clients.length; start += CONNECT_BATCH) {
      const batch = clients.slice(start, start + CONNECT_BATCH);
      await withTimeout(Promise.all(batch.map((c) => c.connect(false))), `connecting clients ${start}..`);
      for (const c of batch) c.join();
    }
    for (const c of clients) c.scheduleActions();
    return clients.length;
  },
  mark() {
    figures = blankFigures();
    latencyUs.reset();
    markAt = performance.now();
    markCpu = cpuNow();
    return null;
  },
  snapshot() {
    return summary();
  },
  async stop() {
    running = false;
    for (const c of clients) c.halt();
    // Let what is in flight land.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const out = summary();
    await withTimeout(Promise.all(clients.map((c) => c.close())), "closing clients");
    clients = [];
    return out;
  },
  /** Two clients matched with each other: the flooder and the reader. */
  async readerSetup(arg) {
    const { port } = arg as { port: number };
    const [a, b] = await Promise.all([rawClient(port), rawClient(port)]);
    await Promise.all([a.wait("welcome"), b.wait("welcome")]);
    const location = { lat: 60, lng: 25 };
    a.ws.send(JSON.stringify({ type: "join", location, rangeKm: 1 }));
    await a.wait("waiting");
    b.ws.send(JSON.stringify({ type: "join", location, rangeKm: 1 }));
    await Promise.all([a.wait("matched"), b.wait("matched")]);
    flooder = a;
    reader = b;
    // Warm the path once, both reading.
    for (let i = 0; i < 200; i++) a.ws.send(JSON.stringify({ type: "message", text: `warm ${i}` }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    return null;
  },
  /**
   * The reader stops reading (its socket is paused); the flooder sends `chars`-character texts,
   * `inFlight` unacknowledged at most, until it is told its partner left (or `timeoutMs`). The
   * reader stays paused until `readerClose`.
   */
  async flood(arg) {
    const { chars, inFlight, timeoutMs } = arg as { chars: number; inFlight: number; timeoutMs: number };
    const a = flooder!;
    const b = reader!;
    b.ws.pause();
    const text = "y".repeat(chars);
    const frame = JSON.stringify({ type: "message", text });
    let sent = 0;
    let acked = 0;
    let refused = 0;
    let left: Frame | undefined;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const pump = () => {
        while (left === undefined && sent - acked - refused < inFlight) {
          a.ws.send(frame);
          sent++;
        }
      };
      a.ws.on("message", (data) => {
        const s = data.toString();
        if (s.startsWith('{"type":"ack"')) acked++;
        else if (s.startsWith('{"type":"error"')) refused++;
        else if (s.startsWith('{"type":"partner_left"')) {
          left = JSON.parse(s) as Frame;
          clearTimeout(timer);
          resolve();
          return;
        }
        pump();
      });
      pump();
    });
    return {
      floodMs: performance.now() - started,
      sent,
      acked,
      refused,
      ackedBytes: acked * frame.length,
      partnerLeftReason: left?.reason ?? null,
    };
  },
  /** The reader reads again: the frames buffered for it, then how its connection was closed. */
  async readerClose() {
    const a = flooder!;
    const b = reader!;
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      b.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    b.ws.resume();
    const close = await withTimeout(closed, "the reader's close", 30_000).catch(() => undefined);
    a.ws.close(1000);
    b.ws.terminate();
    flooder = undefined;
    reader = undefined;
    return { readerCloseCode: close?.code ?? null, readerCloseReason: close?.reason ?? null };
  },
});
