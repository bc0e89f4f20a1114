/**
 * The load of the crash benchmark (`bench/crash.ts`): a process of its own that keeps pairs of
 * WhisperChat clients chatting across two nodes while the coordinator kills (SIGKILL) and
 * restarts the nodes, and checks from the client side what the protocol promises a client that
 * resumes (docs/protocol.md section 6, "Resume"). Driven over IPC:
 *
 * - `start(config)` connects every pair (pair i: one client on each node, joined at a point of
 *   its own, so that it can only match itself) and sets them chatting; resolves once all are
 *   matched;
 * - `down({ node, abandon })`, called just before the coordinator kills `node`: notes the kill
 *   time, marks the node dead (nobody connects to it), decides how each of its clients will come
 *   back, and starts watching the partners on the other node that should be told
 *   `partner_away`; resolves what it noted;
 * - `up({ node })`: the node listens again (on the same port);
 * - `snapshot()` resolves the figures so far (for progress lines);
 * - `stop({ settleMs })` stops sending, lets what is in flight land for `settleMs`, resolves
 *   the figures, and closes every connection normally (1000).
 *
 * Each matched client sends a text every `chatMs` with a request `id` unique to it
 * (`<client>.<seq>`); the text carries the client's number, the same sequence number and the
 * send time (a receiver tells a text replayed after its resume from one relayed live). It
 * keeps which of its messages were acked, which partner messages it received, and its message
 * cursor (`<roomId>:<last messageId received>`). When its connection drops it comes back in one
 * of three ways, decided at the kill: at once, on a live node, with `resume` and `last`
 * (`fast`); the same 12 to 16 s later, on the node its partner is not on (`late`, so that its
 * partner is told `partner_away` before it is back, and pairs are split across the nodes
 * again); or as a fresh session that joins again (`abandon`: its partner's room should end at
 * the resume grace). After a resume it sends again, with the same ids, what was not acked.
 *
 * A message counts as lost when it was acked to its sender and its receiver's session was, after
 * the ack, in the room with a connection that did not drop before it ended (the end of the run,
 * or the room's `partner_left`): a resume with the cursor, or the live connection, owed it the
 * message. Messages to a session that was abandoned are not counted.
 */
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { cpuMicros, serve } from "./ipc.js";
import { bump, chatCounters, closeWs, type Frame, pairPoint, rand, withTimeout } from "./load-common.js";

/** What `start` takes. */
export interface CrashConfig {
  ports: [number, number];
  pairs: number;
  /** A matched client sends a text every `chatMs[0]` to `chatMs[1]` ms (uniform). */
  chatMs: [number, number];
  textBytes: number;
  /** Of the clients of a killed node that were in a room, the share that comes back late... */
  late: number;
  /** ...this long after the kill (ms, uniform; past the detection bound, within the grace). */
  lateMs: [number, number];
  /** The share that gives its session up and starts afresh, when `down` allows it. */
  abandon: number;
  /** Keep each client's timeline (connections, partner frames) and resolve it with the figures. */
  trace?: boolean;
}

/** How a client of a killed node comes back. */
export type Plan = "fast" | "late" | "abandon";

/** A partner on the other node, watched after a kill: when was it told, and what came after. */
export interface Detection {
  kill: number;
  roomId: string;
  /** The partner watched, and its partner on the killed node. */
  client: number;
  partner: number;
  /** The plan of its partner (the client of the killed node). */
  partnerPlan: Plan;
  /** ms after the kill: `partner_away`, `partner_back` and `partner_left` (first of each). */
  awayMs?: number;
  backMs?: number;
  leftMs?: number;
  leftReason?: string;
  /**
   * ms after the kill at which the watched client gave up its own session (a later kill took its
   * node and it started afresh): from then on nothing of the old room can reach it.
   */
  watcherGaveUpMs?: number;
  /**
   * ms after the kill at which the watched client last resumed its own session (a later kill took
   * its node): while it was away, no node held its room, so a grace that ended then is told at
   * this resume.
   */
  watcherBackMs?: number;
}

/** A message acked to its sender that its receiver was owed and never got. */
export interface LostMessage {
  id: string;
  from: number;
  to: number;
  roomId: string;
  /** Node (0/1) of the sender's connection when it sent the message, and of the receiver's at the ack. */
  senderNode: number;
  receiverNode: number | null;
  /** Since the start of the run, ms. */
  sentAtMs: number;
  ackAtMs: number;
  /** The kill closest to the ack: its number, node and the ack's time from it (ms, signed). */
  nearestKill: { kill: number; node: number; ackFromKillMs: number } | null;
  /** The receiver's plan at the kill that dropped it, if one did. */
  receiverPlan: Plan | null;
  /** What the receiver got from the sender in that room, in seq numbers, around the lost one. */
  receivedAround: number[];
  /** The receiver's connections in the room: start/end since the start of the run (ms), how each ended. */
  receiverSpans: string[];
}

