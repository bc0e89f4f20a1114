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
 * within their ttl, `deadSince` tells when a dead node stopped, and `remove` forgets a node at
 * once. Needs `store.nodes`.
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

    it("deadSince tells when a dead node's last heartbeat ran out, and nothing for live or unknown nodes", async () => {
      const [gone, live, never] = [id("gone"), id("live"), id("never")];
      const before = Date.now();
      await s().nodes.heartbeat(gone, 60);
      await s().nodes.heartbeat(live, 60_000);
      assert.deepEqual(await s().nodes.deadSince([gone, live, never]), new Map(), "nobody is dead yet");
      await sleep(150);
      const dead = await s().nodes.deadSince([gone, live, never]);
      assert.deepEqual([...dead.keys()], [gone]);
      const at = dead.get(gone) as number;
      assert.ok(at >= before + 60 && at <= Date.now(), `stopped at ${at}, between ${before + 60} and now`);
      assert.deepEqual(await s().nodes.deadSince([]), new Map());
      await s().nodes.heartbeat(gone, 60_000);
      assert.deepEqual(await s().nodes.deadSince([gone]), new Map(), "a heartbeat revives it");
      await s().nodes.remove(live);
      assert.deepEqual(await s().nodes.deadSince([live]), new Map(), "a removed node stopped gracefully");
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
