export type { PubSubMode } from "./bus.js";
export type { RedisClient } from "./redis.js";
export type { RedisStore, RedisStoreOptions } from "./redis-store.js";
export { createRedisStore } from "./redis-store.js";
