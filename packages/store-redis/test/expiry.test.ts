import { NODE_MEMORY_MS, type RoomFrame, type SessionRecord } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { connect, deleteUnder, describeRedis, keysUnder, testPrefix } from "./redis.js";

let client: Redis | undefined;
const stores: RedisStore[] = [];

function open(options: { roomTtlMs?: number } = {}): RedisStore {
  if (client === undefined) throw new Error("no Redis client");
  const store = createRedisStore({ client, keyPrefix: testPrefix(), ...options });
  stores.push(store);
  return store;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` holds (keys expire on Redis's schedule, not at an exact instant). */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const frame = (n: number): RoomFrame => ({
  type: "message",
  roomId: "r",
  messageId: `m${n}`,
  text: `hello ${n}`,
  ts: 1_700_000_000_000 + n,
});

const session = (sessionId: string): SessionRecord => ({
  sessionId,
  nodeId: "node-1",
  userId: "u1",
  name: "Ann",
  roles: [],
  guest: true,
  tokenHash: "hash-1",
  state: "idle",
  updatedAt: 1_700_000_000_000,
});

const room = (roomId: string) => ({
  roomId,
  members: [
    { sessionId: "a", userId: "ua", nodeId: "n1", name: "Ann" },
    { sessionId: "b", userId: "ub", nodeId: "n2", name: "Bob" },
  ] as const,
  createdAt: 1_700_000_000_000,
});

/** Keys under the store's prefix that have no expiry. */
async function keysWithoutTtl(store: RedisStore): Promise<string[]> {
  const c = store.client;
  const keys = await keysUnder(c, store.keyPrefix);
  const ttls = await Promise.all(keys.map((k) => c.pttl(k)));
  return keys.filter((_, i) => (ttls[i] as number) < 0);
}

beforeAll(() => {
  client = connect();
});
afterEach(async () => {
  for (const store of stores.splice(0)) {
    await store.close();
    if (client !== undefined) await deleteUnder(client, store.keyPrefix);
  }
});
afterAll(async () => {
  await client?.quit();
});

describeRedis("store-redis: expiry", () => {
  it("rooms, histories, sessions, mailboxes, buckets, cooldowns, heartbeats and timed bans all carry a ttl", async () => {
    const store = open();
    await store.rooms.create(room("r1"));
    await store.rooms.append("r1", { messageId: "m1", from: "a", text: "hi", ts: 1 }, 10);
    await store.sessions.put(session("s1"), 60_000);
    await store.mailbox.push("s1", frame(1), 10, 60_000);
    await store.limiter.consume("ip:1", { capacity: 5, ratePerSec: 1 }, 1);
    await store.exclusions.add("ua", "ub", 60_000);
    await store.nodes.heartbeat("node-1", 60_000);
    await store.bans.add({ userId: "ub", until: Date.now() + 60_000, createdAt: Date.now() });
    // Ten keys: the heartbeat's two (alive, and when it runs out) among them.
    expect(await keysUnder(store.client, store.keyPrefix)).toHaveLength(10);
    expect(await keysWithoutTtl(store)).toEqual([]);
    // A takeover keeps the ttl too.
    expect(await store.sessions.takeover("s1", "hash-1", "node-2", "hash-2", 60_000)).toBeDefined();
    expect(await keysWithoutTtl(store)).toEqual([]);
  });

  it("only blocks, forever bans and accounts are kept without a ttl", async () => {
    const store = open();
    await store.exclusions.add("ua", "ub");
    await store.bans.add({ userId: "ub", createdAt: Date.now() });
    await store.accounts.create({
      userId: "u1",
      name: "Ann",
      nameKey: "ann",
      passwordHash: "$argon2id$x",
      roles: [],
      createdAt: 1,
    });
    const prefix = store.keyPrefix;
    expect((await keysWithoutTtl(store)).sort()).toEqual(
      [`${prefix}account:{ann}`, `${prefix}ban:{ub}`, `${prefix}excl:{ua}`, `${prefix}excl:{ub}`].sort(),
    );
    // A block outlives a later cooldown: the key stays without a ttl.
    await store.exclusions.add("ua", "ub", 10);
    await store.exclusions.add("ua", "uc", 10);
    expect(await store.client.pttl(`${prefix}excl:{ua}`)).toBe(-1);
  });

  it("deleting rooms and sessions and draining mailboxes leaves nothing behind", async () => {
    const store = open();
    for (let i = 0; i < 5; i++) {
      await store.rooms.create(room(`r${i}`));
      await store.rooms.append(`r${i}`, { messageId: "m", from: "a", text: "hi", ts: 1 }, 10);
      await store.sessions.put(session(`s${i}`), 60_000);
      await store.mailbox.push(`s${i}`, frame(i), 10, 60_000);
    }
    for (let i = 0; i < 5; i++) {
      expect(await store.rooms.delete(`r${i}`)).toBeDefined();
      expect(await store.sessions.delete(`s${i}`)).toBe(true);
      expect(await store.mailbox.drain(`s${i}`)).toEqual([frame(i)]);
    }
    expect(await keysUnder(store.client, store.keyPrefix)).toEqual([]);
  });

  it("rooms, sessions, mailboxes, buckets, cooldowns, heartbeats and bans expire by themselves", async () => {
    const store = open({ roomTtlMs: 100 });
    await store.rooms.create(room("quiet"));
    await store.rooms.create(room("busy"));
    await store.rooms.append("busy", { messageId: "m", from: "a", text: "hi", ts: 1 }, 10);
    await store.sessions.put(session("s1"), 100);
    await store.mailbox.push("s1", frame(1), 10, 100);
    await store.limiter.consume("k", { capacity: 5, ratePerSec: 20 }, 1); // drained in 50 ms
    await store.exclusions.add("ua", "ub", 100);
    await store.nodes.heartbeat("node-1", 100);
    await store.bans.add({ userId: "ub", until: Date.now() + 100, createdAt: Date.now() });
    expect(await store.rooms.get("busy")).toBeDefined();
    // What stays: when the node's heartbeat ran out (NodeStore.deadSince), for a day past it.
    const untilKey = `${store.keyPrefix}nodeuntil:{node-1}`;
    await eventually(
      async () => (await keysUnder(store.client, store.keyPrefix)).join() === untilKey,
      "every key but the node's last heartbeat to expire",
    );
    const ttl = await store.client.pttl(untilKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(NODE_MEMORY_MS + 100);
    expect(await store.nodes.deadSince(["node-1"])).toEqual(new Map([["node-1", expect.any(Number)]]));
    expect(await store.rooms.get("busy")).toBeUndefined();
    expect(await store.rooms.history("busy")).toEqual([]);
    expect(await store.sessions.get("s1")).toBeUndefined();
    expect(await store.mailbox.drain("s1")).toEqual([]);
    expect(await store.exclusions.excluded("ua", ["ub"])).toEqual(new Set());
    expect(await store.nodes.alive(["node-1"])).toEqual(new Set());
    expect(await store.bans.get("ub")).toBeUndefined();
  });

  it("an append keeps a room alive past its first ttl", async () => {
    const store = open({ roomTtlMs: 500 });
    await store.rooms.create(room("r"));
    for (let i = 0; i < 6; i++) {
      await sleep(150);
      expect(await store.rooms.append("r", { messageId: `m${i}`, from: "a", text: "hi", ts: i }, 3)).toBe(
        true,
      );
    }
    expect(await store.rooms.get("r")).toBeDefined();
    expect((await store.rooms.history("r")).map((m) => m.messageId)).toEqual(["m3", "m4", "m5"]);
  });
});
