// The app test kit on a real hub and memory store: time-bound behaviour in milliseconds on the
// manual clock or under vitest's fake timers, the client helpers, and the failures they report.
import { createMemoryStore, type MemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock, WhisperError } from "../src/index.js";
import {
  createTestHub,
  type ManualClock,
  type TestChatClient,
  type TestHub,
  type TestHubOptions,
} from "../src/testing/index.js";

const PARIS = { lat: 48.8566, lng: 2.3522 };
const NEAR_PARIS = { lat: 48.86, lng: 2.36 };

let kit: TestHub<ManualClock> | TestHub<typeof systemClock> | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await kit?.close();
  kit = undefined;
});

function start(options: Omit<TestHubOptions, "store"> = {}): TestHub<ManualClock> {
  const k = createTestHub({ store: createMemoryStore, ...options });
  kit = k;
  return k;
}

async function pair(k: TestHub<ManualClock> | TestHub<typeof systemClock>) {
  const ana = await k.connect();
  const ben = await k.connect();
  await ana.join({ location: PARIS, rangeKm: 5, name: "Ana" });
  await ben.join({ location: NEAR_PARIS, rangeKm: 5, name: "Ben" });
  const roomId = (await ana.expectFrame("matched")).roomId;
  expect((await ben.expectFrame("matched")).roomId).toBe(roomId);
  return { ana, ben, roomId };
}

