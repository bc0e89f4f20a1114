import assert from "node:assert/strict";
import type { BusMessage, FrameMessage } from "../../store.js";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
  until,
} from "./shared.js";

/** Options of {@link relayConformance}. */
export interface RelayConformanceOptions extends StoreCapabilityOptions {
  /**
   * Whether the store has a relay. When `true` the suite checks that it has one and runs the
   * relay tests; when `false` it only checks that the store has none.
   * @default true
   */
  present?: boolean;
}

/**
 * The conformance tests of the optional `RelayStore` (`store.relay`): a batch is limited
 * by the limiter's bucket, stored in the room's bounded history and published to the partner's
 * node, whole and in call order; nothing is stored or published for a missing room or a refused
 * message. Needs `store.relay`, and `store.rooms`, `store.bus` and `store.limiter` to check what
 * a batch did. With `present: false` it only checks that the store has no relay.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function relayConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"relay" | "rooms" | "bus" | "limiter">>,
  options?: RelayConformanceOptions,
): void {
  const { it } = t;
  const present = options?.present ?? true;
  describeStoreSuite(t, makeStore, "relay", options, ({ s, id, room, message, busMessage }) => {
    it(present ? "the store has a relay" : "the store has no relay", () => {
      assert.equal(s().relay !== undefined, present);
    });
    if (!present) return;

    const rule = { capacity: 3, ratePerSec: 5 };
    const relay = () => {
      const r = s().relay;
      if (r === undefined) throw new Error("the store has no relay");
      return r;
    };
    const batchOf = (from: number, count: number, routeTo?: string) => {
      const messages = Array.from({ length: count }, (_, i) => message(from + i));
      const frames = messages.map((_, i) => busMessage(id("s-b"), from + i) as FrameMessage);
      return {
        roomId: id("r1"),
        messages,
        historyLimit: 10,
        bucket: { key: id("bucket"), rule: { capacity: 100, ratePerSec: 100 } },
        ...(routeTo === undefined ? {} : { route: { nodeId: routeTo, frames } }),
      };
    };
    const numbers = (got: BusMessage[]) =>
      got.map((m) => ("frame" in m && m.frame.type === "message" ? m.frame.ts - 1_700_000_000_000 : -1));

    it("stores the messages in order and publishes each frame to the partner's node", async () => {
      await s().rooms.create(room("r1"));
      const got: BusMessage[] = [];
      const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
      const batch = batchOf(0, 4, id("node-2"));
      assert.deepEqual(await relay().send(batch), {
        allowed: 4,
        retryAfterMs: 0,
        stored: true,
        routed: true,
      });
      assert.deepEqual(await relay().send(batchOf(4, 1, id("node-2"))), {
        allowed: 1,
        retryAfterMs: 0,
        stored: true,
        routed: true,
      });
      await until(() => got.length === 5, "the five frames");
      assert.deepEqual(got.slice(0, 4), batch.route?.frames, "frames arrive whole, one by one");
      assert.deepEqual(numbers(got), [0, 1, 2, 3, 4]);
      assert.deepEqual(
        await s().rooms.history(id("r1")),
        [0, 1, 2, 3, 4].map((n) => message(n)),
      );
      await off();
    });

    it("keeps the newest historyLimit messages, as append does", async () => {
      await s().rooms.create(room("r1"));
      await relay().send({ ...batchOf(0, 6), historyLimit: 4 });
      assert.deepEqual(
        await s().rooms.history(id("r1")),
        [2, 3, 4, 5].map((n) => message(n)),
      );
      await relay().send({ ...batchOf(6, 1), historyLimit: 2 });
      assert.deepEqual(await s().rooms.history(id("r1")), [message(5), message(6)]);
    });

    it("the bucket allows the first messages that fit; the rest are neither stored nor published", async () => {
      await s().rooms.create(room("r1"));
      const got: BusMessage[] = [];
      const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
      const result = await relay().send({ ...batchOf(0, 5, id("node-2")), bucket: { key: id("k"), rule } });
      assert.equal(result.allowed, 3);
      assert.equal(result.stored, true);
      assert.equal(result.routed, true);
      // About 1 / ratePerSec = 200 ms, less whatever drained meanwhile.
      assert.ok(
        result.retryAfterMs > 50 && result.retryAfterMs <= 210,
        `retryAfterMs ${result.retryAfterMs}`,
      );
      await until(() => got.length >= 3, "the allowed frames");
      await sleep(20);
      assert.deepEqual(numbers(got), [0, 1, 2]);
      assert.deepEqual(
        await s().rooms.history(id("r1")),
        [0, 1, 2].map((n) => message(n)),
      );
      // The bucket is the limiter's: both see it full.
      assert.equal((await s().limiter.consume(id("k"), rule, 1)).allowed, false);
      const refused = await relay().send({
        ...batchOf(5, 2, id("node-2")),
        bucket: { key: id("k"), rule },
      });
      assert.equal(refused.allowed, 0);
      assert.ok(refused.retryAfterMs > 0);
      assert.equal(refused.routed, false);
      await sleep(refused.retryAfterMs + 15);
      assert.equal((await relay().send({ ...batchOf(7, 1), bucket: { key: id("k"), rule } })).allowed, 1);
      await off();
    });

    it("a room that does not exist stores and publishes nothing", async () => {
      const got: BusMessage[] = [];
      const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
      const result = await relay().send(batchOf(0, 2, id("node-2")));
      assert.deepEqual(result, { allowed: 2, retryAfterMs: 0, stored: false, routed: false });
      await sleep(30);
      assert.deepEqual(got, []);
      assert.deepEqual(await s().rooms.history(id("r1")), []);
      await off();
    });

    it("stores even when no node listens; routed tells", async () => {
      await s().rooms.create(room("r1"));
      assert.deepEqual(await relay().send(batchOf(0, 2, id("nobody"))), {
        allowed: 2,
        retryAfterMs: 0,
        stored: true,
        routed: false,
      });
      assert.deepEqual(await relay().send(batchOf(2, 1)), {
        allowed: 1,
        retryAfterMs: 0,
        stored: true,
        routed: false,
      });
      assert.deepEqual(
        await s().rooms.history(id("r1")),
        [0, 1, 2].map((n) => message(n)),
      );
    });

    it("batches sent without waiting for each other arrive in call order", async () => {
      await s().rooms.create(room("r1"));
      const got: BusMessage[] = [];
      const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
      const sizes = [1, 3, 2, 5, 1, 4];
      let from = 0;
      const sends = sizes.map((size) => {
        const p = relay().send(batchOf(from, size, id("node-2")));
        from += size;
        return p;
      });
      assert.ok((await Promise.all(sends)).every((r) => r.routed));
      await until(() => got.length === from, "every frame");
      assert.deepEqual(
        numbers(got),
        Array.from({ length: from }, (_, n) => n),
      );
      await off();
    });

    it("refuses a route without one frame per message", async () => {
      await s().rooms.create(room("r1"));
      const batch = batchOf(0, 2, id("node-2"));
      await assert.rejects(
        async () =>
          relay().send({
            ...batch,
            route: { nodeId: id("node-2"), frames: batch.route?.frames.slice(1) ?? [] },
          }),
        RangeError,
      );
      assert.deepEqual(await s().rooms.history(id("r1")), [], "nothing stored");
    });
  });
}
