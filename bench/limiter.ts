/**
 * Limiter benchmark: checks per second of WhisperChat's leaky-bucket limiter on the memory store
 * and on the Redis store, against rate-limiter-flexible's RateLimiterMemory and
 * RateLimiterRedis (ioredis) in the same run, with 1 and 50 checks in flight, over 10,000 keys
 * taken round-robin so that every limiter keeps real state.
 *
 * Two rules, each mapped to the nearest rate-limiter-flexible setting (a fixed window of
 * `points` per `duration` seconds):
 * - under the limit: a bucket of 1000 draining 100/s ↔ 1000 points per 10 s. Every check is
 *   allowed and every key keeps state for the whole measurement.
 * - over the limit: a bucket of 10 draining 5/s (the default message rule) ↔ 10 points per 2 s.
 *   Past the first checks of each key most checks are refused.
 * Both give the same sustained rate and the same burst from empty; the fixed window can let up
 * to twice the burst through around a window edge, the bucket never does.
 *
 *   node --conditions=@whisperchat/source --import tsx --expose-gc bench/limiter.ts [--quick]
 *
 * Redis keys use a random prefix and are deleted at the end. Without Redis (127.0.0.1:6379, or
 * REDIS_URL), the Redis rows are reported as not available.
 */
import { randomUUID } from "node:crypto";
import type { BucketRule, LimiterStore } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import { fullGc } from "./lib/ipc.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const quick = isQuick();
const KEY_COUNT = 10_000;
const IN_FLIGHT = [1, 50];
const WARMUP_MS = quick ? 50 : 100;
const MEASURE_MS = quick ? 200 : 500;
/**
 * Each figure is measured this many times, ours and the baseline taking turns; the best counts
 * (a disturbance on the machine, or on the shared Redis, only ever slows a round down).
 */
const ROUNDS = quick ? 1 : 6;

interface Scenario {
  name: string;
  rule: BucketRule;
  rlf: { points: number; duration: number };
}

const SCENARIOS: Scenario[] = [
  { name: "under the limit", rule: { capacity: 1000, ratePerSec: 100 }, rlf: { points: 1000, duration: 10 } },
  { name: "over the limit", rule: { capacity: 10, ratePerSec: 5 }, rlf: { points: 10, duration: 2 } },
];

type Check = (key: string) => Promise<unknown>;

/** A fresh limiter for one measurement, and how to release it. */
interface Contender {
  make(s: Scenario): Promise<{ check: Check; dispose?: () => Promise<void> }>;
}

const keys = Array.from({ length: KEY_COUNT }, (_, i) => `key-${i}`);
const log = (line: string) => process.stderr.write(`[limiter] ${line}\n`);
const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });

/** Runs `inFlight` loops of checks for `ms`; resolves checks per second. */
async function rate(check: Check, inFlight: number, ms: number): Promise<number> {
  let next = 0;
  let done = 0;
  let stop = false;
  const start = performance.now();
  const end = start + ms;
  const loop = async () => {
    while (!stop) {
      const key = keys[next]!;
      next = next + 1 === KEY_COUNT ? 0 : next + 1;
      await check(key);
      done++;
      // A memory limiter resolves at once: the loop never yields, so the clock is read here.
      if ((done & 127) === 0 && performance.now() >= end) stop = true;
    }
  };
  const timer = setTimeout(() => {
    stop = true;
  }, ms);
  await Promise.all(Array.from({ length: inFlight }, loop));
  clearTimeout(timer);
  return (done * 1000) / (performance.now() - start);
}

async function measure(c: Contender, s: Scenario, inFlight: number, ms = MEASURE_MS): Promise<number> {
  const { check, dispose } = await c.make(s);
  try {
    fullGc(1);
    await rate(check, inFlight, WARMUP_MS);
    return await rate(check, inFlight, ms);
  } finally {
    await dispose?.();
  }
}

// ------------------------------------------------------------------------------------------------
// Contenders

const refused = (r: unknown) => r; // rate-limiter-flexible rejects a refused check

const oursMemory: Contender = {
  async make(s) {
    const store = createMemoryStore();
    const limiter: LimiterStore = store.limiter;
    return { check: (key) => limiter.consume(key, s.rule, 1), dispose: () => store.close() };
  },
};

const rlfMemory: Contender = {
  async make(s) {
    const limiter = new RateLimiterMemory({ points: s.rlf.points, duration: s.rlf.duration });
    return { check: (key) => limiter.consume(key, 1).catch(refused) };
  },
};

async function connectRedis(): Promise<Redis | undefined> {
  const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    log(`Redis not reachable (${error instanceof Error ? error.message : String(error)})`);
    client.disconnect();
    return undefined;
  }
}

