import { randomUUID } from "node:crypto";
import { createRedisStore, type RedisClient, type RedisStore } from "@whisperchat/store-redis";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { describe } from "vitest";

/** The shared test Redis. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

async function ping(): Promise<string | undefined> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    probe.disconnect();
  }
}

const down = await ping();
if (down !== undefined) {
  const reason = `Redis is not reachable at ${REDIS_URL} (${down})`;
  if (process.env.CI) throw new Error(`${reason}: the Redis tests must run under CI`);
  console.warn(`${reason}: skipping the Redis store tests`);
}

/** True when the shared Redis answers. */
export const redisUp = down === undefined;

/** `describe`, skipped (with the reason printed above) when Redis is down. */
export const describeRedis: ReturnType<typeof describe.skipIf> = describe.skipIf(!redisUp);

/** A fresh key prefix for one test. */
export function testPrefix(): string {
  return `test:${randomUUID()}:`;
}

/** A client of the shared test Redis; its errors are kept off the console. */
export function connect(options: RedisOptions = {}): Redis {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, showFriendlyErrorStack: true, ...options });
  client.on("error", () => {});
  return client;
}

/** Every key under `prefix` (on every master of a cluster). */
export async function keysUnder(client: RedisClient, prefix: string): Promise<string[]> {
  const found: string[] = [];
  const nodes = client instanceof Cluster ? client.nodes("master") : [client as Redis];
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== "0");
  }
  return found;
}

/** Deletes every key under `prefix`. */
export async function deleteUnder(client: RedisClient, prefix: string): Promise<void> {
  // One DEL per key: on a cluster, the keys live in different slots.
  await Promise.all((await keysUnder(client, prefix)).map((key) => client.del(key)));
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * A Redis store on the shared test Redis under a fresh key prefix, with a client of its own;
 * `cleanups` gets what deletes its keys and disconnects the client.
 */
export function testRedisStore(cleanups: (() => unknown)[]): RedisStore {
  const client = connect();
  const keyPrefix = testPrefix();
  cleanups.push(async () => {
    await deleteUnder(client, keyPrefix);
    client.disconnect();
  });
  return createRedisStore({ client, keyPrefix });
}
