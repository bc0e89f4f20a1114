import { assertBucketRule, type BucketRule, type LimiterStore, type LimitResult } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, type RedisClient, run, script } from "./redis.js";

/**
 * Lua: core's leakyBucket (the meter form), step by step. `now_ms(clock)` is the server's clock
 * (TIME) unless a clock is given (tests only); `drained(key, rate, now)` reads the bucket
 * "<level> <at>" and resolves its level drained to `now`, and the time it is measured from;
 * `save(key, level, at, rate, now)` writes it back, expiring when it would be empty.
 */
export const BUCKET_LUA = `
local function now_ms(clock)
  if clock ~= '' then return tonumber(clock) end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function drained(key, rate, now)
  local state = redis.call('GET', key)
  if not state then return 0, now end
  local sep = string.find(state, ' ', 1, true)
  local level, last = tonumber(string.sub(state, 1, sep - 1)), tonumber(string.sub(state, sep + 1))
  return math.max(0, level - (math.max(0, now - last) * rate) / 1000), math.max(now, last)
end
local function retry_ms(wanted, capacity, rate)
  return math.max(1, math.ceil(((wanted - capacity) * 1000) / rate))
end
local function save(key, level, at, rate, now)
  local px = at + math.ceil((level * 1000) / rate) - now
  local text = string.format('%.17g', level)
  if px > 0 then
    redis.call('SET', key, text .. ' ' .. string.format('%.17g', at), 'PX', px)
  else
    redis.call('DEL', key)
  end
  return text
end
`;

// KEYS[1]: the bucket. ARGV: capacity, ratePerSec, cost, and a clock (ms) or '' (see BUCKET_LUA).
const CONSUME = script(
  "limiter.consume",
  `${BUCKET_LUA}
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms(ARGV[4])
local level, at = drained(KEYS[1], rate, now)
local wanted = level + cost
local allowed, retry = 1, 0
if wanted > capacity + 1e-9 then
  allowed = 0
  retry = retry_ms(wanted, capacity, rate)
else
  level = wanted
end
return { allowed, retry, save(KEYS[1], level, at, rate, now) }
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
