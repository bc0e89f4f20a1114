/**
 * Redis memory benchmark: what the Redis store keeps per session record, per waiting user and
 * per room, on a private `redis-server` this script starts on a free port (nothing else on it,
 * nothing saved to disk) and stops at the end. Needs `redis-server` on PATH; without it every
 * row is "n/a".
 *
 * Every entity is written through the store's own API (`createRedisStore`), shaped as the hub
 * writes it (ids of the lengths core makes, a token hash, a guest's name):
 *
 * - a session record in a room (`sessions.put`: with its room, partner and last join, the
 *   largest record a session has), and an idle one (just connected);
 * - a waiting user (`pool.add`), ranges spread over every range tier, places over the world:
 *   the pool's data for one waiting session (its entry and its GEO member);
 * - a room with a full history (`rooms.create`, then 100 `rooms.append` of 100-byte texts, the
 *   hub's default `historyLimit`), and an empty room (`rooms.create` only);
 * - a chatting user's message bucket (`limiter.consume`).
 *
 * Two figures per entity: the growth of `used_memory` (`INFO memory`) over many entities
 * divided by their count (what the server really spends, the dictionary and per-key overhead
 * included), and the sum of `MEMORY USAGE <key> SAMPLES 0` over the entity's keys (what Redis
 * attributes to the keys themselves; for the pool, the shared keys' total over the count).
 *
 *   node --conditions=@whisperchat/source --import tsx bench/redis-memory.ts [--quick] [--count=<n>]
 *
 * Not in `npm run bench`'s list (`run.ts`): run it alone. It writes `results/redis-memory.json`,
 * which the next `npm run bench` shows in its summary as an earlier run. `--count=<n>` sets how
 * many entities of each kind (default 20,000; `--quick`: 2,000).
 */
import { createHash } from "node:crypto";
import type { PoolEntry, RoomRecord, SessionRecord } from "@whisperchat/core";
import { randomId } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Redis } from "ioredis";
import { freePort, hasRedisServer, startRedis, stopRedis } from "../packages/store-redis/test/servers.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const quick = isQuick();
const countArg = process.argv.find((a) => a.startsWith("--count="));
/** Entities of each kind (rooms with a full history: a tenth of it). */
const COUNT = countArg === undefined ? (quick ? 2_000 : 20_000) : Number(countArg.slice("--count=".length));
if (!Number.isInteger(COUNT) || COUNT < 100) throw new Error("--count must be a whole number >= 100");
const HISTORY = 100;
const TEXT_BYTES = 100;
const PREFIX = "whisper:";

