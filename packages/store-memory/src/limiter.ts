import {
  type BucketRule,
  type BucketState,
  drainMs,
  type LimiterStore,
  type LimitResult,
  leakyBucketInPlace,
} from "@whisperchat/core";

/** A bucket and when it will be empty: past that, it is worth nothing and can go. */
interface Bucket extends BucketState {
  drainedAt: number;
}

/**
 * Leaky buckets by key, with core's `leakyBucket` math. A Map kept in least-recently-used
 * order (a key moves to the end on every use), so that the cap evicts the idlest bucket.
 * Drained buckets are dropped by {@link MemoryLimiter.sweep}.
 */
export class MemoryLimiter implements LimiterStore {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;
  readonly #maxBuckets: number;

  constructor(now: () => number, maxBuckets: number) {
    this.#now = now;
    this.#maxBuckets = maxBuckets;
  }

  async consume(key: string, rule: BucketRule, cost: number): Promise<LimitResult> {
    const now = this.#now();
    const buckets = this.#buckets;
    let bucket = buckets.get(key);
    if (bucket !== undefined)
      buckets.delete(key); // re-inserted below: least recently used first
    else bucket = { level: 0, at: now, drainedAt: now };
    const result = leakyBucketInPlace(bucket, rule, cost, now);
    bucket.drainedAt = bucket.at + drainMs(bucket.level, rule);
    if (bucket.drainedAt > now) {
      buckets.set(key, bucket);
      if (buckets.size > this.#maxBuckets) {
        const idlest = buckets.keys().next();
        if (idlest.done !== true) buckets.delete(idlest.value);
      }
    }
    return result;
  }

  /** Drops every drained bucket. */
  sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.drainedAt <= now) this.#buckets.delete(key);
    }
  }

  /** How many buckets are held, including drained ones not yet swept. */
  get count(): number {
    return this.#buckets.size;
  }

  clear(): void {
    this.#buckets.clear();
  }
}
