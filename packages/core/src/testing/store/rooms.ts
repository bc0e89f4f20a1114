import assert from "node:assert/strict";
import type { TestApi } from "../test-api.js";
import { describeStoreSuite, type MakeStore, type StoreCapabilityOptions, type StorePart } from "./shared.js";

/**
 * The conformance tests of `RoomStore`: `create`, `get`, `delete` (of concurrent
 * deletes exactly one gets the record), and the bounded history (`append` keeps the newest
 * `limit` messages, refuses unknown or deleted rooms; `history`). Needs `store.rooms`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function roomsConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"rooms">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "rooms", options, ({ s, id, room, message }) => {
    it("create, get and delete", async () => {
      const r = room("r1");
      await s().rooms.create(r);
      assert.deepEqual(await s().rooms.get(r.roomId), r);
      assert.equal(await s().rooms.get(id("missing")), undefined);
      assert.deepEqual(await s().rooms.delete(r.roomId), r);
      assert.equal(await s().rooms.get(r.roomId), undefined);
      assert.equal(await s().rooms.delete(r.roomId), undefined, "a room is closed once");
      assert.equal(await s().rooms.delete(id("missing")), undefined);
    });

    it("concurrent deletes: exactly one caller gets the record", async () => {
      for (let round = 0; round < 10; round++) {
        const r = room(`race${round}`);
        await s().rooms.create(r);
        const results = await Promise.all([
          s().rooms.delete(r.roomId),
          s().rooms.delete(r.roomId),
          s().rooms.delete(r.roomId),
        ]);
        const winners = results.filter((x) => x !== undefined);
        assert.equal(winners.length, 1, `round ${round}`);
        assert.deepEqual(winners[0], r);
      }
    });

    it("append keeps the newest `limit` messages in order", async () => {
      const r = room("r1");
      await s().rooms.create(r);
      assert.deepEqual(await s().rooms.history(r.roomId), []);
      for (let n = 0; n < 3; n++) assert.equal(await s().rooms.append(r.roomId, message(n), 5), true);
      assert.deepEqual(await s().rooms.history(r.roomId), [message(0), message(1), message(2)]);
      for (let n = 3; n < 12; n++) assert.equal(await s().rooms.append(r.roomId, message(n), 5), true);
      assert.deepEqual(
        await s().rooms.history(r.roomId),
        [7, 8, 9, 10, 11].map((n) => message(n)),
      );
      // A smaller limit trims on the next append.
      assert.equal(await s().rooms.append(r.roomId, message(12), 2), true);
      assert.deepEqual(await s().rooms.history(r.roomId), [message(11), message(12)]);
    });

    it("histories of two rooms are separate", async () => {
      await s().rooms.create(room("r1"));
      await s().rooms.create(room("r2"));
      await s().rooms.append(id("r1"), message(1), 10);
      await s().rooms.append(id("r2"), message(2), 10);
      assert.deepEqual(await s().rooms.history(id("r1")), [message(1)]);
      assert.deepEqual(await s().rooms.history(id("r2")), [message(2)]);
    });

    it("append to an unknown or deleted room resolves false and stores nothing", async () => {
      assert.equal(await s().rooms.append(id("missing"), message(1), 10), false);
      assert.deepEqual(await s().rooms.history(id("missing")), []);
      const r = room("r1");
      await s().rooms.create(r);
      await s().rooms.append(r.roomId, message(1), 10);
      await s().rooms.delete(r.roomId);
      assert.deepEqual(await s().rooms.history(r.roomId), [], "delete closes the history too");
      assert.equal(await s().rooms.append(r.roomId, message(2), 10), false);
      assert.deepEqual(await s().rooms.history(r.roomId), []);
    });
  });
}