/** A text received twice: when, and on which of the receiver's connections (`n<node>.<incarnation>#<connection>`). */
export interface Duplicate {
  id: string;
  to: number;
  firstAtMs: number;
  firstOn: string;
  againAtMs: number;
  againOn: string;
  /** Whether the second came before any live message on its connection (a replay after a resume). */
  againReplayed: boolean;
}

/** A `partner_away` or `partner_left` received while the partner was connected in the room. */
export interface Unfounded {
  frame: string;
  to: number;
  roomId: string;
  atMs: number;
  partnerConnectedForMs: number;
  /** The partner's connection (`n<node>.<incarnation>#<connection>`). */
  partnerOn: string;
}

/** What `down` resolves. */
export interface KillNote {
  kill: number;
  node: number;
  atMs: number;
  /** Clients connected to the node, by the way they will come back. */
  plans: Record<Plan, number>;
  /** Partners on the other node being watched for `partner_away`. */
  watched: number;
}

/** The figures of the run (see `stop`). */
export interface CrashFigures {
  elapsedMs: number;
  sent: number;
  acked: number;
  /** Partner messages received (each text once; duplicates counted apart). */
  delivered: number;
  /** Of those, sent before the receiver's current connection was welcomed: replayed after a resume. */
  replayed: number;
  duplicates: number;
  duplicateMessages: Duplicate[];
  outOfOrder: number;
  lost: number;
  lostMessages: LostMessage[];
  /** Acked messages whose receiver gave its session up (not owed). */
  notOwed: number;
  resumeAttempts: number;
  resumeOk: number;
  resumeFailed: number;
  /** Messages sent again with their id after a resume. */
  resent: number;
  /** Connection attempts that failed (a node not listening yet), retried. */
  connectFailures: number;
  /** `matched` frames received (two per room). */
  matched: number;
  errors: Record<string, number>;
  closes: Record<string, number>;
  partnerLeft: Record<string, number>;
  /** `partner_away` frames received. */
  partnerAway: number;
  unfounded: Unfounded[];
  kills: KillNote[];
  detections: Detection[];
  /** Clients by state at the end. */
  states: Record<string, number>;
  loadCpu: number;
  /** With `trace`: each client's timeline, `<ms since the start> <event>`. */
  traces?: string[][];
}

/** A message this client sent. */
interface Sent {
  id: string;
  seq: number;
  text: string;
  roomId: string;
  node: number;
  sentAt: number;
  ackAt?: number;
  receiverNode?: number | null;
}

/** A stretch of time a client spent connected in a room. */
interface Span {
  roomId: string;
  start: number;
  end?: number;
  /** How it ended: "drop", "left" (partner_left), "end" (the run ended), "fresh" (resumed: false). */
  how?: string;
}

type State = "connecting" | "idle" | "waiting" | "room" | "away";

const RECONNECT_RETRY_MS = 250;
/** A partner connected in the room for this long is not away (more than two node heartbeats). */
const UNFOUNDED_AFTER_MS = 5000;

let config: CrashConfig;
let running = false;
let startedAt = 0;
let startCpu = 0;
let clients: Client[] = [];
const alive: [boolean, boolean] = [true, true];
/** How many times each node was started again (its name in traces: `n<node>.<incarnation>`). */
const incarnation: [number, number] = [0, 0];
const duplicateMessages: Duplicate[] = [];
const kills: (KillNote & { at: number })[] = [];
const detections: Detection[] = [];
const figures = {
  ...chatCounters(),
  resent: 0,
  connectFailures: 0,
  matched: 0,
  closes: {} as Record<string, number>,
  unfounded: [] as Unfounded[],
};

