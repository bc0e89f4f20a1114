import type { ExclusionStore } from "@whisperchat/core";

/** An unambiguous key for the unordered pair {a, b}, whatever characters the ids contain. */
function pairKey(a: string, b: string): string {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return `${lo.length}:${lo}${hi}`;
}

/**
 * Excluded pairs, keyed by the unordered pair, mapped to when the exclusion ends (`Infinity`
 * for a block). Expired pairs are dropped when read and by {@link MemoryExclusions.sweep}.
 */
export class MemoryExclusions implements ExclusionStore {
  readonly #until = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async add(userA: string, userB: string, ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined && Number.isNaN(ttlMs)) {
      throw new RangeError("exclusions.add: ttlMs must be a number of milliseconds or undefined (forever)");
    }
    const key = pairKey(userA, userB);
    const now = this.#now();
    const until = ttlMs === undefined ? Number.POSITIVE_INFINITY : now + ttlMs;
    const current = this.#until.get(key);
    if (current !== undefined && current > now && current >= until) return; // never shortened
    if (until <= now) {
      // Nothing left to keep (a ttl of 0 or less); drop an expired leftover.
      if (current !== undefined) this.#until.delete(key);
      return;
    }
    this.#until.set(key, until);
  }

  async excluded(userId: string, others: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (others.length === 0) return out;
    const now = this.#now();
    for (const other of others) {
      const key = pairKey(userId, other);
      const until = this.#until.get(key);
      if (until === undefined) continue;
      if (until > now) out.add(other);
      else this.#until.delete(key);
    }
    return out;
  }

  /** Drops every expired pair. */
  sweep(now: number): void {
    for (const [key, until] of this.#until) {
      if (until <= now) this.#until.delete(key);
    }
  }

  /** How many pairs are held, including expired ones not yet swept. */
  get count(): number {
    return this.#until.size;
  }

  clear(): void {
    this.#until.clear();
  }
}
