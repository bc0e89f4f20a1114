import type { Store } from "@whisperchat/core";
import { type PubSubMode, RedisBus } from "./bus.js";
import { checkLevels, DEFAULT_POOL_LEVELS } from "./cells.js";
import { RedisExclusions } from "./exclusions.js";
import { makeKeys } from "./keys.js";
import { RedisLimiter } from "./limiter.js";
import { RedisPool } from "./pool.js";
import { RedisAccounts, RedisBans, RedisMailbox, RedisNodes, RedisSessions } from "./records.js";
import { attempt, isCluster, type RedisClient } from "./redis.js";
import { RedisRelay } from "./relay.js";
import { RedisRooms } from "./rooms.js";
import { type PoolShardingOptions, ShardedRedisPool } from "./sharded-pool.js";

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * The ioredis client to use, already configured by the app. The store never closes it. The
   * store creates one more connection for pub/sub with `client.duplicate()` (on the first
   * `bus.subscribe`) and closes that one in `close()`. Recommended client options, so that a
   * call fails with an `internal` error within a couple of seconds when Redis is unreachable
   * instead of waiting for it: `{ maxRetriesPerRequest: 1, commandTimeout: 2000 }`. Do not set
   * ioredis's own `keyPrefix`: use this store's {@link RedisStoreOptions.keyPrefix}.
   */
  client: RedisClient;
  /**
   * Prefix of every key and channel the store uses. Stores with different prefixes on one Redis
   * never see each other's data; every node of one app must use the same prefix. It goes inside
   * the pool's hash tag too, so that on one Redis Cluster two apps' pools live in different
   * slots. No `{` or `}`: a TypeError.
   * @default "whisper:"
   */
  keyPrefix?: string;
  /**
   * How long a room and its history live without a new message, in milliseconds. Every message
   * extends both; a room nobody writes to for this long is forgotten.
   * @default 86_400_000 (24 hours)
   */
  roomTtlMs?: number;
  /**
   * Upper bounds (km, ascending) of the range tiers of the waiting pool; one more tier holds
   * every larger range. Each tier is a GEO set searched with a radius of at most its bound, so
   * small-range tiers stay cheap in a crowded city. Every node must use the same tiers, and they
   * may only change while the pool is empty (or with a new key prefix).
   * @default [1, 3, 10, 30, 100, 300, 1000, 3000]
   */
  poolTiersKm?: readonly number[];
  /**
   * How the waiting pool is laid out. `false`: one hash tag (`{<prefix>pool}`), one script per
   * step of a join; fastest on one Redis server, but on a Redis Cluster every join goes to the
   * one master that owns that tag. `true` or options: split by geography into cells of a grid,
   * each its own hash tag, so that joins spread over the masters (a join touches the cells its
   * range reaches, a few per level, and claims across cells with reservations; see
   * docs/scaling.md, "The geo-sharded pool"). `"auto"`: sharded on a Cluster client, one tag on
   * one server. Every node must use the same layout, and it may only change while the pool is
   * empty (or with a new key prefix).
   * @default "auto"
   */
  poolSharding?: "auto" | boolean | PoolShardingOptions;
  /**
   * Pub/sub flavour of the bus. `"auto"` uses sharded pub/sub (SPUBLISH/SSUBSCRIBE) when the
   * server has it (Redis 7) and classic PUBLISH/SUBSCRIBE otherwise. Every node must end up with
   * the same flavour.
   * @default "auto"
   */
  pubsub?: PubSubMode | "auto";
  /**
   * Called when a bus handler throws while receiving a message (or a message is not valid
   * JSON). The message still counts as delivered.
   * @default logs the error with `console.error`
   */
  onHandlerError?: (error: unknown, nodeId: string) => void;
  /**
   * Called with the errors of the store's pub/sub connection (Redis unreachable, say). The
   * connection reconnects and subscribes again by itself.
   * @default logs with `console.warn`, at most once every 30 seconds
   */
  onError?: (error: unknown) => void;
}

/** A {@link Store} on Redis: many nodes, one shared state. */
export interface RedisStore extends Store {
  /** The client given in the options: an escape hatch for the app's own commands. */
  readonly client: RedisClient;
  /** The prefix of every key and channel of this store. */
  readonly keyPrefix: string;
  /** The pub/sub flavour the bus uses (detected on first use with `pubsub: "auto"`). */
  pubsubMode(): Promise<PubSubMode>;
}

const DEFAULT_TIERS_KM: readonly number[] = [1, 3, 10, 30, 100, 300, 1000, 3000];

function logHandlerError(error: unknown, nodeId: string): void {
  console.error(`@whisperchat/store-redis: a bus handler of node "${nodeId}" threw`, error);
}

