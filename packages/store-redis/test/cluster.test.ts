import type { BusMessage, Store } from "@whisperchat/core";
import { clusterConformance, storeConformance } from "@whisperchat/core/testing";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Cluster } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startWsClusterNode } from "../../adapter-ws/test/harness.js";
import { candidatesOracle, cornerCrowd, edgePoints, hardPoints, joinStorm } from "./pool-checks.js";
import { deleteUnder, testPrefix } from "./redis.js";
import { hasRedisServer, startCluster, type TestCluster } from "./servers.js";

let cluster: TestCluster | undefined;
let client: Cluster | undefined;
const extraClients: Cluster[] = [];
const prefixes: string[] = [];

function connectCluster(): Cluster {
  if (cluster === undefined) throw new Error("no cluster");
  const c = new Cluster(
    cluster.ports.map((port) => ({ host: "127.0.0.1", port })),
    { redisOptions: { maxRetriesPerRequest: 1 } },
  );
  c.on("error", () => {});
  return c;
}

function open(c: Cluster | undefined = client, keyPrefix = testPrefix()): RedisStore {
  if (c === undefined) throw new Error("no cluster client");
  prefixes.push(keyPrefix);
  return createRedisStore({ client: c, keyPrefix });
}

const describeCluster = describe.skipIf(!hasRedisServer);

