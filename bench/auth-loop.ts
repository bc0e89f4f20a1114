/**
 * Event-loop responsiveness during password logins.
 *
 * Runs rounds of 20 concurrent logins (argon2id with the default OWASP parameters: 19 MiB,
 * t=2, p=1) against the memory store and reports the event-loop delay measured with
 * `perf_hooks.monitorEventLoopDelay` while they run, next to an idle baseline, and the login
 * throughput. Target: p99 delay under 10 ms.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/auth-loop.ts [--quick] [--rounds N]
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { createAccounts, createJwtAuth } from "@whisperchat/core/auth";
import { createMemoryStore } from "@whisperchat/store-memory";
import { isQuick, row, writeResults } from "./lib/results.js";

const CONCURRENT = 20;
const quick = isQuick();
const roundsArg = process.argv.indexOf("--rounds");
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : quick ? 3 : 10;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error("--rounds takes a whole number from 1");
const PASSWORD = "correct horse battery staple";
const ms = (ns: number): string => (ns / 1e6).toFixed(2);

function summary(h: IntervalHistogram): string {
  return `p50 ${ms(h.percentile(50))} ms, p99 ${ms(h.percentile(99))} ms, max ${ms(h.max)} ms`;
}

const store = createMemoryStore();
const jwt = createJwtAuth({ secret: randomBytes(32) });
const accounts = createAccounts({
  store,
  jwt,
  // The limits are not what is measured here.
  loginRate: {
    perNameAndIp: { capacity: 1e6, ratePerSec: 1e6 },
    perName: { capacity: 1e6, ratePerSec: 1e6 },
    perIp: { capacity: 1e6, ratePerSec: 1e6 },
  },
});
const names = Array.from({ length: CONCURRENT }, (_, i) => `bench-user-${i}`);
await Promise.all(names.map((name) => accounts.register({ name, password: PASSWORD })));
await accounts.login({ name: names[0]!, password: PASSWORD, ip: "127.0.0.1" }); // warm-up

// Idle baseline: the histogram's own resolution shows up in every sample.
const idle = monitorEventLoopDelay({ resolution: 1 });
idle.enable();
await new Promise((resolve) => setTimeout(resolve, 500));
idle.disable();

const busy = monitorEventLoopDelay({ resolution: 1 });
let logins = 0;
let elapsedMs = 0;
const roundMs: number[] = [];
busy.enable();
for (let round = 0; round < ROUNDS; round++) {
  const start = performance.now();
  const results = await Promise.all(
    names.map((name) => accounts.login({ name, password: PASSWORD, ip: "127.0.0.1" })),
  );
  const took = performance.now() - start;
  if (results.length !== CONCURRENT) throw new Error("a login did not complete");
  logins += results.length;
  elapsedMs += took;
  roundMs.push(took);
}
busy.disable();
await store.close();

const p99Ms = busy.percentile(99) / 1e6;
console.log(
  `auth-loop: ${ROUNDS} rounds of ${CONCURRENT} concurrent logins (argon2id m=19456 KiB, t=2, p=1)`,
);
console.log(
  `  cpus ${availableParallelism()}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}`,
);
console.log(`  event-loop delay idle:   ${summary(idle)}`);
console.log(
  `  event-loop delay logins: ${summary(busy)}  (target p99 < 10 ms: ${p99Ms < 10 ? "met" : "MISSED"})`,
);
console.log(
  `  throughput ${((logins * 1000) / elapsedMs).toFixed(1)} logins/s; a round of ${CONCURRENT} took ` +
    `${Math.min(...roundMs).toFixed(0)}-${Math.max(...roundMs).toFixed(0)} ms`,
);

const path = writeResults(
  "auth-loop",
  [
    row({
      group: `${CONCURRENT} concurrent logins`,
      metric: "p99 event-loop delay vs idle",
      unit: "ms",
      ours: p99Ms,
      baseline: idle.percentile(99) / 1e6,
      baselineName: "idle event loop",
      higherIsBetter: false,
    }),
  ],
  {
    quick,
    notes: [
      `auth-loop: p99 event-loop delay during ${CONCURRENT} concurrent argon2id logins was ${p99Ms.toFixed(2)} ms (target: under 10 ms, an absolute figure: ${p99Ms < 10 ? "met" : "missed"}); ${((logins * 1000) / elapsedMs).toFixed(1)} logins/s.`,
    ],
  },
);
console.log(`auth-loop: wrote ${path}`);