class Client {
  partner!: Client;
  state: State = "connecting";
  /** The node of the current (or last) connection. */
  node = 0;
  connected = false;
  plan: Plan = "fast";
  /** The plan of the last kill that dropped this client (for the loss report). */
  lastPlan: Plan | null = null;
  roomId: string | undefined;
  readonly sent: Sent[] = [];
  readonly spans: Span[] = [];
  /** `<sender>:<seq>` of every text received → when, and on which connection. */
  private readonly received = new Map<string, { at: number; on: string }>();
  /** The current connection, as `n<node>.<incarnation>#<connection number>`. */
  on = "";
  private connections = 0;
  /** Whether a live message came on this connection yet (what came before was replayed). */
  private liveYet = false;
  readonly trace: string[] = [];
  private readonly lastFrom = new Map<number, number>();
  private readonly unacked = new Map<string, Sent>();
  private ws: WebSocket | undefined;
  private token: string | undefined;
  private lastMessageId: string | undefined;
  /** When the current connection was welcomed (performance.now()). */
  private welcomedAt = 0;
  private seq = 0;
  private chatTimer: NodeJS.Timeout | undefined;
  private readonly watching: Detection[] = [];
  private readonly pad: string;

  constructor(readonly index: number) {
    this.pad = "x".repeat(config.textBytes);
  }

  private get location() {
    return pairPoint(this.index >> 1);
  }

  /** Opens a connection to `node` (resuming when `resume`); resolves once welcomed. */
  connect(node: number, resume: boolean): Promise<void> {
    const url = new URL(`ws://127.0.0.1:${config.ports[node]}/whisper`);
    if (resume && this.token !== undefined) {
      url.searchParams.set("resume", this.token);
      if (this.roomId !== undefined)
        url.searchParams.set("last", `${this.roomId}:${this.lastMessageId ?? ""}`);
    }
    const ws = new WebSocket(url, "whisperchat.v1", { perMessageDeflate: false });
    this.ws = ws;
    this.node = node;
    this.on = `n${node}.${incarnation[node]}#${++this.connections}`;
    this.liveYet = false;
    this.state = "connecting";
    this.log(`connect ${this.on}${resume ? ` resume last=${url.searchParams.get("last") ?? "-"}` : ""}`);
    return new Promise<void>((resolve, reject) => {
      let welcomed = false;
      ws.on("message", (data) => {
        if (ws !== this.ws) return;
        const frame = JSON.parse(data.toString()) as Frame;
        if (frame.type === "welcome") {
          welcomed = true;
          this.welcome(frame, resume);
          resolve();
        } else this.onFrame(frame);
      });
      ws.on("error", () => undefined);
      ws.on("close", (code) => {
        if (!welcomed) {
          reject(new Error(`closed with ${code} before welcome`));
          return;
        }
        if (ws !== this.ws) return;
        bump(figures.closes, String(code));
        this.log(`closed ${code}`);
        this.dropped();
      });
    });
  }

  private welcome(frame: Frame, resume: boolean): void {
    this.token = frame.resumeToken;
    this.connected = true;
    this.welcomedAt = performance.now();
    this.log(`welcome ${this.on} resumed=${frame.resumed} session=${frame.sessionId}`);
    if (resume) figures.resumeAttempts++;
    if (resume && frame.resumed === true) {
      figures.resumeOk++;
      const now = performance.now();
      for (const d of this.watching) d.watcherBackMs = now - kills[d.kill - 1]!.at;
      if (this.roomId !== undefined) {
        this.openSpan(this.roomId);
        this.state = "room";
        // What the earlier connection never saw acked, again with the same ids, in order.
        for (const s of this.unacked.values()) {
          this.ws?.send(JSON.stringify({ type: "message", id: s.id, text: s.text }));
          figures.resent++;
        }
        this.startChat();
      } else this.state = "waiting";
      return;
    }
    if (resume) figures.resumeFailed++;
    // A fresh session: whatever the old one had is gone.
    this.roomId = undefined;
    this.lastMessageId = undefined;
    this.unacked.clear();
    this.state = "idle";
    this.join();
  }

  private dropped(): void {
    this.ws = undefined;
    this.connected = false;
    this.stopChat();
    this.closeSpan("drop");
    this.state = "away";
    const plan = this.plan;
    this.plan = "fast";
    if (!running) return;
    if (plan === "abandon") {
      // Its watches end: the old room's frames go to the session it gives up, not to it.
      const now = performance.now();
      for (const d of this.watching.splice(0)) d.watcherGaveUpMs = now - kills[d.kill - 1]!.at;
      this.token = undefined;
      this.reconnect(false);
    } else if (plan === "late") {
      setTimeout(() => this.reconnect(true), Math.max(0, this.lateAt - performance.now()));
    } else this.reconnect(true);
  }

  /** When a `late` client comes back (performance.now()). */
  lateAt = 0;

