export type { PubSubMode } from "./bus.js";
export type { PoolCellLevel } from "./cells.js";
export { DEFAULT_POOL_LEVELS } from "./cells.js";
export type { RedisClient } from "./redis.js";
export type { RedisStore, RedisStoreOptions } from "./redis-store.js";
export { createRedisStore } from "./redis-store.js";
export type { PoolShardingOptions } from "./sharded-pool.js";
