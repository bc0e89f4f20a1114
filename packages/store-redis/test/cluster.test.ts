import type { BusMessage, Store } from "@whisperchat/core";
import { clusterConformance, storeConformance } from "@whisperchat/core/testing";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Cluster } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startWsClusterNode } from "../../adapter-ws/test/harness.js";
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

  it("the keys of one store spread over the masters, the pool on one slot", async () => {
    const store = open();
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
      await store.pool.add({
        sessionId: `s${i}`,
        userId: `u${i}`,
        nodeId: "n",
        name: "x",
        lat: i,
        lng: i,
        rangeKm: 10 ** (i % 5),
        since: i,
      });
    }
    const c = client as Cluster;
    const perMaster = await Promise.all(c.nodes("master").map((node) => node.keys(`${store.keyPrefix}*`)));
    expect(perMaster.filter((keys) => keys.length > 0).length).toBe(3);
    const poolKeys = perMaster.flat().filter((k) => k.includes(`{${store.keyPrefix}pool}`));
    const slots = new Set(await Promise.all(poolKeys.map((k) => c.cluster("KEYSLOT", k))));
    expect(poolKeys.length).toBe(6);
    expect(slots.size).toBe(1);
    await store.close();
  });

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
