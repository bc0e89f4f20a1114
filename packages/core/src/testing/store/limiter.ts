import assert from "node:assert/strict";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
} from "./shared.js";

/**
 * The conformance tests of `LimiterStore`: a leaky bucket per key that allows up to
 * `capacity`, refuses with a `retryAfterMs` after which it allows again, and adds nothing for a
 * refused action. Needs `store.limiter`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function limiterConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"limiter">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "limiter", options, ({ s, id }) => {
    // 200 ms per unit: the few milliseconds a test takes between calls drain almost nothing.
    const rule = { capacity: 3, ratePerSec: 5 };

    it("allows up to capacity at once and refuses the next with a retry delay", async () => {
      const key = id("k");
      for (let i = 1; i <= 3; i++) {
        const r = await s().limiter.consume(key, rule, 1);
        assert.equal(r.allowed, true, `action ${i}`);
        assert.equal(r.retryAfterMs, 0);
        assert.ok(r.level > i - 0.5 && r.level <= i + 1e-6, `level after ${i}: ${r.level}`);
      }
      const refused = await s().limiter.consume(key, rule, 1);
      assert.equal(refused.allowed, false);
      // About 1 / ratePerSec = 200 ms, less whatever drained meanwhile.
      assert.ok(
        refused.retryAfterMs > 50 && refused.retryAfterMs <= 210,
        `retryAfterMs ${refused.retryAfterMs}`,
      );
      assert.ok(refused.level <= 3 + 1e-6, "a refused action adds nothing");
      // Still refused right away: refusals do not add to the level either.
      assert.equal((await s().limiter.consume(key, rule, 1)).allowed, false);
    });

    it("allows again after waiting retryAfterMs", async () => {
      const key = id("k");
      for (let i = 0; i < 3; i++) await s().limiter.consume(key, rule, 1);
      const refused = await s().limiter.consume(key, rule, 1);
      assert.equal(refused.allowed, false);
      await sleep(refused.retryAfterMs + 15);
      const again = await s().limiter.consume(key, rule, 1);
      assert.equal(again.allowed, true, `still refused after ${refused.retryAfterMs} ms`);
    });

    it("a cost larger than what is left is refused; a cost that fits is allowed", async () => {
      const key = id("k");
      assert.equal((await s().limiter.consume(key, rule, 2)).allowed, true);
      assert.equal((await s().limiter.consume(key, rule, 2)).allowed, false);
      assert.equal((await s().limiter.consume(key, rule, 1)).allowed, true);
      assert.equal((await s().limiter.consume(id("other"), rule, 4)).allowed, false, "above capacity");
    });

    it("keys are independent", async () => {
      const [a, b] = [id("a"), id("b")];
      for (let i = 0; i < 3; i++) assert.equal((await s().limiter.consume(a, rule, 1)).allowed, true);
      assert.equal((await s().limiter.consume(a, rule, 1)).allowed, false);
      for (let i = 0; i < 3; i++) assert.equal((await s().limiter.consume(b, rule, 1)).allowed, true);
      assert.equal((await s().limiter.consume(b, rule, 1)).allowed, false);
    });
  });
}
