/**
 * Relay benchmark: WhisperChat through `@whisperchat/adapter-ws` against a bare `ws` relay and
 * a bare Socket.IO relay written here, in the same run.
 *
 * The server runs in a child process (`lib/relay-server.ts`, a fresh one per server and
 * measurement), the load in another (`lib/load-relay.ts`), over loopback. Measured:
 * - relay throughput (msg/s) and p50/p99 latency for 1, 50 and 500 pairs, each client sending
 *   100-byte texts to its partner with 8 messages in flight;
 * - unloaded latency: one pair, one message in flight (ping-pong);
 * - idle memory per connected session (5,000 sessions);
 * - server CPU time per relayed message.
 *
 *   node --conditions=@whisperchat/source --import tsx --expose-gc bench/relay.ts [--quick] [--profile[=<kind>]] [--source]
 *     [--baseline <checkout>]
 *
 * Besides the bare hub, WhisperChat is measured as operators run it: with `prometheusMetrics`
 * attached, and in the demo's configuration (see `lib/relay-server.ts`). `--baseline` also runs
 * the bare hub of another checkout of this repository (e.g. the previous commit, with its
 * `node_modules`), in the same run, for a before/after comparison of a change.
 *
 * The server and load processes run bundled JavaScript (see `lib/bundle.ts`); `--source` runs
 * them from the TypeScript sources through tsx instead.
 * `--profile` writes a V8 CPU profile of the WhisperChat server process (the bare hub's;
 * `--profile=whisper-metrics` or `--profile=whisper-demo` another one's) to a temporary folder
 * (printed at the end; not part of the results); `bench/lib/profile-top.ts` summarises it.
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle } from "./lib/bundle.js";
import { NODE_ARGS, spawnWorker, type Worker } from "./lib/ipc.js";
import { PAYLOAD_BYTES, type ServerKind } from "./lib/relay-config.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, "lib", "relay-server.ts");
const LOAD = join(here, "lib", "load-relay.ts");
const PROFILE_DIR = join(tmpdir(), "whisperchat-bench-profiles");

const quick = isQuick();
/** `--profile` profiles the bare hub's server; `--profile=<kind>` another one, e.g. `whisper-demo`. */
const profileArg = process.argv.find((a) => a === "--profile" || a.startsWith("--profile="));
const profile = profileArg !== undefined;
const profiledKind = profileArg?.startsWith("--profile=") ? profileArg.slice("--profile=".length) : "whisper";
const PAIRS = quick ? [1, 50] : [1, 50, 500];
const WINDOW = 8;
/** Before anything is measured, each server relays for this long (JIT warm-up). */
const SERVER_WARMUP_MS = quick ? 500 : 2000;
/** Before each measuring window, the load runs for this long. */
const WARMUP_MS = quick ? 200 : 700;
const MEASURE_MS = quick ? 1000 : 2500;
const PINGPONG_MS = quick ? 500 : 2000;
const IDLE_SESSIONS = quick ? 1000 : 5000;
/** Each measurement is taken this many times, the servers taking turns; the best round counts. */
const ROUNDS = process.argv.includes("--before-after") ? 5 : quick ? 1 : 3;
const baselineAt = process.argv.indexOf("--baseline");
const baselineDir = baselineAt < 0 ? undefined : process.argv[baselineAt + 1];
if (baselineAt >= 0 && (baselineDir === undefined || baselineDir.startsWith("--")))
  throw new Error("--baseline needs the path of another checkout of this repository");
/** The servers measured; `whisper-base` is the bare hub of the `--baseline` checkout. */
type Kind = ServerKind | "whisper-base";
/** `--before-after`: only the bare hub of this tree and of the `--baseline` checkout, more rounds. */
const onlyBeforeAfter = process.argv.includes("--before-after");
if (onlyBeforeAfter && baselineDir === undefined)
  throw new Error("--before-after needs --baseline <checkout>");