function throttledWarn(): (error: unknown) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (error) => {
    const now = Date.now();
    if (now - last < 30_000) return;
    last = now;
    const detail = error instanceof Error ? error.message : String(error);
    console.warn(`@whisperchat/store-redis: pub/sub connection error (${detail}); reconnecting`);
  };
}

function checkTiers(tiers: readonly number[]): readonly number[] {
  let previous = 0;
  for (const bound of tiers) {
    if (!(Number.isFinite(bound) && bound > previous)) {
      throw new RangeError(
        `createRedisStore: poolTiersKm must be ascending finite numbers > 0, got [${tiers.join(", ")}]`,
      );
    }
    previous = bound;
  }
  return [...tiers];
}

/**
 * Creates a store on Redis (6.2 or later; 7 for sharded pub/sub), for several nodes behind
 * any load balancer. Pass the app's ioredis client; nothing else is needed.
 *
 * @example
 * ```ts
 * const store = createRedisStore({ client: new Redis({ maxRetriesPerRequest: 1 }) });
 * const hub = createWhisper({ store });
 * ```
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  const { client } = options;
  if (client === undefined || client === null || typeof client.duplicate !== "function") {
    throw new TypeError("createRedisStore: options.client must be an ioredis client (new Redis(...))");
  }
  const keyPrefix = options.keyPrefix ?? "whisper:";
  if (typeof keyPrefix !== "string" || /[{}]/.test(keyPrefix)) {
    // Braces would start a hash tag of their own and put keys that scripts use together in
    // different slots of a Redis Cluster.
    throw new TypeError(
      `createRedisStore: keyPrefix must be a string without "{" or "}", got ${JSON.stringify(keyPrefix)}`,
    );
  }
  const roomTtlMs = options.roomTtlMs ?? 86_400_000;
  if (!(Number.isInteger(roomTtlMs) && roomTtlMs > 0)) {
    throw new RangeError(`createRedisStore: roomTtlMs must be a positive integer, got ${roomTtlMs}`);
  }
  const tiers = checkTiers(options.poolTiersKm ?? DEFAULT_TIERS_KM);
  const pubsub = options.pubsub ?? "auto";
  if (pubsub !== "auto" && pubsub !== "sharded" && pubsub !== "classic") {
    throw new RangeError(`createRedisStore: pubsub must be "auto", "sharded" or "classic", got ${pubsub}`);
  }
  if (pubsub === "classic" && isCluster(client)) {
    throw new RangeError(
      'createRedisStore: on Redis Cluster the bus needs sharded pub/sub; use pubsub "auto" or "sharded"',
    );
  }
  const keys = makeKeys(keyPrefix, tiers);
  const sharding = options.poolSharding ?? "auto";
  if (
    sharding !== "auto" &&
    typeof sharding !== "boolean" &&
    (typeof sharding !== "object" || sharding === null)
  ) {
    throw new TypeError(
      `createRedisStore: poolSharding must be "auto", true, false or { levels?, leaseMs? }, got ${JSON.stringify(sharding)}`,
    );
  }
  const sharded = sharding === "auto" ? isCluster(client) : sharding !== false;
  const shardOptions: PoolShardingOptions = typeof sharding === "object" && sharding !== null ? sharding : {};
  const leaseMs = shardOptions.leaseMs ?? 5000;
  if (!(Number.isFinite(leaseMs) && leaseMs > 0)) {
    throw new RangeError(`createRedisStore: poolSharding.leaseMs must be a positive number, got ${leaseMs}`);
  }
  const levels = checkLevels(shardOptions.levels ?? DEFAULT_POOL_LEVELS);
  const bus = new RedisBus(client, keys, {
    pubsub,
    onHandlerError: options.onHandlerError ?? logHandlerError,
    onError: options.onError ?? throttledWarn(),
  });

  return {
    client,
    keyPrefix,
    pool: sharded
      ? new ShardedRedisPool(client, keyPrefix, tiers, levels, leaseMs)
      : new RedisPool(client, keys, tiers),
    rooms: new RedisRooms(client, keys, roomTtlMs),
    exclusions: new RedisExclusions(client, keys),
    bus,
    limiter: new RedisLimiter(client, keys),
    sessions: new RedisSessions(client, keys),
    mailbox: new RedisMailbox(client, keys),
    accounts: new RedisAccounts(client, keys),
    bans: new RedisBans(client, keys),
    nodes: new RedisNodes(client, keys),
    relay: new RedisRelay(client, keys, bus, roomTtlMs),
    pubsubMode: () => attempt("pubsubMode", () => bus.mode()),
    async close(): Promise<void> {
      bus.close();
    },
  };
}
