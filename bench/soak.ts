/**
 * Soak benchmark: one WhisperChat node (memory store, `@whisperchat/adapter-ws`) under 1,000
 * sessions chatting and churning for 3 minutes (`--quick`: 200 sessions for 20 s), to show that
 * throughput, latency and memory hold up and that the protocol's promises hold under churn.
 *
 * The node runs in a child process (`lib/soak-server.ts`), the clients in another
 * (`lib/soak-load.ts`), over loopback. Each client joins near a few others; once matched it
 * sends a message every 0.5 to 1.5 s; every 4 to 12 s it goes `next`, leaves and joins again,
 * drops its connection and resumes with its token, or disconnects and connects afresh. (The
 * quick run chats every 0.15 to 0.45 s, so that its 25 s warm-up reaches the steady state.)
 * Measured: messages delivered, msg/s, p50/p99 latency, resume successes and failures, error
 * frames by code, and the node's RSS and JS heap after a full GC at the start (after a warm-up)
 * and at the end (flat means no leak). Checked from the client side all along: no message
 * received twice, none out of order per sender, no frame carrying coordinates.
 *
 * Then "a reader that never reads", on a fresh node: one client of a pair stops reading while
 * its partner floods; measured: how much the node's memory grows before it closes the
 * non-reader, and what the partner is told.
 *
 *   node --conditions=@whisperchat/source --import tsx --expose-gc bench/soak.ts [--quick] [--source] [--profile]
 *
 * Options: `--sessions=<n>`, `--seconds=<n>` (size and length of the window), `--settle=<s>` (how
 * long after the clients closed the node is measured again; default 65, quick 1),
 * `--snapshots=<folder>` (heap snapshots of the node, fresh and at that point, for looking into
 * its memory).
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, howRun } from "./lib/bundle.js";
import { NODE_ARGS, spawnWorker, type Worker } from "./lib/ipc.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";
import type { SoakConfig, SoakFigures } from "./lib/soak-load.js";

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, "lib", "soak-server.ts");
const LOAD = join(here, "lib", "soak-load.ts");
const PROFILE_DIR = join(tmpdir(), "whisperchat-bench-profiles");

const quick = isQuick();
const fromSource = process.argv.includes("--source");
const profile = process.argv.includes("--profile");
const option = (name: string) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : Number(a.slice(name.length + 3));
};
/** `--snapshots=<folder>`: heap snapshots of the node, fresh and after the run (not part of the results). */
const snapshots = process.argv.find((a) => a.startsWith("--snapshots="))?.slice("--snapshots=".length);
const SESSIONS = option("sessions") ?? (quick ? 200 : 1000);
const SECONDS = option("seconds") ?? (quick ? 20 : 180);
/**
 * Before the start figures, the load runs this long: long enough for what each session keeps
 * in bounded windows to fill up (the last 64 message ids it acknowledged, the 60 s `next`
 * cooldowns), so that the start is the steady state and growth after it is a leak.
 */
const WARMUP_MS = quick ? 25_000 : 90_000;
/** Memory is sampled (after a full GC) this often during the window. */
const SAMPLE_MS = quick ? 5_000 : 30_000;
const LOAD_CONFIG: Omit<SoakConfig, "port"> = {
  sessions: SESSIONS,
  perSpot: 10,
  rangeKm: 5,
  // The quick run chats faster, so that its short warm-up still reaches the steady state.
  chatMs: quick ? [150, 450] : [500, 1500],
  actionMs: [4000, 12_000],
  weights: { next: 0.35, rejoin: 0.2, drop: 0.3, reconnect: 0.15 },
  dropMs: [100, 3000],
  textBytes: 100,
};
/**
 * After the clients closed, the node is measured once more after this long, so that nothing of
 * the run should be left: past the resume grace (30 s) of the sessions whose clients were
 * stopped between a drop and their resume, past a sweep of the memory store (every 30 s), and
 * past the `next` cooldown (60 s), whose re-search timer holds a session that went `next` until
 * it fires, even when the session closed meanwhile.
 */
const SETTLE_MS = Math.max(1, option("settle") ?? (quick ? 1 : 65)) * 1000;
/** The flood of the non-reader measurement: the longest text the node accepts by default. */
const FLOOD = { chars: 1000, inFlight: 16, timeoutMs: 60_000 };

