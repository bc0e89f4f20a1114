/**
 * The benchmark harness: runs every benchmark script in turn, each in its own process, then
 * writes `bench/results/summary.md` (one table of every figure against its baseline) and
 * `bench/results/chart.svg` (the ratios that have a target).
 *
 *   npm run bench                      # full run, a few minutes
 *   npm run bench -- --quick           # under a minute, for development
 *   npm run bench -- --only relay,limiter
 *
 * Each script writes `bench/results/<name>.json` (see `lib/results.ts`). A script that is not
 * there is skipped; one that fails or writes no results is reported in the summary.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_ARGS } from "./lib/ipc.js";
import {
  chartSvg,
  type LoadedResults,
  type ScriptStatus,
  summaryMarkdown,
  summaryTable,
} from "./lib/report.js";
import { type BenchResults, isQuick, RESULTS_DIR } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));
const quick = isQuick();
/** In the order they run. */
const SCRIPTS = [
  "relay",
  "metrics-cost",
  "limiter",
  "matching",
  "socketio-relay",
  "auth-loop",
  "test-kit",
  "redis",
  "soak",
  "crash",
];
const onlyArg = process.argv.find((a) => a.startsWith("--only"));
const onlyValue =
  onlyArg === undefined
    ? undefined
    : onlyArg.includes("=")
      ? onlyArg.slice(onlyArg.indexOf("=") + 1)
      : process.argv[process.argv.indexOf(onlyArg) + 1];
const only = onlyValue?.split(",").map((s) => s.trim());
/** A script that runs longer than this is stopped and reported as failed. */
const TIMEOUT_MS = quick ? 90_000 : 15 * 60_000;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function runScript(name: string): Promise<ScriptStatus> {
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) return Promise.resolve({ name, status: "missing", detail: "no such script" });
  const resultFile = join(RESULTS_DIR, `${name}.json`);
  const started = Date.now();
  log(`${name}: starting`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_ARGS, file, ...(quick ? ["--quick"] : [])], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    const finish = (status: ScriptStatus) => {
      clearTimeout(timer);
      status.seconds = (Date.now() - started) / 1000;
      log(
        `${name}: ${status.status}${status.detail ? ` (${status.detail})` : ""} in ${status.seconds.toFixed(1)} s`,
      );
      resolve(status);
    };
    child.on("error", (error) => finish({ name, status: "failed", detail: error.message }));
    child.on("exit", (code, signal) => {
      if (code !== 0) {
        const why =
          signal === "SIGKILL" && Date.now() - started >= TIMEOUT_MS
            ? `timed out after ${TIMEOUT_MS / 1000} s`
            : `exited with ${code ?? signal}`;
        finish({ name, status: "failed", detail: why });
        return;
      }
      const fresh = existsSync(resultFile) && statSync(resultFile).mtimeMs >= started - 1000;
      if (!fresh) finish({ name, status: "no results", detail: `did not write results/${name}.json` });
      else finish({ name, status: "ok" });
    });
  });
}

function isResults(value: unknown): value is BenchResults {
  const v = value as BenchResults;
  return typeof v === "object" && v !== null && typeof v.name === "string" && Array.isArray(v.rows);
}

const runStarted = Date.now();
const statuses: ScriptStatus[] = [];
for (const name of SCRIPTS) {
  if (only !== undefined && !only.includes(name)) {
    statuses.push({ name, status: "not run", detail: "not selected with --only" });
    continue;
  }
  statuses.push(await runScript(name));
}

// Every results file, this run's first (in script order), then older ones.
const loaded: LoadedResults[] = [];
const files = existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR).filter((f) => f.endsWith(".json")) : [];
for (const f of files) {
  try {
    const path = join(RESULTS_DIR, f);
    const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (!isResults(parsed)) {
      log(`${f}: not in the results format, left out`);
      continue;
    }
    const name = f.slice(0, -".json".length);
    const status = statuses.find((s) => s.name === name);
    const current = status?.status === "ok" && statSync(path).mtimeMs >= runStarted - 1000;
    loaded.push({ results: parsed, current });
  } catch (error) {
    log(`${f}: unreadable (${error instanceof Error ? error.message : String(error)}), left out`);
  }
}
const order = (name: string) => {
  const i = SCRIPTS.indexOf(name);
  return i < 0 ? SCRIPTS.length : i;
};
loaded.sort((a, b) => Number(b.current) - Number(a.current) || order(a.results.name) - order(b.results.name));

const info = {
  quick,
  date: new Date(runStarted).toISOString(),
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model?.trim(),
  node: process.version,
};
const summary = summaryMarkdown(loaded, statuses, info);
mkdirSync(RESULTS_DIR, { recursive: true });
writeFileSync(join(RESULTS_DIR, "summary.md"), summary);
const sections = loaded.map((l) => ({
  name: `${l.results.name}${l.current ? "" : " (earlier run)"}`,
  rows: l.results.rows,
}));
writeFileSync(
  join(RESULTS_DIR, "chart.svg"),
  chartSvg(
    sections,
    `WhisperChat against its baselines (${quick ? "quick run" : "full run"}, ${info.date.slice(0, 10)})`,
  ),
);
// A full run of everything also goes into the README, between its markers.
if (!quick && only === undefined) {
  const readme = join(here, "README.md");
  const text = readFileSync(readme, "utf8");
  const start = "<!-- bench:summary:start -->";
  const end = "<!-- bench:summary:end -->";
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) {
    const body = [
      `Full run of ${info.date.slice(0, 10)}, Node ${info.node}, ${info.cpus} CPUs${info.cpuModel ? ` (${info.cpuModel})` : ""}; ` +
        "details and notes on method in [results/summary.md](results/summary.md).",
      "",
      ...summaryTable(loaded),
    ];
    writeFileSync(readme, `${text.slice(0, a + start.length)}\n${body.join("\n")}\n${text.slice(b)}`);
  }
}
process.stdout.write(summary);
log(`wrote results/summary.md and results/chart.svg in ${((Date.now() - runStarted) / 1000).toFixed(1)} s`);
