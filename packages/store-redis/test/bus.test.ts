import type { BusMessage, FrameMessage, RelayStore } from "@whisperchat/core";
import { createRedisStore, type RedisStore, type RedisStoreOptions } from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { connect, describeRedis, testPrefix } from "./redis.js";

const clients: Redis[] = [];
const stores: RedisStore[] = [];
let admin: Redis | undefined;

/** A "node": its own client and store, on a shared prefix. */
function node(keyPrefix: string, options: Partial<RedisStoreOptions> = {}): RedisStore {
  const client = connect();
  clients.push(client);
  const store = createRedisStore({ client, keyPrefix, ...options });
  stores.push(store);
  return store;
}

function message(n: number, to = "s"): BusMessage {
  return {
    to,
    roomId: "r",
    frame: { type: "message", roomId: "r", messageId: `m${n}`, text: `hello ${n}`, ts: n },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

beforeAll(() => {
  admin = connect();
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await Promise.all(clients.splice(0).map((c) => c.quit()));
});
afterAll(async () => {
  await admin?.quit();
});

describeRedis("store-redis: bus between nodes", () => {
  it("two nodes on two connections talk over sharded pub/sub, in order", async () => {
    const prefix = testPrefix();
    const a = node(prefix);
    const b = node(prefix);
    expect(await a.pubsubMode()).toBe("sharded");
    const gotA: BusMessage[] = [];
    const gotB: BusMessage[] = [];
    const offA = await a.bus.subscribe("node-a", (m) => gotA.push(m));
    const offB = await b.bus.subscribe("node-b", (m) => gotB.push(m));
    // The channels are shard channels, named after the node, with the node id as hash tag.
    const shardChannels = (await admin?.call("PUBSUB", "SHARDCHANNELS", `${prefix}*`)) as string[];
    expect(shardChannels.sort()).toEqual([`${prefix}bus:{node-a}`, `${prefix}bus:{node-b}`]);

    const count = 200;
    const sent = await Promise.all(
      Array.from({ length: count }, (_, n) => a.bus.publish("node-b", message(n))),
    );
    expect(sent.every(Boolean)).toBe(true);
    expect(await b.bus.publish("node-a", message(-1))).toBe(true);
    await until(() => gotB.length === count && gotA.length === 1, "the messages");
    expect(gotB).toEqual(Array.from({ length: count }, (_, n) => message(n)));
    expect(gotA).toEqual([message(-1)]);

    await offB();
    expect(await a.bus.publish("node-b", message(0))).toBe(false);
    expect(await b.bus.publish("node-a", message(0))).toBe(true);
    await offA();
    expect(await b.bus.publish("node-a", message(0))).toBe(false);
  });

  it("classic pub/sub works the same when chosen", async () => {
    const prefix = testPrefix();
    const a = node(prefix, { pubsub: "classic" });
    const b = node(prefix, { pubsub: "classic" });
    expect(await a.pubsubMode()).toBe("classic");
    const got: BusMessage[] = [];
    const off = await b.bus.subscribe("node-b", (m) => got.push(m));
    expect((await admin?.call("PUBSUB", "CHANNELS", `${prefix}*`)) as string[]).toEqual([
      `${prefix}bus:{node-b}`,
    ]);
    expect(await a.bus.publish("node-b", message(1))).toBe(true);
    await until(() => got.length === 1, "the message");
    expect(got).toEqual([message(1)]);
    // The message relay publishes the same way (a batch as one delivery).
    await a.rooms.create({
      roomId: "r",
      members: [
        { sessionId: "s1", userId: "u1", nodeId: "node-a", name: "A" },
        { sessionId: "s2", userId: "u2", nodeId: "node-b", name: "B" },
      ],
      createdAt: 1,
    });
    const frames = [message(2), message(3)] as FrameMessage[];
    const relayed = await (a.relay as RelayStore).send({
      roomId: "r",
      messages: frames.map((_, i) => ({ messageId: `m${i}`, from: "s1", text: "t", ts: i })),
      historyLimit: 10,
      bucket: { key: "u1", rule: { capacity: 10, ratePerSec: 10 } },
      route: { nodeId: "node-b", frames },
    });
    expect(relayed).toEqual({ allowed: 2, retryAfterMs: 0, stored: true, routed: true });
    await until(() => got.length === 3, "the relayed batch");
    expect(got).toEqual([message(1), message(2), message(3)]);
    await off();
    expect(await a.bus.publish("node-b", message(2))).toBe(false);
  });

  it("release and released messages travel whole, null snapshot included", async () => {
    const prefix = testPrefix();
    const a = node(prefix);
    const b = node(prefix);
    const got: BusMessage[] = [];
    await b.bus.subscribe("node-b", (m) => got.push(m));
    const sent: BusMessage[] = [
      { kind: "release", to: "s1", nodeId: "node-a" },
      { kind: "released", to: "s1", snapshot: null },
      {
        kind: "released",
        to: "s2",
        snapshot: {
          state: "room",
          roomId: "r",
          partner: { sessionId: "s3", userId: "u3", nodeId: "node-c", name: "Cy" },
          lastJoin: { lat: 1.5, lng: -2.25, rangeKm: 30 },
        },
      },
    ];
    for (const m of sent) expect(await a.bus.publish("node-b", m)).toBe(true);
    await until(() => got.length === sent.length, "the messages");
    expect(got).toEqual(sent);
  });

  it("a throwing handler is reported and does not stop the next messages", async () => {
    const prefix = testPrefix();
    const errors: [unknown, string][] = [];
    const b = node(prefix, { onHandlerError: (error, nodeId) => errors.push([error, nodeId]) });
    const got: number[] = [];
    await b.bus.subscribe("node-b", (m) => {
      if (!("frame" in m) || m.frame.type !== "message") return;
      if (m.frame.ts === 1) throw new Error("boom");
      got.push(m.frame.ts);
    });
    for (const n of [0, 1, 2]) expect(await b.bus.publish("node-b", message(n))).toBe(true);
    await until(() => got.length === 2, "the other messages");
    expect(got).toEqual([0, 2]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[1]).toBe("node-b");
  });

  it("subscribing one node id twice on one store is refused; close ends the subscriptions", async () => {
    const prefix = testPrefix();
    const a = node(prefix);
    const b = node(prefix);
    await a.bus.subscribe("node-a", () => {});
    await expect(a.bus.subscribe("node-a", () => {})).rejects.toThrow(/already subscribed/);
    expect(await b.bus.publish("node-a", message(1))).toBe(true);
    await a.close();
    await until(() => true, "");
    // The pub/sub connection is gone: nobody receives any more.
    const deadline = Date.now() + 2000;
    while ((await b.bus.publish("node-a", message(2))) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await b.bus.publish("node-a", message(3))).toBe(false);
    // The user's client is left open.
    expect(await a.client.ping()).toBe("PONG");
  });
});
