/**
 * What the app test kit (`@whisperchat/core/testing`) saves: one app test, run in-process with
 * `createTestHub` on a manual clock, against the same test over real WebSockets
 * (adapter-ws on loopback, `connectWs`) with real timers.
 *
 * The test, the same code both ways: a hub and two clients, a match, 20 messages (10 each way,
 * each awaited by its partner), `next`, a third client matched with the one waiting, that
 * client's connection dropped, and the partner told `partner_left` when the resume grace is
 * over. The grace is 1 s (an app testing it over real sockets would shorten its 30 s default);
 * in-process the manual clock passes it at once. Each run includes setting the hub (and the
 * server) up and closing it, as a test's hooks do. A second figure leaves the grace out, so
 * that the transports alone are compared.
 *
 * A third figure is the Express example's own kit tests (examples/express/test/kit.test.ts, one
 * test body run in-process and over a real WebSocket), as vitest times them: each way in a
 * vitest process of its own, the sum of its tests' durations.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/test-kit.ts [--quick]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { attachWebSocket } from "@whisperchat/adapter-ws";
import { createWhisper } from "@whisperchat/core";
import {
  type ConnectOptions,
  connectWs,
  createTestHub,
  type TestChatClient,
} from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { WebSocket } from "ws";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const quick = isQuick();
const RUNS = quick ? 5 : 25;
const GRACE_MS = 1000;
const MESSAGES = 20;

/** A hub to run the test against: how clients connect, how time passes, and its teardown. */
interface Setup {
  connect(options?: ConnectOptions): Promise<TestChatClient>;
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

function inProcess(): Setup {
  const kit = createTestHub({ store: createMemoryStore, resumeGraceMs: GRACE_MS });
  return {
    connect: (options) => kit.connect(options),
    wait: (ms) => kit.clock.advance(ms),
    close: () => kit.close(),
  };
}

async function overWs(): Promise<Setup> {
  const store = createMemoryStore();
  const hub = createWhisper({ store, resumeGraceMs: GRACE_MS });
  const server = createServer((_req, res) => res.writeHead(404).end());
  const adapter = attachWebSocket(hub, { server });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/whisper`;
  return {
    connect: (options) => connectWs(url, { ...options, WebSocket }),
    wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    async close() {
      await hub.close();
      await adapter.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}

const PARIS = { lat: 48.8566, lng: 2.3522 };

/** The app test; fails loudly if anything is not as expected. */
async function scenario(setup: Setup, withGrace: boolean): Promise<void> {
  try {
    const ana = await setup.connect();
    const ben = await setup.connect();
    await ana.join({ location: PARIS, rangeKm: 5, name: "Ana" });
    await ben.join({ location: PARIS, rangeKm: 5, name: "Ben" });
    await ana.expectFrame("matched");
    await ben.expectFrame("matched");
    for (let i = 0; i < MESSAGES; i++) {
      const [from, to] = i % 2 === 0 ? [ana, ben] : [ben, ana];
      await from.send(`message ${i}`);
      const got = await to.expectFrame("message");
      if (got.text !== `message ${i}`) throw new Error(`expected message ${i}, got ${got.text}`);
    }
    await ana.next();
    await ben.expectFrame("partner_left");
    if (!withGrace) return;
    const carl = await setup.connect();
    await carl.join({ location: PARIS, rangeKm: 5, name: "Carl" });
    await carl.expectFrame("matched");
    await ana.expectFrame("matched");
    await carl.drop();
    await ana.expectFrame("partner_away");
    await setup.wait(GRACE_MS);
    const left = await ana.expectFrame("partner_left", { timeoutMs: GRACE_MS + 2000 });
    if (left.reason !== "disconnected") throw new Error(`partner_left ${left.reason}`);
  } finally {
    await setup.close();
  }
}

/** Median and p90 of `RUNS` timed runs, in ms, after one warm-up run. */
async function time(
  make: () => Setup | Promise<Setup>,
  withGrace: boolean,
): Promise<{ p50: number; p90: number }> {
  await scenario(await make(), withGrace);
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await scenario(await make(), withGrace);
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] as number;
  return { p50: at(0.5), p90: at(0.9) };
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const EXAMPLE = "examples/express/test/kit.test.ts";
/** The describe names of the example's two ways. */
const EXAMPLE_WAYS = { inProcess: "in-process", overWs: "over a real WebSocket" } as const;
const EXAMPLE_RUNS = quick ? 1 : 5;

/** Vitest's JSON report, the parts read here. */
interface VitestReport {
  testResults: { assertionResults: { ancestorTitles: string[]; duration?: number; status: string }[] }[];
}

/**
 * Runs the example's tests of one way in a vitest process of its own and returns the sum of
 * their durations as vitest reports them, in ms (each test's body; not the hooks, not vitest's
 * start-up). Fails if a test fails or none ran.
 */
async function exampleTests(way: string): Promise<{ ms: number; tests: number }> {
  const vitest = join(dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");
  const dir = mkdtempSync(join(tmpdir(), "whisperchat-test-kit-"));
  const report = join(dir, "report.json");
  try {
    const child = spawn(
      process.execPath,
      [vitest, "run", EXAMPLE, "-t", way, "--reporter=json", `--outputFile=${report}`],
      { cwd: ROOT, env: { ...process.env, CI: "true" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`vitest ${EXAMPLE} -t "${way}" exited with ${code}:\n${stderr}`);
    const results = (JSON.parse(readFileSync(report, "utf8")) as VitestReport).testResults.flatMap(
      (file) => file.assertionResults,
    );
    const ran = results.filter((r) => r.ancestorTitles.some((t) => t.endsWith(way)));
    if (ran.length === 0 || ran.some((r) => r.status !== "passed" || r.duration === undefined))
      throw new Error(`vitest ${EXAMPLE} -t "${way}": ${JSON.stringify(ran)}`);
    return { ms: ran.reduce((sum, r) => sum + (r.duration ?? 0), 0), tests: ran.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The median of a way's runs. */
function median(runs: { ms: number; tests: number }[]): { ms: number; tests: number } {
  const sorted = [...runs].sort((a, b) => a.ms - b.ms);
  return sorted[Math.floor(sorted.length / 2)] as { ms: number; tests: number };
}

const rows: ResultRow[] = [];
const notes: string[] = [];
for (const withGrace of [true, false]) {
  const what = withGrace
    ? `match, ${MESSAGES} messages, next, grace expiry (${GRACE_MS / 1000} s)`
    : `match, ${MESSAGES} messages, next`;
  const kit = await time(inProcess, withGrace);
  const ws = await time(overWs, withGrace);
  console.log(
    `test-kit: ${what}: in-process p50 ${kit.p50.toFixed(1)} ms (p90 ${kit.p90.toFixed(1)}), ` +
      `over ws with real timers p50 ${ws.p50.toFixed(1)} ms (p90 ${ws.p90.toFixed(1)}): ${(ws.p50 / kit.p50).toFixed(0)}x faster`,
  );
  rows.push(
    row({
      group: `an app test: ${what}`,
      metric: "ms per test, in-process vs over ws",
      unit: "ms",
      ours: kit.p50,
      baseline: ws.p50,
      baselineName: "the same test over ws on loopback, real timers",
      higherIsBetter: false,
    }),
  );
  notes.push(
    `test-kit (${what}): in-process ${kit.p50.toFixed(1)} ms (p90 ${kit.p90.toFixed(1)}), over ws ${ws.p50.toFixed(1)} ms (p90 ${ws.p90.toFixed(1)}), medians of ${RUNS} runs each including the hub's setup and close.`,
  );
}