const log = (line: string) => process.stderr.write(`[redis-memory] ${line}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const tokenHash = () => createHash("sha256").update(randomId(24)).digest("base64url");
const guestName = () => `Guest ${randomId(3).slice(0, 4)}`;
const nodeId = `node-${randomId(9)}`;
const member = () => ({
  sessionId: randomId(16),
  userId: `guest-${randomId(12)}`,
  nodeId,
  name: guestName(),
});
/** The store's default range tiers, and a range beyond the last. */
const RANGES = [0.5, 2, 5, 20, 50, 200, 500, 2000, 5000];

/** `used_memory` from `INFO memory`, in bytes. */
async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info("memory");
  const m = /^used_memory:(\d+)/m.exec(info);
  if (m?.[1] === undefined) throw new Error("no used_memory in INFO memory");
  return Number(m[1]);
}

async function keyBytes(client: Redis, keys: readonly string[]): Promise<number> {
  let total = 0;
  for (const key of keys) total += Number((await client.call("MEMORY", "USAGE", key, "SAMPLES", "0")) ?? 0);
  return total;
}

/** Runs `write(i)` for `count` entities, 64 in flight. */
async function writeMany(count: number, write: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await write(next++);
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

interface Measured {
  usedPerEntity: number;
  usagePerEntity: number;
}

/** Measures one kind of entity: `used_memory` growth and `MEMORY USAGE` of its keys, per entity. */
async function measure(
  client: Redis,
  what: string,
  count: number,
  write: (i: number) => Promise<void>,
): Promise<Measured> {
  await client.flushall();
  const before = await usedMemory(client);
  const started = Date.now();
  await writeMany(count, write);
  const after = await usedMemory(client);
  const keys: string[] = [];
  for await (const found of client.scanStream({ match: `${PREFIX}*`, count: 1000 }))
    keys.push(...(found as string[]));
  const usage = await keyBytes(client, keys);
  const result = { usedPerEntity: (after - before) / count, usagePerEntity: usage / count };
  log(
    `${what}: ${fmt(count)} in ${fmt((Date.now() - started) / 1000, 1)} s, ${fmt(keys.length)} keys; used_memory +${fmt(result.usedPerEntity)} B each, MEMORY USAGE ${fmt(result.usagePerEntity)} B each`,
  );
  return result;
}

function sessionRecord(inRoom: boolean): SessionRecord {
  const self = member();
  const base: SessionRecord = {
    sessionId: self.sessionId,
    nodeId,
    userId: self.userId,
    name: self.name,
    roles: [],
    guest: true,
    tokenHash: tokenHash(),
    state: "idle",
    updatedAt: Date.now(),
  };
  if (!inRoom) return base;
  return {
    ...base,
    state: "room",
    roomId: randomId(12),
    partner: member(),
    lastJoin: { lat: 48.8566 + Math.random(), lng: 2.3522 + Math.random(), rangeKm: 10 },
  };
}

function poolEntry(i: number): PoolEntry {
  const self = member();
  return {
    ...self,
    // Places over the world, away from the poles (where the store keeps a small hash instead).
    lat: Math.random() * 160 - 80,
    lng: Math.random() * 360 - 180,
    rangeKm: RANGES[i % RANGES.length] as number,
    since: Date.now() - i,
  };
}

function text(): string {
  return randomId(Math.ceil((TEXT_BYTES * 3) / 4)).slice(0, TEXT_BYTES);
}

const rows: ResultRow[] = [];
const notes: string[] = [];

function report(group: string, m: Measured | undefined): void {
  rows.push(
    row({
      group,
      metric: "Redis used_memory growth per entity",
      unit: "bytes",
      ours: m === undefined ? null : Math.round(m.usedPerEntity),
      baseline: null,
      baselineName: "no baseline",
      higherIsBetter: false,
    }),
    row({
      group,
      metric: "MEMORY USAGE of its keys per entity",
      unit: "bytes",
      ours: m === undefined ? null : Math.round(m.usagePerEntity),
      baseline: null,
      baselineName: "no baseline",
      higherIsBetter: false,
    }),
  );
}

const GROUPS = {
  sessionRoom: "session record, in a room",
  sessionIdle: "session record, idle",
  waiting: "waiting user (pool data)",
  fullRoom: `room with a full history (${HISTORY} messages of ${TEXT_BYTES} B)`,
  emptyRoom: "room, empty history",
  bucket: "rate-limit bucket (a chatting user's)",
} as const;

if (!hasRedisServer) {
  notes.push("redis-server or redis-cli is not on PATH: nothing measured");
  for (const group of Object.values(GROUPS)) report(group, undefined);
} else {
  const port = await freePort();
  const server = await startRedis(port, ["--bind", "127.0.0.1"]);
  const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 });
  try {
    const store: RedisStore = createRedisStore({ client, keyPrefix: PREFIX });
    const version = /^redis_version:(\S+)/m.exec(await client.info("server"))?.[1] ?? "unknown";
    const allocator = /^mem_allocator:(\S+)/m.exec(await client.info("memory"))?.[1] ?? "unknown";
    const ttl = 30_000;
    const roomCount = Math.max(100, Math.round(COUNT / 10));

    report(
      GROUPS.sessionRoom,
      await measure(client, GROUPS.sessionRoom, COUNT, () => store.sessions.put(sessionRecord(true), ttl)),
    );
    report(
      GROUPS.sessionIdle,
      await measure(client, GROUPS.sessionIdle, COUNT, () => store.sessions.put(sessionRecord(false), ttl)),
    );
    report(GROUPS.waiting, await measure(client, GROUPS.waiting, COUNT, (i) => store.pool.add(poolEntry(i))));
    const room = (): RoomRecord => {
      const a = member();
      return { roomId: randomId(12), members: [a, member()], createdAt: Date.now() };
    };
    report(
      GROUPS.fullRoom,
      await measure(client, GROUPS.fullRoom, roomCount, async () => {
        const r = room();
        await store.rooms.create(r);
        const prefix = randomId(6);
        for (let m = 0; m < HISTORY; m++) {
          const from = r.members[m % 2]?.sessionId as string;
          await store.rooms.append(
            r.roomId,
            {
              messageId: `${prefix}${m.toString(36)}`,
              from,
              text: text(),
              ts: Date.now(),
              requestId: String(m),
            },
            HISTORY,
          );
        }
      }),
    );
    report(
      GROUPS.emptyRoom,
      await measure(client, GROUPS.emptyRoom, COUNT, () => store.rooms.create(room())),
    );
    report(
      GROUPS.bucket,
      await measure(client, GROUPS.bucket, COUNT, async () => {
        // The per-user message bucket the hub's relay drains (`msgu:<userId>`). It lives while
        // the user sends and expires when empty: the rule drains slowly here so that none expires
        // before it is measured (a bucket holds `<level> <timestamp>` whatever its rule).
        await store.limiter.consume(`msgu:guest-${randomId(12)}`, { capacity: 20, ratePerSec: 0.001 }, 1);
      }),
    );
    await store.close();
    await client.flushall();
    notes.push(
      `Redis ${version} (${allocator}), a private server with nothing else on it; ${fmt(COUNT)} entities of each kind (${fmt(roomCount)} rooms with a full history), written through createRedisStore with 64 calls in flight.`,
      "used_memory growth: INFO memory before and after, over the count (the keyspace's dictionaries and expiry entries included). MEMORY USAGE: SAMPLES 0 over every key written, over the count.",
      "Session records are written with a ttl (as the hub does), idle and in a room; waiting users with ranges over every tier; messages with a request id, as a client that sends ids has them stored.",
    );
  } finally {
    client.disconnect();
    await stopRedis(server);
  }
}

const path = writeResults("redis-memory", rows, { quick, notes });
log(`wrote ${path}`);
