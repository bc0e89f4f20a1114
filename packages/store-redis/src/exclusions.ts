import type { ExclusionStore } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, type RedisClient, run, script } from "./redis.js";

const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

// KEYS[1]: the user's sorted set of excluded users, scored by when each exclusion ends (ms,
// server clock; +inf for a block). ARGV: the other user, the ttl in ms or 'inf'.
// ZADD GT never lowers a score, so a longer exclusion is never shortened. The key itself
// expires with its longest exclusion, or never while it holds a block.
const ADD = script(
  "exclusions.add",
  `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local score = '+inf'
if ARGV[2] ~= 'inf' then
  local ttl = tonumber(ARGV[2])
  if ttl <= 0 then return 0 end
  score = now + ttl
end
redis.call('ZADD', KEYS[1], 'GT', score, ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(top[2])) + 1)
end
return 1
`,
);

// KEYS[1]: the user's sorted set. ARGV: the other users. Returns those still excluded.
const EXCLUDED = script(
  "exclusions.excluded",
  `${NOW}
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV))
local out = {}
for i, score in ipairs(scores) do
  if score and (score == 'inf' or tonumber(score) > now) then out[#out + 1] = ARGV[i] end
end
return out
`,
);

/** Per user, a sorted set of the users excluded for them; each pair is written on both sides. */
export class RedisExclusions implements ExclusionStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async add(userA: string, userB: string, ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined && Number.isNaN(ttlMs)) {
      throw new RangeError("exclusions.add: ttlMs must be a number of milliseconds or undefined (forever)");
    }
    const ttl = ttlMs === undefined || ttlMs === Number.POSITIVE_INFINITY ? "inf" : Math.ceil(ttlMs);
    await attempt("exclusions.add", () =>
      Promise.all([
        run(this.#client, ADD, [this.#keys.exclusions(userA)], [userB, ttl]),
        run(this.#client, ADD, [this.#keys.exclusions(userB)], [userA, ttl]),
      ]),
    );
  }

  async excluded(userId: string, others: readonly string[]): Promise<Set<string>> {
    if (others.length === 0) return new Set();
    const out = new Set<string>();
    // ZMSCORE takes the members as arguments: ask in slices, so that a long list stays well
    // within what Lua's unpack and one reply can take.
    for (let i = 0; i < others.length; i += 1000) {
      const slice = others.slice(i, i + 1000);
      const hits = (await attempt("exclusions.excluded", () =>
        run(this.#client, EXCLUDED, [this.#keys.exclusions(userId)], slice),
      )) as string[];
      for (const hit of hits) out.add(hit);
    }
    return out;
  }
}