const KINDS: Kind[] = onlyBeforeAfter
  ? ["whisper", "whisper-base"]
  : [
      "whisper",
      "whisper-metrics",
      "whisper-demo",
      "ws",
      "socketio",
      ...(baselineDir === undefined ? [] : (["whisper-base"] as const)),
    ];
if (!(KINDS as string[]).includes(profiledKind))
  throw new Error(`--profile=${profiledKind}: not a server of this run (${KINDS.join(", ")})`);
const NAMES: Record<Kind, string> = {
  whisper: "WhisperChat (adapter-ws)",
  "whisper-metrics": "WhisperChat with prometheusMetrics",
  "whisper-demo": "WhisperChat in the demo's configuration",
  ws: "bare ws",
  socketio: "bare Socket.IO",
  "whisper-base": "WhisperChat of the baseline checkout",
};
/** What the load connects as: the baseline checkout speaks WhisperChat. */
const loadKind = (kind: Kind): ServerKind => (kind === "whisper-base" ? "whisper" : kind);

interface Window {
  received: number;
  elapsedMs: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  loadCpu: number;
}

interface Load extends Window {
  /** Server CPU time per relayed message, microseconds. */
  cpuUsPerMsg: number;
  /** Server CPU use over the window, as a fraction of one core. */
  serverCpu: number;
}

