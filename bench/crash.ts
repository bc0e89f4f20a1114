/**
 * Crash benchmark: two WhisperChat nodes on one Redis, each in a process of its own
 * (`lib/cluster-node.ts`: `@whisperchat/adapter-ws` on `@whisperchat/store-redis`, message,
 * churn and connection limits raised, resume and heartbeat at their defaults), and 200 clients
 * (`--quick`: 40) in another process (`lib/crash-load.ts`), paired across the nodes, each
 * sending a text every 200 to 400 ms while matched. Every 20 s one node (in turn) is killed with
 * SIGKILL and started again on the same port 2 s later, for 3 minutes (`--quick`: 60 s, two
 * kills). The clients of the killed node come back with `resume` and their message cursor
 * (`last`) and send again, with the same ids, what was not acked: half at once on the live node,
 * half 12 to 16 s later on the node their partner is not on (so that their partners must be told
 * `partner_away` first), and, when the run leaves time for the partner's room to end at the
 * resume grace, one in ten gives its session up and starts afresh.
 *
 * Measured, against docs/protocol.md section 6 ("Resume"): messages acked to their sender that
 * never reached a receiver that was owed them (target 0), messages received twice or out of
 * order (target 0), resume failures (target 0), the time from the kill to `partner_away` at the
 * partners on the other node (the bound: five heartbeat intervals, 10 s by default), the time to
 * `partner_left` where the session was given up (the bound plus the resume grace), and msg/s.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/crash.ts [--quick] [--source]
 *
 * Options: `--pairs=<n>`, `--seconds=<n>` (length of the run), `--every=<s>` (time between kills),
 * `--trace=<file>` (writes every client's timeline, the partners watched after each kill, and the
 * messages lost or received twice, as JSON, to look into a failure).
 * Keys use a random prefix and are deleted at the end. Without Redis every row is "n/a".
 */
import { randomUUID } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, howRun } from "./lib/bundle.js";
import type {
  CrashConfig,
  CrashFigures,
  Detection,
  Duplicate,
  KillNote,
  LostMessage,
  Unfounded,
} from "./lib/crash-load.js";
import { NODE_ARGS, spawnWorker, type Worker } from "./lib/ipc.js";
import { connectRedis, deleteKeys, REDIS_URL } from "./lib/redis-util.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));
const NODE = join(here, "lib", "cluster-node.ts");
const LOAD = join(here, "lib", "crash-load.ts");

const quick = isQuick();
const fromSource = process.argv.includes("--source");
const option = (name: string) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : Number(a.slice(name.length + 3));
};
const PAIRS = option("pairs") ?? (quick ? 20 : 100);
const RUN_MS = (option("seconds") ?? (quick ? 60 : 180)) * 1000;
const EVERY_MS = (option("every") ?? 20) * 1000;
const tracePath = process.argv.find((a) => a.startsWith("--trace="))?.slice("--trace=".length);
/** A killed node is started again this long after the kill. */
const RESTART_AFTER_MS = 2000;
/** After the run, what is in flight (and the last replays) lands for this long before counting. */
const SETTLE_MS = 3000;
const LOAD_CONFIG: Omit<CrashConfig, "ports"> = {
  pairs: PAIRS,
  chatMs: [200, 400],
  textBytes: 100,
  late: 0.5,
  lateMs: [12_000, 16_000],
  abandon: 0.1,
  trace: tracePath !== undefined,
};
/** How long a partner's room may take to end after the abandoned session's resume grace, for the abandon plan. */
const REJOIN_MARGIN_MS = 5000;

const log = (line: string) => process.stderr.write(`[crash] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const seconds = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`);

/** Nearest-rank percentile of ascending `sorted` (Infinity for what never came). */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Code {
  node: string;
  load: string;
  nodeArgs: readonly string[];
}

interface Settings {
  nodeHeartbeatMs: number;
  resumeGraceMs: number;
}

const t0 = performance.now();
const prefix = `bench:crash:${randomUUID()}:`;
let figures: CrashFigures | undefined;
let settings: Settings | undefined;
let kills = 0;
const plannedKills = Math.max(0, Math.ceil(RUN_MS / EVERY_MS) - 1);