  /** Connects to a live node, preferably not its partner's, retrying until one answers. */
  private reconnect(resume: boolean): void {
    if (!running) return;
    const avoid = this.partner.connected ? this.partner.node : -1;
    const live = [0, 1].filter((n) => alive[n]);
    const node = live.find((n) => n !== avoid) ?? live[0];
    const retry = () => {
      figures.connectFailures++;
      setTimeout(() => this.reconnect(resume), RECONNECT_RETRY_MS);
    };
    if (node === undefined) retry();
    else this.connect(node, resume).catch(retry);
  }

  join(): void {
    if (!running || this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ type: "join", location: this.location, rangeKm: 1 }));
    if (this.state !== "room") this.state = "waiting";
  }

  /** Adds a line to the timeline (with `trace`). */
  log(event: string): void {
    if (config.trace === true) this.trace.push(`${since(performance.now())} ${event}`);
  }

  private onFrame(f: Frame): void {
    const now = performance.now();
    if (f.type !== "message" && f.type !== "ack")
      this.log(
        `${f.type}${f.roomId === undefined ? "" : ` ${f.roomId}`}${f.reason === undefined ? "" : ` ${f.reason}`}${f.code === undefined ? "" : ` ${f.code} ${f.id ?? ""}`}`,
      );
    switch (f.type) {
      case "message":
        this.receive(f);
        return;
      case "ack": {
        const s = f.id === undefined ? undefined : this.unacked.get(f.id);
        if (s === undefined) return;
        this.unacked.delete(s.id);
        s.ackAt = now;
        s.receiverNode = this.partner.connected ? this.partner.node : null;
        figures.acked++;
        return;
      }
      case "error": {
        bump(figures.errors, f.code ?? "?");
        // A message the room no longer takes is not owed to anyone.
        if (f.id !== undefined && f.code === "not_in_room") this.unacked.delete(f.id);
        return;
      }
      case "matched":
        figures.matched++;
        this.roomId = f.roomId;
        this.lastMessageId = undefined;
        this.state = "room";
        this.openSpan(f.roomId as string);
        this.startChat();
        return;
      case "partner_away":
        figures.partnerAway++;
        for (const d of this.watched(f.roomId)) d.awayMs ??= now - kills[d.kill - 1]!.at;
        this.checkPartnerConnected(f, now);
        return;
      case "partner_back":
        // The partner is back: what its node was told is settled.
        for (const d of this.watched(f.roomId, true)) d.backMs = now - kills[d.kill - 1]!.at;
        return;
      case "partner_left": {
        bump(figures.partnerLeft, f.reason ?? "?");
        for (const d of this.watched(f.roomId, true)) {
          d.leftMs = now - kills[d.kill - 1]!.at;
          d.leftReason = f.reason ?? "?";
        }
        this.checkPartnerConnected(f, now);
        if (f.roomId !== this.roomId) return;
        this.closeSpan("left");
        this.roomId = undefined;
        this.unacked.clear();
        this.stopChat();
        this.state = "idle";
        setTimeout(() => this.join(), rand([100, 300]));
        return;
      }
      default:
        return;
    }
  }

  private receive(f: Frame): void {
    const [sender, seq, sentAt] = (f.text ?? "").split("|", 1)[0]!.split(":").map(Number) as [
      number,
      number,
      number,
    ];
    if (f.roomId === this.roomId) this.lastMessageId = f.messageId;
    const key = `${sender}:${seq}`;
    const now = performance.now();
    const replayed = sentAt < this.welcomedAt;
    if (!replayed) this.liveYet = true;
    const first = this.received.get(key);
    if (first !== undefined) {
      figures.duplicates++;
      this.log(`duplicate ${sender}.${seq} (first on ${first.on})`);
      duplicateMessages.push({
        id: `${sender}.${seq}`,
        to: this.index,
        firstAtMs: since(first.at),
        firstOn: first.on,
        againAtMs: since(now),
        againOn: this.on,
        againReplayed: !this.liveYet,
      });
      return;
    }
    this.received.set(key, { at: now, on: this.on });
    figures.delivered++;
    if (replayed) figures.replayed++;
    const last = this.lastFrom.get(sender);
    if (last !== undefined && seq < last) figures.outOfOrder++;
    else this.lastFrom.set(sender, seq);
  }

  has(sender: number, seq: number): boolean {
    return this.received.has(`${sender}:${seq}`);
  }

  /** Sequence numbers received from `sender` within `radius` of `seq`. */
  around(sender: number, seq: number, radius: number): number[] {
    const out: number[] = [];
    for (let s = seq - radius; s <= seq + radius; s++) if (this.has(sender, s)) out.push(s);
    return out;
  }

  private startChat(): void {
    if (this.chatTimer !== undefined) return;
    const tick = () => {
      this.chatTimer = undefined;
      const ws = this.ws;
      if (!running || this.state !== "room" || this.roomId === undefined || ws?.readyState !== WebSocket.OPEN)
        return;
      const seq = this.seq++;
      const id = `${this.index}.${seq}`;
      const sentAt = performance.now();
      const text = `${this.index}:${seq}:${sentAt.toFixed(1)}|${this.pad}`.slice(0, config.textBytes);
      const s: Sent = { id, seq, text, roomId: this.roomId, node: this.node, sentAt };
      this.sent.push(s);
      this.unacked.set(id, s);
      ws.send(JSON.stringify({ type: "message", id, text }));
      figures.sent++;
      this.chatTimer = setTimeout(tick, rand(config.chatMs));
    };
    this.chatTimer = setTimeout(tick, rand(config.chatMs));
  }

  stopChat(): void {
    if (this.chatTimer !== undefined) clearTimeout(this.chatTimer);
    this.chatTimer = undefined;
  }

  private openSpan(roomId: string): void {
    this.closeSpan("drop");
    this.spans.push({ roomId, start: performance.now() });
  }

  /** Ends the open span, if any. */
  closeSpan(how: string): void {
    const open = this.spans.at(-1);
    if (open === undefined || open.end !== undefined) return;
    open.end = performance.now();
    open.how = how;
  }

  /** After a kill of the partner's node: watch for what the partner's node is told. */
  watch(d: Detection): void {
    this.watching.push(d);
  }

  /** The watches of `roomId`; with `settle`, they end. */
  private watched(roomId: string | undefined, settle = false): Detection[] {
    const mine = this.watching.filter((d) => d.roomId === roomId);
    if (settle) for (const d of mine) this.watching.splice(this.watching.indexOf(d), 1);
    return mine;
  }

  /** Since when this client is connected in `roomId` (performance.now()), if it is. */
  inRoomSince(roomId: string | undefined): number | undefined {
    const span = this.spans.at(-1);
    return this.connected && span !== undefined && span.end === undefined && span.roomId === roomId
      ? span.start
      : undefined;
  }

  /**
   * A `partner_away` or `partner_left` while the partner has been connected in the room for a
   * while: its node is alive and the partner never dropped. Frames replayed right after this
   * client's own resume may be old news (the partner was away when they were sent): not counted.
   */
  private checkPartnerConnected(f: Frame, now: number): void {
    const since = this.partner.inRoomSince(f.roomId);
    if (since === undefined || now - since < UNFOUNDED_AFTER_MS || now - this.welcomedAt < 500) return;
    figures.unfounded.push({
      frame: `${f.type}${f.reason === undefined ? "" : ` ${f.reason}`}`,
      to: this.index,
      roomId: f.roomId ?? "",
      atMs: Math.round(now - startedAt),
      partnerConnectedForMs: Math.round(now - since),
      partnerOn: this.partner.on,
    });
  }

  /** Whether a message acked at `ackAt` in `roomId` was owed to this client (see the file's top). */
  owed(roomId: string, ackAt: number): boolean {
    return this.spans.some((s) => s.roomId === roomId && s.how !== "drop" && (s.end ?? 0) >= ackAt);
  }

  close(): Promise<void> {
    this.stopChat();
    const ws = this.ws;
    this.ws = undefined;
    this.connected = false;
    return ws === undefined ? Promise.resolve() : closeWs(ws);
  }
}

