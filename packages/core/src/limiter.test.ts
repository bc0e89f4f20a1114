import { describe, expect, it } from "vitest";
import { type BucketState, drainMs, leakyBucket, leakyBucketInPlace } from "./limiter.js";

const rule = { capacity: 10, ratePerSec: 5 };

function run(costs: [number, number][]): { allowed: boolean; retryAfterMs: number }[] {
  let state: BucketState | undefined;
  return costs.map(([now, cost]) => {
    const r = leakyBucket(state, rule, cost, now);
    state = r.state;
    return { allowed: r.result.allowed, retryAfterMs: r.result.retryAfterMs };
  });
}

describe("leakyBucket", () => {
  it("allows a burst up to the capacity, then refuses", () => {
    const out = run(Array.from({ length: 12 }, () => [1000, 1] as [number, number]));
    expect(out.filter((o) => o.allowed)).toHaveLength(10);
    expect(out[10]).toEqual({ allowed: false, retryAfterMs: 200 });
  });

  it("gives a retryAfterMs after which the action is allowed, and not before", () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = leakyBucket(state, rule, 1, 0).state;
    const refused = leakyBucket(state, rule, 3, 0);
    expect(refused.result.allowed).toBe(false);
    expect(refused.result.retryAfterMs).toBe(600); // 3 units at 5/s
    expect(leakyBucket(refused.state, rule, 3, 599).result.allowed).toBe(false);
    expect(leakyBucket(refused.state, rule, 3, 600).result.allowed).toBe(true);
  });

  it("holds the steady rate: one action every 1/rate seconds is always allowed", () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = leakyBucket(state, rule, 1, 0).state;
    for (let t = 200; t <= 20_000; t += 200) {
      const r = leakyBucket(state, rule, 1, t);
      expect(r.result.allowed).toBe(true);
      state = r.state;
    }
    expect(leakyBucket(state, rule, 1, 20_000).result.allowed).toBe(false);
  });

  it("drains nothing when the clock goes backwards, and does not re-drain the same time", () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 10; i++) state = leakyBucket(state, rule, 1, 10_000).state;
    const back = leakyBucket(state, rule, 1, 5_000);
    expect(back.result.allowed).toBe(false);
    expect(back.state.at).toBe(10_000);
    // Forward again to 10_200: exactly one unit has drained since 10_000.
    const fwd = leakyBucket(back.state, rule, 1, 10_200);
    expect(fwd.result.allowed).toBe(true);
    expect(leakyBucket(fwd.state, rule, 1, 10_200).result.allowed).toBe(false);
  });

  it("never allows a cost above the capacity and reports how long a full drain takes", () => {
    expect(leakyBucket(undefined, rule, 11, 0).result.allowed).toBe(false);
    expect(drainMs(10, rule)).toBe(2000);
  });
});

describe("leakyBucketInPlace", () => {
  it("gives the same answers as leakyBucket over a random sequence, clock steps backwards included", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    let pure: BucketState | undefined;
    const inPlace: BucketState = { level: 0, at: 0 };
    let now = 0;
    for (let i = 0; i < 5000; i++) {
      now += Math.floor(rand() * 400) - 50; // sometimes backwards
      const cost = 1 + Math.floor(rand() * 3);
      const a = leakyBucket(pure, rule, cost, now);
      pure = a.state;
      const b = leakyBucketInPlace(inPlace, rule, cost, now);
      expect(b).toEqual(a.result);
    }
  });
});
