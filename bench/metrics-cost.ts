/**
 * What observing a hub costs per relayed message, without sockets: the hub's CPU time per
 * message bare, with `prometheusMetrics(hub)` attached, and in the demo's configuration (metrics,
 * the JWT hook with guests, the role policy). Each configuration runs in a process of its own
 * (`lib/metrics-cost-hub.ts`, bundled like the relay benchmark's server); they take turns for many
 * short rounds, so that a disturbance of the machine falls on all of them, and the median of the
 * per-round ratios is reported.
 *
 * Over WebSockets (`relay.ts`) the same configurations also pay for the sockets, which dilutes
 * the observers' share; here the hub is all there is, so this is the stricter figure.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/metrics-cost.ts [--quick] [--source] [--profile=<kind>]
 *
 * `--profile=metrics` (or `bare`, `demo`) writes a V8 CPU profile of that hub's process to a
 * temporary folder; `lib/profile-top.ts` summarises it.
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, howRun } from "./lib/bundle.js";
import { NODE_ARGS, spawnWorker, type Worker } from "./lib/ipc.js";
import type { CostKind } from "./lib/metrics-cost-hub.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const KINDS: CostKind[] = ["bare", "metrics", "demo"];
const NAMES: Record<CostKind, string> = {
  bare: "bare hub",
  metrics: "hub with prometheusMetrics",
  demo: "hub in the demo's configuration",
};
const quick = isQuick();
const MESSAGES = quick ? 20_000 : 40_000;
const ROUNDS = quick ? 9 : 21;

const log = (line: string) => process.stderr.write(`[metrics-cost] ${line}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const fromSource = process.argv.includes("--source");
const profiled = process.argv.find((a) => a.startsWith("--profile="))?.slice("--profile=".length);
if (profiled !== undefined && !(KINDS as string[]).includes(profiled))
  throw new Error(`--profile=${profiled}: not one of ${KINDS.join(", ")}`);
const PROFILE_DIR = join(tmpdir(), "whisperchat-bench-profiles");
const entry = join(dirname(fileURLToPath(import.meta.url)), "lib", "metrics-cost-hub.ts");
const code = fromSource ? entry : await bundle(entry);
const hubs = new Map<CostKind, Worker>();
const perMsg: Record<CostKind, number[]> = { bare: [], metrics: [], demo: [] };
try {
  for (const kind of KINDS) {
    const execArgv = kind === profiled ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [];
    if (kind === profiled) mkdirSync(PROFILE_DIR, { recursive: true });
    const worker = await spawnWorker(code, execArgv, undefined, fromSource ? NODE_ARGS : ["--expose-gc"]);
    hubs.set(kind, worker);
    await worker.call("start", { kind });
    // Warm-up: the code paths compiled before anything counts.
    await worker.call("relay", { count: MESSAGES });
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Each configuration goes first, second and last in turn.
    const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length] as CostKind);
    for (const kind of order) {
      const us = await (hubs.get(kind) as Worker).call<number>("relay", { count: MESSAGES });
      perMsg[kind].push(us / MESSAGES);
    }
    log(
      `round ${round + 1}: ${KINDS.map((k) => `${NAMES[k]} ${perMsg[k].at(-1)?.toFixed(2)} µs/msg`).join(", ")}`,
    );
  }
} finally {
  for (const worker of hubs.values()) await worker.exit();
  // A profile refers to the bundle: keep it then, for `lib/profile-top.ts`.
  if (!fromSource && profiled === undefined) rmSync(code, { force: true });
}

const rows: ResultRow[] = [];
for (const kind of ["metrics", "demo"] as const) {
  const ratios = perMsg[kind].map((v, i) => v / (perMsg.bare[i] as number));
  log(
    `${NAMES[kind]}: ${median(perMsg[kind]).toFixed(2)} µs/msg, bare ${median(perMsg.bare).toFixed(2)}; median of the rounds' ratios ${median(ratios).toFixed(3)}x (${Math.min(...ratios).toFixed(3)} to ${Math.max(...ratios).toFixed(3)})`,
  );
  // The ratio is the median of the rounds' ratios (each round's figures measured back to back),
  // not the ratio of the medians: `ours` is the bare hub's median times that ratio.
  const bare = median(perMsg.bare);
  rows.push(
    row({
      group: "hub CPU per message (50 pairs, in-process)",
      metric: `${NAMES[kind]} vs bare hub`,
      unit: "µs/msg",
      ours: bare * median(ratios),
      baseline: bare,
      baselineName: "bare hub",
      higherIsBetter: false,
      ...(kind === "metrics" ? { target: { ratio: 1.05, op: "<=" as const } } : {}),
    }),
  );
}
const path = writeResults("metrics-cost", rows, {
  quick,
  notes: [
    `${ROUNDS} rounds of ${MESSAGES} messages per configuration, each configuration in its own process, taking turns; the ratio is the median of the rounds' ratios, "ours" the bare hub's median times it.`,
    "In-process connections (no sockets): the hub, its store calls and its observers only.",
    howRun(fromSource, "The hub processes"),
  ],
});
log(`wrote ${path}`);
if (profiled !== undefined) log(`CPU profile of the ${NAMES[profiled as CostKind]} in ${PROFILE_DIR}`);
