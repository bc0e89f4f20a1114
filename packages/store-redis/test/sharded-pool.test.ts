import { haversineKm, type PoolEntry } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";
import {
  createRedisStore,
  DEFAULT_POOL_LEVELS,
  type RedisStore,
  type RedisStoreOptions,
} from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cellOf, cellsWithin, checkLevels, GRID_MAX_LAT, levelsOf, slotOf } from "../src/cells.js";
import { cornerCrowd, edgePoints, joinStorm } from "./pool-checks.js";
import { connect, deleteUnder, describeRedis, testPrefix } from "./redis.js";

const TIERS = [1, 3, 10, 30, 100, 300, 1000, 3000];

describe("the grid of the sharded pool", () => {
  const levels = levelsOf(TIERS, DEFAULT_POOL_LEVELS);

  it("groups the tiers into the default levels", () => {
    expect(levels.map((l) => [l.cellDeg, l.tiers, l.capKm])).toEqual([
      [1, [1, 2, 3], 10],
      [10, [4, 5, 6], 300],
      [45, [7, 8, 9], Number.POSITIVE_INFINITY],
    ]);
    expect(cellOf(levels[0]!, 48.85, 2.35)).toEqual([138, 182]);
    expect(cellOf(levels[0]!, 0, 180)).toEqual(cellOf(levels[0]!, 0, -180));
    expect(cellOf(levels[2]!, 90, 179.999)).toEqual([3, 7]);
  });

  it("the cells of a search hold every grid point within its radius (cell edges, antimeridian, poles)", () => {
    const rand = prng(2026);
    const point = edgePoints(rand);
    let inside = 0;
    for (let q = 0; q < 3000; q++) {
      const level = levels[Math.floor(rand() * levels.length)]!;
      const [lat, lng] = point();
      const km = Math.min(level.capKm, rand() < 0.1 ? 20_015 : 10 ** (rand() * 3.7));
      const cells = new Set(cellsWithin(level, lat, lng, km).map(([b, c]) => `${b}:${c}`));
      for (let k = 0; k < 40; k++) {
        // Points near the query's circle, inside and out.
        const [plat, plng] =
          k % 2 === 0 ? point() : [lat + (rand() - 0.5) * 0.05 * km, lng + (rand() - 0.5) * 0.05 * km];
        if (!(Math.abs(plat) <= GRID_MAX_LAT && Math.abs(plng) <= 180)) continue;
        if (haversineKm(lat, lng, plat, plng) > km) continue;
        inside++;
        const [b, c] = cellOf(level, plat, plng);
        expect(
          cells.has(`${b}:${c}`),
          `(${plat}, ${plng}) within ${km} km of (${lat}, ${lng}) at ${level.cellDeg}°`,
        ).toBe(true);
      }
    }
    expect(inside).toBeGreaterThan(10_000);
  });

  it("a small-range search touches one to four cells of each level away from the poles", () => {
    const rand = prng(5);
    for (let q = 0; q < 1000; q++) {
      const lat = rand() * 120 - 60;
      const lng = rand() * 360 - 180;
      for (const level of levels)
        expect(cellsWithin(level, lat, lng, Math.min(level.capKm, 10)).length).toBeLessThanOrEqual(4);
    }
    expect(cellsWithin(levels[2]!, 0, 0, 20_015)).toHaveLength(32);
    expect(cellsWithin(levels[0]!, 89, 0, 10)).toHaveLength(0);
  });

  it("hash slots are Redis Cluster's", () => {
    expect(slotOf("foo")).toBe(12182);
    expect(slotOf("bar")).toBe(5061);
    expect(slotOf("hello")).toBe(866);
    expect(slotOf("a{foo}b")).toBe(12182);
  });

  it("rejects levels that do not tile the globe or do not cover every range", () => {
    expect(() =>
      checkLevels([
        { upToKm: 10, cellDeg: 7 },
        { upToKm: Infinity, cellDeg: 45 },
      ]),
    ).toThrow(/divide 180/);
    expect(() => checkLevels([{ upToKm: 10, cellDeg: 1 }])).toThrow(/Infinity/);
    expect(() => checkLevels([])).toThrow(/non-empty/);
    expect(() =>
      checkLevels([
        { upToKm: 10, cellDeg: 1 },
        { upToKm: 5, cellDeg: 10 },
      ]),
    ).toThrow(/ascending/);
  });
});

let client: Redis | undefined;
const prefixes: string[] = [];
const opened: RedisStore[] = [];
const extra: Redis[] = [];

function open(
  options: { client?: Redis; keyPrefix?: string; leaseMs?: number; poolSharding?: boolean } = {},
): RedisStore {
  const c = options.client ?? client;
  if (c === undefined) throw new Error("no Redis client");
  const keyPrefix = options.keyPrefix ?? testPrefix();
  prefixes.push(keyPrefix);
  const sharding = options.poolSharding ?? true;
  const store = createRedisStore({
    client: c,
    keyPrefix,
    poolSharding: sharding && options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : sharding,
  });
  opened.push(store);
  return store;
}