describe("createTestHub on the manual clock", () => {
  it("pairs and relays with the helpers: replies are taken by their request, the rest is queued", async () => {
    const k = start();
    const { ana, ben, roomId } = await pair(k);
    const ack = await ana.send("hola");
    expect(ack).toMatchObject({ type: "ack", messageId: expect.any(String) });
    expect(await ben.expectFrame("message")).toMatchObject({
      roomId,
      text: "hola",
      messageId: ack.messageId,
    });
    ben.typing(true);
    expect(await ana.expectFrame("typing")).toEqual({ type: "typing", active: true });
    expect(await ana.ping()).toMatchObject({ type: "pong" });
    expect(ana.pending()).toEqual([]);
    expect(ana.frames.map((f) => f.type)).toEqual(["welcome", "waiting", "matched", "ack", "typing", "pong"]);
    const waiting = await ana.next();
    expect(waiting.type).toBe("waiting");
    expect(await ben.expectFrame("partner_left")).toEqual({ type: "partner_left", roomId, reason: "next" });
    expect((await ben.leave()).type).toBe("ack");
  });

  it("an error reply rejects the request with a WhisperError carrying its code", async () => {
    const k = start();
    const ana = await k.connect();
    const refused = await ana.send("anyone?").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WhisperError);
    expect(refused).toMatchObject({ code: "not_in_room" });
    await expect(ana.join({ location: { lat: 95, lng: 0 }, rangeKm: 5 })).rejects.toMatchObject({
      code: "invalid_location",
    });
  });

  it("an authorize hook refuses alike whether it answers false or a promise of false", async () => {
    for (const answer of [false, Promise.resolve(false)] as const) {
      const k = start({
        authorize: (_identity, action) => (action === "message" ? answer : true),
      });
      const { ana } = await pair(k);
      await expect(ana.send("hola")).rejects.toMatchObject({ code: "forbidden" });
      await k.close();
      kit = undefined;
    }
  });

  it("ends a dropped partner's room when the resume grace is over, not a millisecond before", async () => {
    const k = start({ resumeGraceMs: 30_000 });
    const { ana, ben, roomId } = await pair(k);
    await ana.drop();
    expect(await ben.expectFrame("partner_away")).toEqual({ type: "partner_away", roomId });
    await k.clock.advance(29_999);
    await ben.ping();
    expect(ben.pending()).toEqual([]);
    await k.clock.advance(1);
    expect(await ben.expectFrame("partner_left")).toEqual({
      type: "partner_left",
      roomId,
      reason: "disconnected",
    });
  });

  it("resumes within the grace with every frame missed, in order", async () => {
    const k = start();
    const { ana, ben, roomId } = await pair(k);
    await ben.drop();
    await ana.send("one");
    await ana.send("two");
    await k.clock.advance(10_000);
    const back = await k.connect({ resume: ben.welcome.resumeToken });
    expect(back.welcome).toMatchObject({ resumed: true, sessionId: ben.sessionId });
    expect((await back.expectFrame("message")).text).toBe("one");
    expect((await back.expectFrame("message")).text).toBe("two");
    expect(await ana.expectFrame("partner_back")).toEqual({ type: "partner_back", roomId });
  });

  it("keeps two users apart for the cooldown after next", async () => {
    const k = start({ nextCooldownMs: 60_000 });
    const { ana, ben } = await pair(k);
    await ana.next();
    await ben.expectFrame("partner_left");
    await ben.next();
    await k.clock.advance(59_000);
    await ana.ping();
    expect(ana.pending()).toEqual([]);
    await k.clock.advance(2_000);
    await ana.expectFrame("matched");
    await ben.expectFrame("matched");
  });

  it("closes a session with 4401 when its token expires, unless refreshed with auth", async () => {
    let clock: ManualClock | undefined;
    const k = start({
      authenticate: (_handshake, token) => ({
        userId: token ?? "nobody",
        name: "Ana",
        roles: [],
        expiresAt: (clock?.now() ?? 0) + 60_000,
      }),
      reauthenticate: (_token, current) => ({ ...current, expiresAt: (clock?.now() ?? 0) + 60_000 }),
    });
    clock = k.clock;
    const ana = await k.connect({ token: "ana" });
    const ben = await k.connect({ token: "ben" });
    await k.clock.advance(50_000);
    expect((await ben.auth("fresh")).type).toBe("ack");
    await k.clock.advance(10_000);
    expect(await ana.closed).toEqual({ code: 4401, reason: "token expired" });
    expect(ben.closeInfo).toBeUndefined();
    await k.clock.advance(60_000);
    expect((await ben.closed).code).toBe(4401);
  });

  it("rate limits a flood, and the same message goes through once retryAfterMs has passed on the clock", async () => {
    const k = start({ messageRate: { capacity: 3, ratePerSec: 1 } });
    const { ana, ben } = await pair(k);
    for (const text of ["1", "2", "3"]) await ana.send(text);
    const limited = await ana.send("4").catch((error: unknown) => error);
    expect(limited).toMatchObject({ code: "rate_limited", retryAfterMs: expect.any(Number) });
    await k.clock.advance((limited as WhisperError).retryAfterMs ?? 0);
    await ana.send("4");
    const texts: string[] = [];
    for (let i = 0; i < 4; i++) texts.push((await ben.expectFrame("message")).text);
    expect(texts).toEqual(["1", "2", "3", "4"]);
  });

  it("closes a client that stops reading with 1008 once it is maxBufferedBytes behind; its partner is told", async () => {
    const k = start({ maxBufferedBytes: 4000, messageRate: { capacity: 100, ratePerSec: 100 } });
    const { ana, ben, roomId } = await pair(k);
    ana.pause();
    const text = "x".repeat(200);
    let delivered = 0;
    for (; delivered < 100; delivered++) {
      const answer = await ben.send(text).catch((error: unknown) => error);
      if (answer instanceof WhisperError) {
        expect(answer.code).toBe("not_in_room");
        break;
      }
    }
    expect(delivered).toBeGreaterThan(10); // ~4000 bytes of 250-byte frames
    expect(delivered).toBeLessThan(40);
    expect(await ben.expectFrame("partner_left")).toEqual({
      type: "partner_left",
      roomId,
      reason: "disconnected",
    });
    // Nothing read while paused, the close included: it waits behind the unread frames.
    expect(ana.pending()).toEqual([]);
    expect(ana.closeInfo).toBeUndefined();
    ana.resume();
    expect(await ana.closed).toEqual({
      code: 1008,
      reason: "send buffer overflow: the client does not read",
    });
    expect(ana.pending().filter((f) => f.type === "message").length).toBe(delivered);
  });

  it("refuses a client the app's hooks refuse, with the status and code", async () => {
    const k = start({
      allowGuests: false,
      authenticate: (_handshake, token) => (token === "ok" ? { userId: "u", name: "U", roles: [] } : null),
    });
    await expect(k.connect()).rejects.toMatchObject({ name: "ConnectionRefusedError", status: 401 });
    expect((await k.connect({ token: "ok" })).welcome.user.userId).toBe("u");
  });

  it("expectFrame fails with the frames it saw and a word about the manual clock", async () => {
    const k = start();
    const ana = await k.connect();
    await ana.join({ location: PARIS, rangeKm: 5, name: "Ana" });
    const other = await k.connect();
    other.sendFrame({ type: "join", location: { lat: -33.87, lng: 151.21 }, rangeKm: 5 });
    ana.sendFrame({ type: "ping", id: "raw" });
    const failure = await ana.expectFrame("matched", { timeoutMs: 50 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toContain('expectFrame("matched"): nothing matching within 50 ms');
    expect(message).toContain('pong {"id":"raw"}');
    expect(message).toContain("every frame received: welcome, waiting, pong");
    expect(message).toContain("manual clock");
  });

  it("expectFrame fails at once on an error frame, and when the connection closes", async () => {
    const k = start();
    const ana = await k.connect();
    ana.sendFrame({ type: "dance" });
    await expect(ana.expectFrame("pong", { timeoutMs: 10_000 })).rejects.toThrow(
      /expectFrame\("pong"\): got error unknown_type/,
    );
    const closing = ana.expectFrame("matched", { timeoutMs: 10_000 });
    await k.hub.kick(ana.welcome.user.userId);
    await expect(closing).rejects.toThrow(/closed with 1008 \(kicked\)/);
    await expect(ana.nextFrame()).rejects.toThrow(/closed with 1008/);
    expect(await ana.expectClose()).toEqual({ code: 1008, reason: "kicked" });
  });

  it("expectClose fails when the connection stays open", async () => {
    const k = start();
    const ana = await k.connect();
    await expect(ana.expectClose({ timeoutMs: 20 })).rejects.toThrow(
      /expectClose\(\): still open after 20 ms[\s\S]*every frame received: welcome/,
    );
  });

  it("a store the kit makes runs on its clock: expiries, and the sweep as time passes", async () => {
    const k = start({ nextCooldownMs: 60_000 });
    const { ana } = await pair(k);
    await ana.next();
    const stats = () => (k.store as MemoryStore).stats();
    expect(stats().exclusions).toBe(1);
    await k.clock.advance(59_000);
    expect(stats().exclusions).toBe(1); // still in its cooldown: kept through a sweep (30 s)
    await k.clock.advance(31_000); // past the cooldown and another sweep, nobody calling sweep()
    expect(stats().exclusions).toBe(0);
  });

  it("needs a store, and says how to give one", () => {
    expect(() => createTestHub({} as Parameters<typeof createTestHub>[0])).toThrow(
      /store.*createMemoryStore/,
    );
  });

  it("takes a ready-made store and leaves it open", async () => {
    const store = createMemoryStore();
    const k = createTestHub({ store });
    const ana = await k.connect();
    await k.close();
    expect((await ana.closed).code).toBe(1001);
    expect(await store.pool.size()).toBe(0); // still usable
    await store.close();
  });
});

describe("createTestHub under vitest's fake timers", () => {
  it("runs the hub on the system clock, which the fake timers drive", async () => {
    vi.useFakeTimers();
    const k = createTestHub({ store: createMemoryStore, clock: systemClock, resumeGraceMs: 30_000 });
    kit = k;
    const { ana, ben, roomId } = await pair(k);
    await ana.drop();
    await ben.expectFrame("partner_away");
    await vi.advanceTimersByTimeAsync(29_000);
    await ben.ping();
    expect(ben.pending()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await ben.expectFrame("partner_left")).toEqual({
      type: "partner_left",
      roomId,
      reason: "disconnected",
    });
  });

  it("the manual clock works beside vi.useFakeTimers(), which fakes setImmediate too", async () => {
    vi.useFakeTimers();
    const k = start({ resumeGraceMs: 30_000 });
    const { ana, ben, roomId } = await pair(k);
    await ana.drop();
    await ben.expectFrame("partner_away");
    await k.clock.advance(30_000);
    expect(await ben.expectFrame("partner_left")).toEqual({
      type: "partner_left",
      roomId,
      reason: "disconnected",
    });
  });

  it("the kit's own timeouts stay real: a missing frame fails instead of hanging", async () => {
    vi.useFakeTimers();
    const k = createTestHub({ store: createMemoryStore, clock: systemClock });
    kit = k;
    const ana: TestChatClient = await k.connect();
    await expect(ana.expectFrame("matched", { timeoutMs: 20 })).rejects.toThrow(/within 20 ms/);
  });
});
