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
 * The conformance tests of `ExclusionStore`: symmetric pairs, `excluded` as the excluded
 * subset, ttls that expire, and ends that are never shortened (a forever exclusion stays one).
 * Needs `store.exclusions`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function exclusionsConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"exclusions">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "exclusions", options, ({ s, id }) => {
    it("add is symmetric and excluded returns only the excluded subset", async () => {
      const [a, b, c, d] = [id("a"), id("b"), id("c"), id("d")];
      assert.deepEqual(await s().exclusions.excluded(a, [b, c, d]), new Set());
      await s().exclusions.add(a, b);
      await s().exclusions.add(d, a);
      assert.deepEqual(await s().exclusions.excluded(a, [b, c, d]), new Set([b, d]));
      assert.deepEqual(await s().exclusions.excluded(b, [a, c, d]), new Set([a]));
      assert.deepEqual(await s().exclusions.excluded(d, [a]), new Set([a]));
      assert.deepEqual(await s().exclusions.excluded(c, [a, b, d]), new Set(), "not transitive");
      assert.deepEqual(await s().exclusions.excluded(a, []), new Set());
    });

    it("an exclusion with a ttl expires", async () => {
      const [a, b] = [id("a"), id("b")];
      await s().exclusions.add(a, b, 50);
      assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set([b]));
      assert.deepEqual(await s().exclusions.excluded(b, [a]), new Set([a]));
      await sleep(150);
      assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set());
      assert.deepEqual(await s().exclusions.excluded(b, [a]), new Set());
    });

    it("a forever exclusion is not shortened by a later ttl", async () => {
      const [a, b] = [id("a"), id("b")];
      await s().exclusions.add(a, b);
      await s().exclusions.add(b, a, 30);
      await sleep(120);
      assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set([b]));
    });

    it("a long ttl is not shortened by a shorter one; a ttl can be made forever", async () => {
      const [a, b, c] = [id("a"), id("b"), id("c")];
      await s().exclusions.add(a, b, 60_000);
      await s().exclusions.add(a, b, 30);
      await s().exclusions.add(a, c, 30);
      await s().exclusions.add(c, a);
      await sleep(120);
      assert.deepEqual(await s().exclusions.excluded(a, [b, c]), new Set([b, c]));
    });
  });
}