interface Memory {
  rssPerSession: number;
  heapPerSession: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stderr.write(`[relay] ${line}\n`);

async function startServer(kind: Kind, profiled = true): Promise<{ server: Worker; port: number }> {
  const execArgv: string[] = [];
  if (profile && profiled && kind === profiledKind) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    execArgv.push("--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`);
  }
  const entry = kind === "whisper-base" ? (code.baseline as string) : code.server;
  const server = await spawnWorker(entry, execArgv, undefined, code.nodeArgs);
  const { port } = await server.call<{ port: number }>("start", { kind: loadKind(kind) });
  return { server, port };
}

async function measureLoad(
  load: Worker,
  server: Worker,
  kind: Kind,
  port: number,
  pairs: number,
  warmupMs = WARMUP_MS,
) {
  await load.call("connectPairs", { kind: loadKind(kind), port, pairs });
  await load.call("start", { window: WINDOW });
  await sleep(warmupMs);
  const cpu0 = await server.call<number>("cpu");
  await load.call("mark");
  await sleep(MEASURE_MS);
  const w = await load.call<Window>("stop");
  const cpu1 = await server.call<number>("cpu");
  await load.call("closeAll");
  const serverCpuUs = cpu1 - cpu0;
  return { ...w, cpuUsPerMsg: serverCpuUs / w.received, serverCpu: serverCpuUs / 1000 / w.elapsedMs } as Load;
}

async function measurePingPong(load: Worker, kind: Kind, port: number): Promise<Window> {
  await load.call("connectPairs", { kind: loadKind(kind), port, pairs: 1 });
  await load.call("pingPong");
  await sleep(Math.min(500, PINGPONG_MS / 3));
  await load.call("mark");
  await sleep(PINGPONG_MS);
  const w = await load.call<Window>("stop");
  await load.call("closeAll");
  return w;
}

async function measureMemory(
  load: Worker,
  kind: Kind,
  { server, port }: { server: Worker; port: number },
): Promise<Memory> {
  try {
    // Warm the code paths once so that compiled code is not counted per session.
    await load.call("connectIdle", { kind: loadKind(kind), port, count: 20 });
    await load.call("closeAll");
    await sleep(200);
    const before = await server.call<NodeJS.MemoryUsage>("mem");
    await load.call("connectIdle", { kind: loadKind(kind), port, count: IDLE_SESSIONS });
    await sleep(300);
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

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

const t0 = performance.now();
// The server and load processes run bundled JavaScript (WhisperChat as it ships), or with
// `--source` the TypeScript sources through tsx.
const fromSource = process.argv.includes("--source");
const code: { server: string; load: string; baseline?: string; nodeArgs: string[] } = fromSource
  ? { server: SERVER, load: LOAD, nodeArgs: NODE_ARGS }
  : { ...(await bundleBoth()), nodeArgs: ["--expose-gc"] };
// The baseline checkout's server is always bundled from its own sources.
if (baselineDir !== undefined)
  code.baseline = await bundle(join(resolve(baselineDir), "bench", "lib", "relay-server.ts"), "baseline");
async function bundleBoth(): Promise<{ server: string; load: string }> {
  const [server, load] = await Promise.all([bundle(SERVER), bundle(LOAD)]);
  return { server, load };
}
const load = await spawnWorker(code.load, [], undefined, code.nodeArgs);
const loads = new Map<string, Load>();
const pings = new Map<Kind, Window>();
const memory = new Map<Kind, Memory>();
const notes: string[] = [];
try {
  // Throughput and latency: one server of each kind, taking turns so that a disturbance on the
  // machine does not fall on one of them only.
  const servers = await Promise.all(KINDS.map((kind) => startServer(kind)));
  // Memory is measured on fresh server processes, started now so that they start in parallel.
  const fresh = Promise.all(KINDS.map((kind) => startServer(kind, false)));
  fresh.catch(() => undefined);
  try {
    for (const [i, kind] of KINDS.entries()) {
      const { server, port } = servers[i]!;
      await measureLoad(load, server, kind, port, 10, SERVER_WARMUP_MS);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const pairs of PAIRS) {
        for (const [i, kind] of KINDS.entries()) {
          const { server, port } = servers[i]!;
          const r = await measureLoad(load, server, kind, port, pairs);
          const key = `${kind}:${pairs}`;
          const best = loads.get(key);
          if (best === undefined || r.perSec > best.perSec) loads.set(key, r);
          log(
            `${NAMES[kind]}, ${pairs} pair(s): ${fmt(r.perSec)} msg/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, ` +
              `server ${r.cpuUsPerMsg.toFixed(1)} µs CPU/msg (${(r.serverCpu * 100).toFixed(0)}% core), load ${(r.loadCpu * 100).toFixed(0)}% core`,
          );
        }
      }
      for (const [i, kind] of KINDS.entries()) {
        const p = await measurePingPong(load, kind, servers[i]!.port);
        const best = pings.get(kind);
        if (best === undefined || p.p50Ms < best.p50Ms) pings.set(kind, p);
        log(`${NAMES[kind]}, one in flight: p50 ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms`);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.server.exit()));
  }
  log(`throughput and latency done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // Memory: a fresh server process per kind, so that nothing else is counted.
  const memoryServers = await fresh;
  for (const [i, kind] of KINDS.entries()) {
    const m = await measureMemory(load, kind, memoryServers[i]!);
    memory.set(kind, m);
    log(
      `${NAMES[kind]}, ${IDLE_SESSIONS} idle: ${fmt(m.rssPerSession)} B RSS/session, ${fmt(m.heapPerSession)} B heap+external/session`,
    );
  }
} finally {
  await load.exit();
  // A profile refers to the bundle: keep it then, for `lib/profile-top.ts`.
  if (!fromSource && !profile)
    for (const f of [code.server, code.load, code.baseline]) if (f !== undefined) rmSync(f, { force: true });
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const rows: ResultRow[] = [];
if (!onlyBeforeAfter) {
  for (const pairs of PAIRS) {
    const group = `relay ${pairs} pair${pairs === 1 ? "" : "s"}`;
    const ours = loads.get(`whisper:${pairs}`)!;
    for (const base of ["ws", "socketio"] as const) {
      const b = loads.get(`${base}:${pairs}`)!;
      const baselineName = NAMES[base];
      rows.push(
        row({
          group,
          metric: `msg/s vs ${baselineName}`,
          unit: "msg/s",
          ours: ours.perSec,
          baseline: b.perSec,
          baselineName,
          higherIsBetter: true,
          target: base === "ws" ? { ratio: 0.6, op: ">=" } : { ratio: 1.0, op: ">=" },
        }),
        row({
          group,
          metric: `p50 latency vs ${baselineName}`,
          unit: "ms",
          ours: ours.p50Ms,
          baseline: b.p50Ms,
          baselineName,
          higherIsBetter: false,
        }),
        row({
          group,
          metric: `p99 latency vs ${baselineName}`,
          unit: "ms",
          ours: ours.p99Ms,
          baseline: b.p99Ms,
          baselineName,
          higherIsBetter: false,
        }),
        row({
          group,
          metric: `server CPU per message vs ${baselineName}`,
          unit: "µs",
          ours: ours.cpuUsPerMsg,
          baseline: b.cpuUsPerMsg,
          baselineName,
          higherIsBetter: false,
        }),
      );
    }
  }
  for (const pairs of PAIRS) {
    const bare = loads.get(`whisper:${pairs}`)!;
    const metrics = loads.get(`whisper-metrics:${pairs}`)!;
    const demo = loads.get(`whisper-demo:${pairs}`)!;
    const suffix = `${pairs} pair${pairs === 1 ? "" : "s"}`;
    rows.push(
      row({
        group: `relay ${suffix}, metrics on`,
        metric: "server CPU per message vs the bare hub",
        unit: "µs",
        ours: metrics.cpuUsPerMsg,
        baseline: bare.cpuUsPerMsg,
        baselineName: NAMES.whisper,
        higherIsBetter: false,
        target: { ratio: 1.05, op: "<=" },
      }),
      row({
        group: `relay ${suffix}, metrics on`,
        metric: "msg/s vs the bare hub",
        unit: "msg/s",
        ours: metrics.perSec,
        baseline: bare.perSec,
        baselineName: NAMES.whisper,
        higherIsBetter: true,
      }),
    );
    for (const base of ["ws", "socketio"] as const) {
      const b = loads.get(`${base}:${pairs}`)!;
      rows.push(
        row({
          group: `relay ${suffix}, the demo's configuration`,
          metric: `msg/s vs ${NAMES[base]}`,
          unit: "msg/s",
          ours: demo.perSec,
          baseline: b.perSec,
          baselineName: NAMES[base],
          higherIsBetter: true,
          target: base === "ws" ? { ratio: 0.8, op: ">=" } : { ratio: 1.0, op: ">=" },
        }),
        row({
          group: `relay ${suffix}, the demo's configuration`,
          metric: `server CPU per message vs ${NAMES[base]}`,
          unit: "µs",
          ours: demo.cpuUsPerMsg,
          baseline: b.cpuUsPerMsg,
          baselineName: NAMES[base],
          higherIsBetter: false,
        }),
      );
    }
  }
  for (const base of ["ws", "socketio"] as const) {
    const ours = pings.get("whisper")!;
    const b = pings.get(base)!;
    const baselineName = NAMES[base];
    const group = "unloaded latency (1 in flight)";
    rows.push(
      row({
        group,
        metric: `p50 vs ${baselineName}`,
        unit: "ms",
        ours: ours.p50Ms,
        baseline: b.p50Ms,
        baselineName,
        higherIsBetter: false,
        ...(base === "ws" ? { target: { ratio: 2, op: "<=" as const } } : {}),
      }),
      row({
        group,
        metric: `p99 vs ${baselineName}`,
        unit: "ms",
        ours: ours.p99Ms,
        baseline: b.p99Ms,
        baselineName,
        higherIsBetter: false,
      }),
    );
  }
  for (const base of ["ws", "socketio"] as const) {
    const ours = memory.get("whisper")!;
    const b = memory.get(base)!;
    const baselineName = NAMES[base];
    const group = `idle memory (${fmt(IDLE_SESSIONS)} sessions)`;
    rows.push(
      row({
        group,
        metric: `RSS per session vs ${baselineName}`,
        unit: "bytes",
        ours: ours.rssPerSession,
        baseline: b.rssPerSession,
        baselineName,
        higherIsBetter: false,
        ...(base === "ws" ? { target: { ratio: 1.5, op: "<=" as const } } : {}),
      }),
      row({
        group,
        metric: `JS heap + external per session vs ${baselineName}`,
        unit: "bytes",
        ours: ours.heapPerSession,
        baseline: b.heapPerSession,
        baselineName,
        higherIsBetter: false,
      }),
    );
  }

  {
    const demo = memory.get("whisper-demo")!;
    const b = memory.get("ws")!;
    rows.push(
      row({
        group: `idle memory (${fmt(IDLE_SESSIONS)} sessions)`,
        metric: `RSS per session, the demo's configuration, vs ${NAMES.ws}`,
        unit: "bytes",
        ours: demo.rssPerSession,
        baseline: b.rssPerSession,
        baselineName: NAMES.ws,
        higherIsBetter: false,
        target: { ratio: 1.5, op: "<=" },
      }),
    );
  }
}
for (const pairs of PAIRS) {
  const bare = loads.get(`whisper:${pairs}`)!;
  const suffix = `${pairs} pair${pairs === 1 ? "" : "s"}`;
  const before = loads.get(`whisper-base:${pairs}`);
  if (before !== undefined) {
    for (const [metric, unit, ours, base, higherIsBetter] of [
      ["msg/s vs the baseline checkout", "msg/s", bare.perSec, before.perSec, true],
      ["server CPU per message vs the baseline checkout", "µs", bare.cpuUsPerMsg, before.cpuUsPerMsg, false],
    ] as const) {
      rows.push(
        row({
          group: `relay ${suffix}, before and after`,
          metric,
          unit,
          ours,
          baseline: base,
          baselineName: NAMES["whisper-base"],
          higherIsBetter,
        }),
      );
    }
  }
}