type CreateRedisStore = (options: { client: Redis; keyPrefix?: string }) => {
  limiter: LimiterStore;
  close(): Promise<void>;
};

async function loadRedisStore(): Promise<CreateRedisStore | undefined> {
  try {
    const mod = (await import("@whisperchat/store-redis")) as { createRedisStore?: CreateRedisStore };
    return mod.createRedisStore;
  } catch (error) {
    log(`@whisperchat/store-redis not available (${error instanceof Error ? error.message : String(error)})`);
    return undefined;
  }
}

async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [nextCursor, found] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = nextCursor;
    if (found.length > 0) deleted += await client.unlink(...found);
  } while (cursor !== "0");
  return deleted;
}

// ------------------------------------------------------------------------------------------------

const prefix = `bench:${randomUUID()}:`;
const notes: string[] = [
  `${KEY_COUNT.toLocaleString("en-US")} keys taken round-robin; a fresh limiter (and a fresh key prefix) per measurement; ` +
    `${WARMUP_MS} ms warm-up, ${MEASURE_MS} ms window, best of ${ROUNDS} round(s), ours and the baseline taking turns.`,
  ...SCENARIOS.map(
    (s) =>
      `${s.name}: bucket capacity ${s.rule.capacity}, ${s.rule.ratePerSec}/s ↔ rate-limiter-flexible ${s.rlf.points} points per ${s.rlf.duration} s ` +
      "(same sustained rate and burst from empty; a fixed window may pass up to twice the burst across its edge).",
  ),
];

const client = await connectRedis();
const createRedisStore = client === undefined ? undefined : await loadRedisStore();
let sequence = 0;

const families: {
  group: string;
  ours: Contender | undefined;
  base: Contender | undefined;
  baseName: string;
}[] = [{ group: "memory limiter", ours: oursMemory, base: rlfMemory, baseName: "RateLimiterMemory" }];
if (client !== undefined) {
  const rlfRedis: Contender = {
    async make(s) {
      const limiter = new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${prefix}rlf${sequence++}`,
        points: s.rlf.points,
        duration: s.rlf.duration,
      });
      return { check: (key) => limiter.consume(key, 1).catch(refused) };
    },
  };
  const oursRedis: Contender | undefined =
    createRedisStore === undefined
      ? undefined
      : {
          async make(s) {
            const store = createRedisStore({ client, keyPrefix: `${prefix}ours${sequence++}:` });
            return { check: (key) => store.limiter.consume(key, s.rule, 1), dispose: () => store.close() };
          },
        };
  families.push({ group: "Redis limiter", ours: oursRedis, base: rlfRedis, baseName: "RateLimiterRedis" });
  if (oursRedis === undefined)
    notes.push("Redis limiter: @whisperchat/store-redis is not available: not measured.");
} else {
  families.push({ group: "Redis limiter", ours: undefined, base: undefined, baseName: "RateLimiterRedis" });
  notes.push("Redis limiter: Redis was not reachable: not measured.");
}

const rows: ResultRow[] = [];
try {
  for (const f of families) {
    // Once per contender before anything counts: compiles the client's and the limiter's code.
    for (const c of [f.ours, f.base]) {
      if (c !== undefined)
        for (const inFlight of IN_FLIGHT) await measure(c, SCENARIOS[0]!, inFlight, WARMUP_MS);
    }
    for (const inFlight of IN_FLIGHT) {
      for (const s of SCENARIOS) {
        let ours: number | null = null;
        let base: number | null = null;
        for (let round = 0; round < ROUNDS; round++) {
          if (f.ours !== undefined) ours = Math.max(ours ?? 0, await measure(f.ours, s, inFlight));
          if (f.base !== undefined) base = Math.max(base ?? 0, await measure(f.base, s, inFlight));
        }
        const group = `${f.group}, ${inFlight} in flight`;
        log(
          `${group}, ${s.name}: ours ${ours === null ? "n/a" : fmt(ours)}, ${f.baseName} ${base === null ? "n/a" : fmt(base)} checks/s`,
        );
        rows.push(
          row({
            group,
            metric: `checks/s ${s.name} vs ${f.baseName}`,
            unit: "checks/s",
            ours,
            baseline: base,
            baselineName: `rate-limiter-flexible ${f.baseName}`,
            higherIsBetter: true,
            target: { ratio: 1, op: ">=" },
          }),
        );
      }
    }
  }
} finally {
  if (client !== undefined) {
    const deleted = await deleteKeys(client, `${prefix}*`);
    log(`deleted ${deleted} Redis keys`);
    client.disconnect();
  }
}

const path = writeResults("limiter", rows, { quick, notes });
log(`wrote ${path} (${(performance.now() / 1000).toFixed(1)} s)`);
