/**
 * Matching benchmark: the memory store's pool (an rbush of what each waiting user accepts,
 * searched with the newcomer's point) against two baselines written here, a naive scan of the
 * whole pool and a radius query (an rbush of points searched with the newcomer's range), on
 * three workloads and pool sizes of 10k, 100k and 1M.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/matching.ts [--quick]
 *
 * Options: `--quick` (10k and 100k only, fewer joins), `--workload=<name>[,<name>]`,
 * `--sizes=<n>[,<n>]`. The script re-runs itself with `--expose-gc` (for the memory figures)
 * when it was started without. Prints a markdown table and writes bench/results/matching.json
 * (the `BenchResults` of `lib/results.ts`, read by `run.ts`, plus every figure under `cases`).
 *
 * A join is what the hub does for a newcomer: `pool.add(newcomer)`, then
 * `searchAndClaim(store, newcomer)`; the newcomer is removed again when nobody matched, and a
 * matched partner is put back (untimed), so the pool keeps its size and content.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PoolEntry, searchAndClaim } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { type BaselinePool, NaiveScanPool, RadiusQueryPool } from "./lib/matching-baselines.js";
import { T0, WORKLOADS, type Workload } from "./lib/matching-workloads.js";
import { type BenchResults, RESULTS_DIR, type ResultRow, row } from "./lib/results.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(
    process.execPath,
    ["--expose-gc", "--max-old-space-size=8192", ...process.execArgv, self, ...process.argv.slice(2)],
    { stdio: "inherit" },
  );
  process.exit(child.status ?? 1);
}
const collect: () => void = gc;

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const option = (name: string): string[] | undefined =>
  args
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(",");
const sizes = option("sizes")?.map(Number) ?? (quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000]);
const workloadNames = option("workload");
const workloads = WORKLOADS.filter((w) => workloadNames === undefined || workloadNames.includes(w.name));
/** Timed joins for the pool under test (after a warm-up). */
const JOINS = quick ? 5_000 : 20_000;
const WARMUP = quick ? 500 : 2_000;
/** Time budget of each baseline's timed joins (it stops at JOINS or at the budget, whichever first). */
const BASELINE_BUDGET_MS = quick ? 1_500 : 4_000;
const BASELINE_MIN_JOINS = 5;

interface Memory {
  heap: number;
  arrayBuffers: number;
}

