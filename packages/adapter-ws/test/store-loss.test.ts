// A room that disappears from the store (an empty Redis restart, a failover to an empty replica)
// must not leave its two members talking into nothing: both are told `partner_left` `lost`.
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startWsHarness, type WsHarness } from "./harness.js";
import { pair } from "./resume-attacks.js";

const HERE = { lat: 40.4, lng: -3.7 };
let h: WsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("a room the store lost", () => {
  it("a message into it is refused, then both members get partner_left lost and are idle", async () => {
    h = await startWsHarness();
    const { a, b, roomId } = await pair(h);
    await h.hub.store.rooms.delete(roomId); // what an empty restart of the store does
    a.send({ type: "message", text: "hello?", id: "m1" });
    const refused = await a.next();
    expect(refused).toMatchObject({ type: "error", code: "not_in_room", id: "m1" });
    expect(await expectFrame(a, "partner_left", 5000)).toEqual({
      type: "partner_left",
      roomId,
      reason: "lost",
    });
    expect(await expectFrame(b, "partner_left", 5000)).toEqual({
      type: "partner_left",
      roomId,
      reason: "lost",
    });
    // Both are idle and can find someone again.
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(b, "waiting");
    await expectFrame(a, "matched");
    await expectFrame(b, "matched");
    expect(a.pending().filter((f) => f.type === "partner_left")).toEqual([]);
  });
});