const log = (line: string) => process.stderr.write(`[soak] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
}

interface Sample {
  atS: number;
  rss: number;
  heapUsed: number;
}

interface ServerStats {
  hub: {
    sessions: number;
    byState: Record<string, number>;
    rooms: number;
    waiting: number;
    messages: number;
  };
  events: {
    opened: number;
    closedByCode: Record<string, number>;
    away: number;
    resumeOk: number;
    resumeFailed: number;
  };
}

interface FloodResult {
  floodMs: number;
  sent: number;
  acked: number;
  refused: number;
  ackedBytes: number;
  partnerLeftReason: string | null;
  readerCloseCode: number | null;
  readerCloseReason: string | null;
}

/** Least-squares slope of `y` over `x`. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

const t0 = performance.now();
const code = fromSource
  ? { server: SERVER, load: LOAD, nodeArgs: NODE_ARGS }
  : {
      ...(await Promise.all([bundle(SERVER), bundle(LOAD)]).then(([server, load]) => ({ server, load }))),
      nodeArgs: ["--expose-gc"],
    };

async function startServer(
  profiled: boolean,
): Promise<{ server: Worker; port: number; maxBufferedBytes: number }> {
  const execArgv: string[] = [];
  if (profile && profiled) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    execArgv.push("--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`);
  }
  const server = await spawnWorker(code.server, execArgv, undefined, code.nodeArgs);
  const { port, maxBufferedBytes } = await server.call<{ port: number; maxBufferedBytes: number }>("start");
  return { server, port, maxBufferedBytes };
}

let soak: SoakFigures | undefined;
let initial: Mem | undefined;
let start: Mem | undefined;
let end: Mem | undefined;
let afterClose: Mem | undefined;
let stats: ServerStats | undefined;
let serverCpuUs = 0;
const samples: Sample[] = [];
let flood:
  | (FloodResult & { baseRss: number; peakRss: number; baseHeap: number; peakHeap: number; heldHeap: number })
  | undefined;
let maxBuffered = 0;

