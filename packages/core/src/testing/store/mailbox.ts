import assert from "node:assert/strict";
import type { RoomFrame } from "../../protocol.js";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
} from "./shared.js";

/**
 * The conformance tests of `MailboxStore`: `drain` hands back the pushed frames oldest
 * first and empties the mailbox, only the newest `limit` are kept, mailboxes are separate per
 * session and expire `ttlMs` after the last push. Needs `store.mailbox`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function mailboxConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"mailbox">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "mailbox", options, ({ s, id, roomFrame }) => {
    it("drain resolves the pushed frames oldest first, then the mailbox is empty", async () => {
      const frames = [
        roomFrame(0),
        {
          type: "matched",
          roomId: id("room"),
          partner: { name: "Bob", distanceKm: 3 },
        } satisfies RoomFrame,
        { type: "typing", active: true } satisfies RoomFrame,
        { type: "partner_left", roomId: id("room"), reason: "disconnected" } satisfies RoomFrame,
        roomFrame(4),
      ];
      for (const frame of frames) await s().mailbox.push(id("a"), frame, 10, 60_000);
      assert.deepEqual(await s().mailbox.drain(id("a")), frames);
      assert.deepEqual(await s().mailbox.drain(id("a")), [], "drain empties the mailbox");
      await s().mailbox.push(id("a"), roomFrame(5), 10, 60_000);
      assert.deepEqual(await s().mailbox.drain(id("a")), [roomFrame(5)]);
    });

    it("drain of an unknown mailbox resolves []", async () => {
      assert.deepEqual(await s().mailbox.drain(id("never")), []);
    });

    it("keeps only the newest `limit` frames", async () => {
      for (let n = 0; n < 12; n++) await s().mailbox.push(id("a"), roomFrame(n), 5, 60_000);
      assert.deepEqual(
        await s().mailbox.drain(id("a")),
        [7, 8, 9, 10, 11].map((n) => roomFrame(n)),
      );
      for (let n = 0; n < 4; n++) await s().mailbox.push(id("a"), roomFrame(n), 10, 60_000);
      // A smaller limit trims on the next push.
      await s().mailbox.push(id("a"), roomFrame(4), 2, 60_000);
      assert.deepEqual(await s().mailbox.drain(id("a")), [roomFrame(3), roomFrame(4)]);
    });

    it("mailboxes of two sessions are separate", async () => {
      await s().mailbox.push(id("a"), roomFrame(1), 10, 60_000);
      await s().mailbox.push(id("b"), roomFrame(2), 10, 60_000);
      await s().mailbox.push(id("a"), roomFrame(3), 10, 60_000);
      assert.deepEqual(await s().mailbox.drain(id("b")), [roomFrame(2)]);
      assert.deepEqual(await s().mailbox.drain(id("a")), [roomFrame(1), roomFrame(3)]);
    });

    it("a mailbox expires ttlMs after the last push, with all its frames", async () => {
      await s().mailbox.push(id("short"), roomFrame(1), 10, 60);
      await s().mailbox.push(id("short"), roomFrame(2), 10, 60);
      await s().mailbox.push(id("renewed"), roomFrame(1), 10, 60);
      await s().mailbox.push(id("renewed"), roomFrame(2), 10, 60_000);
      await sleep(150);
      assert.deepEqual(await s().mailbox.drain(id("short")), []);
      assert.deepEqual(
        await s().mailbox.drain(id("renewed")),
        [roomFrame(1), roomFrame(2)],
        "the last push keeps the earlier frames too",
      );
      // An expired mailbox starts over.
      await s().mailbox.push(id("short"), roomFrame(3), 10, 60_000);
      assert.deepEqual(await s().mailbox.drain(id("short")), [roomFrame(3)]);
    });
  });
}
