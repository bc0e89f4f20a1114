import type { BucketRule, LimitResult } from "./store.js";

/** The state of one leaky bucket. */
export interface BucketState {
  /** Level after the last allowed action. */
  level: number;
  /** When `level` was computed (ms). */
  at: number;
}

/**
 * The leaky bucket in its meter form (equivalent to GCRA): the bucket drains at
 * `rule.ratePerSec`; an action of `cost` is allowed when the drained level plus `cost` fits in
 * `rule.capacity`, and otherwise gets the milliseconds until it would. Pure: returns the new
 * state (unchanged when refused). A clock that went backwards drains nothing.
 */
export function leakyBucket(
  state: BucketState | undefined,
  rule: BucketRule,
  cost: number,
  now: number,
): { result: LimitResult; state: BucketState } {
  const next: BucketState =
    state === undefined ? { level: 0, at: now } : { level: state.level, at: state.at };
  return { result: leakyBucketInPlace(next, rule, cost, now), state: next };
}

/**
 * {@link leakyBucket} for hot paths: it updates `state` in place (when the action is allowed,
 * or to move its clock forward) instead of allocating a new state.
 */
export function leakyBucketInPlace(
  state: BucketState,
  rule: BucketRule,
  cost: number,
  now: number,
): LimitResult {
  const elapsed = Math.max(0, now - state.at);
  const drained = Math.max(0, state.level - (elapsed * rule.ratePerSec) / 1000);
  if (now > state.at) state.at = now;
  const wanted = drained + cost;
  if (wanted <= rule.capacity + 1e-9) {
    state.level = wanted;
    return { allowed: true, retryAfterMs: 0, level: wanted };
  }
  state.level = drained;
  return {
    allowed: false,
    retryAfterMs: Math.max(1, Math.ceil(((wanted - rule.capacity) * 1000) / rule.ratePerSec)),
    level: drained,
  };
}

/** Milliseconds until a bucket at `level` is empty: how long its state is worth keeping. */
export function drainMs(level: number, rule: BucketRule): number {
  return Math.ceil((level * 1000) / rule.ratePerSec);
}

/** Throws a `RangeError` unless the rule is usable (positive, finite numbers). */
export function assertBucketRule(rule: BucketRule, what: string): void {
  if (!(Number.isFinite(rule.capacity) && rule.capacity > 0)) {
    throw new RangeError(`${what}: capacity must be a positive number, got ${rule.capacity}`);
  }
  if (!(Number.isFinite(rule.ratePerSec) && rule.ratePerSec > 0)) {
    throw new RangeError(`${what}: ratePerSec must be a positive number, got ${rule.ratePerSec}`);
  }
}