const load = await spawnWorker(code.load, [], undefined, code.nodeArgs);
try {
  // The soak.
  {
    const { server, port } = await startServer(true);
    try {
      initial = await server.call<Mem>("mem");
      if (snapshots !== undefined)
        await server.call("snapshot", { path: join(snapshots, "fresh.heapsnapshot") });
      await load.call("start", { ...LOAD_CONFIG, port });
      log(`${fmt(SESSIONS)} sessions connected; warming up for ${WARMUP_MS / 1000} s`);
      await sleep(WARMUP_MS);
      start = await server.call<Mem>("mem");
      await load.call("mark");
      const cpu0 = await server.call<number>("cpu");
      const windowStart = performance.now();
      samples.push({ atS: 0, rss: start.rss, heapUsed: start.heapUsed });
      log(`start: RSS ${mib(start.rss)}, heap ${mib(start.heapUsed)}; running for ${SECONDS} s`);
      const windowEnd = windowStart + SECONDS * 1000;
      while (performance.now() < windowEnd - 100) {
        await sleep(Math.min(SAMPLE_MS, windowEnd - performance.now()));
        const atS = (performance.now() - windowStart) / 1000;
        const m = await server.call<Mem>("mem");
        samples.push({ atS, rss: m.rss, heapUsed: m.heapUsed });
        end = m;
        const f = await load.call<SoakFigures>("snapshot");
        log(
          `${atS.toFixed(0)} s: RSS ${mib(m.rss)}, heap ${mib(m.heapUsed)}; ${fmt(f.delivered)} delivered ` +
            `(${fmt((f.delivered * 1000) / f.elapsedMs)}/s), p99 ${f.p99Ms.toFixed(1)} ms, ` +
            `resumes ${f.resumeOk}/${f.resumeOk + f.resumeFailed}, violations ${f.duplicates + f.outOfOrder + f.coordinates}, ` +
            `load ${(f.loadCpu * 100).toFixed(0)}% core`,
        );
      }
      soak = await load.call<SoakFigures>("stop");
      serverCpuUs = (await server.call<number>("cpu")) - cpu0;
      log(`every client closed; measuring the node again in ${SETTLE_MS / 1000} s`);
      await sleep(SETTLE_MS);
      stats = await server.call<ServerStats>("stats");
      afterClose = await server.call<Mem>("mem");
      if (snapshots !== undefined)
        await server.call("snapshot", { path: join(snapshots, "after.heapsnapshot") });
      log(
        `after every client closed: RSS ${mib(afterClose.rss)}, heap ${mib(afterClose.heapUsed)}; ` +
          `${stats.hub.sessions} sessions left on the node`,
      );
    } finally {
      await server.exit();
    }
  }
  // A reader that never reads, on a fresh node.
  {
    const { server, port, maxBufferedBytes } = await startServer(false);
    maxBuffered = maxBufferedBytes;
    try {
      await load.call("readerSetup", { port });
      const base = await server.call<Mem>("mem");
      await server.call("watch", { everyMs: 10 });
      const r = await load.call<Omit<FloodResult, "readerCloseCode" | "readerCloseReason">>("flood", FLOOD);
      const peak = await server.call<{ peakRss: number; peakHeap: number }>("unwatch");
      // What the node still holds for the closed non-reader, garbage collected: its unsent output.
      const held = await server.call<Mem>("mem");
      const closed =
        await load.call<Pick<FloodResult, "readerCloseCode" | "readerCloseReason">>("readerClose");
      flood = {
        ...r,
        ...closed,
        baseRss: base.rss,
        peakRss: peak.peakRss,
        baseHeap: base.heapUsed + base.external,
        peakHeap: peak.peakHeap,
        heldHeap: held.heapUsed + held.external,
      };
      log(
        `non-reader: the partner sent ${fmt(r.acked)} texts (${mib(r.ackedBytes)}) in ${fmt(r.floodMs)} ms before ` +
          `partner_left ${r.partnerLeftReason}; the non-reader was closed with ${closed.readerCloseCode} (${closed.readerCloseReason}); ` +
          `node RSS +${mib(peak.peakRss - base.rss)}, heap + external +${mib(peak.peakHeap - flood.baseHeap)} at the peak, ` +
          `+${mib(flood.heldHeap - flood.baseHeap)} held after GC`,
      );
    } finally {
      await server.exit();
    }
  }
} finally {
  await load.exit();
  if (!fromSource && !profile) for (const f of [code.server, code.load]) rmSync(f, { force: true });
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// ------------------------------------------------------------------------------------------------

const rows: ResultRow[] = [];
const notes: string[] = [];
if (soak !== undefined && start !== undefined && end !== undefined) {
  const s = soak;
  const group = `soak ${fmt(SESSIONS)} sessions, ${SECONDS} s`;
  const seconds = s.elapsedMs / 1000;
  const resumes = s.resumeOk + s.resumeFailed;
  log(
    `${fmt(s.delivered)} delivered (${fmt(s.delivered / seconds)}/s) of ${fmt(s.acked)} acknowledged, ${fmt(s.sent)} sent; ` +
      `p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms, max ${s.maxMs.toFixed(0)} ms; ${fmt(s.replayed)} replayed after a resume; ` +
      `resumes ${s.resumeOk} ok, ${s.resumeFailed} failed; duplicates ${s.duplicates}, out of order ${s.outOfOrder}, coordinates ${s.coordinates}; ` +
      `errors ${JSON.stringify(s.errors)}; unexpected closes ${JSON.stringify(s.unexpectedCloses)}; actions ${JSON.stringify(s.actions)}; ` +
      `load ${(s.loadCpu * 100).toFixed(0)}% core`,
  );
  rows.push(
    row({
      group,
      metric: "messages delivered vs acknowledged",
      unit: "messages",
      ours: s.delivered,
      baseline: s.acked,
      baselineName: "acknowledged to senders",
      higherIsBetter: true,
    }),
    row({
      group,
      metric: "delivered msg/s vs sent msg/s",
      unit: "msg/s",
      ours: s.delivered / seconds,
      baseline: s.sent / seconds,
      baselineName: "sent by clients",
      higherIsBetter: true,
    }),
    row({
      group,
      metric: "p50 message latency",
      unit: "ms",
      ours: s.p50Ms,
      baseline: null,
      baselineName: "no baseline",
      higherIsBetter: false,
    }),
    row({
      group,
      metric: "p99 message latency",
      unit: "ms",
      ours: s.p99Ms,
      baseline: null,
      baselineName: "no baseline",
      higherIsBetter: false,
    }),
    row({
      group,
      metric: "resume failures vs resume attempts",
      unit: "resumes",
      ours: s.resumeFailed,
      baseline: resumes,
      baselineName: "resumes answered",
      higherIsBetter: false,
      target: { ratio: 0, op: "<=" },
    }),
  );
  for (const [metric, count] of [
    ["messages received twice", s.duplicates],
    ["messages out of order (per sender)", s.outOfOrder],
    ["frames carrying coordinates", s.coordinates],
  ] as const) {
    rows.push(
      row({
        group,
        metric: `${metric} vs messages received`,
        unit: "messages",
        ours: count,
        baseline: s.delivered,
        baselineName: "messages received",
        higherIsBetter: false,
        target: { ratio: 0, op: "<=" },
      }),
    );
  }
  for (const [code, count] of Object.entries(s.errors).sort()) {
    rows.push(
      row({
        group,
        metric: `error frames "${code}" vs requests`,
        unit: "frames",
        ours: count,
        baseline: s.requests,
        baselineName: "requests sent",
        higherIsBetter: false,
      }),
    );
  }
  rows.push(
    row({
      group,
      metric: "server RSS at the end vs the start (after GC)",
      unit: "bytes",
      ours: end.rss,
      baseline: start.rss,
      baselineName: "start, after warm-up",
      higherIsBetter: false,
      target: { ratio: 1.1, op: "<=" },
    }),
    row({
      group,
      metric: "server JS heap at the end vs the start (after GC)",
      unit: "bytes",
      ours: end.heapUsed,
      baseline: start.heapUsed,
      baselineName: "start, after warm-up",
      higherIsBetter: false,
      target: { ratio: 1.1, op: "<=" },
    }),
  );
  if (afterClose !== undefined && initial !== undefined) {
    rows.push(
      row({
        group,
        metric: `server JS heap ${SETTLE_MS / 1000} s after every client closed vs before any`,
        unit: "bytes",
        ours: afterClose.heapUsed,
        baseline: initial.heapUsed,
        baselineName: "fresh node",
        higherIsBetter: false,
      }),
    );
  }
  rows.push(
    row({
      group,
      metric: "server CPU per delivered message",
      unit: "µs",
      ours: serverCpuUs / s.delivered,
      baseline: null,
      baselineName: "no baseline",
      higherIsBetter: false,
    }),
  );
  const perMin = (key: "rss" | "heapUsed") =>
    slope(samples.map((p) => ({ x: p.atS / 60, y: p[key] }))) / (1024 * 1024);
  notes.push(
    `Soak: ${fmt(SESSIONS)} sessions on one node, ${WARMUP_MS / 1000} s warm-up then ${SECONDS} s measured. Clients join in places of ${LOAD_CONFIG.perSpot} ` +
      `(${LOAD_CONFIG.rangeKm} km range), send a ${LOAD_CONFIG.textBytes}-byte text every ${LOAD_CONFIG.chatMs[0] / 1000}-${LOAD_CONFIG.chatMs[1] / 1000} s when matched, and every ` +
      `${LOAD_CONFIG.actionMs[0] / 1000}-${LOAD_CONFIG.actionMs[1] / 1000} s do one of: next (${LOAD_CONFIG.weights.next}), leave+join (${LOAD_CONFIG.weights.rejoin}), ` +
      `drop (terminate) + resume ${LOAD_CONFIG.dropMs[0] / 1000}-${LOAD_CONFIG.dropMs[1] / 1000} s later (${LOAD_CONFIG.weights.drop}), disconnect (1000) + fresh connect (${LOAD_CONFIG.weights.reconnect}). ` +
      "The node runs the memory store with its message, churn and connection limits raised; resume and every other setting at its default.",
    `Window: ${fmt(s.sent)} texts sent, ${fmt(s.acked)} acknowledged, ${fmt(s.delivered)} delivered, ${fmt(s.replayed)} of them replayed after a resume ` +
      `(not in the latency figures); ${fmt(s.matched)} matches; partner_left ${JSON.stringify(s.partnerLeft)}; partner_away ${s.partnerAway}, partner_back ${s.partnerBack}; ` +
      `actions ${JSON.stringify(s.actions)}; ${fmt(s.connects)} connections opened; unexpected closes by code ${JSON.stringify(s.unexpectedCloses)}; ` +
      `error frames ${JSON.stringify(s.errors)} of ${fmt(s.requests)} requests; latency max ${s.maxMs.toFixed(0)} ms; load generator ${(s.loadCpu * 100).toFixed(0)}% of a core.`,
    "Delivered can be below acknowledged: a frame the node had already written to a connection that then dropped is not sent again (docs/protocol.md, Resume).",
    `Server memory after a full GC: ${samples.map((p) => `${p.atS.toFixed(0)} s ${mib(p.rss)} RSS / ${mib(p.heapUsed)} heap`).join("; ")}; ` +
      `trend ${perMin("rss").toFixed(2)} MiB/min RSS, ${perMin("heapUsed").toFixed(2)} MiB/min heap` +
      (initial !== undefined && afterClose !== undefined
        ? `; fresh node ${mib(initial.rss)} RSS / ${mib(initial.heapUsed)} heap, ${SETTLE_MS / 1000} s after every client closed ${mib(afterClose.rss)} / ${mib(afterClose.heapUsed)}.`
        : "."),
  );
  if (stats !== undefined) {
    notes.push(
      `Node's own counts over the whole run: ${fmt(stats.events.opened)} sessions opened, closed by code ${JSON.stringify(stats.events.closedByCode)}, ` +
        `${fmt(stats.events.away)} dropped connections, ${fmt(stats.events.resumeOk)} resumes, ${fmt(stats.events.resumeFailed)} failed or ran out; ` +
        `${stats.hub.sessions} sessions left ${SETTLE_MS / 1000} s after the clients closed (by state ${JSON.stringify(stats.hub.byState)}; ` +
        "clients stopped between a drop and their resume leave sessions that wait out the resume grace).",
    );
  }
}
if (flood !== undefined) {
  const group = "a reader that never reads";
  rows.push(
    row({
      group,
      metric: "server RSS growth until the non-reader was closed vs maxBufferedBytes",
      unit: "bytes",
      ours: flood.peakRss - flood.baseRss,
      baseline: maxBuffered,
      baselineName: "maxBufferedBytes",
      higherIsBetter: false,
    }),
    row({
      group,
      metric: "server JS heap + external held for the closed non-reader (after GC) vs maxBufferedBytes",
      unit: "bytes",
      ours: flood.heldHeap - flood.baseHeap,
      baseline: maxBuffered,
      baselineName: "maxBufferedBytes",
      higherIsBetter: false,
    }),
    row({
      group,
      metric: "partner told partner_left disconnected",
      unit: "",
      ours: flood.partnerLeftReason === "disconnected" ? 1 : 0,
      baseline: 1,
      baselineName: "expected",
      higherIsBetter: true,
      target: { ratio: 1, op: ">=" },
    }),
  );
  notes.push(
    `A reader that never reads: a fresh node; one client of a pair pauses its socket while the other sends ${FLOOD.chars}-character texts, ` +
      `${FLOOD.inFlight} unacknowledged at most. The partner sent ${fmt(flood.acked)} texts (${mib(flood.ackedBytes)}) in ${fmt(flood.floodMs)} ms ` +
      `before partner_left ${flood.partnerLeftReason}; the non-reader's connection was closed with ${flood.readerCloseCode} ` +
      `("${flood.readerCloseReason}"). Server memory sampled every 10 ms: RSS ${mib(flood.baseRss)} → peak ${mib(flood.peakRss)}, ` +
      `JS heap + external ${mib(flood.baseHeap)} → peak ${mib(flood.peakHeap)} (garbage included); after a GC with the non-reader closed ` +
      `but not yet gone, ${mib(flood.heldHeap)}. ` +
      "Most of what the partner sent sat in the kernel's socket buffers (loopback autotunes them to several MiB), which RSS does not count; " +
      `the node itself holds at most maxBufferedBytes (${mib(maxBuffered)}) of unsent output per connection.`,
  );
}
notes.push(howRun(fromSource, "Server and load"));
const path = writeResults("soak", rows, { quick, notes });
log(`wrote ${path}`);
if (profile) log(`CPU profile of the soak node in ${PROFILE_DIR}`);
