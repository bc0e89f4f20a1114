/**
 * The result convention shared by every benchmark script: each script writes
 * `bench/results/<name>.json` with one {@link BenchResults} object, which `bench/run.ts` reads to
 * build the summary table and the chart.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A target for a ratio: `ratio op value` must hold. */
export interface Target {
  ratio: number;
  op: ">=" | "<=";
}

/** One measured figure next to its baseline, measured in the same run. */
export interface ResultRow {
  /** What is measured, e.g. "relay 50 pairs". */
  group: string;
  /** The figure, e.g. "msg/s vs bare ws". */
  metric: string;
  /** The unit of `ours` and `baseline`, e.g. "msg/s", "ms", "bytes". */
  unit: string;
  /** Our figure; `null` when it could not be measured (e.g. Redis not available). */
  ours: number | null;
  /** The baseline's figure; `null` when it could not be measured. */
  baseline: number | null;
  /** What the baseline is, e.g. "bare ws". */
  baselineName: string;
  /** `ours / baseline`; `null` when either is missing. */
  ratio: number | null;
  /** Whether a larger figure is better (throughput) or worse (latency, memory, CPU). */
  higherIsBetter: boolean;
  /** The goal for `ratio`, when there is one. */
  target?: Target;
  /** Whether `ratio` meets `target` (present only when both are). */
  met?: boolean;
}

/** The content of `bench/results/<name>.json`. */
export interface BenchResults {
  name: string;
  quick: boolean;
  /** ISO date of the run. */
  date: string;
  machine: { cpus: number; cpuModel?: string; node: string };
  rows: ResultRow[];
  notes?: string[];
}

/** The folder the results go to: `bench/results`. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "results");

/** What `--quick` on the command line asks for. */
export function isQuick(argv: readonly string[] = process.argv): boolean {
  return argv.includes("--quick");
}

/** Whether `ratio` meets `target`. */
export function meets(ratio: number, target: Target): boolean {
  return target.op === ">=" ? ratio >= target.ratio : ratio <= target.ratio;
}

/**
 * Builds a row: computes `ratio = ours / baseline` and `met` against the target, when there is one.
 */
export function row(input: Omit<ResultRow, "ratio" | "met">): ResultRow {
  const { ours, baseline } = input;
  const ratio =
    ours === null ||
    baseline === null ||
    !Number.isFinite(ours) ||
    !Number.isFinite(baseline) ||
    baseline === 0
      ? null
      : ours / baseline;
  const out: ResultRow = { ...input, ratio };
  if (input.target === undefined) delete out.target;
  if (ratio !== null && input.target !== undefined) out.met = meets(ratio, input.target);
  return out;
}

/**
 * Writes `bench/results/<name>.json` and returns its path. `notes` are free-form lines shown
 * under the summary table (method, caveats, what was not available).
 */
export function writeResults(
  name: string,
  rows: ResultRow[],
  options: { quick: boolean; notes?: string[] },
): string {
  const results: BenchResults = {
    name,
    quick: options.quick,
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model?.trim(), node: process.version },
    rows,
  };
  if (options.notes !== undefined && options.notes.length > 0) results.notes = options.notes;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}
