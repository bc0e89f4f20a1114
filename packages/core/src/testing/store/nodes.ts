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
 * The conformance tests of `NodeStore`: `alive` is the subset of nodes that heartbeat
 * within their ttl, and `remove` forgets a node at once. Needs `store.nodes`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function nodesConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"nodes">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "nodes", options, ({ s, id }) => {
    it("alive returns the subset of nodes that heartbeat", async () => {
      const [a, b, c] = [id("a"), id("b"), id("c")];
      assert.deepEqual(await s().nodes.alive([a, b, c]), new Set());
      await s().nodes.heartbeat(a, 60_000);
      await s().nodes.heartbeat(b, 60_000);
      assert.deepEqual(await s().nodes.alive([a, b, c]), new Set([a, b]));
      assert.deepEqual(await s().nodes.alive([c, b]), new Set([b]));
      assert.deepEqual(await s().nodes.alive([]), new Set());
    });

    it("a node is dead once its ttl passes without a heartbeat", async () => {
      const [short, renewed] = [id("short"), id("renewed")];
      await s().nodes.heartbeat(short, 60);
      await s().nodes.heartbeat(renewed, 60);
      await s().nodes.heartbeat(renewed, 60_000);
      assert.deepEqual(await s().nodes.alive([short, renewed]), new Set([short, renewed]));
      await sleep(150);
      assert.deepEqual(await s().nodes.alive([short, renewed]), new Set([renewed]));
      await s().nodes.heartbeat(short, 60_000);
      assert.deepEqual(await s().nodes.alive([short]), new Set([short]), "a heartbeat revives it");
    });

    it("remove forgets the node at once", async () => {
      const [a, b] = [id("a"), id("b")];
      await s().nodes.heartbeat(a, 60_000);
      await s().nodes.heartbeat(b, 60_000);
      await s().nodes.remove(a);
      assert.deepEqual(await s().nodes.alive([a, b]), new Set([b]));
      await s().nodes.remove(id("never"));
      await s().nodes.remove(a);
      assert.deepEqual(await s().nodes.alive([a, b]), new Set([b]));
    });
  });
}
