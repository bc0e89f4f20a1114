import { storeConformance } from "@whisperchat/core/testing";
import { createRedisStore } from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, it } from "vitest";
import { connect, deleteUnder, describeRedis, testPrefix } from "./redis.js";

let client: Redis | undefined;
let pipelined: Redis | undefined;
const prefixes: string[] = [];

beforeAll(() => {
  client = connect();
  pipelined = connect({ enableAutoPipelining: true });
});
afterEach(async () => {
  if (client === undefined) return;
  for (const prefix of prefixes.splice(0)) await deleteUnder(client, prefix);
});
afterAll(async () => {
  await client?.quit();
  await pipelined?.quit();
});

function open(c: Redis | undefined, poolSharding = false) {
  if (c === undefined) throw new Error("no Redis client");
  const keyPrefix = testPrefix();
  prefixes.push(keyPrefix);
  return createRedisStore({ client: c, keyPrefix, poolSharding });
}

storeConformance({ describe: describeRedis, it, beforeEach, afterEach }, () => open(client), {
  name: "store-redis: store conformance",
  relay: true,
});

storeConformance({ describe: describeRedis, it, beforeEach, afterEach }, () => open(pipelined), {
  name: "store-redis: store conformance, client with auto-pipelining",
  relay: true,
});

storeConformance({ describe: describeRedis, it, beforeEach, afterEach }, () => open(pipelined, true), {
  name: "store-redis: store conformance, geo-sharded pool",
  relay: true,
});
