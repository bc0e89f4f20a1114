// A block is kept forever, but a guest's user id ends with its session: exclusions that involve
// a guest must not outlive what a session record can (sessionRecordTtlMs).
import type { Identity, Store } from "@whisperchat/core";
import { expectFrame } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { createRedisStore } from "@whisperchat/store-redis";
import { afterEach, describe, expect, it } from "vitest";
import { deleteUnder, connect as redisClient, redisUp, testPrefix } from "../../store-redis/test/redis.js";
import { startWsHarness, type WsHarness } from "./harness.js";
import { pair } from "./resume-attacks.js";

let h: WsHarness | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const c of cleanups.splice(0)) await c();
});

const users = (
  _handshake: { params: Record<string, unknown> },
  token: string | undefined,
): Identity | null => (token === undefined ? null : { userId: token, name: token, roles: [] });

/** a blocks b; resolves both user ids. */
async function block(harness: WsHarness, tokens: [string | undefined, string | undefined]) {
  const as = (token: string | undefined) => (token === undefined ? {} : { token });
  const { a, b, aUser, bUser } = await pair(harness, [as(tokens[0]), as(tokens[1])]);
  a.send({ type: "block" });
  await expectFrame(a, "waiting");
  await expectFrame(b, "partner_left");
  await a.close();
  await b.close();
  return { a: aUser, b: bUser };
}

describe("exclusions of guests", () => {
  it("memory store: a block by or of a guest ends with the session-record lifetime; between users it stays", async () => {
    let now = Date.now();
    const store: Store = createMemoryStore({ now: () => now });
    h = await startWsHarness({ store, authenticate: users, sessionRecordTtlMs: 60_000 });
    const byGuest = await block(h, [undefined, "bob"]);
    const ofGuest = await block(h, ["carol", undefined]);
    const users2 = await block(h, ["dave", "erin"]);
    expect((await store.exclusions.excluded(byGuest.a, [byGuest.b])).size).toBe(1);
    now += 60_001;
    expect((await store.exclusions.excluded(byGuest.a, [byGuest.b])).size).toBe(0);
    expect((await store.exclusions.excluded("bob", [byGuest.a])).size).toBe(0);
    expect((await store.exclusions.excluded("carol", [ofGuest.b])).size).toBe(0);
    expect((await store.exclusions.excluded("dave", ["erin"])).size).toBe(1);
    expect(users2.a).toBe("dave");
  });

  it.skipIf(!redisUp)(
    "Redis: a guest's exclusion set expires; a user's block between users does not",
    async () => {
      const client = redisClient();
      const keyPrefix = testPrefix();
      cleanups.push(async () => {
        await deleteUnder(client, keyPrefix);
        client.disconnect();
      });
      h = await startWsHarness({ store: createRedisStore({ client, keyPrefix }), authenticate: users });
      const byGuest = await block(h, [undefined, "bob"]);
      await block(h, ["dave", "erin"]);
      const guestTtl = await client.pttl(`${keyPrefix}excl:{${byGuest.a}}`);
      expect(guestTtl).toBeGreaterThan(0);
      expect(guestTtl).toBeLessThanOrEqual(86_400_000);
      expect(await client.pttl(`${keyPrefix}excl:{dave}`)).toBe(-1);
    },
  );
});

describe("a guest that keeps a device id", () => {
  const device = "d3v1ce-of-ana-0123456789";
  const connectAs = (harness: WsHarness, params: Record<string, string>) =>
    (harness.connect as (p: Record<string, string>) => ReturnType<WsHarness["connect"]>)(params);

  it("is the same user on every session, and whoever it skipped stays apart after a reload", async () => {
    h = await startWsHarness({ store: createMemoryStore(), nextCooldownMs: 60_000 });
    const ana = await connectAs(h, { device });
    const anaWelcome = await expectFrame(ana, "welcome");
    const ben = await h.connect();
    await expectFrame(ben, "welcome");
    ana.send({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
    await expectFrame(ana, "waiting");
    ben.send({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
    await expectFrame(ben, "waiting");
    await expectFrame(ben, "matched");
    await expectFrame(ana, "matched");
    ana.send({ type: "next" });
    await expectFrame(ben, "partner_left");
    await ana.close(); // a reload: a new session, not a resume
    ben.send({ type: "next" });
    await expectFrame(ben, "waiting");

    const again = await connectAs(h, { device });
    const againWelcome = await expectFrame(again, "welcome");
    expect(againWelcome.sessionId).not.toBe(anaWelcome.sessionId);
    expect(againWelcome.user.userId).toBe(anaWelcome.user.userId);
    expect(againWelcome.user.userId).not.toContain(device); // derived, never the id itself
    again.send({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
    await expectFrame(again, "waiting");
    // Its search is over once a later request is answered: kept apart for the cooldown.
    again.send({ type: "ping" });
    await expectFrame(again, "pong");
    expect(again.pending().some((f) => f.type === "matched")).toBe(false);
    // A guest without the device id is a new user: matched with one of them at once.
    const cleo = await h.connect();
    await expectFrame(cleo, "welcome");
    cleo.send({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
    await expectFrame(cleo, "waiting");
    await expectFrame(cleo, "matched");
  });

  it("is refused when the device id is malformed", async () => {
    h = await startWsHarness({ store: createMemoryStore() });
    const refused = await h.connectRefused({ device: "short" } as never);
    expect(refused.status).toBe(400);
  });
});
