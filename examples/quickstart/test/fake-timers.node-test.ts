// The test kit beside node:test's fake timers (mock.timers): the manual clock still moves the
// hub's time, or the fake timers drive a hub on the system clock instead. The kit's own timeouts
// stay real either way. Run with: node --test --import tsx
import assert from "node:assert/strict";
import { afterEach, mock, test } from "node:test";
import { systemClock } from "@whisperchat/core";
import { createTestHub, type TestChatClient } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";

const PARIS = { lat: 48.8566, lng: 2.3522 };

afterEach(() => mock.timers.reset());

async function chatting(kit: { connect(): Promise<TestChatClient> }) {
  const ana = await kit.connect();
  const ben = await kit.connect();
  await ana.join({ location: PARIS, rangeKm: 5 });
  await ben.join({ location: PARIS, rangeKm: 5 });
  await ana.expectFrame("matched");
  await ben.expectFrame("matched");
  return [ana, ben] as const;
}

test("the manual clock moves time with every timer faked", async () => {
  mock.timers.enable(); // setTimeout, setInterval, setImmediate and Date
  const kit = createTestHub({ store: createMemoryStore, resumeGraceMs: 30_000 });
  try {
    const [ana, ben] = await chatting(kit);
    await ben.drop();
    await ana.expectFrame("partner_away");
    await kit.clock.advance(30_000);
    assert.equal((await ana.expectFrame("partner_left")).reason, "disconnected");
  } finally {
    await kit.close();
  }
});

test("fake timers drive a hub on the system clock", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  const kit = createTestHub({ store: createMemoryStore, clock: systemClock, resumeGraceMs: 30_000 });
  try {
    const [ana, ben] = await chatting(kit);
    await ben.drop();
    await ana.expectFrame("partner_away");
    mock.timers.tick(29_999);
    await ana.ping();
    assert.deepEqual(ana.pending(), []);
    mock.timers.tick(1);
    assert.equal((await ana.expectFrame("partner_left")).reason, "disconnected");
  } finally {
    await kit.close();
  }
});
