import { haversineKm } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { searchPlan } from "../src/pool.js";
import { candidatesOracle, edgePoints, hardPoints } from "./pool-checks.js";
import { connect, deleteUnder, describeRedis, testPrefix } from "./redis.js";

let client: Redis | undefined;
/** The pool layout of the tests running now. */
let sharded = false;
const stores: RedisStore[] = [];
const prefixes: string[] = [];

function open(options: { client?: Redis; poolSharding?: boolean } = {}): RedisStore {
  const c = options.client ?? client;
  if (c === undefined) throw new Error("no Redis client");
  const keyPrefix = testPrefix();
  prefixes.push(keyPrefix);
  const store = createRedisStore({ client: c, keyPrefix, poolSharding: options.poolSharding ?? sharded });
  stores.push(store);
  return store;
}

beforeAll(() => {
  client = connect();
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  if (client !== undefined) for (const prefix of prefixes.splice(0)) await deleteUnder(client, prefix);
});
afterAll(async () => {
  await client?.quit();
});

for (const poolSharding of [false, true]) {
  describeRedis(`store-redis: pool (${poolSharding ? "geo-sharded" : "one tag"})`, () => {
    beforeAll(() => {
      sharded = poolSharding;
    });
    it("near the poles, on the antimeridian and on cell edges, candidates hold every mutually eligible entry, as the memory store's do", async () => {
      const pool = open().pool;
      expect(await candidatesOracle(pool, { seed: 0xc0ffee, points: hardPoints })).toBeGreaterThan(1000);
      expect(
        await candidatesOracle(pool, { seed: 7, points: edgePoints, entries: 800, queries: 300 }),
      ).toBeGreaterThan(1000);
    }, 120_000);

    it("entries beyond the GEO limit are matched with entries below it, across the pole", async () => {
      const redis = open();
      const base = { nodeId: "n", name: "x", since: 1 };
      // 89.5° N on one side of the pole; 84° N on the other side, 720 km away over the pole.
      await redis.pool.add({ ...base, sessionId: "polar", userId: "a", lat: 89.5, lng: 10, rangeKm: 800 });
      await redis.pool.add({ ...base, sessionId: "low", userId: "b", lat: 84, lng: -170, rangeKm: 800 });
      await redis.pool.add({
        ...base,
        sessionId: "limit",
        userId: "c",
        lat: 85.05112878,
        lng: 180,
        rangeKm: 5,
      });
      const fromLow = (await redis.pool.candidates(84, -170, 800)).map((e) => e.sessionId);
      expect(fromLow).toContain("polar");
      const fromPolar = (await redis.pool.candidates(89.5, 10, 800)).map((e) => e.sessionId);
      expect(fromPolar).toContain("low");
      const fromLimit = (await redis.pool.candidates(85.05, -179.99, 5)).map((e) => e.sessionId);
      expect(fromLimit).toContain("limit");
      // A polar entry far out of its range is not returned.
      expect((await redis.pool.candidates(0, 0, 20_000)).map((e) => e.sessionId)).not.toContain("limit");
    });

    it("polar entries are checked exactly when the newcomer's circle reaches beyond 85°", async () => {
      const redis = open();
      const base = { nodeId: "n", name: "x", since: 1, rangeKm: 20_000 };
      await redis.pool.add({ ...base, sessionId: "north", userId: "a", lat: 85.2, lng: 10 });
      await redis.pool.add({ ...base, sessionId: "south", userId: "b", lat: -89, lng: -60 });
      // From 80° N on the same meridian, "north" is 5.2° of arc away.
      const d = haversineKm(80, 10, 85.2, 10);
      const ids = async (lat: number, lng: number, rangeKm: number) =>
        (await redis.pool.candidates(lat, lng, rangeKm)).map((e) => e.sessionId);
      expect(await ids(80, 10, d + 0.01)).toEqual(["north"]);
      expect(await ids(80, 10, d - 0.01)).toEqual([]);
      expect(searchPlan(80, 10, d + 0.01, [1, 10]).polar).toBe(true);
      expect(searchPlan(80, 10, d - 60, [1, 10]).polar).toBe(false);
      expect(searchPlan(48.85, 2.35, 100, [1, 10]).polar).toBe(false);
      expect(searchPlan(-84.99, 0, 2, [1, 10]).polar).toBe(true);
      // A planet-wide range from anywhere reaches both.
      expect((await ids(0, 0, 20_000)).sort()).toEqual(["north", "south"]);
      expect(searchPlan(0, 0, 20_000, [1, 10]).polar).toBe(true);
    });

    it("in a crowded city, small-range entries are searched with their own small radius", async () => {
      const redis = open();
      const rand = prng(7);
      // 3000 waiting sessions with 0.5 km ranges spread over ~20 km of Paris, one next door.
      const pipeline: Promise<void>[] = [];
      for (let i = 0; i < 3000; i++) {
        pipeline.push(
          redis.pool.add({
            sessionId: `c${i}`,
            userId: `u${i}`,
            nodeId: "n",
            name: "x",
            lat: 48.76 + rand() * 0.18,
            lng: 2.22 + rand() * 0.27,
            rangeKm: 0.5,
            since: i,
          }),
        );
      }
      await Promise.all(pipeline);
      await redis.pool.add({
        sessionId: "near",
        userId: "near",
        nodeId: "n",
        name: "x",
        lat: 48.8566,
        lng: 2.3532,
        rangeKm: 0.5,
        since: 0,
      });
      // A newcomer who accepts the whole planet still only gets the entries within ~1 km (the
      // tier's bound), not the 3000 within its own range.
      const got = await redis.pool.candidates(48.8566, 2.3522, 20_000);
      expect(got.map((e) => e.sessionId)).toContain("near");
      for (const e of got) expect(haversineKm(e.lat, e.lng, 48.8566, 2.3522)).toBeLessThanOrEqual(1.01);
      expect(got.length).toBeLessThan(100);
    });

    it("search plans: radii bounded by the tier, safe paths near the poles, the whole tier for planet-wide ranges", () => {
      const tiers = [1, 3, 10, 30, 100, 300, 1000, 3000];
      const paris = searchPlan(48.8566, 2.3522, 20_000, tiers);
      expect(paris.tiers.map((t) => t.mode)).toEqual([...Array(8).fill("radius"), "all"]);
      expect(paris.tiers[0]?.searchM).toBeGreaterThan(1000);
      expect(paris.tiers[0]?.searchM).toBeLessThan(1010);
      expect(paris.rangeKm).toBe("inf");
      const small = searchPlan(48.8566, 2.3522, 2, tiers);
      expect(small.tiers.every((t) => t.mode === "radius" && t.searchM < 2010)).toBe(true);
      expect(small.rangeKm).toBe(2);
      // Beyond the GEO limit: the centre moves to 85° and the radius grows by the move.
      const polar = searchPlan(89.8, 180, 1, tiers);
      expect(polar.lat).toBe(85);
      expect(polar.lng).toBe(-180);
      expect(polar.tiers[0]?.keepM).toBeGreaterThan(534_000);
      // A circle over the pole is searched wide and filtered.
      expect(polar.tiers[0]?.mode).toBe("filtered");
      expect(polar.tiers[0]?.searchM).toBeGreaterThan(polar.tiers[0]?.keepM ?? 0);
      // 1000 km from 84.9° S reaches over the pole; 100 km does not.
      const south = searchPlan(-84.9, 45, 1000, tiers);
      expect(south.tiers[6]?.mode).toBe("filtered");
      expect(south.tiers[4]?.mode).toBe("radius");
    });

    it("concurrent claims from several clients: each session is claimed at most once", async () => {
      const clients = [connect(), connect(), connect(), connect()];
      const first = open({ client: clients[0] });
      const stores = clients.map((c) =>
        createRedisStore({ client: c, keyPrefix: first.keyPrefix, poolSharding: sharded }),
      );
      const n = 200;
      for (let i = 0; i < n; i++) {
        await first.pool.add({
          sessionId: `s${i}`,
          userId: `u${i}`,
          nodeId: "n",
          name: "x",
          lat: 10,
          lng: 10,
          rangeKm: 5,
          since: i,
        });
      }
      const rand = prng(42);
      const attempts: Promise<[string, string, boolean]>[] = [];
      for (let k = 0; k < 2000; k++) {
        const a = `s${Math.floor(rand() * n)}`;
        const b = `s${Math.floor(rand() * n)}`;
        const store = stores[k % stores.length] as RedisStore;
        attempts.push(store.pool.claim(a, b).then((won) => [a, b, won]));
      }
      const results = await Promise.all(attempts);
      const claimed = new Map<string, number>();
      let wins = 0;
      for (const [a, b, won] of results) {
        if (!won) continue;
        wins++;
        for (const s of [a, b]) claimed.set(s, (claimed.get(s) ?? 0) + 1);
      }
      expect(wins).toBeGreaterThan(10);
      for (const [session, times] of claimed) expect(times, session).toBe(1);
      expect(await first.pool.size()).toBe(n - 2 * wins);
      for (const [session] of claimed) expect(await first.pool.get(session)).toBeUndefined();
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(clients.map((c) => c.quit()));
    });

    // The one-tag layout only (the sharded one has its keys test in sharded-pool.test.ts).
    if (!poolSharding)
      it("all pool keys share the {<prefix>pool} hash tag; a removed pool leaves no key behind", async () => {
        const redis = open();
        const c = redis.client;
        await redis.pool.add({
          sessionId: "a",
          userId: "a",
          nodeId: "n",
          name: "x",
          lat: 1,
          lng: 1,
          rangeKm: 2,
          since: 1,
        });
        await redis.pool.add({
          sessionId: "b",
          userId: "b",
          nodeId: "n",
          name: "x",
          lat: 88,
          lng: 1,
          rangeKm: 50,
          since: 2,
        });
        await redis.pool.add({
          sessionId: "c",
          userId: "c",
          nodeId: "n",
          name: "x",
          lat: 1,
          lng: 1,
          rangeKm: 5000,
          since: 3,
        });
        const keys = await c.keys(`${redis.keyPrefix}*`);
        expect(keys.length).toBe(4); // entries, polar, two tiers
        for (const key of keys)
          expect(key.startsWith(`${redis.keyPrefix}{${redis.keyPrefix}pool}:`)).toBe(true);
        await redis.pool.remove("a");
        expect(await redis.pool.claim("b", "c")).toBe(true);
        expect(await c.keys(`${redis.keyPrefix}*`)).toEqual([]);
      });
  });
}