const loadCpuMax = Math.max(...[...loads.values()].map((l) => l.loadCpu));
notes.push(
  `Server and load generator are separate processes on loopback (${PAIRS.join(", ")} pairs; ${PAYLOAD_BYTES}-byte texts; ` +
    `each client keeps ${WINDOW} messages in flight to its partner; ${WARMUP_MS} ms warm-up, ${MEASURE_MS} ms window; ` +
    `best of ${ROUNDS} round(s), the servers taking turns).`,
  fromSource
    ? "Server and load ran the TypeScript sources through tsx (--source): tsx compiles with keepNames, which costs memory per session and time per closure."
    : "Server and load ran as JavaScript bundled with esbuild (the compiler of the packages' builds), from the sources of this tree.",
  "WhisperChat runs on the memory store with its message, churn and connection limits raised out of the way; " +
    "its clients also receive an `ack` per message sent, which the bare relays do not send.",
  "Metrics on: `prometheusMetrics(hub)` attached. The demo's configuration: metrics, the JWT authentication hook (clients are guests, the demo's default), the role policy, and both adapter-ws and adapter-socketio mounted on the server, as `npm start` runs it (the load uses the WebSocket endpoint).",
  ...(baselineDir === undefined
    ? []
    : [
        "Before and after: the bare hub of this tree against the bare hub of the baseline checkout, bundled from its own sources, the servers taking turns in the same run.",
      ]),
  `Unloaded latency: one pair, one message in flight (ping-pong), ${PINGPONG_MS} ms window. Latency is send → partner receipt, both ends in the load process.`,
  `Idle memory: server process RSS and JS heap + external after a full GC, before and after ${fmt(IDLE_SESSIONS)} idle connections (WhisperChat: welcomed, not joined), divided by the count.`,
  `Busiest load-generator process: ${(loadCpuMax * 100).toFixed(0)}% of a core (near 100% means the load, not the server, set the pace).`,
);
const path = writeResults(onlyBeforeAfter ? "relay-before-after" : "relay", rows, { quick, notes });
log(`wrote ${path}`);
if (profile) log(`CPU profile of the WhisperChat server in ${PROFILE_DIR}`);