async function startNode(code: Code, node: number, incarnation: number, port?: number) {
  const worker = await spawnWorker(code.node, [], undefined, code.nodeArgs);
  // A restarted process is a new node (a new id), as with createWhisper's default id.
  const started = await worker.call<{ port: number }>("start", {
    kind: "whisper",
    prefix,
    nodeId: `crash-${node}-${incarnation}`,
    ...(port === undefined ? {} : { port }),
  });
  return { worker, port: started.port };
}

function killHard(worker: Worker): Promise<void> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  return exited;
}

async function run(code: Code): Promise<void> {
  const nodes: Worker[] = [];
  const ports: number[] = [];
  let load: Worker | undefined;
  try {
    for (const node of [0, 1]) {
      const n = await startNode(code, node, 0);
      nodes.push(n.worker);
      ports.push(n.port);
    }
    settings = await nodes[0]!.call<Settings>("settings");
    load = await spawnWorker(code.load, [], undefined, code.nodeArgs);
    await load.call("start", { ...LOAD_CONFIG, ports });
    const start = performance.now();
    log(
      `${PAIRS * 2} clients matched across nodes on ports ${ports.join(" and ")}; ` +
        `killing a node every ${EVERY_MS / 1000} s for ${RUN_MS / 1000} s`,
    );
    for (let k = 1; k * EVERY_MS < RUN_MS; k++) {
      await sleep(start + k * EVERY_MS - performance.now());
      const node = (k - 1) % 2;
      // Give sessions up only where the partner's room can end at the grace within the run.
      const abandon =
        k * EVERY_MS + 5 * settings.nodeHeartbeatMs + settings.resumeGraceMs + REJOIN_MARGIN_MS <= RUN_MS;
      const note = await load.call<KillNote>("down", { node, abandon });
      const killedAt = performance.now();
      await killHard(nodes[node]!);
      kills++;
      await sleep(killedAt + RESTART_AFTER_MS - performance.now());
      const restarted = await startNode(code, node, k, ports[node]);
      nodes[node] = restarted.worker;
      await load.call("up", { node });
      const f = await load.call<CrashFigures>("snapshot");
      log(
        `kill ${k} at ${(note.atMs / 1000).toFixed(1)} s: node ${node} (SIGKILL, up again after ` +
          `${((performance.now() - killedAt) / 1000).toFixed(1)} s), its clients ${JSON.stringify(note.plans)}, ` +
          `${note.watched} partners watched; so far ${fmt(f.acked)} acked, ${fmt(f.delivered)} received, ` +
          `lost ${f.lost}, twice ${f.duplicates}, out of order ${f.outOfOrder}, resumes ${f.resumeOk}/${f.resumeAttempts}`,
      );
    }
    await sleep(start + RUN_MS - performance.now());
    figures = await load.call<CrashFigures>("stop", { settleMs: SETTLE_MS });
    if (tracePath !== undefined) {
      const { traces, lostMessages, duplicateMessages, detections, kills } = figures;
      writeFileSync(
        tracePath,
        JSON.stringify({ kills, detections, lostMessages, duplicateMessages, traces }, null, 1),
      );
      log(`wrote the timelines to ${tracePath}`);
      delete figures.traces;
    }
  } finally {
    await load?.exit();
    await Promise.all(
      nodes.map(async (n) => {
        await n.call("stop").catch(() => undefined);
        await n.exit();
      }),
    );
  }
}

