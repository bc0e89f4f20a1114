/**
 * Redis helpers for the benchmarks that need Redis (`redis.ts` and its server processes):
 * connecting without hanging when Redis is not there, and deleting a run's keys.
 */
import { Redis, type RedisOptions } from "ioredis";

/** Where the benchmarks find Redis: `REDIS_URL`, or the local default. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Connects to {@link REDIS_URL} and pings it; resolves `undefined` (after calling `onMissing`
 * with the reason) when Redis is not reachable within a second. `options` are added to the
 * client's options.
 */
export async function connectRedis(
  options: RedisOptions = {},
  onMissing: (reason: string) => void = () => undefined,
): Promise<Redis | undefined> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    ...options,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    onMissing(error instanceof Error ? error.message : String(error));
    client.disconnect();
    return undefined;
  }
}

/** Deletes every key that starts with `prefix` (SCAN + UNLINK); resolves how many went. */
export async function deleteKeys(client: Redis, prefix: string): Promise<number> {
  // Glob characters in the prefix are escaped, so that the pattern matches it literally.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  let cursor = "0";
  let deleted = 0;
  do {
    const [nextCursor, found] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = nextCursor;
    if (found.length > 0) deleted += await client.unlink(...found);
  } while (cursor !== "0");
  return deleted;
}

/** Redis's own CPU time so far (user + system, seconds) and the commands it has processed, from `INFO`. */
export async function redisCounters(client: Redis): Promise<{ cpuSeconds: number; commands: number }> {
  const info = await client.info();
  let cpuSeconds = 0;
  let commands = 0;
  for (const raw of info.split("\n")) {
    const line = raw.trim();
    const cpu = /^used_cpu_(?:user|sys):([\d.]+)$/.exec(line);
    if (cpu !== null) cpuSeconds += Number(cpu[1]);
    const total = /^total_commands_processed:(\d+)$/.exec(line);
    if (total !== null) commands = Number(total[1]);
  }
  return { cpuSeconds, commands };
}
