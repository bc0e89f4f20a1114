import { type BucketState, drainMs, type LimitResult, leakyBucket } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { makeKeys } from "../src/keys.js";
import { RedisLimiter } from "../src/limiter.js";
import { connect, deleteUnder, describeRedis, testPrefix } from "./redis.js";

let client: Redis | undefined;
const prefixes: string[] = [];

function c(): Redis {
  if (client === undefined) throw new Error("no Redis client");
  return client;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

beforeAll(() => {
  client = connect();
});
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await deleteUnder(c(), prefix);
});
afterAll(async () => {
  await client?.quit();
});

describeRedis("store-redis: limiter", () => {
  it("the Lua bucket computes exactly what core's leakyBucket computes, clock steps back included", async () => {
    const prefix = testPrefix();
    prefixes.push(prefix);
    const keys = makeKeys(prefix, []);
    const limiter = new RedisLimiter(c(), keys);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          capacity: fc.double({ min: 0.5, max: 50, noNaN: true }),
          ratePerSec: fc.double({ min: 0.1, max: 200, noNaN: true }),
        }),
        fc.array(
          fc.record({
            // Mostly forwards, sometimes a step back in time.
            dt: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: -200, max: 0 })),
            cost: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 10, noNaN: true })),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (rule, steps) => {
          const key = `k${run++}`;
          let state: BucketState | undefined;
          let now = 1_700_000_000_000;
          for (const { dt, cost } of steps) {
            now += dt;
            const expected = leakyBucket(state, rule, cost, now);
            const got: LimitResult = await limiter.consumeAt(key, rule, cost, now);
            expect(got).toEqual(expected.result);
            state = expected.state;
            // The key expires on the real clock, this test's clock is made up: a bucket that
            // would be drained within 100 ms is dropped on both sides, so that a real expiry
            // between two steps cannot tell them apart.
            if (state.at + drainMs(state.level, rule) - now < 100) {
              await c().del(keys.limiter(key));
              state = undefined;
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("on the server clock, a sequence is allowed and refused as core's bucket on the local clock", async () => {
    const keyPrefix = testPrefix();
    prefixes.push(keyPrefix);
    const store: RedisStore = createRedisStore({ client: c(), keyPrefix });
    // 200 ms per unit. Each wait is chosen so that every decision is at least 100 ms of draining
    // away from its boundary: the same pattern whatever the latency of a call.
    const rule = { capacity: 3, ratePerSec: 5 };
    const plan: { waitMs: number; cost: number }[] = [
      { waitMs: 0, cost: 1 },
      { waitMs: 0, cost: 1 },
      { waitMs: 0, cost: 1 },
      { waitMs: 0, cost: 1 }, // full: refused
      { waitMs: 300, cost: 1 }, // 1.5 drained, + 1: allowed
      { waitMs: 0, cost: 1 }, // ~2.5 + 1: refused
      { waitMs: 0, cost: 2 }, // refused
      { waitMs: 400, cost: 2 }, // ~2.5 drained to ~0.5, + 2: allowed
      { waitMs: 0, cost: 1 }, // ~2.5 + 1: refused
      { waitMs: 100, cost: 0.5 }, // ~2 + 0.5: allowed
    ];
    let state: BucketState | undefined;
    const got: boolean[] = [];
    const expected: boolean[] = [];
    for (const { waitMs, cost } of plan) {
      if (waitMs > 0) await sleep(waitMs);
      const at = Date.now();
      const r = await store.limiter.consume("k", rule, cost);
      const mine = leakyBucket(state, rule, cost, at);
      state = mine.state;
      got.push(r.allowed);
      expected.push(mine.result.allowed);
      // The levels agree up to the few milliseconds between the two clocks.
      expect(Math.abs(r.level - mine.result.level)).toBeLessThan(0.3);
    }
    expect(got).toEqual(expected);
    expect(got).toEqual([true, true, true, false, true, false, false, true, false, true]);
    await store.close();
  });
});
