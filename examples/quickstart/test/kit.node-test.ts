import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { WhisperHub } from "@whisperchat/core";
import { createTestHub, type TestHub } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";

/** The app's analytics: how often each pair of users met. */
function countMeetings(hub: WhisperHub): Map<string, number> {
  const meetings = new Map<string, number>();
  hub.on("matched", ({ identity, partner }) => {
    const pair = [identity.userId, partner.userId].sort().join(" & ");
    meetings.set(pair, (meetings.get(pair) ?? 0) + 1);
  });
  return meetings;
}

const PARIS = { lat: 48.8566, lng: 2.3522 };
let kit: TestHub;
beforeEach(() => {
  kit = createTestHub({ store: createMemoryStore, nextCooldownMs: 60_000 });
});
afterEach(() => kit.close());

test("two users who moved on meet again after the cooldown, and it counts twice", async () => {
  const meetings = countMeetings(kit.hub);
  const ana = await kit.connect();
  const ben = await kit.connect();
  await ana.join({ location: PARIS, rangeKm: 5 });
  await ben.join({ location: PARIS, rangeKm: 5 });
  await ana.expectFrame("matched");
  await ana.next(); // Ana moves on...
  await ben.expectFrame("partner_left");
  await ben.next(); // ...and so does Ben: both wait, kept apart for a minute
  await kit.clock.advance(59_000);
  await ana.ping();
  assert.deepEqual(ana.pending(), []);
  await kit.clock.advance(2_000);
  await ana.expectFrame("matched");
  const pair = [ana.welcome.user.userId, ben.welcome.user.userId].sort().join(" & ");
  assert.deepEqual([...meetings], [[pair, 2]]);
});
