import { createRedisStore } from "@whisperchat/store-redis";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { makeKeys } from "../src/keys.js";

/** The part of a key Redis Cluster hashes: the first non-empty `{...}`, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

describe("store-redis key layout", () => {
  it("puts the prefix inside the pool's hash tag: two apps on one cluster do not share a pool tag", () => {
    const a = makeKeys("app-a:", [10, 100]);
    const b = makeKeys("app-b:", [10, 100]);
    const tagsA = new Set([a.poolEntries, a.poolPolar, ...a.poolTiers].map(hashTag));
    const tagsB = new Set([b.poolEntries, b.poolPolar, ...b.poolTiers].map(hashTag));
    expect([...tagsA]).toEqual(["app-a:pool"]); // a pool's keys still share one slot (its scripts need it)
    expect([...tagsB]).toEqual(["app-b:pool"]);
  });

  it("refuses a key prefix with braces, which would split keys that scripts use together", () => {
    const client = new Redis({ lazyConnect: true });
    try {
      expect(() => createRedisStore({ client, keyPrefix: "app{1}:" })).toThrow(TypeError);
    } finally {
      client.disconnect();
    }
  });
});
