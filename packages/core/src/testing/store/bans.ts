import assert from "node:assert/strict";
import type { BanRecord } from "../../store.js";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
} from "./shared.js";

/**
 * The conformance tests of `BanStore`: bans with and without an end, an ended ban out of
 * force, and a new ban that replaces the earlier one (never merged). Needs `store.bans`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function bansConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"bans">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "bans", options, ({ s, id }) => {
    it("add, get and remove", async () => {
      const forever: BanRecord = { userId: id("u1"), reason: "spam", createdAt: 1_700_000_000_000 };
      const timed: BanRecord = {
        userId: id("u2"),
        until: Date.now() + 60_000,
        createdAt: 1_700_000_000_001,
      };
      await s().bans.add(forever);
      await s().bans.add(timed);
      assert.deepEqual(await s().bans.get(forever.userId), forever);
      assert.deepEqual(await s().bans.get(timed.userId), timed);
      assert.equal(await s().bans.get(id("u3")), undefined);
      assert.equal(await s().bans.remove(forever.userId), true);
      assert.equal(await s().bans.get(forever.userId), undefined);
      assert.equal(await s().bans.remove(forever.userId), false);
      assert.equal(await s().bans.remove(id("never")), false);
      assert.deepEqual(await s().bans.get(timed.userId), timed, "other bans stay");
    });

    it("a ban whose until has passed is not in force", async () => {
      await s().bans.add({ userId: id("past"), until: Date.now() - 1000, createdAt: 1 });
      assert.equal(await s().bans.get(id("past")), undefined);
      assert.equal(await s().bans.remove(id("past")), false);

      const until = Date.now() + 80;
      const soon: BanRecord = { userId: id("soon"), until, createdAt: 2 };
      await s().bans.add(soon);
      const got = await s().bans.get(soon.userId);
      // Only checked while the ban is surely in force, so a slow machine cannot fail it.
      if (Date.now() < until - 5) assert.deepEqual(got, soon);
      await sleep(150);
      assert.equal(await s().bans.get(soon.userId), undefined);
      assert.equal(await s().bans.remove(soon.userId), false);
    });

    it("a new add replaces the earlier ban", async () => {
      const user = id("u");
      await s().bans.add({ userId: user, until: Date.now() + 60, reason: "first", createdAt: 1 });
      const forever: BanRecord = { userId: user, reason: "second", createdAt: 2 };
      await s().bans.add(forever);
      assert.deepEqual(await s().bans.get(user), forever);
      await sleep(150);
      assert.deepEqual(await s().bans.get(user), forever, "the forever ban outlives the first one's end");

      const shorter: BanRecord = {
        userId: user,
        until: Date.now() + 60_000,
        reason: "third",
        createdAt: 3,
      };
      await s().bans.add(shorter);
      assert.deepEqual(await s().bans.get(user), shorter, "a ban is replaced, not merged or kept longest");
      await s().bans.add({ userId: user, until: Date.now() - 1, createdAt: 4 });
      assert.equal(await s().bans.get(user), undefined, "an ended ban replaces the one in force");
    });
  });
}
