import {
  assertBucketRule,
  type BusMessage,
  type RelayBatch,
  type RelayResult,
  type RelayStore,
} from "@whisperchat/core";
import type { RedisBus } from "./bus.js";
import type { Keys } from "./keys.js";
import { bucketDrainLua, bucketRetryLua, bucketSaveLua } from "./limiter.js";
import { attempt, isCluster, keepOf, type RedisClient, run, script } from "./redis.js";
import { appendLua } from "./rooms.js";

/**
 * Lua: of `n` messages (1 unit each), lets through as many as fit in the bucket KEYS[1], from
 * the first: sets `allowed`, and `retry` (ms until the first refused one would fit, or 0), and
 * saves the bucket. Needs `capacity`, `rate` and `n`.
 */
const BUCKET_BATCH_LUA = `
${bucketDrainLua("KEYS[1]", "''")}
local allowed, retry = 0, 0
while allowed < n and level + 1 <= capacity + 1e-9 do
  level = level + 1
  allowed = allowed + 1
end
if allowed < n then retry = ${bucketRetryLua("level + 1")} end
${bucketSaveLua("KEYS[1]")}
`;

// One Redis server: the whole batch in one step. KEYS: bucket, room, history. ARGV: capacity,
// ratePerSec, history limit, room ttl (ms), channel ('' for none), 'sharded' or 'classic', n,
// then n stored messages (JSON), then (with a channel) n bus messages (JSON). The allowed
// messages, from the first, are appended and published as one bus delivery: the message itself,
// or a JSON array of them. Returns { allowed, retryAfterMs, stored (0/1), receivers }.
const SEND = script(
  "relay.send",
  `
local capacity, rate, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[7])
${BUCKET_BATCH_LUA}
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

// Redis Cluster, step 1 of 3. KEYS: bucket. ARGV: capacity, ratePerSec, n. Returns { allowed, retryAfterMs }.
const CLUSTER_BUCKET = script(
  "relay.bucket",
  `
local capacity, rate, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
${BUCKET_BATCH_LUA}
return { allowed, retry }
`,
);

// Redis Cluster, step 2 of 3. KEYS: room, history. ARGV: history limit, room ttl (ms), then the
// messages (JSON). Returns 1, or 0 when the room does not exist.
const CLUSTER_APPEND = script(
  "relay.append",
  `
local limit = tonumber(ARGV[1])
${appendLua("KEYS[1]", "KEYS[2]", "3", "#ARGV", "limit", "ARGV[2]")}
return appended
`,
);

const NOTHING: RelayResult = { allowed: 0, retryAfterMs: 0, stored: true, routed: false };

/**
 * Chat messages, a batch at a time. On one Redis server (or a primary with replicas), a batch
 * is one script: the sender's bucket, the room's history and the publish to the partner's node
 * have different hash tags, which only a single server lets one script touch. On Redis Cluster,
 * a batch is three steps (a script on the bucket's shard, a script on the room's shard, then
 * SPUBLISH), and the batches of one room go one after another, so they arrive in call order.
 */
export class RedisRelay implements RelayStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #bus: RedisBus;
  readonly #ttlMs: number;
  /** Redis Cluster: the last batch of each room still on its way. */
  readonly #inFlight = new Map<string, Promise<unknown>>();

  constructor(client: RedisClient, keys: Keys, bus: RedisBus, ttlMs: number) {
    this.#client = client;
    this.#keys = keys;
    this.#bus = bus;
    this.#ttlMs = ttlMs;
  }

  send(batch: RelayBatch): Promise<RelayResult> {
    const { messages, bucket, route } = batch;
    let keep: number;
    try {
      assertBucketRule(bucket.rule, "relay.send");
      if (route !== undefined && route.frames.length !== messages.length) {
        throw new RangeError(
          `relay.send: route.frames must hold one frame per message (${route.frames.length} for ${messages.length})`,
        );
      }
      keep = keepOf(batch.historyLimit, "relay.send");
    } catch (error) {
      return Promise.reject(error);
    }
    if (messages.length === 0) return Promise.resolve(NOTHING);
    if (isCluster(this.#client)) return this.#inOrder(batch.roomId, () => this.#sendInSteps(batch, keep));
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

  /** Runs `step` once the previous batch of the room is done (failed or not). */
  #inOrder(roomId: string, step: () => Promise<RelayResult>): Promise<RelayResult> {
    const previous = this.#inFlight.get(roomId);
    const next = previous === undefined ? step() : previous.then(step, step);
    this.#inFlight.set(roomId, next);
    const forget = () => {
      if (this.#inFlight.get(roomId) === next) this.#inFlight.delete(roomId);
    };
    next.then(forget, forget);
    return next;
  }

  async #sendInSteps(batch: RelayBatch, keep: number): Promise<RelayResult> {
    const { messages, bucket, route } = batch;
    const [allowed, retryAfterMs] = (await attempt("relay.send", () =>
      run(
        this.#client,
        CLUSTER_BUCKET,
        [this.#keys.limiter(bucket.key)],
        [bucket.rule.capacity, bucket.rule.ratePerSec, messages.length],
      ),
    )) as [number, number];
    if (allowed === 0) return { allowed, retryAfterMs, stored: false, routed: false };
    const appended = await attempt("relay.send", () =>
      run(
        this.#client,
        CLUSTER_APPEND,
        [this.#keys.room(batch.roomId), this.#keys.roomHistory(batch.roomId)],
        [keep, this.#ttlMs, ...messages.slice(0, allowed).map((m) => JSON.stringify(m))],
      ),
    );
    if (appended !== 1) return { allowed, retryAfterMs, stored: false, routed: false };
    if (route === undefined) return { allowed, retryAfterMs, stored: true, routed: false };
    const frames: readonly BusMessage[] = route.frames.slice(0, allowed);
    const routed = await this.#bus.publishAll(route.nodeId, frames);
    return { allowed, retryAfterMs, stored: true, routed };
  }
}
