import assert from "node:assert/strict";
import type { BusMessage } from "../../store.js";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
  until,
} from "./shared.js";

/**
 * The conformance tests of `BusStore`: `publish` delivers whole messages, in order, to the
 * node subscribed under that id only, and resolves `false` when no node is subscribed (never
 * was, or unsubscribed). Needs `store.bus`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function busConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"bus">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "bus", options, ({ s, id, busMessage }) => {
    it("publish to a subscribed node delivers the message and resolves true", async () => {
      const got: BusMessage[] = [];
      const unsubscribe = await s().bus.subscribe(id("node-1"), (m) => got.push(m));
      const sent = busMessage(id("session-1"), 1);
      const matched: BusMessage = {
        to: id("session-1"),
        roomId: id("room"),
        frame: { type: "matched", roomId: id("room"), partner: { name: "Bob", distanceKm: 3 } },
        partner: { sessionId: id("session-2"), userId: id("user-2"), nodeId: id("node-2"), name: "Bob" },
      };
      assert.equal(await s().bus.publish(id("node-1"), sent), true);
      assert.equal(await s().bus.publish(id("node-1"), matched), true);
      await until(() => got.length === 2, "the messages");
      assert.deepEqual(got, [sent, matched], "messages arrive whole: to, roomId, frame and partner");
      await unsubscribe();
    });

    it("publish to a node nobody subscribed resolves false", async () => {
      assert.equal(await s().bus.publish(id("nobody"), busMessage(id("s"), 1)), false);
    });

    it("after unsubscribe, publish resolves false and nothing is delivered", async () => {
      const got: BusMessage[] = [];
      const unsubscribe = await s().bus.subscribe(id("node-1"), (m) => got.push(m));
      await unsubscribe();
      assert.equal(await s().bus.publish(id("node-1"), busMessage(id("s"), 1)), false);
      await sleep(30);
      assert.deepEqual(got, []);
    });

    it("two nodes receive only their own messages", async () => {
      const one: BusMessage[] = [];
      const two: BusMessage[] = [];
      const off1 = await s().bus.subscribe(id("node-1"), (m) => one.push(m));
      const off2 = await s().bus.subscribe(id("node-2"), (m) => two.push(m));
      const m1 = busMessage(id("s1"), 1);
      const m2 = busMessage(id("s2"), 2);
      assert.equal(await s().bus.publish(id("node-1"), m1), true);
      assert.equal(await s().bus.publish(id("node-2"), m2), true);
      await until(() => one.length >= 1 && two.length >= 1, "both messages");
      await sleep(20);
      assert.deepEqual(one, [m1]);
      assert.deepEqual(two, [m2]);
      await off1();
      // Node 2 still subscribed after node 1 left.
      assert.equal(await s().bus.publish(id("node-1"), m1), false);
      assert.equal(await s().bus.publish(id("node-2"), m2), true);
      await until(() => two.length === 2, "node 2's second message");
      await off2();
    });

    it("keeps the order of many messages", async () => {
      const got: number[] = [];
      const off = await s().bus.subscribe(id("node-1"), (m) => {
        if ("frame" in m && m.frame.type === "message") got.push(m.frame.ts - 1_700_000_000_000);
      });
      const count = 300;
      // Published without waiting for each other, then awaited one by one.
      const results = await Promise.all(
        Array.from({ length: count }, (_, n) => s().bus.publish(id("node-1"), busMessage(id("s"), n))),
      );
      assert.ok(results.every(Boolean));
      for (let n = count; n < count + 50; n++) {
        assert.equal(await s().bus.publish(id("node-1"), busMessage(id("s"), n)), true);
      }
      await until(() => got.length >= count + 50, "every message", 5000);
      assert.deepEqual(
        got,
        Array.from({ length: count + 50 }, (_, n) => n),
      );
      await off();
    });
  });
}