function memory(): Memory {
  collect();
  collect();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function perUser(before: Memory, after: Memory, n: number) {
  const heap = (after.heap - before.heap) / n;
  const arrayBuffers = (after.arrayBuffers - before.arrayBuffers) / n;
  return { total: heap + arrayBuffers, heap, arrayBuffers };
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Timing {
  joins: number;
  joinsPerSec: number;
  p50Us: number;
  p99Us: number;
  matched: number;
}

function timing(latenciesMs: number[], totalMs: number, matched: number): Timing {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    joins: latenciesMs.length,
    joinsPerSec: latenciesMs.length / (totalMs / 1000),
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
    matched,
  };
}

interface CaseResult {
  workload: Workload["name"];
  requestedSize: number;
  waiting: number;
  fill: { added: number; claimedPairs: number; ms: number };
  ours: Timing & { bytesPerUser: ReturnType<typeof perUser>; candidatesPerJoin: number };
  naive: Timing & { bytesPerUser: ReturnType<typeof perUser>; examinedPerJoin: number };
  radius: Timing & { bytesPerUser: ReturnType<typeof perUser>; examinedPerJoin: number };
  oursOverNaive: number;
  oursOverRadius: number;
}

async function runCase(w: Workload, size: number): Promise<CaseResult> {
  const maxAdds = w.fillThroughMatcher ? 4 * size : size;
  const alive = new Uint8Array(maxAdds);
  const store = createMemoryStore();
  const before = memory();

  // Fill. Through the matcher where the workload could hold eligible pairs: pairs get claimed,
  // as they would in the hub, until `size` are waiting (or `maxAdds` were added).
  const fillStart = performance.now();
  let added = 0;
  let claimedPairs = 0;
  for (; added < maxAdds && store.stats().waiting < size; added++) {
    const e = w.fill(added, size);
    await store.pool.add(e);
    alive[added] = 1;
    if (w.fillThroughMatcher) {
      const found = await searchAndClaim(store, e, undefined);
      if (found !== undefined) {
        alive[added] = 0;
        alive[found.partner.since - T0] = 0;
        claimedPairs++;
      }
    }
  }
  const fillMs = performance.now() - fillStart;
  const waiting = store.stats().waiting;
  const oursBytes = perUser(before, memory(), waiting);

  const newcomers: PoolEntry[] = [];
  for (let k = 0; k < WARMUP + JOINS; k++) newcomers.push(w.newcomer(k, size));

  // The pool under test.
  const latencies: number[] = [];
  let matched = 0;
  let total = 0;
  for (let k = 0; k < newcomers.length; k++) {
    const n = newcomers[k]!;
    const t = performance.now();
    await store.pool.add(n);
    const found = await searchAndClaim(store, n, undefined);
    if (found === undefined) await store.pool.remove(n.sessionId);
    const dt = performance.now() - t;
    if (found !== undefined) await store.pool.add(found.partner); // untimed: keep the pool as it was
    if (k < WARMUP) continue;
    latencies.push(dt);
    total += dt;
    if (found !== undefined) matched++;
  }
  let candidates = 0;
  const sample = newcomers.slice(WARMUP, WARMUP + 2_000);
  for (const n of sample) candidates += (await store.pool.candidates(n.lat, n.lng, n.rangeKm)).length;
  if (store.stats().waiting !== waiting) throw new Error("the pool under test changed size during the joins");
  const ours = {
    ...timing(latencies, total, matched),
    bytesPerUser: oursBytes,
    candidatesPerJoin: candidates / sample.length,
  };
  await store.close();

  const exclusionsStore = createMemoryStore();
  const runBaseline = async (make: (entries: PoolEntry[] | undefined) => BaselinePool, bulk: boolean) => {
    const m0 = memory();
    let pool: BaselinePool;
    if (bulk) {
      const entries: PoolEntry[] = [];
      for (let i = 0; i < added; i++) if (alive[i] === 1) entries.push(w.fill(i, size));
      pool = make(entries);
    } else {
      pool = make(undefined);
      for (let i = 0; i < added; i++) if (alive[i] === 1) pool.add(w.fill(i, size));
    }
    const bytes = perUser(m0, memory(), pool.size);
    if (pool.size !== waiting) throw new Error(`baseline holds ${pool.size}, expected ${waiting}`);
    const lat: number[] = [];
    let hit = 0;
    let spent = 0;
    let examined = 0;
    const warm = Math.min(WARMUP, 20);
    for (let k = 0; k < warm + JOINS; k++) {
      // Baselines skip most of the warm-up: at 1M one join takes tens of milliseconds.
      const n = newcomers[k < warm ? k : WARMUP + (k - warm)]!;
      const t = performance.now();
      pool.add(n);
      const found = await pool.searchAndClaim(n, exclusionsStore.exclusions);
      if (found === undefined) pool.remove(n.sessionId);
      const dt = performance.now() - t;
      if (found !== undefined) pool.add(found.partner);
      if (k < warm) continue;
      lat.push(dt);
      spent += dt;
      examined += pool.examined;
      if (found !== undefined) hit++;
      if (spent > BASELINE_BUDGET_MS && lat.length >= BASELINE_MIN_JOINS) break;
    }
    return { ...timing(lat, spent, hit), bytesPerUser: bytes, examinedPerJoin: examined / lat.length };
  };
  const naive = await runBaseline(() => new NaiveScanPool(), false);
  const radius = await runBaseline((entries) => {
    const pool = new RadiusQueryPool();
    pool.load(entries ?? []);
    return pool;
  }, true);
  await exclusionsStore.close();

  return {
    workload: w.name,
    requestedSize: size,
    waiting,
    fill: { added, claimedPairs, ms: fillMs },
    ours,
    naive,
    radius,
    oursOverNaive: ours.joinsPerSec / naive.joinsPerSec,
    oursOverRadius: ours.joinsPerSec / radius.joinsPerSec,
  };
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const compact = (n: number) =>
  n >= 1e6 ? `${fmt(n / 1e6, n % 1e6 === 0 ? 0 : 2)}M` : n >= 1e3 ? `${fmt(n / 1e3)}k` : `${n}`;

function table(results: CaseResult[]): string {
  const rows = [
    "| workload | waiting | joins/s | p50 µs | p99 µs | naive joins/s | radius joins/s | vs naive | vs radius | bytes/user | naive bytes/user | radius bytes/user | candidates/join | radius hits/join | matched |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    rows.push(
      `| ${r.workload} | ${compact(r.waiting)} | ${fmt(r.ours.joinsPerSec)} | ${fmt(r.ours.p50Us, 1)} | ${fmt(r.ours.p99Us, 1)} | ${fmt(r.naive.joinsPerSec, 1)} | ${fmt(r.radius.joinsPerSec, 1)} | ${fmt(r.oursOverNaive)}x | ${fmt(r.oursOverRadius, 1)}x | ${fmt(r.ours.bytesPerUser.total)} | ${fmt(r.naive.bytesPerUser.total)} | ${fmt(r.radius.bytesPerUser.total)} | ${fmt(r.ours.candidatesPerJoin, 2)} | ${fmt(r.radius.examinedPerJoin)} | ${fmt((100 * r.ours.matched) / r.ours.joins, 1)}% |`,
    );
  }
  return rows.join("\n");
}

interface Target {
  target: string;
  measured: string;
  met: boolean;
}

function targets(results: CaseResult[]): Target[] {
  const out: Target[] = [];
  const adv = results.find((r) => r.workload === "adversarial" && r.requestedSize === 1_000_000);
  if (adv !== undefined) {
    out.push({
      target: "1M adversarial: join+claim >= 1000x the naive scan",
      measured: `${fmt(adv.oursOverNaive)}x`,
      met: adv.oursOverNaive >= 1000,
    });
    out.push({
      target: "1M adversarial: join+claim >= 20x the radius query",
      measured: `${fmt(adv.oursOverRadius, 1)}x`,
      met: adv.oursOverRadius >= 20,
    });
  }
  for (const r of results.filter((x) => x.requestedSize === 1_000_000)) {
    out.push({
      target: `1M ${r.workload}: <= 250 bytes of heap per waiting user`,
      measured: `${fmt(r.ours.bytesPerUser.total)} B`,
      met: r.ours.bytesPerUser.total <= 250,
    });
  }
  const clustered = results.find((r) => r.workload === "clustered" && r.requestedSize === 100_000);
  if (clustered !== undefined) {
    out.push({
      target: "100k clustered: p99 join latency < 1 ms",
      measured: `${fmt(clustered.ours.p99Us, 1)} µs`,
      met: clustered.ours.p99Us < 1000,
    });
  }
  return out;
}

const results: CaseResult[] = [];
for (const w of workloads) {
  for (const size of sizes) {
    process.stderr.write(`${w.name} ${compact(size)}... `);
    const r = await runCase(w, size);
    results.push(r);
    process.stderr.write(
      `filled ${compact(r.waiting)} in ${fmt(r.fill.ms / 1000, 1)} s; ${fmt(r.ours.joinsPerSec)} joins/s\n`,
    );
  }
}

const met = targets(results);
const report = [
  "## Matching benchmark",
  "",
  `node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}${quick ? ", --quick" : ""}`,
  "",
  "Join = pool.add(newcomer) + searchAndClaim (+ remove when unmatched). Ratios are our joins/s over the baseline's.",
  "Bytes per waiting user = (heapUsed + arrayBuffers) growth after gc, over the waiting users, including the entries' strings.",
  "",
  table(results),
  "",
  ...workloads.map((w) => `- ${w.name}: ${w.description}`),
  "",
  "| target | measured | met |",
  "|---|---:|---|",
  ...met.map((t) => `| ${t.target} | ${t.measured} | ${t.met ? "yes" : "NO"} |`),
].join("\n");
process.stdout.write(`${report}\n`);

/** The rows of the harness summary: each figure against a baseline of the same run. */
function rows(results: CaseResult[]): ResultRow[] {
  const out: ResultRow[] = [];
  for (const r of results) {
    const group = `matching ${r.workload} ${compact(r.waiting)}`;
    const headline = r.workload === "adversarial" && r.requestedSize === 1_000_000;
    out.push(
      row({
        group,
        metric: "joins/s vs naive scan",
        unit: "joins/s",
        ours: r.ours.joinsPerSec,
        baseline: r.naive.joinsPerSec,
        baselineName: "naive scan",
        higherIsBetter: true,
        ...(headline ? { target: { ratio: 1000, op: ">=" as const } } : {}),
      }),
      row({
        group,
        metric: "joins/s vs radius query",
        unit: "joins/s",
        ours: r.ours.joinsPerSec,
        baseline: r.radius.joinsPerSec,
        baselineName: "radius query",
        higherIsBetter: true,
        ...(headline ? { target: { ratio: 20, op: ">=" as const } } : {}),
      }),
      row({
        group,
        metric: "bytes per waiting user vs naive scan",
        unit: "bytes",
        ours: r.ours.bytesPerUser.total,
        baseline: r.naive.bytesPerUser.total,
        baselineName: "naive scan",
        higherIsBetter: false,
      }),
    );
    if (r.requestedSize === 1_000_000) {
      out.push(
        row({
          group,
          metric: "bytes per waiting user vs 250 B budget",
          unit: "bytes",
          ours: r.ours.bytesPerUser.total,
          baseline: 250,
          baselineName: "budget",
          higherIsBetter: false,
          target: { ratio: 1, op: "<=" },
        }),
      );
    }
    if (r.workload === "clustered" && r.requestedSize === 100_000) {
      out.push(
        row({
          group,
          metric: "p99 join latency vs 1 ms budget",
          unit: "µs",
          ours: r.ours.p99Us,
          baseline: 1000,
          baselineName: "budget",
          higherIsBetter: false,
          target: { ratio: 1, op: "<=" },
        }),
      );
    }
  }
  return out;
}

const partial = option("sizes") !== undefined || option("workload") !== undefined;
const written: BenchResults & { cases: CaseResult[]; joins: number; baselineBudgetMs: number } = {
  name: "matching",
  quick,
  date: new Date().toISOString(),
  machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model?.trim(), node: process.version },
  rows: rows(results),
  notes: [
    "Join = pool.add(newcomer) + searchAndClaim (+ remove when unmatched); a matched partner is put back untimed, so the pool keeps its size.",
    "Baselines, written in the bench, run the same policy: a naive scan of an array of every waiting entry, and a radius query (an rbush of points searched with the newcomer's range boxes, then filtered by exact mutual distance).",
    "Bytes per waiting user: growth of heapUsed + arrayBuffers after gc while filling, over the waiting users, including the entries' strings (about 136 B of them).",
    ...workloads.map((w) => `${w.name}: ${w.description}`),
  ],
  cases: results,
  joins: JOINS,
  baselineBudgetMs: BASELINE_BUDGET_MS,
};
// A run limited with --sizes or --workload does not replace the results of a whole run.
const out = join(RESULTS_DIR, partial ? "tmp/matching-partial.json" : "matching.json");
mkdirSync(join(RESULTS_DIR, "tmp"), { recursive: true });
writeFileSync(out, `${JSON.stringify(written, null, 2)}\n`);
process.stderr.write(`wrote ${out}\n`);