/** Pair i: its first client on node 0, its second on node 1, both joined at the pair's point. */
async function connectPair(i: number): Promise<void> {
  const a = new Client(2 * i);
  const b = new Client(2 * i + 1);
  a.partner = b;
  b.partner = a;
  clients.push(a, b);
  await Promise.all([a.connect(0, false), b.connect(1, false)]);
}

function since(t: number): number {
  return Math.round(t - startedAt);
}

function lostMessages(): { lost: LostMessage[]; notOwed: number } {
  const lost: LostMessage[] = [];
  let notOwed = 0;
  for (const sender of clients) {
    const receiver = sender.partner;
    for (const s of sender.sent) {
      if (s.ackAt === undefined) continue;
      if (!receiver.owed(s.roomId, s.ackAt)) {
        notOwed++;
        continue;
      }
      if (receiver.has(sender.index, s.seq)) continue;
      let nearest: LostMessage["nearestKill"] = null;
      for (const k of kills) {
        const d = s.ackAt - k.at;
        if (nearest === null || Math.abs(d) < Math.abs(nearest.ackFromKillMs))
          nearest = { kill: k.kill, node: k.node, ackFromKillMs: Math.round(d) };
      }
      lost.push({
        id: s.id,
        from: sender.index,
        to: receiver.index,
        roomId: s.roomId,
        senderNode: s.node,
        receiverNode: s.receiverNode ?? null,
        sentAtMs: since(s.sentAt),
        ackAtMs: since(s.ackAt),
        nearestKill: nearest,
        receiverPlan: receiver.lastPlan,
        receivedAround: receiver.around(sender.index, s.seq, 3),
        receiverSpans: receiver.spans
          .filter((p) => p.roomId === s.roomId)
          .map((p) => `${since(p.start)}-${p.end === undefined ? "open" : since(p.end)} ${p.how ?? ""}`),
      });
    }
  }
  return { lost, notOwed };
}

