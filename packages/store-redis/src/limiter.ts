import { assertBucketRule, type BucketRule, type LimiterStore, type LimitResult } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, type RedisClient, run, script } from "./redis.js";

/*
 * Core's leakyBucket (the meter form) as Lua statements, inlined into each script that needs
 * it (no Lua functions: a script would build their closures again on every call). The bucket
 * is the string "<level> <at>"; it expires when it would be empty.
 */

/**
 * Lua that sets `now` (ms: the server's TIME, or the number in the Lua expression `clock`,
 * for tests) and `level` and `at`: the bucket in `key` drained to `now`, and the time it is
 * measured from. Needs `rate` (units per second).
 */
export function bucketDrainLua(key: string, clock: string): string {
  return `
local now
if ${clock} ~= '' then
  now = tonumber(${clock})
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local level, at = 0, now
local state = redis.call('GET', ${key})
if state then
  local sep = string.find(state, ' ', 1, true)
  local last = tonumber(string.sub(state, sep + 1))
  level = math.max(0, tonumber(string.sub(state, 1, sep - 1)) - (math.max(0, now - last) * rate) / 1000)
  at = math.max(now, last)
end
`;
}

/** Lua expression: milliseconds until `wanted` fits under `capacity` again. */
export function bucketRetryLua(wanted: string): string {
  return `math.max(1, math.ceil(((${wanted} - capacity) * 1000) / rate))`;
}

/** Lua that writes `level` (as `text`) and `at` back to the bucket in `key`, with its expiry. */
export function bucketSaveLua(key: string): string {
  return `
local px = at + math.ceil((level * 1000) / rate) - now
local text = string.format('%.17g', level)
if px > 0 then
  redis.call('SET', ${key}, text .. ' ' .. string.format('%.17g', at), 'PX', px)
else
  redis.call('DEL', ${key})
end
`;
}

// KEYS[1]: the bucket. ARGV: capacity, ratePerSec, cost, and a clock (ms) or '' (tests only).
const CONSUME = script(
  "limiter.consume",
  `
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
${bucketDrainLua("KEYS[1]", "ARGV[4]")}
local wanted = level + cost
local allowed, retry = 1, 0
if wanted > capacity + 1e-9 then
  allowed = 0
  retry = ${bucketRetryLua("wanted")}
else
  level = wanted
end
-- Saved on a refusal too, as core's leakyBucket does: the level drained to now, exactly.
${bucketSaveLua("KEYS[1]")}
return { allowed, retry, text }
`,
);

/** Leaky buckets as "<level> <at>" strings, one Lua step per check, on the Redis clock. */
export class RedisLimiter implements LimiterStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  consume(key: string, rule: BucketRule, cost: number): Promise<LimitResult> {
    return this.consumeAt(key, rule, cost, undefined);
  }

  /** `consume` with a given clock instead of the server's (for tests). */
  async consumeAt(
    key: string,
    rule: BucketRule,
    cost: number,
    now: number | undefined,
  ): Promise<LimitResult> {
    assertBucketRule(rule, "limiter.consume");
    if (!(Number.isFinite(cost) && cost >= 0)) {
      throw new RangeError(`limiter.consume: cost must be a finite number >= 0, got ${cost}`);
    }
    const reply = (await attempt("limiter.consume", () =>
      run(
        this.#client,
        CONSUME,
        [this.#keys.limiter(key)],
        [rule.capacity, rule.ratePerSec, cost, now === undefined ? "" : now],
      ),
    )) as [number, number, string];
    return { allowed: reply[0] === 1, retryAfterMs: reply[1], level: Number(reply[2]) };
  }
}
