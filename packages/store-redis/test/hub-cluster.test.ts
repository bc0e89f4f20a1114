import type { Store } from "@whisperchat/core";
import { createJwtAuth } from "@whisperchat/core/jwt";
import { clusterConformance, transportConformance } from "@whisperchat/core/testing";
import { createRedisStore } from "@whisperchat/store-redis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startWsClusterNode, startWsHarness } from "../../adapter-ws/test/harness.js";
import { connect, deleteUnder, describeRedis, testPrefix } from "./redis.js";

/** A Redis store on its own client and key prefix; closing it also removes its keys. */
function redisStore(): Store {
  const client = connect();
  const keyPrefix = testPrefix();
  const store = createRedisStore({ client, keyPrefix });
  return {
    ...store,
    async close() {
      await store.close();
      await deleteUnder(client, keyPrefix);
      await client.quit();
    },
  };
}

describeRedis("hubs on the Redis store", () => {
  // Several hubs in one test process, each with its own connections, on one Redis.
  clusterConformance(
    { describe, it, beforeEach, afterEach },
    {
      makeStore: async () => redisStore(),
      startNode: startWsClusterNode,
    },
    { name: "adapter-ws on Redis: cluster conformance" },
  );

  // The whole protocol flow on one node whose state lives in Redis.
  transportConformance(
    { describe, it, beforeEach, afterEach },
    (overrides) => startWsHarness({ ...overrides, store: redisStore() }),
    {
      name: "adapter-ws on Redis: transport conformance",
      limits: { maxMessageChars: 1000, maxRangeKm: 20000, messageBurst: 10 },
    },
  );
});

describeRedis("bans on the Redis store", () => {
  it("a ban made on one node is seen by another: the user is refused with 403 there", async () => {
    const jwt = createJwtAuth({ secret: "a shared secret that is long enough for HS256" });
    const store = redisStore();
    const options = { store, authenticate: jwt.authenticate, allowGuests: false };
    const n1 = await startWsHarness(options, {}, { closeStore: false });
    const n2 = await startWsHarness(options, {}, { closeStore: false });
    try {
      const token = (await jwt.sign({ userId: "troll", name: "Troll", roles: [] })).token;
      const ok = await n2.connect({ token });
      await ok.close();
      await n1.hub.ban("troll", { reason: "spam" });
      expect((await n2.connectRefused({ token })).status).toBe(403);
      expect(await n2.hub.unban("troll")).toBe(true);
      const back = await n1.connect({ token });
      await back.close();
    } finally {
      await n1.close();
      await n2.close();
      await store.close();
    }
  });
});