describeCluster("store-redis on Redis Cluster", () => {
  beforeAll(async () => {
    cluster = await startCluster();
    client = connectCluster();
  }, 30_000);
  afterEach(async () => {
    if (client !== undefined) for (const prefix of prefixes.splice(0)) await deleteUnder(client, prefix);
    await Promise.all(extraClients.splice(0).map((c) => c.quit()));
  });
  afterAll(async () => {
    await client?.quit();
    await cluster?.stop();
  });

  storeConformance({ describe, it, beforeEach, afterEach }, () => open(), {
    name: "store conformance over three masters",
    relay: true,
  });

  // Hubs on the cluster, each with its own cluster client, as the nodes of an app would be.
  clusterConformance(
    { describe, it, beforeEach, afterEach },
    {
      makeStore: async (): Promise<Store> => {
        const own = connectCluster();
        const keyPrefix = testPrefix();
        const store = createRedisStore({ client: own, keyPrefix });
        return {
          ...store,
          async close() {
            await store.close();
            await deleteUnder(own, keyPrefix);
            await own.quit();
          },
        };
      },
      startNode: startWsClusterNode,
    },
    { name: "adapter-ws on Redis Cluster: cluster conformance" },
  );

  it("the geo-sharded pool over three masters: candidates hold every eligible entry (poles, antimeridian, cell edges)", async () => {
    const { pool } = open();
    expect(
      await candidatesOracle(pool, { seed: 31, points: hardPoints, entries: 600, queries: 200 }),
    ).toBeGreaterThan(300);
    expect(
      await candidatesOracle(pool, { seed: 32, points: edgePoints, entries: 600, queries: 200 }),
    ).toBeGreaterThan(300);
  }, 120_000);

  it("the geo-sharded pool over three masters: joins racing through three nodes' clients match nobody twice and leave no eligible pair waiting", async () => {
    const clients = [connectCluster(), connectCluster(), connectCluster()];
    extraClients.push(...clients);
    // Each storm in a pool of its own.
    const nodes = () => {
      const keyPrefix = testPrefix();
      return clients.map((c) => open(c, keyPrefix));
    };
    const spread = await joinStorm(nodes(), { joins: 400, seed: 41 });
    expect(spread.matched).toBeGreaterThan(80);
    const crowd = await joinStorm(nodes(), {
      joins: 200,
      seed: 42,
      points: cornerCrowd,
      ranges: (rand) => () => 1 + rand() * 4,
    });
    expect(crowd.matched).toBeGreaterThan(100);
  }, 120_000);

  for (const poolSharding of [false, "auto"] as const) {
    const pool = poolSharding === false ? "the pool on one slot" : "the pool (sharded by default) too";
    it(`the keys of one store spread over the masters, ${pool}`, async () => {
      if (client === undefined) throw new Error("no cluster client");
      const keyPrefix = testPrefix();
      prefixes.push(keyPrefix);
      const store = createRedisStore({ client, keyPrefix, poolSharding });
      for (let i = 0; i < 30; i++) {
        await store.sessions.put(
          {
            sessionId: `s${i}`,
            nodeId: "n",
            userId: `u${i}`,
            name: "x",
            roles: [],
            guest: true,
            tokenHash: "h",
            state: "idle",
            updatedAt: 1,
          },
          60_000,
        );
        // Spread over the globe, in cells of every level (ranges of every tier).
        await store.pool.add({
          sessionId: `s${i}`,
          userId: `u${i}`,
          nodeId: "n",
          name: "x",
          lat: i * 5 - 70,
          lng: i * 11 - 160,
          rangeKm: 10 ** (i % 5),
          since: i,
        });
      }
      const c = client;
      const perMaster = await Promise.all(c.nodes("master").map((node) => node.keys(`${keyPrefix}*`)));
      expect(perMaster.filter((keys) => keys.length > 0).length).toBe(3);
      const entryKeys = (keys: string[]) => keys.filter((k) => k.includes("pool") && k.endsWith(":entries"));
      const slots = new Set(
        await Promise.all(entryKeys(perMaster.flat()).map((k) => c.cluster("KEYSLOT", k))),
      );
      if (poolSharding === false) {
        const poolKeys = perMaster.flat().filter((k) => k.includes(`{${keyPrefix}pool}`));
        expect(poolKeys.length).toBe(6);
        expect(slots.size).toBe(1);
      } else {
        // 30 entries in cells of three levels (some large cells hold two): many slots, every master.
        expect(slots.size).toBeGreaterThan(20);
        expect(perMaster.filter((keys) => entryKeys(keys).length > 0).length).toBe(3);
        expect(await store.pool.size()).toBe(30);
      }
      await store.close();
    });
  }

  it("two nodes with their own cluster clients match, claim and talk over sharded pub/sub", async () => {
    const other = connectCluster();
    extraClients.push(other);
    const a = open();
    const b = open(other, a.keyPrefix);
    await a.pool.add({
      sessionId: "sa",
      userId: "ua",
      nodeId: "node-a",
      name: "A",
      lat: 48.85,
      lng: 2.35,
      rangeKm: 5,
      since: 1,
    });
    const found = await b.pool.candidates(48.86, 2.35, 5);
    expect(found.map((e) => e.sessionId)).toEqual(["sa"]);
    await b.pool.add({
      sessionId: "sb",
      userId: "ub",
      nodeId: "node-b",
      name: "B",
      lat: 48.86,
      lng: 2.35,
      rangeKm: 5,
      since: 2,
    });
    const claims = await Promise.all([a.pool.claim("sa", "sb"), b.pool.claim("sb", "sa")]);
    expect(claims.filter(Boolean)).toHaveLength(1);

    const got: BusMessage[] = [];
    await a.bus.subscribe("node-a", (m) => got.push(m));
    const gotB: BusMessage[] = [];
    await b.bus.subscribe("node-b", (m) => gotB.push(m));
    const m = (n: number, to: string): BusMessage => ({
      to,
      roomId: "r",
      frame: { type: "message", roomId: "r", messageId: `m${n}`, text: "hi", ts: n },
    });
    for (let n = 0; n < 50; n++) expect(await b.bus.publish("node-a", m(n, "sa"))).toBe(true);
    expect(await a.bus.publish("node-b", m(99, "sb"))).toBe(true);
    const deadline = Date.now() + 5000;
    while ((got.length < 50 || gotB.length < 1) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(got).toEqual(Array.from({ length: 50 }, (_, n) => m(n, "sa")));
    expect(gotB).toEqual([m(99, "sb")]);
    expect(await a.bus.publish("nobody", m(0, "x"))).toBe(false);
    await a.close();
    await b.close();
  });
});
