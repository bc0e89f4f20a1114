import {
  type BusMessage,
  type FrameMessage,
  isWhisperError,
  type RelayStore,
  type Store,
} from "@whisperchat/core";
import { createRedisStore } from "@whisperchat/store-redis";
import { Redis, type RedisOptions } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, hasRedisServer, startRedis, stopRedis } from "./servers.js";

const entry = {
  sessionId: "s1",
  userId: "u1",
  nodeId: "n1",
  name: "Ann",
  lat: 1,
  lng: 2,
  rangeKm: 10,
  since: 1,
};

const message: BusMessage = {
  to: "s1",
  roomId: "r",
  frame: { type: "message", roomId: "r", messageId: "m", text: "hi", ts: 1 },
};

/** Every store method once, each expected to reject. */
const calls: [string, (s: Store) => Promise<unknown>][] = [
  ["pool.add", (s) => s.pool.add(entry)],
  ["pool.remove", (s) => s.pool.remove("s1")],
  ["pool.get", (s) => s.pool.get("s1")],
  ["pool.candidates", (s) => s.pool.candidates(1, 2, 10)],
  ["pool.claim", (s) => s.pool.claim("a", "b")],
  ["pool.size", (s) => s.pool.size()],
  [
    "rooms.create",
    (s) =>
      s.rooms.create({
        roomId: "r",
        members: [
          { sessionId: "a", userId: "ua", nodeId: "n", name: "A" },
          { sessionId: "b", userId: "ub", nodeId: "n", name: "B" },
        ],
        createdAt: 1,
      }),
  ],
  ["rooms.get", (s) => s.rooms.get("r")],
  ["rooms.delete", (s) => s.rooms.delete("r")],
  ["rooms.append", (s) => s.rooms.append("r", { messageId: "m", from: "a", text: "t", ts: 1 }, 5)],
  ["rooms.history", (s) => s.rooms.history("r")],
  [
    "relay.send",
    (s) =>
      (s.relay as RelayStore).send({
        roomId: "r",
        messages: [{ messageId: "m", from: "a", text: "t", ts: 1 }],
        historyLimit: 5,
        bucket: { key: "u", rule: { capacity: 5, ratePerSec: 1 } },
        route: { nodeId: "n1", frames: [message as FrameMessage] },
      }),
  ],
  ["exclusions.add", (s) => s.exclusions.add("a", "b", 100)],
  ["exclusions.excluded", (s) => s.exclusions.excluded("a", ["b"])],
  ["bus.publish", (s) => s.bus.publish("n1", message)],
  ["bus.subscribe", (s) => s.bus.subscribe("n1", () => {})],
  ["limiter.consume", (s) => s.limiter.consume("k", { capacity: 1, ratePerSec: 1 }, 1)],
  ["sessions.get", (s) => s.sessions.get("s1")],
  ["sessions.takeover", (s) => s.sessions.takeover("s1", "h", "n2", "h2", 1000)],
  ["mailbox.push", (s) => s.mailbox.push("s1", message.frame, 5, 1000)],
  ["mailbox.drain", (s) => s.mailbox.drain("s1")],
  ["accounts.get", (s) => s.accounts.get("ann")],
  ["bans.get", (s) => s.bans.get("u1")],
  ["nodes.heartbeat", (s) => s.nodes.heartbeat("n1", 1000)],
  ["nodes.alive", (s) => s.nodes.alive(["n1", "n2"])],
];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function client(port: number, options: RedisOptions): Redis {
  const c = new Redis({ host: "127.0.0.1", port, ...options });
  c.on("error", () => {});
  cleanups.push(() => c.disconnect());
  return c;
}

async function expectInternal(what: string, call: () => Promise<unknown>): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  expect(isWhisperError(error, "internal"), `${what} should reject with an internal WhisperError`).toBe(true);
  expect((error as Error).message).toMatch(/^Redis store: .* failed/);
  expect((error as Error).cause).toBeDefined();
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("store-redis: Redis unreachable", () => {
  it("with the offline queue off, every method rejects at once with an internal WhisperError", async () => {
    const c = client(1, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 100 });
    const store = createRedisStore({ client: c, keyPrefix: "test:down:", onError: () => {} });
    cleanups.push(() => store.close());
    for (const [what, call] of calls) await expectInternal(what, () => call(store));
  });

  it("with the offline queue on, calls reject after maxRetriesPerRequest reconnects", async () => {
    const c = client(1, { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    const store = createRedisStore({ client: c, keyPrefix: "test:down:", onError: () => {} });
    cleanups.push(() => store.close());
    await Promise.all(calls.map(([what, call]) => expectInternal(what, () => call(store))));
  });
});

describe.skipIf(!hasRedisServer)("store-redis: Redis restarted", () => {
  it("fails calls while Redis is down, and resumes by itself (pub/sub included) when it is back", async () => {
    const port = await freePort();
    let server = await startRedis(port);
    cleanups.push(() => stopRedis(server));
    const errors: unknown[] = [];
    const c = client(port, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    const store = createRedisStore({ client: c, keyPrefix: "test:restart:", onError: (e) => errors.push(e) });
    cleanups.push(() => store.close());
    const publisher = createRedisStore({
      client: client(port, { maxRetriesPerRequest: 1, retryStrategy: () => 50 }),
      keyPrefix: "test:restart:",
    });
    cleanups.push(() => publisher.close());

    const got: BusMessage[] = [];
    await store.bus.subscribe("n1", (m) => got.push(m));
    await store.pool.add(entry);
    expect(await publisher.bus.publish("n1", message)).toBe(true);
    await eventually(async () => got.length === 1, "the first message");

    await stopRedis(server);
    await expectInternal("pool.size while down", () => store.pool.size());
    await expectInternal("bus.publish while down", () => publisher.bus.publish("n1", message));
    expect(errors.length).toBeGreaterThan(0);

    server = await startRedis(port);
    // The data is gone with that server; the scripts too (EVALSHA falls back to EVAL).
    await eventually(async () => (await store.pool.size()) === 0, "the pool to answer again");
    await store.pool.add(entry);
    expect((await store.pool.candidates(1, 2, 10)).map((e) => e.sessionId)).toEqual(["s1"]);
    // The pub/sub connection subscribed again by itself.
    await eventually(async () => publisher.bus.publish("n1", message), "the subscription to come back");
    await eventually(async () => got.length >= 2, "a message after the restart");
    expect(got.at(-1)).toEqual(message);
  }, 30_000);
});