{
  // The ways alternate, so that neither always runs on a machine warmed (or loaded) by the other.
  const kitRuns: { ms: number; tests: number }[] = [];
  const wsRuns: { ms: number; tests: number }[] = [];
  for (let i = 0; i < EXAMPLE_RUNS; i++) {
    kitRuns.push(await exampleTests(EXAMPLE_WAYS.inProcess));
    wsRuns.push(await exampleTests(EXAMPLE_WAYS.overWs));
  }
  const kit = median(kitRuns);
  const ws = median(wsRuns);
  const what = `the Express example's kit tests (${kit.tests} tests)`;
  console.log(
    `test-kit: ${what}: in-process ${kit.ms.toFixed(1)} ms, over a real WebSocket ${ws.ms.toFixed(1)} ms`,
  );
  rows.push(
    row({
      group: what,
      metric: "ms for the tests, in-process vs over ws",
      unit: "ms",
      ours: kit.ms,
      baseline: ws.ms,
      baselineName: "the same tests over ws (adapter-ws on loopback)",
      higherIsBetter: false,
    }),
  );
  notes.push(
    `test-kit (${what}, ${EXAMPLE}): in-process ${kit.ms.toFixed(1)} ms, over ws ${ws.ms.toFixed(1)} ms: the sum of the tests' durations as vitest reports them (bodies only, not hooks or start-up), each way in a vitest process of its own, median of ${EXAMPLE_RUNS} runs.`,
  );
}

const path = writeResults("test-kit", rows, { quick, notes });
console.log(`test-kit: wrote ${path}`);
