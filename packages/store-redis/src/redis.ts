import { createHash } from "node:crypto";
import { WhisperError } from "@whisperchat/core";
import type { Cluster, Redis } from "ioredis";

/** An ioredis client: one server (`Redis`) or a Redis Cluster (`Cluster`). */
export type RedisClient = Redis | Cluster;

/** Whether the client is a cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/** A Lua script, run with EVALSHA (and EVAL once when the server does not have it yet). */
export interface Script {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

export function script(name: string, lua: string): Script {
  return { name, lua, sha: createHash("sha1").update(lua).digest("hex") };
}

/** Runs a script: EVALSHA, then EVAL if the server answers NOSCRIPT (after a restart, say). */
export async function run(
  client: RedisClient,
  s: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
      return await client.eval(s.lua, keys.length, ...keys, ...args);
    }
    throw error;
  }
}

/** The error every store method rejects with when Redis fails it. */
export function storeError(op: string, cause: unknown): WhisperError {
  if (cause instanceof WhisperError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new WhisperError(
    "internal",
    `Redis store: ${op} failed (${detail}). Check that Redis is reachable; the ioredis client's maxRetriesPerRequest, enableOfflineQueue and commandTimeout options decide how long a call waits before failing.`,
    { cause },
  );
}

/** Runs `fn`, turning any failure into the store's typed error. */
export async function attempt<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw storeError(op, error);
  }
}

/**
 * A ttl as the scripts take it: whole milliseconds for PX, `"inf"` for no expiry, or
 * `undefined` when nothing is left to keep (a ttl of 0 or less).
 */
export function pxOf(ttlMs: number, what: string): number | "inf" | undefined {
  if (Number.isNaN(ttlMs))
    throw new RangeError(`${what}: ttlMs must be a number of milliseconds, got ${ttlMs}`);
  if (ttlMs === Number.POSITIVE_INFINITY) return "inf";
  const px = Math.ceil(ttlMs);
  return px > 0 ? px : undefined;
}

/** Lua: gives KEYS[1] the ttl in ARGV[n] ("inf": none). */
export function expireLua(n: number): string {
  return `if ARGV[${n}] == 'inf' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[${n}]) end`;
}

/** How many items a capped list keeps for `limit`: a whole number from 0 up. */
export function keepOf(limit: number, what: string): number {
  if (Number.isNaN(limit)) throw new RangeError(`${what}: limit must be a number, got ${limit}`);
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(limit)));
}

/** Reads JSON written by this store. */
export function parse<T>(text: string): T {
  return JSON.parse(text) as T;
}