/** When the clients stopped sending (the end of the run), once they did. */
let stoppedAt: number | undefined;

function summary(): CrashFigures {
  const states: Record<string, number> = {};
  for (const c of clients) bump(states, c.state);
  const elapsedMs = (stoppedAt ?? performance.now()) - startedAt;
  const { lost, notOwed } = lostMessages();
  return {
    ...figures,
    elapsedMs,
    lost: lost.length,
    lostMessages: lost,
    duplicateMessages,
    notOwed,
    kills: kills.map(({ at: _at, ...k }) => k),
    detections,
    states,
    loadCpu: (cpuMicros() - startCpu) / 1000 / (performance.now() - startedAt),
    ...(config.trace === true ? { traces: clients.map((c) => c.trace) } : {}),
  };
}

serve({
  async start(arg) {
    config = arg as CrashConfig;
    running = true;
    clients = [];
    // Each joins once welcomed; the pair's point is its own, so the two match each other.
    for (let i = 0; i < config.pairs; i++) await withTimeout(connectPair(i), `connecting pair ${i}`);
    const deadline = performance.now() + 20_000;
    while (clients.some((c) => c.state !== "room")) {
      if (performance.now() > deadline) throw new Error("not every pair matched within 20 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    startedAt = performance.now();
    startCpu = cpuMicros();
    return clients.length;
  },
  down(arg) {
    const { node, abandon } = arg as { node: number; abandon: boolean };
    const at = performance.now();
    const kill = kills.length + 1;
    alive[node] = false;
    const plans: Record<Plan, number> = { fast: 0, late: 0, abandon: 0 };
    const victims = clients.filter((c) => c.connected && c.node === node);
    for (const c of victims) {
      const r = Math.random();
      const inRoom = c.state === "room";
      c.plan =
        inRoom && abandon && r < config.abandon
          ? "abandon"
          : inRoom && r < config.abandon + config.late
            ? "late"
            : "fast";
      c.lastPlan = c.plan;
      c.lateAt = at + rand(config.lateMs);
      plans[c.plan]++;
    }
    let watched = 0;
    for (const c of victims) {
      const p = c.partner;
      // A partner on the other node, in the same room: its node should tell it.
      if (c.state !== "room" || !p.connected || p.node === node || p.roomId !== c.roomId) continue;
      const d: Detection = {
        kill,
        roomId: c.roomId as string,
        client: p.index,
        partner: c.index,
        partnerPlan: c.plan,
      };
      detections.push(d);
      p.watch(d);
      watched++;
    }
    for (const c of victims) c.log(`kill ${kill} of n${node}.${incarnation[node]}: plan ${c.plan}`);
    const note: KillNote = { kill, node, atMs: since(at), plans, watched };
    kills.push({ ...note, at });
    return note;
  },
  up(arg) {
    const { node } = arg as { node: 0 | 1 };
    incarnation[node]++;
    alive[node] = true;
    return null;
  },
  snapshot() {
    return summary();
  },
  async stop(arg) {
    const { settleMs } = arg as { settleMs: number };
    running = false;
    stoppedAt = performance.now();
    for (const c of clients) c.stopChat();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    for (const c of clients) c.closeSpan("end");
    const out = summary();
    await withTimeout(Promise.all(clients.map((c) => c.close())), "closing clients");
    clients = [];
    return out;
  },
});
