// Exclusions that follow a guest's device id (handshake parameter `device`, docs/protocol.md
// section 6, "Location privacy"): a guest skipped with `next` that comes back as a new session
// with the same device id stays apart from whoever skipped it for the cooldown, on every store;
// guests with another device id, or none, from the same address are not held back by it.
import type { Store } from "@whisperchat/core";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import { redisUp, testRedisStore } from "../../store-redis/test/redis.js";
import { startWsHarness, type WsHarness } from "./harness.js";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HERE = { lat: 48.85, lng: 2.35 };
const COOLDOWN_MS = 1500;
const ANA = "device-of-ana-0123456789";
const BEN = "device-of-ben-0123456789";

const stores: ["memory" | "redis", () => Store][] = [["memory", () => createMemoryStore()]];
if (redisUp) stores.push(["redis", () => testRedisStore(cleanups)]);

async function start(store: Store): Promise<WsHarness> {
  const h = await startWsHarness({ store, nextCooldownMs: COOLDOWN_MS }, {}, { closeStore: false });
  cleanups.push(() => h.close());
  return h;
}

/** A guest, with `device` as its device id when given, that joins at HERE. */
async function guest(h: WsHarness, device?: string): Promise<TestClient> {
  const c = await h.connect({ device } as { token?: string });
  await expectFrame(c, "welcome");
  c.send({ type: "join", location: HERE, rangeKm: 5 });
  await expectFrame(c, "waiting");
  return c;
}

/**
 * Whether `c` was matched by the time a later request of its own is answered (its search is
 * over then). Consumes the frames up to that answer.
 */
async function matchedNow(c: TestClient): Promise<boolean> {
  c.send({ type: "ping", id: "settled" });
  let matched = false;
  for (;;) {
    const f = await c.next();
    if (f.type === "matched") matched = true;
    else if (f.type === "pong") return matched;
  }
}

/**
 * Ana (device ANA) is matched with Ben (device BEN, or the ids given) and skips him with `next`; Ben ends his
 * session (a tab closed) and comes back as a new session with `device` (his own id, another one,
 * or none) while Ana waits. Resolves both, the new Ben waiting, and when Ana sent `next`.
 */
async function skipAndComeBack(h: WsHarness, device: string | undefined, ids = { ana: ANA, ben: BEN }) {
  const ana = await guest(h, ids.ana);
  const ben = await guest(h, ids.ben);
  await expectFrame(ana, "matched");
  await expectFrame(ben, "matched");
  const nextAt = Date.now();
  ana.send({ type: "next" });
  await expectFrame(ana, "waiting");
  await expectFrame(ben, "partner_left");
  await ben.close();
  const again = await guest(h, device);
  return { ana, again, nextAt };
}

describe.each(stores)("exclusions that follow a guest's device id (%s store)", (_kind, makeStore) => {
  it("a guest skipped with next, back as a new session with its device id, stays apart for the cooldown, then is matched", async () => {
    const h = await start(makeStore());
    const { ana, again, nextAt } = await skipAndComeBack(h, BEN);
    expect(await matchedNow(again)).toBe(false);
    expect(ana.pending().some((f) => f.type === "matched")).toBe(false);
    // Once the cooldown is over the two are eligible again, and a search finds them.
    await expectFrame(again, "matched", COOLDOWN_MS + 3000);
    await expectFrame(ana, "matched");
    expect(Date.now() - nextAt).toBeGreaterThanOrEqual(COOLDOWN_MS);
  }, 20_000);

  it("the one who skipped, back with its device id, stays apart too", async () => {
    const h = await start(makeStore());
    const ana = await guest(h, ANA);
    const ben = await guest(h, BEN);
    await expectFrame(ana, "matched");
    await expectFrame(ben, "matched");
    ana.send({ type: "next" });
    await expectFrame(ana, "waiting");
    await expectFrame(ben, "partner_left");
    ben.send({ type: "next" }); // Ben waits again
    await expectFrame(ben, "waiting");
    await ana.close(); // a reload: a new session, not a resume
    const again = await guest(h, ANA);
    expect(await matchedNow(again)).toBe(false);
  }, 20_000);

  it("a guest back with another device id, or none, from the same address, is matched at once", async () => {
    const h = await start(makeStore());
    const other = await skipAndComeBack(h, "another-device-0123456789");
    expect(await matchedNow(other.again)).toBe(true);
    await other.ana.close();
    await other.again.close();
    // (Another pair of devices: the first two are still kept apart.)
    const ids = { ana: "device-of-cleo-0123456789", ben: "device-of-dan-0123456789" };
    const none = await skipAndComeBack(h, undefined, ids);
    expect(await matchedNow(none.again)).toBe(true);
  }, 20_000);

  it("guests without a device id from one address: a next keeps apart only the two users it was between", async () => {
    const h = await start(makeStore());
    const a = await guest(h);
    const b = await guest(h);
    await expectFrame(a, "matched");
    await expectFrame(b, "matched");
    a.send({ type: "next" });
    await expectFrame(a, "waiting");
    await expectFrame(b, "partner_left");
    expect(await matchedNow(a)).toBe(false); // nobody else is waiting
    const c = await guest(h); // a third guest on the same address
    expect(await matchedNow(c)).toBe(true);
    await expectFrame(a, "matched");
  }, 20_000);
});
