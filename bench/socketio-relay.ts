/**
 * Socket.IO relay benchmark: WhisperChat through `@whisperchat/adapter-socketio` against a bare
 * Socket.IO relay written here, in the same run.
 *
 * One file, three roles: this process coordinates; it forks itself as the server (a fresh
 * process per server and measurement, so that CPU time and memory are the server's own) and as
 * the load generator, which talks to the server over loopback with socket.io-client.
 *
 * Both servers relay chat the Socket.IO way: a client emits `message` `{ text }` with an ack
 * callback; the server emits `message` `{ roomId, messageId, text, ts }` to the partner and
 * answers the callback `{ ok: true, messageId, ts }`. Each client keeps the same number of
 * messages in flight (a message lands at the partner, its sender sends the next one), with
 * texts of the same size. Measured: relay msg/s for a few pair counts, server CPU per message,
 * and idle memory per connected session.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/socketio-relay.ts [--quick] [--profile]
 *
 * `--profile` writes a V8 CPU profile of the WhisperChat server process to
 * `bench/results/profiles/` (not part of the results).
 */

import { mkdirSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { join } from "node:path";
import { createHistogram, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { attachSocketIo } from "@whisperchat/adapter-socketio";
import { createWhisper, type WhisperHub } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { Server as IoServer, type Socket as ServerSocket } from "socket.io";
import { type Socket as ClientSocket, io as ioClient } from "socket.io-client";
import { cpuMicros, fullGc, listenLoopback, serve, spawnWorker, type Worker } from "./lib/ipc.js";
import { inBatches, withTimeout } from "./lib/load-common.js";
import { NO_LIMITS } from "./lib/no-limits.js";
import { isQuick, RESULTS_DIR, type ResultRow, row, writeResults } from "./lib/results.js";

type Kind = "whisper" | "bare";
const KINDS: Kind[] = ["whisper", "bare"];
const NAMES: Record<Kind, string> = {
  whisper: "WhisperChat (adapter-socketio)",
  bare: "bare Socket.IO",
};
/** Text size of every relayed message, in bytes (ASCII). */
const PAYLOAD_BYTES = 100;
/** Messages each client keeps in flight. */
const WINDOW = 8;
const ROLE_ENV = "WHISPERCHAT_SIO_BENCH_ROLE";
const SELF = fileURLToPath(import.meta.url);

const role = process.env[ROLE_ENV];
if (role === "server") runServer();
else if (role === "load") runLoad();
else await coordinate();

// ------------------------------------------------------------------------------------------------
// Server role

function runServer(): void {
  let http: HttpServer | undefined;
  let hub: WhisperHub | undefined;
  serve({
    async start(arg) {
      const { kind } = arg as { kind: Kind };
      if (http !== undefined) throw new Error("already started");
      const server = createServer((_req, res) => {
        res.writeHead(404).end();
      });
      server.maxConnections = 100_000;
      // The same Socket.IO settings for both: what attachSocketIo sets when it creates the server.
      const serverOptions = { serveClient: false };
      if (kind === "whisper") {
        hub = createWhisper({
          store: createMemoryStore(),
          ...NO_LIMITS,
        });
        attachSocketIo(hub, { server, serverOptions });
      } else {
        startBare(
          new IoServer(server, { ...serverOptions, maxHttpBufferSize: 16_384, destroyUpgrade: false }),
        );
      }
      const port = await listenLoopback(server);
      http = server;
      return { port };
    },
    cpu: cpuMicros,
    mem() {
      fullGc();
      return process.memoryUsage();
    },
  });
}

/** The bare relay: clients name their pair and side in the auth payload. */
function startBare(io: IoServer): void {
  const pairs = new Map<number, [ServerSocket | undefined, ServerSocket | undefined]>();
  let seq = 0;
  io.on("connection", (socket) => {
    const auth = socket.handshake.auth as { pair?: unknown; side?: unknown };
    const pair = Number(auth.pair);
    const side = auth.side === 1 ? 1 : 0;
    let slots = pairs.get(pair);
    if (slots === undefined) {
      slots = [undefined, undefined];
      pairs.set(pair, slots);
    }
    slots[side] = socket;
    const mine = slots;
    const other = side === 0 ? 1 : 0;
    const roomId = `room-${pair}`;
    socket.on("message", (payload: { text?: unknown }, ack?: (answer: unknown) => void) => {
      const messageId = (++seq).toString(36);
      const ts = Date.now();
      mine[other]?.emit("message", { roomId, messageId, text: payload?.text, ts });
      if (typeof ack === "function") ack({ ok: true, messageId, ts });
    });
    socket.on("disconnect", () => {
      if (mine[side] === socket) mine[side] = undefined;
      if (mine[0] === undefined && mine[1] === undefined) pairs.delete(pair);
    });
  });
}

// ------------------------------------------------------------------------------------------------
// Load role

interface Client {
  socket: ClientSocket;
  /** Called with each text the partner sent. */
  onText: (text: string) => void;
}

function runLoad(): void {
  const PAD = "x".repeat(PAYLOAD_BYTES);
  const CONNECT_BATCH = 100;
  let clients: Client[] = [];
  let running = false;
  let received = 0;
  let failed = 0;
  let markAt = 0;
  let markCpu = 0;
  const latencyUs = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });

  const text = () => `${performance.now().toFixed(3)}|${PAD}`.slice(0, PAYLOAD_BYTES);
  const cpuNow = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const onAck = (answer: { ok?: boolean }) => {
    if (answer?.ok !== true) failed++;
  };
  const send = (c: Client) => c.socket.emit("message", { text: text() }, onAck);

  function once<T>(socket: ClientSocket, event: string): Promise<T> {
    return withTimeout(
      new Promise<T>((resolve) => socket.once(event, (payload: T) => resolve(payload))),
      `event ${event}`,
    );
  }

  async function connect(kind: Kind, port: number, auth: Record<string, unknown>): Promise<Client> {
    const socket = ioClient(`http://127.0.0.1:${port}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      auth,
    });
    const client: Client = { socket, onText: () => undefined };
    socket.on("message", (m: { text: string }) => client.onText(m.text));
    const ready = once(socket, kind === "whisper" ? "welcome" : "connect");
    socket.once("connect_error", (e) => process.stderr.write(`connect_error: ${e.message}\n`));
    await ready;
    return client;
  }

  /**
   * Pair `i` joins at its own point, cells about 50 km apart with a 1 km range, so that each
   * pair can only match itself.
   */
  async function whisperPair(port: number, i: number): Promise<Client[]> {
    const [a, b] = await Promise.all([connect("whisper", port, {}), connect("whisper", port, {})]);
    const location = { lat: -50 + (i % 200) * 0.5, lng: -170 + Math.floor(i / 200) * 1.5 };
    const matchedA = once(a!.socket, "matched");
    const matchedB = once(b!.socket, "matched");
    const joined = await new Promise<{ ok: boolean }>((resolve) =>
      a!.socket.emit("join", { location, rangeKm: 1 }, resolve),
    );
    if (!joined.ok) throw new Error(`join refused: ${JSON.stringify(joined)}`);
    b!.socket.emit("join", { location, rangeKm: 1 });
    await Promise.all([matchedA, matchedB]);
    return [a!, b!];
  }

  function mark(): void {
    received = 0;
    failed = 0;
    latencyUs.reset();
    markAt = performance.now();
    markCpu = cpuNow();
  }

  const record = (t: string) => {
    latencyUs.record(Math.max(1, Math.round((performance.now() - Number.parseFloat(t)) * 1000)));
    received++;
  };

  serve({
    async connectPairs(arg) {
      const { kind, port, pairs } = arg as { kind: Kind; port: number; pairs: number };
      const made = await inBatches(pairs, CONNECT_BATCH, (i) =>
        kind === "whisper"
          ? whisperPair(port, i)
          : Promise.all([
              connect(kind, port, { pair: i, side: 0 }),
              connect(kind, port, { pair: i, side: 1 }),
            ]),
      );
      clients = made.flat();
      return clients.length;
    },
    async connectIdle(arg) {
      const { kind, port, count } = arg as { kind: Kind; port: number; count: number };
      clients = await inBatches(count, CONNECT_BATCH, (i) => connect(kind, port, { pair: i, side: 0 }));
      return clients.length;
    },
    /** Every client sends `window` messages, then one more each time one of its lands. */
    start(arg) {
      const { window } = arg as { window: number };
      for (let i = 0; i < clients.length; i += 2) {
        const a = clients[i]!;
        const b = clients[i + 1]!;
        a.onText = (t) => {
          record(t);
          if (running) send(b);
        };
        b.onText = (t) => {
          record(t);
          if (running) send(a);
        };
      }
      running = true;
      mark();
      for (const c of clients) for (let k = 0; k < window; k++) send(c);
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
        failed,
        elapsedMs,
        perSec: (received * 1000) / elapsedMs,
        p50Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(50) / 1000,
        p99Ms: latencyUs.count === 0 ? Number.NaN : latencyUs.percentile(99) / 1000,
        loadCpu: (cpuNow() - markCpu) / 1000 / elapsedMs,
      };
      running = false;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return out;
    },
    async closeAll() {
      running = false;
      const all = clients;
      clients = [];
      await withTimeout(
        Promise.all(
          all.map(
            (c) =>
              new Promise<void>((resolve) => {
                if (c.socket.disconnected) return resolve();
                c.socket.once("disconnect", () => resolve());
                c.socket.disconnect();
              }),
          ),
        ),
        "closing clients",
      );
      return null;
    },
  });
}

// ------------------------------------------------------------------------------------------------
// Coordinator

interface Load {
  received: number;
  failed: number;
  elapsedMs: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  loadCpu: number;
  /** Server CPU time per relayed message, microseconds. */
  cpuUsPerMsg: number;
  /** Server CPU use over the window, as a fraction of one core. */
  serverCpu: number;
}

interface Memory {
  rssPerSession: number;
  heapPerSession: number;
}

async function coordinate(): Promise<void> {
  const quick = isQuick();
  const PAIRS = quick ? [50] : [1, 50, 500];
  const WARMUP_MS = quick ? 500 : 1000;
  const MEASURE_MS = quick ? 2000 : 4000;
  const IDLE_SESSIONS = quick ? 1000 : 5000;
  /** Each measurement is taken this many times, the servers taking turns; the best round counts. */
  const ROUNDS = quick ? 1 : 3;

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const log = (line: string) => process.stderr.write(`[socketio-relay] ${line}\n`);
  const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
  const profile = process.argv.includes("--profile");
  const spawn = (r: "server" | "load", execArgv: string[] = []) =>
    spawnWorker(SELF, execArgv, { ...process.env, [ROLE_ENV]: r });

  async function startServer(kind: Kind, profiled = false): Promise<{ server: Worker; port: number }> {
    const execArgv: string[] = [];
    if (profiled && profile && kind === "whisper") {
      const dir = join(RESULTS_DIR, "profiles");
      mkdirSync(dir, { recursive: true });
      execArgv.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
    }
    const server = await spawn("server", execArgv);
    const { port } = await server.call<{ port: number }>("start", { kind });
    return { server, port };
  }

  async function measureLoad(load: Worker, server: Worker, kind: Kind, port: number, pairs: number) {
    await load.call("connectPairs", { kind, port, pairs });
    await load.call("start", { window: WINDOW });
    await sleep(WARMUP_MS);
    const cpu0 = await server.call<number>("cpu");
    await load.call("mark");
    await sleep(MEASURE_MS);
    const w = await load.call<Omit<Load, "cpuUsPerMsg" | "serverCpu">>("stop");
    const cpu1 = await server.call<number>("cpu");
    await load.call("closeAll");
    const us = cpu1 - cpu0;
    return { ...w, cpuUsPerMsg: us / w.received, serverCpu: us / 1000 / w.elapsedMs } as Load;
  }

  async function measureMemory(load: Worker, kind: Kind): Promise<Memory> {
    const { server, port } = await startServer(kind);
    try {
      // Warm the code paths once so that compiled code is not counted per session.
      await load.call("connectIdle", { kind, port, count: 20 });
      await load.call("closeAll");
      await sleep(200);
      const before = await server.call<NodeJS.MemoryUsage>("mem");
      await load.call("connectIdle", { kind, port, count: IDLE_SESSIONS });
      await sleep(500);
      const after = await server.call<NodeJS.MemoryUsage>("mem");
      await load.call("closeAll");
      return {
        rssPerSession: (after.rss - before.rss) / IDLE_SESSIONS,
        heapPerSession: (after.heapUsed + after.external - before.heapUsed - before.external) / IDLE_SESSIONS,
      };
    } finally {
      await server.exit();
    }
  }

  const t0 = performance.now();
  const load = await spawn("load");
  const loads = new Map<string, Load>();
  const memory = new Map<Kind, Memory>();
  try {
    const servers = await Promise.all(KINDS.map((kind) => startServer(kind, true)));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        for (const pairs of PAIRS) {
          for (const [i, kind] of KINDS.entries()) {
            const { server, port } = servers[i]!;
            const r = await measureLoad(load, server, kind, port, pairs);
            const key = `${kind}:${pairs}`;
            const best = loads.get(key);
            if (best === undefined || r.perSec > best.perSec) loads.set(key, r);
            log(
              `${NAMES[kind]}, ${pairs} pair(s): ${fmt(r.perSec)} msg/s, p50 ${r.p50Ms.toFixed(2)} ms, ` +
                `server ${r.cpuUsPerMsg.toFixed(1)} µs CPU/msg (${(r.serverCpu * 100).toFixed(0)}% core), ` +
                `load ${(r.loadCpu * 100).toFixed(0)}% core${r.failed > 0 ? `, ${r.failed} refused` : ""}`,
            );
          }
        }
      }
    } finally {
      await Promise.all(servers.map((s) => s.server.exit()));
    }
    // Memory: a fresh server process per kind, so that nothing else is counted.
    for (const kind of KINDS) {
      const m = await measureMemory(load, kind);
      memory.set(kind, m);
      log(
        `${NAMES[kind]}, ${fmt(IDLE_SESSIONS)} idle: ${fmt(m.rssPerSession)} B RSS/session, ` +
          `${fmt(m.heapPerSession)} B heap+external/session`,
      );
    }
  } finally {
    await load.exit();
  }
  log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const baselineName = NAMES.bare;
  const rows: ResultRow[] = [];
  for (const pairs of PAIRS) {
    const ours = loads.get(`whisper:${pairs}`)!;
    const bare = loads.get(`bare:${pairs}`)!;
    const group = `relay ${pairs} pair${pairs === 1 ? "" : "s"}`;
    rows.push(
      row({
        group,
        metric: `msg/s vs ${baselineName}`,
        unit: "msg/s",
        ours: ours.perSec,
        baseline: bare.perSec,
        baselineName,
        higherIsBetter: true,
        target: { ratio: 0.75, op: ">=" },
      }),
      row({
        group,
        metric: `p50 latency vs ${baselineName}`,
        unit: "ms",
        ours: ours.p50Ms,
        baseline: bare.p50Ms,
        baselineName,
        higherIsBetter: false,
      }),
      row({
        group,
        metric: `server CPU per message vs ${baselineName}`,
        unit: "µs",
        ours: ours.cpuUsPerMsg,
        baseline: bare.cpuUsPerMsg,
        baselineName,
        higherIsBetter: false,
      }),
    );
  }
  const mo = memory.get("whisper")!;
  const mb = memory.get("bare")!;
  const idleGroup = `idle memory (${fmt(IDLE_SESSIONS)} sessions)`;
  rows.push(
    row({
      group: idleGroup,
      metric: `RSS per session vs ${baselineName}`,
      unit: "bytes",
      ours: mo.rssPerSession,
      baseline: mb.rssPerSession,
      baselineName,
      higherIsBetter: false,
      target: { ratio: 1.3, op: "<=" },
    }),
    row({
      group: idleGroup,
      metric: `JS heap + external per session vs ${baselineName}`,
      unit: "bytes",
      ours: mo.heapPerSession,
      baseline: mb.heapPerSession,
      baselineName,
      higherIsBetter: false,
    }),
  );
  const loadCpuMax = Math.max(...[...loads.values()].map((l) => l.loadCpu));
  const notes = [
    `Server and load generator are separate processes on loopback (${PAIRS.join(", ")} pairs; ` +
      `${PAYLOAD_BYTES}-byte texts; each client keeps ${WINDOW} messages in flight to its partner; ` +
      `${WARMUP_MS} ms warm-up, ${MEASURE_MS} ms window; best of ${ROUNDS} round(s), the servers taking turns).`,
    "Both servers answer each message through the client's ack callback and emit `message` " +
      "`{ roomId, messageId, text, ts }` to the partner; WhisperChat runs on the memory store with " +
      "its message, churn and connection limits raised out of the way.",
    `Idle memory: server process RSS and JS heap + external after a full GC, before and after ` +
      `${fmt(IDLE_SESSIONS)} idle connections (WhisperChat: welcomed, not joined), divided by the count.`,
    `Busiest load-generator process: ${(loadCpuMax * 100).toFixed(0)}% of a core ` +
      "(near 100% means the load, not the server, set the pace). On a shared or small machine msg/s " +
      "follows whichever process gets the CPU; server CPU per message is the steadier figure.",
  ];
  const path = writeResults("socketio-relay", rows, { quick, notes });

  const cell = (n: number | null, unit: string) =>
    n === null ? "n/a" : unit === "msg/s" || unit === "bytes" ? fmt(n) : fmt(n, 2);
  const lines = [
    `| measure | ${NAMES.whisper} | ${baselineName} | ratio | target |`,
    "|---|---:|---:|---:|---|",
    ...rows.map((r) => {
      const target =
        r.target === undefined
          ? ""
          : `${r.target.op} ${r.target.ratio}x ${r.met === true ? "met" : "NOT met"}`;
      return `| ${r.group}: ${r.metric.replace(` vs ${baselineName}`, "")} (${r.unit}) | ${cell(r.ours, r.unit)} | ${cell(r.baseline, r.unit)} | ${r.ratio === null ? "n/a" : `${r.ratio.toFixed(2)}x`} | ${target} |`;
    }),
  ];
  process.stdout.write(`${lines.join("\n")}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
  log(`wrote ${path}`);
}
