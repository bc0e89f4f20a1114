import { assertBucketRule, type BucketRule, type LimiterStore, type LimitResult } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, type RedisClient, run, script } from "./redis.js";

// Core's leakyBucket (the meter form) step by step, on the server's clock. KEYS[1]: the bucket,
// "<level> <at>" or missing. ARGV: capacity, ratePerSec, cost, and a clock (ms) to use instead
// of TIME, or '' (tests only). The bucket expires when it would be empty.
const CONSUME = script(
  "limiter.consume",
  `
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local drained, at = 0, now
local state = redis.call('GET', KEYS[1])
if state then
  local sep = string.find(state, ' ', 1, true)
  local level, last = tonumber(string.sub(state, 1, sep - 1)), tonumber(string.sub(state, sep + 1))
  drained = math.max(0, level - (math.max(0, now - last) * rate) / 1000)
  at = math.max(now, last)
end
local wanted = drained + cost
local allowed, retry, level = 1, 0, wanted
if wanted > capacity + 1e-9 then
  allowed = 0
  retry = math.max(1, math.ceil(((wanted - capacity) * 1000) / rate))
  level = drained
end
local px = at + math.ceil((level * 1000) / rate) - now
local text = string.format('%.17g', level)
if px > 0 then
  redis.call('SET', KEYS[1], text .. ' ' .. string.format('%.17g', at), 'PX', px)
else
  redis.call('DEL', KEYS[1])
end
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
