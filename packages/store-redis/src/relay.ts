import { assertBucketRule, type RelayBatch, type RelayResult, type RelayStore } from "@whisperchat/core";
import type { RedisBus } from "./bus.js";
import type { Keys } from "./keys.js";
import { bucketDrainLua, bucketRetryLua, bucketSaveLua } from "./limiter.js";
import { attempt, keepOf, type RedisClient, run, script } from "./redis.js";
import { appendLua } from "./rooms.js";

// A batch of messages in one step: the sender's bucket, the history append and the publish to
// the partner's node. KEYS: bucket, room, history. ARGV: capacity, ratePerSec, history limit,
// room ttl (ms), channel ('' for none), 'sharded' or 'classic', n, then n stored messages (JSON),
// then (with a channel) n bus messages (JSON). The allowed messages, from the first, are appended
// and published as one bus delivery: the message itself, or a JSON array of them.
// Returns { allowed, retryAfterMs, stored (0/1), receivers }.
const SEND = script(
  "relay.send",
  `
local capacity, rate, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[7])
${bucketDrainLua("KEYS[1]", "''")}
local allowed, retry = 0, 0
while allowed < n and level + 1 <= capacity + 1e-9 do
  level = level + 1
  allowed = allowed + 1
end
if allowed < n then retry = ${bucketRetryLua("level + 1")} end
${bucketSaveLua("KEYS[1]")}
if allowed == 0 then return { 0, retry, 0, 0 } end
${appendLua("KEYS[2]", "KEYS[3]", "8", "7 + allowed", "limit", "ARGV[4]")}
if appended == 0 then return { allowed, retry, 0, 0 } end
local receivers = 0
if ARGV[5] ~= '' then
  local payload = ARGV[8 + n]
  if allowed > 1 then
    payload = '[' .. table.concat({ unpack(ARGV, 8 + n, 7 + n + allowed) }, ',') .. ']'
  end
  receivers = redis.call(ARGV[6] == 'sharded' and 'SPUBLISH' or 'PUBLISH', ARGV[5], payload)
end
return { allowed, retry, 1, receivers }
`,
);

/**
 * Chat messages in one round trip per batch. Its script touches the sender's bucket and the
 * room, which have different hash tags, and publishes to a third: it needs one Redis server
 * (or a primary with replicas). On Redis Cluster the store has no relay, and core does the same
 * work step by step with the per-key scripts.
 */
export class RedisRelay implements RelayStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #bus: RedisBus;
  readonly #ttlMs: number;

  constructor(client: RedisClient, keys: Keys, bus: RedisBus, ttlMs: number) {
    this.#client = client;
    this.#keys = keys;
    this.#bus = bus;
    this.#ttlMs = ttlMs;
  }

  send(batch: RelayBatch): Promise<RelayResult> {
    const { messages, bucket, route } = batch;
    assertBucketRule(bucket.rule, "relay.send");
    if (route !== undefined && route.frames.length !== messages.length) {
      throw new RangeError(
        `relay.send: route.frames must hold one frame per message (${route.frames.length} for ${messages.length})`,
      );
    }
    const keep = keepOf(batch.historyLimit, "relay.send");
    if (messages.length === 0)
      return Promise.resolve({ allowed: 0, retryAfterMs: 0, stored: true, routed: false });
    const args: (string | number)[] = [
      bucket.rule.capacity,
      bucket.rule.ratePerSec,
      keep,
      this.#ttlMs,
      route === undefined ? "" : this.#keys.bus(route.nodeId),
      "",
      messages.length,
    ];
    for (const m of messages) args.push(JSON.stringify(m));
    if (route !== undefined) for (const f of route.frames) args.push(JSON.stringify(f));
    const keys = [
      this.#keys.limiter(bucket.key),
      this.#keys.room(batch.roomId),
      this.#keys.roomHistory(batch.roomId),
    ];
    const go = (mode: string) =>
      attempt("relay.send", () => {
        args[5] = mode;
        return run(this.#client, SEND, keys, args);
      }).then((reply) => {
        const [allowed, retryAfterMs, stored, receivers] = reply as [number, number, number, number];
        return { allowed, retryAfterMs, stored: stored === 1, routed: receivers > 0 };
      });
    // Without an await when the pub/sub mode is known, so that batches go out in call order.
    const mode = this.#bus.knownMode();
    if (mode !== undefined) return go(mode);
    return attempt("relay.send", () => this.#bus.mode()).then(go);
  }
}