beforeAll(() => {
  client = connect();
});
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  await Promise.all(extra.splice(0).map((c) => c.quit()));
  if (client !== undefined) for (const prefix of prefixes.splice(0)) await deleteUnder(client, prefix);
});
afterAll(async () => {
  await client?.quit();
});

const entry = (sessionId: string, lat: number, lng: number, rangeKm: number): PoolEntry => ({
  sessionId,
  userId: `u-${sessionId}`,
  nodeId: "n",
  name: "x",
  lat,
  lng,
  rangeKm,
  since: 1,
});

describeRedis("store-redis: the geo-sharded pool on one Redis", () => {
  it("a pair across a cell corner is found from both sides and claimed across cells", async () => {
    const pool = open().pool;
    // Four points around 49° N 2° E, each in its own 1° cell, 1.5 km apart at most.
    const corner = [
      entry("ne", 49.005, 2.005, 5),
      entry("nw", 49.005, 1.995, 5),
      entry("se", 48.995, 2.005, 5),
    ];
    for (const e of corner) await pool.add(e);
    const fromSw = (await pool.candidates(48.995, 1.995, 5)).map((e) => e.sessionId).sort();
    expect(fromSw).toEqual(["ne", "nw", "se"]);
    expect(await pool.claim("ne", "se")).toBe(true);
    expect(await pool.claim("nw", "ne")).toBe(false);
    expect(await pool.get("nw")).toMatchObject({ lat: 49.005, lng: 1.995 });
    expect(await pool.size()).toBe(1);
  });

  it("a replaced entry moves to its new cell; stale memory of another store does not hide it", async () => {
    const a = open();
    const b = open({ keyPrefix: a.keyPrefix });
    await a.pool.add(entry("s", 10, 10, 5));
    expect((await b.pool.candidates(10, 10, 5)).map((e) => e.sessionId)).toEqual(["s"]);
    await a.pool.add(entry("s", 20, 20, 500));
    expect(await a.pool.candidates(10, 10, 5)).toEqual([]);
    // b saw "s" in its old cell; it still finds, removes and claims it where it is now.
    expect(await b.pool.get("s")).toMatchObject({ lat: 20, lng: 20 });
    expect(await b.pool.remove("s")).toBe(true);
    expect(await a.pool.size()).toBe(0);
  });

  it("an entry held by a claim that died: removes and claims wait for its lease, then go ahead", async () => {
    const store = open({ leaseMs: 300 });
    const { pool } = store;
    await pool.add(entry("a", 10, 10, 5));
    await pool.add(entry("b", 10.001, 10.001, 5));
    await pool.add(entry("c", 30, 30, 5));
    // A claimer reserved "a" (the first step of a claim across cells) and vanished.
    const cell = (await store.client.get(`${store.keyPrefix}pooldir:{a}`)) as string;
    const t = await store.client.time();
    const nowMs = Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
    await store.client.hset(`${store.keyPrefix}{${cell}}:res`, "a", `dead ${nowMs + 300}`);
    const started = Date.now();
    let claimedAt = 0;
    const claimed = pool.claim("b", "a").then((won) => {
      claimedAt = Date.now();
      return won;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(claimedAt).toBe(0); // still waiting for the lease
    expect(await pool.get("a")).toBeDefined();
    expect(await claimed).toBe(true);
    expect(claimedAt - started).toBeGreaterThanOrEqual(250);
    expect(await pool.size()).toBe(1);
    // The same for a remove.
    const cellC = (await store.client.get(`${store.keyPrefix}pooldir:{c}`)) as string;
    const t2 = await store.client.time();
    const now2 = Number(t2[0]) * 1000 + Math.floor(Number(t2[1]) / 1000);
    await store.client.hset(`${store.keyPrefix}{${cellC}}:res`, "c", `dead ${now2 + 300}`);
    const before = Date.now();
    expect(await pool.remove("c")).toBe(true);
    expect(Date.now() - before).toBeGreaterThanOrEqual(250);
    expect(await pool.size()).toBe(0);
  });

  it("an entry a claim holds is claimed by it or by nobody else: racing claims across cells", async () => {
    const clients = [connect(), connect(), connect()];
    extra.push(...clients);
    const first = open({ client: clients[0] });
    const stores = clients.map((c) => open({ client: c, keyPrefix: first.keyPrefix }));
    // 60 entries over a 3 × 3 block of 1° cells: most pairs straddle cells.
    const rand = prng(99);
    const n = 60;
    for (let i = 0; i < n; i++) await first.pool.add(entry(`s${i}`, 40 + rand() * 3, 20 + rand() * 3, 5));
    const attempts: Promise<[string, string, boolean]>[] = [];
    for (let k = 0; k < 600; k++) {
      const a = `s${Math.floor(rand() * n)}`;
      const b = `s${Math.floor(rand() * n)}`;
      attempts.push((stores[k % stores.length] as RedisStore).pool.claim(a, b).then((won) => [a, b, won]));
    }
    const times = new Map<string, number>();
    let wins = 0;
    for (const [a, b, won] of await Promise.all(attempts)) {
      if (!won) continue;
      wins++;
      for (const s of [a, b]) times.set(s, (times.get(s) ?? 0) + 1);
    }
    expect(wins).toBeGreaterThan(5);
    for (const [session, count] of times) expect(count, session).toBe(1);
    expect(await first.pool.size()).toBe(n - 2 * wins);
    for (const [session] of times) expect(await first.pool.get(session)).toBeUndefined();
    // No reservation is left behind.
    const left = await first.client.keys(`${first.keyPrefix}*:res`);
    for (const key of left) expect(await first.client.hlen(key)).toBe(0);
  });

  for (const poolSharding of [true, false]) {
    it(`concurrent joins through four stores: nobody matched twice, no eligible pair left waiting (${poolSharding ? "sharded" : "one tag"})`, async () => {
      const clients = [connect(), connect(), connect(), connect()];
      extra.push(...clients);
      const first = open({ client: clients[0], poolSharding });
      const stores = clients.map((c) => open({ client: c, keyPrefix: first.keyPrefix, poolSharding }));
      const { matched, waiting } = await joinStorm(stores, { joins: 500, seed: poolSharding ? 11 : 12 });
      expect(matched).toBeGreaterThan(100);
      expect(waiting).toBeGreaterThan(20);
    }, 60_000);
  }

  it("a crowd joining at once around a cell corner, with ranges of a few km: the same invariants", async () => {
    const clients = [connect(), connect(), connect(), connect()];
    extra.push(...clients);
    for (let seed = 1; seed <= 5; seed++) {
      const keyPrefix = testPrefix();
      const stores = clients.map((c) => open({ client: c, keyPrefix }));
      // Ranges of 1 to 5 km over a 5 × 9 km crowd: many candidates, many races, some left over.
      const { matched } = await joinStorm(stores, {
        joins: 200,
        seed,
        points: cornerCrowd,
        ranges: (rand) => () => 1 + rand() * 4,
      });
      expect(matched).toBeGreaterThan(100);
    }
  }, 60_000);
});

describeRedis("store-redis: the geo-sharded pool's options", () => {
  it("bad options are refused with a clear error when the store is created", () => {
    const c = client as Redis;
    const bad = (poolSharding: unknown) =>
      createRedisStore({ client: c, poolSharding: poolSharding as RedisStoreOptions["poolSharding"] });
    expect(() => bad("yes")).toThrow(/poolSharding must be "auto", true, false/);
    expect(() => bad({ leaseMs: 0 })).toThrow(/leaseMs must be a positive number/);
    expect(() =>
      bad({
        levels: [
          { upToKm: 10, cellDeg: 7 },
          { upToKm: Infinity, cellDeg: 45 },
        ],
      }),
    ).toThrow(/divide 180/);
    expect(() => bad({ levels: [{ upToKm: 10, cellDeg: 1 }] })).toThrow(/Infinity/);
  });

  it("custom levels: one level of 10° cells holds every tier", async () => {
    const keyPrefix = testPrefix();
    prefixes.push(keyPrefix);
    const store = createRedisStore({
      client: client as Redis,
      keyPrefix,
      poolSharding: { levels: [{ upToKm: Infinity, cellDeg: 10 }] },
    });
    opened.push(store);
    await store.pool.add(entry("a", 48.85, 2.35, 5));
    await store.pool.add(entry("b", 48.86, 2.36, 5000));
    expect((await store.pool.candidates(48.855, 2.355, 5)).map((e) => e.sessionId).sort()).toEqual([
      "a",
      "b",
    ]);
    const keys = await store.client.keys(`${keyPrefix}*:entries`);
    expect(keys).toEqual([`${keyPrefix}{${keyPrefix}pool:10:13:18}:entries`]);
  });
});

describeRedis("store-redis: the geo-sharded pool's keys", () => {
  it("each cell is its own hash tag; a removed pool leaves only its list of cells", async () => {
    const store = open();
    const c = store.client;
    await store.pool.add(entry("a", 1, 1, 2));
    await store.pool.add(entry("b", 88, 1, 50));
    await store.pool.add(entry("c", 1, 1, 5000));
    const keys = (await c.keys(`${store.keyPrefix}*`)).sort();
    const p = store.keyPrefix;
    expect(keys).toEqual(
      [
        `${p}pooldir:{a}`,
        `${p}pooldir:{b}`,
        `${p}pooldir:{c}`,
        `${p}{${p}pool:1:91:181}:entries`,
        `${p}{${p}pool:1:91:181}:geo:3`,
        `${p}{${p}pool:45:2:4}:entries`,
        `${p}{${p}pool:45:2:4}:geo:max`,
        `${p}{${p}pool:polar}:entries`,
        `${p}{${p}pool:polar}:polar`,
        `${p}{${p}pool}:cells`,
      ].sort(),
    );
    await store.pool.remove("a");
    expect(await store.pool.claim("b", "c")).toBe(true);
    expect(await c.keys(`${p}*`)).toEqual([`${p}{${p}pool}:cells`]);
    expect(await store.pool.size()).toBe(0);
  });
});