const redis = await connectRedis({}, (reason) => log(`Redis not reachable at ${REDIS_URL} (${reason})`));
const notes: string[] = [];
if (redis === undefined) {
  notes.push(`Redis was not reachable (${REDIS_URL}): nothing measured.`);
} else {
  const code: Code = fromSource
    ? { node: NODE, load: LOAD, nodeArgs: NODE_ARGS }
    : {
        ...(await Promise.all([bundle(NODE), bundle(LOAD)]).then(([node, load]) => ({ node, load }))),
        nodeArgs: [],
      };
  const cleanup = () => {
    deleteKeys(redis, prefix).finally(() => process.exit(130));
  };
  process.once("SIGINT", cleanup);
  process.once("SIGTERM", cleanup);
  try {
    await run(code);
  } finally {
    const deleted = await deleteKeys(redis, prefix);
    log(`deleted ${deleted} Redis keys`);
    redis.disconnect();
    if (!fromSource) for (const f of [code.node, code.load]) rmSync(f, { force: true });
  }
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// ------------------------------------------------------------------------------------------------

const group = `crash ${fmt(PAIRS * 2)} clients on 2 nodes, ${RUN_MS / 1000} s, a kill every ${EVERY_MS / 1000} s`;
const f = figures;
const boundMs = settings === undefined ? null : 5 * settings.nodeHeartbeatMs;
const graceMs = settings?.resumeGraceMs;

/** A partner whose partner stayed away past the bound must have been told; one back sooner need not. */
const told = (d: Detection) => d.awayMs !== undefined;
const owedNotice = (d: Detection) =>
  (told(d) || boundMs === null || d.backMs === undefined || d.backMs > boundMs) &&
  // A watcher that gave up its own session within the bound, untold, can no longer be told.
  (told(d) || boundMs === null || d.watcherGaveUpMs === undefined || d.watcherGaveUpMs > boundMs);
const detections = f?.detections ?? [];
/**
 * For a frame that never came, how long it was waited for: from the kill to the end of what the
 * watch saw (the partner back, the room closed, or the end of the run with its settling time).
 * A lower bound of the latency, so that a miss counts as late, not as "not measured".
 */
const waitedFor = (d: Detection) =>
  d.backMs ??
  d.leftMs ??
  d.watcherGaveUpMs ??
  (f === undefined ? 0 : f.elapsedMs + SETTLE_MS - (f.kills[d.kill - 1]?.atMs ?? 0));
const measured = detections.filter(owedNotice);
const latencies = measured.map((d) => d.awayMs ?? waitedFor(d)).sort((a, b) => a - b);
const late = boundMs === null ? 0 : latencies.filter((ms) => ms > boundMs).length;
/** The partners told late or never, each with what its watch saw (so that a run without --trace still says who). */
const lateOnes = boundMs === null ? [] : measured.filter((d) => (d.awayMs ?? waitedFor(d)) > boundMs);
const lateLine = (d: Detection) =>
  `client ${d.client} (room ${d.roomId}), its partner ${d.partner} on the node of kill ${d.kill} (plan ${d.partnerPlan}): ` +
  `partner_away ${seconds(d.awayMs)}, partner_back ${seconds(d.backMs)}, partner_left ${seconds(d.leftMs)}` +
  `${d.leftReason === undefined ? "" : ` ${d.leftReason}`}, the watcher gave up its own session ${seconds(d.watcherGaveUpMs)}`;
// A watcher that gave up its own session before its partner's room ended cannot be told.
const abandoned = detections.filter(
  (d) => d.partnerPlan === "abandon" && (d.watcherGaveUpMs === undefined || d.leftMs !== undefined),
);
/**
 * The latest the grace of a session given up can end: its node's last heartbeat runs out at most
 * three intervals after the kill, and the grace counts from then. A watcher that was itself away
 * then (a later kill took its node, and it came back after this) had its room held by no node: it
 * is told at its resume, once its new node has confirmed the dead node (docs/protocol.md, the
 * dead-node paragraph of section 6).
 */
const graceEndMs =
  settings === undefined || graceMs === undefined ? null : 3 * settings.nodeHeartbeatMs + graceMs;
const awayAtGraceEnd = (d: Detection) =>
  graceEndMs !== null && d.watcherBackMs !== undefined && d.watcherBackMs > graceEndMs;
const leftOrWaited = (d: Detection) =>
  d.leftReason === "disconnected" && d.leftMs !== undefined ? d.leftMs : waitedFor(d);
const leftAfter = abandoned
  .filter((d) => !awayAtGraceEnd(d))
  .map(leftOrWaited)
  .sort((a, b) => a - b);
/** Watchers away at the grace end: from their own resume to `partner_left`. */
const leftAfterBack = abandoned
  .filter(awayAtGraceEnd)
  .map((d) => leftOrWaited(d) - (d.watcherBackMs as number))
  .sort((a, b) => a - b);
const outcome = (d: Detection) =>
  `${told(d) ? "away, then " : ""}${d.backMs !== undefined ? "back" : d.leftMs !== undefined ? `left ${d.leftReason}` : d.watcherGaveUpMs !== undefined ? "the watcher gave up its own session" : "nothing more"}`;
const outcomes: Record<string, number> = {};
for (const d of detections)
  outcomes[`${d.partnerPlan}: ${outcome(d)}`] = (outcomes[`${d.partnerPlan}: ${outcome(d)}`] ?? 0) + 1;

const unfoundedAway = f?.unfounded.filter((u) => u.frame === "partner_away");
const unfoundedLeft = f?.unfounded.filter((u) => u.frame !== "partner_away");

const rows: ResultRow[] = [];
const zero = (
  metric: string,
  ours: number | undefined,
  baseline: number | undefined,
  baselineName: string,
  unit = "messages",
) =>
  row({
    group,
    metric,
    unit,
    ours: ours ?? null,
    baseline: baseline ?? null,
    baselineName,
    higherIsBetter: false,
    target: { ratio: 0, op: "<=" },
  });
const elapsedS = f === undefined ? undefined : f.elapsedMs / 1000;
rows.push(
  row({
    group,
    metric: "nodes killed (SIGKILL) and restarted vs planned",
    unit: "kills",
    ours: f === undefined ? null : kills,
    baseline: plannedKills,
    baselineName: "planned",
    higherIsBetter: true,
    target: { ratio: 1, op: ">=" },
  }),
  row({
    group,
    metric: "messages acked vs sent",
    unit: "messages",
    ours: f?.acked ?? null,
    baseline: f?.sent ?? null,
    baselineName: "sent by clients",
    higherIsBetter: true,
  }),
  zero("acked messages lost vs acked", f?.lost, f?.acked, "acked to senders"),
  zero("messages received twice vs received", f?.duplicates, f?.delivered, "messages received"),
  zero("messages out of order (per sender) vs received", f?.outOfOrder, f?.delivered, "messages received"),
  zero(
    "resume failures vs resume attempts",
    f?.resumeFailed,
    f?.resumeAttempts,
    "resumes answered",
    "resumes",
  ),
  zero(
    "partner_away while the partner was connected in the room (≥ 5 s) vs partner_away received",
    unfoundedAway?.length,
    f?.partnerAway,
    "partner_away received",
    "frames",
  ),
  zero(
    "partner_left while both were connected in the room (≥ 5 s) vs rooms made",
    unfoundedLeft?.length,
    f === undefined ? undefined : f.matched / 2,
    "rooms made",
    "rooms",
  ),
  row({
    group,
    metric: "p50 kill → partner_away vs the bound (5 heartbeats)",
    unit: "ms",
    ours: percentile(latencies, 50),
    baseline: boundMs,
    baselineName: "5 × nodeHeartbeatMs",
    higherIsBetter: false,
  }),
  row({
    group,
    metric: "p99 kill → partner_away vs the bound (5 heartbeats)",
    unit: "ms",
    ours: percentile(latencies, 99),
    baseline: boundMs,
    baselineName: "5 × nodeHeartbeatMs",
    higherIsBetter: false,
    target: { ratio: 1, op: "<=" },
  }),
  zero(
    "partners told partner_away past the bound, or never, vs partners owed it",
    f === undefined ? undefined : late,
    f === undefined ? undefined : measured.length,
    "partners whose partner stayed away past the bound",
    "partners",
  ),
  row({
    group,
    metric: "max kill → partner_left disconnected (session given up) vs bound + resume grace",
    unit: "ms",
    ours: percentile(leftAfter, 100),
    baseline: boundMs === null || graceMs === undefined ? null : boundMs + graceMs,
    baselineName: "5 × nodeHeartbeatMs + resumeGraceMs",
    higherIsBetter: false,
    target: { ratio: 1, op: "<=" },
  }),
  row({
    group,
    metric:
      "max watcher's own resume → partner_left (session given up, watcher away at the grace end) vs 2 heartbeat intervals",
    unit: "ms",
    ours: leftAfterBack.length === 0 ? null : percentile(leftAfterBack, 100),
    baseline: settings === undefined ? null : 2 * settings.nodeHeartbeatMs,
    baselineName: "2 × nodeHeartbeatMs",
    higherIsBetter: false,
    target: { ratio: 1, op: "<=" },
  }),
  row({
    group,
    metric: "received msg/s vs acked msg/s",
    unit: "msg/s",
    ours: f === undefined || elapsedS === undefined ? null : f.delivered / elapsedS,
    baseline: f === undefined || elapsedS === undefined ? null : f.acked / elapsedS,
    baselineName: "acked to senders",
    higherIsBetter: true,
  }),
);

if (f !== undefined && settings !== undefined) {
  const unfoundedLine = (u: Unfounded) =>
    `${u.frame} to client ${u.to} (room ${u.roomId}) at ${seconds(u.atMs)}, its partner connected on ${u.partnerOn} ` +
    `for ${seconds(u.partnerConnectedForMs)}`;
  const duplicateLine = (d: Duplicate) =>
    `${d.id} to client ${d.to}: at ${seconds(d.firstAtMs)} on ${d.firstOn}, again at ${seconds(d.againAtMs)} on ${d.againOn}` +
    (d.againReplayed ? " (replayed after a resume)" : " (live)");
  const lostLine = (m: LostMessage) =>
    `${m.id} (client ${m.from} on node ${m.senderNode} → ${m.to}${m.receiverNode === null ? ", away" : ` on node ${m.receiverNode}`}, room ${m.roomId}): ` +
    `sent ${seconds(m.sentAtMs)}, acked ${seconds(m.ackAtMs)}` +
    (m.nearestKill === null
      ? ""
      : `, ${m.nearestKill.ackFromKillMs >= 0 ? "+" : ""}${fmt(m.nearestKill.ackFromKillMs)} ms from kill ${m.nearestKill.kill} (node ${m.nearestKill.node})`) +
    `; receiver's plan ${m.receiverPlan ?? "none"}, got [${m.receivedAround.join(" ")}] around it, in the room ${m.receiverSpans.join(", ")}`;
  log(
    `${fmt(f.sent)} sent, ${fmt(f.acked)} acked, ${fmt(f.delivered)} received (${fmt(f.delivered / (elapsedS ?? 1))}/s, ` +
      `${fmt(f.replayed)} replayed after a resume), ` +
      `lost ${f.lost} (${fmt(f.notOwed)} acked to sessions given up, not owed), twice ${f.duplicates}, out of order ${f.outOfOrder}; ` +
      `resumes ${f.resumeOk} ok, ${f.resumeFailed} failed; ${fmt(f.resent)} resent; kill → partner_away p50 ${seconds(percentile(latencies, 50) ?? undefined)}, ` +
      `p99 ${seconds(percentile(latencies, 99) ?? undefined)}, max ${seconds(percentile(latencies, 100) ?? undefined)} over ${measured.length} partners ` +
      `(${detections.length - measured.length} had theirs back first); outcomes ${JSON.stringify(outcomes)}; errors ${JSON.stringify(f.errors)}; ` +
      `closes ${JSON.stringify(f.closes)}; load ${(f.loadCpu * 100).toFixed(0)}% core`,
  );
  for (const m of f.lostMessages.slice(0, 50)) log(`lost: ${lostLine(m)}`);
  for (const d of f.duplicateMessages.slice(0, 50)) log(`twice: ${duplicateLine(d)}`);
  for (const u of f.unfounded.slice(0, 50)) log(`unfounded: ${unfoundedLine(u)}`);
  for (const d of lateOnes.slice(0, 50)) log(`late: ${lateLine(d)}`);
  const perKill = f.kills.map((k) => {
    const mine = measured.filter((d) => d.kill === k.kill);
    const away = mine.flatMap((d) => (d.awayMs === undefined ? [] : [d.awayMs]));
    return (
      `kill ${k.kill} at ${seconds(k.atMs)} (node ${k.node}): its clients ${JSON.stringify(k.plans)}, ${k.watched} partners on the other node watched, ` +
      `${mine.length} owed partner_away: ${away.length} told after ${away.length === 0 ? "-" : `${seconds(Math.min(...away))} to ${seconds(Math.max(...away))}`}, ` +
      `${mine.length - away.length} never`
    );
  });
  notes.push(
    `Two WhisperChat nodes (createWhisper on createRedisStore through adapter-ws, each in its own process; message, churn and connection ` +
      `limits raised; nodeHeartbeatMs ${settings.nodeHeartbeatMs}, resumeGraceMs ${settings.resumeGraceMs}, everything else at its default) on one Redis. ` +
      `${fmt(PAIRS * 2)} clients in another process, pair i joined at a point of its own with one client on each node; a matched client sends a ` +
      `${LOAD_CONFIG.textBytes}-byte text every ${LOAD_CONFIG.chatMs[0]}-${LOAD_CONFIG.chatMs[1]} ms with a request id unique to it. ` +
      `Every ${EVERY_MS / 1000} s a node, in turn, is killed with SIGKILL and started again (a new node id, the same port) ${RESTART_AFTER_MS / 1000} s later. ` +
      `Its clients come back with resume + last (their cursor) and resend what was not acked with the same ids: at once on the live node; ` +
      `or (${LOAD_CONFIG.late * 100}% of those in a room) ${LOAD_CONFIG.lateMs[0] / 1000}-${LOAD_CONFIG.lateMs[1] / 1000} s later on the node their partner is not on; ` +
      `or (${LOAD_CONFIG.abandon * 100}%, at kills that leave the run time for the room to end at the grace) as a fresh session that joins again. ` +
      `Counted ${SETTLE_MS / 1000} s after the clients stopped sending.`,
    "Lost: acked to its sender, never received by its receiver, although the receiver's session was in the room after the ack with a connection " +
      "that did not drop before the room or the run ended (so a resume with the cursor, or the live connection, owed it the message). " +
      `Messages to sessions given up are not owed (${fmt(f.notOwed)} of the acked).`,
    `Detection: the partners, on the other node, of the killed node's clients, from the kill (noted just before the SIGKILL) to partner_away. ` +
      `Partners whose partner was back (partner_back) within the bound without a partner_away are not counted (${detections.length - measured.length}); ` +
      `one never told although its partner stayed away longer counts with the time it waited (until its partner was back, its room closed, or the run ended): a lower bound. ` +
      `Likewise for partner_left to the partners of sessions given up (${abandoned.length} such partners; ` +
      `${leftAfterBack.length} of them away at the grace end, counted from their own resume). Outcomes by the plan of the killed node's client: ${JSON.stringify(outcomes)}.`,
    ...perKill,
    `Run: ${fmt(f.sent)} texts sent, ${fmt(f.acked)} acked, ${fmt(f.delivered)} received in ${(f.elapsedMs / 1000).toFixed(0)} s ` +
      `(${fmt(f.replayed)} of them sent before the receiver's connection, i.e. replayed after a resume); ` +
      `${fmt(f.resent)} resent after a resume; resumes ${f.resumeOk} ok of ${f.resumeAttempts}; ${fmt(f.connectFailures)} connection attempts refused ` +
      `(a node down) and retried; partner_left ${JSON.stringify(f.partnerLeft)}; error frames ${JSON.stringify(f.errors)}; closes ${JSON.stringify(f.closes)}; ` +
      `clients at the end ${JSON.stringify(f.states)}; load generator ${(f.loadCpu * 100).toFixed(0)}% of a core.`,
  );
  if (lateOnes.length > 0)
    notes.push(
      `Partners told partner_away past the bound, or never (${lateOnes.length}${lateOnes.length > 20 ? ", the first 20" : ""}; ` +
        `times from the kill; run with --trace for the clients' timelines): ${lateOnes.slice(0, 20).map(lateLine).join("; ")}`,
    );
  if (f.unfounded.length > 0)
    notes.push(
      `partner_away / partner_left received while the partner had been connected in the room for 5 s or more (${f.unfounded.length}` +
        `${f.unfounded.length > 20 ? ", the first 20" : ""}; not counted within 0.5 s of the receiver's own welcome, where a replayed frame may be old news): ` +
        f.unfounded.slice(0, 20).map(unfoundedLine).join("; "),
    );
  if (f.duplicateMessages.length > 0)
    notes.push(
      `Messages received twice (${f.duplicates}; connections named n<node>.<restarts>#<connection of the client>): ` +
        f.duplicateMessages.slice(0, 20).map(duplicateLine).join("; "),
    );
  if (f.lostMessages.length > 0)
    notes.push(
      `Lost messages (${f.lost}${f.lost > 20 ? ", the first 20" : ""}; times from the start of the run): ` +
        f.lostMessages.slice(0, 20).map(lostLine).join("; "),
    );
}
notes.push(howRun(fromSource, "Nodes and load"));
const path = writeResults("crash", rows, { quick, notes });
log(`wrote ${path}`);
