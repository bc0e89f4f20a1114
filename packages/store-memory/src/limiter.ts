import {
  type BucketRule,
  type BucketState,
  drainMs,
  type LimiterStore,
  type LimitResult,
  leakyBucket,
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
    const current = this.#buckets.get(key);
    const { result, state } = leakyBucket(current, rule, cost, now);
    const drainedAt = state.at + drainMs(state.level, rule);
    if (current !== undefined) this.#buckets.delete(key);
    if (drainedAt > now) {
      this.#buckets.set(key, { level: state.level, at: state.at, drainedAt });
      if (this.#buckets.size > this.#maxBuckets) {
        const idlest = this.#buckets.keys().next();
        if (idlest.done !== true) this.#buckets.delete(idlest.value);
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
