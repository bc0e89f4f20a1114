// Every timer of a hub runs on its clock: with a manual clock, grace periods, cooldowns and
// token expiry pass in milliseconds (no real waiting, no fake timers).
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Connection, ServerFrame, SessionLink, WhisperHub } from "../src/index.js";
import { createWhisper } from "../src/index.js";
import { manualClock } from "../src/testing/index.js";

let hub: WhisperHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

async function connect(h: WhisperHub, params: Record<string, string> = {}) {
  const frames: ServerFrame[] = [];
  const closes: number[] = [];
  const conn: Connection = {
    send: (f) => frames.push(f),
    close: (code) => closes.push(code),
    bufferedAmount: 0,
  };
  const admission = await h.admit({ transport: "test", headers: {}, params, remoteAddress: "10.0.0.1" });
  const link: SessionLink = h.open(admission, conn);
  return { link, frames, closes };
}

describe("manualClock", () => {
  it("runs due timers in order, each at its own time, and none early", async () => {
    const clock = manualClock(1000);
    const seen: string[] = [];
    clock.after(50, () => seen.push(`b@${clock.now()}`));
    clock.after(10, () => seen.push(`a@${clock.now()}`));
    const c = clock.after(20, () => seen.push("cancelled"));
    clock.after(50, () => seen.push(`c@${clock.now()}`));
    c.cancel();
    expect(clock.pending).toBe(3);
    await clock.advance(49);
    expect(seen).toEqual(["a@1010"]);
    await clock.advance(1);
    expect(seen).toEqual(["a@1010", "b@1050", "c@1050"]);
    expect(clock.now()).toBe(1050);
    expect(clock.pending).toBe(0);
    await expect(clock.advance(-1)).rejects.toThrow(RangeError);
  });

  it("refuses a start that is not a finite number; a NaN delay runs at once, an infinite one never", async () => {
    expect(() => manualClock(Number.NaN)).toThrow(/start must be a finite number/);
    expect(() => manualClock("1000" as unknown as number)).toThrow(RangeError);
    const clock = manualClock(1000);
    const seen: string[] = [];
    clock.after(Number.NaN, () => seen.push(`nan@${clock.now()}`));
    clock.after(Number.POSITIVE_INFINITY, () => seen.push("never"));
    await clock.advance(5);
    expect(seen).toEqual(["nan@1000"]);
    expect(clock.now()).toBe(1005);
    expect(clock.pending).toBe(1);
  });
});

describe("manualClock beside fake timers", () => {
  it("advances with every timer faked (setImmediate included)", async () => {
    const clock = manualClock(0);
    vi.useFakeTimers();
    try {
      let ran = false;
      clock.after(10, () => {
        ran = true;
      });
      await clock.advance(10);
      expect(ran).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("a hub on a manual clock", () => {
  it("ends a dropped session when its grace is over, not a millisecond before", async () => {
    const clock = manualClock();
    hub = createWhisper({ store: createMemoryStore({ now: clock.now }), clock, resumeGraceMs: 30_000 });
    const ana = await connect(hub);
    const ben = await connect(hub);
    ana.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    ben.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await clock.advance(0);
    expect(ben.frames.some((f) => f.type === "matched")).toBe(true);
    ana.link.closed(1006);
    await clock.advance(29_999);
    expect(ben.frames.map((f) => f.type)).toContain("partner_away");
    expect(ben.frames.some((f) => f.type === "partner_left")).toBe(false);
    await clock.advance(1);
    expect(ben.frames.find((f) => f.type === "partner_left")).toMatchObject({ reason: "disconnected" });
  });

  it("keeps two users apart for the cooldown after next, then matches them again", async () => {
    const clock = manualClock();
    hub = createWhisper({ store: createMemoryStore({ now: clock.now }), clock, nextCooldownMs: 60_000 });
    const ana = await connect(hub);
    const ben = await connect(hub);
    ana.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    ben.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await clock.advance(0);
    ana.link.receive({ type: "next" });
    await clock.advance(0);
    ben.link.receive({ type: "next" });
    await clock.advance(59_000);
    const matches = () => ana.frames.filter((f) => f.type === "matched").length;
    expect(matches()).toBe(1);
    await clock.advance(2_000);
    expect(matches()).toBe(2);
  });

  it("closes a session with 4401 when its token expires", async () => {
    const clock = manualClock();
    hub = createWhisper({
      store: createMemoryStore({ now: clock.now }),
      clock,
      authenticate: () => ({ userId: "u1", name: "Ana", roles: [], expiresAt: clock.now() + 60_000 }),
    });
    const ana = await connect(hub, { token: "t" });
    await clock.advance(59_999);
    expect(ana.closes).toEqual([]);
    await clock.advance(1);
    expect(ana.closes).toEqual([4401]);
  });
});

describe("the periodic audit of what sessions keep in the store", () => {
  it("puts back a pool entry the store lost (a failover's last writes) and ends a lost room, within auditIntervalMs", async () => {
    const clock = manualClock();
    const store = createMemoryStore({ now: clock.now });
    hub = createWhisper({ store, clock, auditIntervalMs: 10_000, nodeHeartbeatMs: 1000 });
    const ana = await connect(hub);
    const ben = await connect(hub);
    const cleo = await connect(hub);
    ana.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    ben.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    cleo.link.receive({ type: "join", location: { lat: 40, lng: 40 }, rangeKm: 5 });
    await clock.advance(0);
    const matched = ana.frames.find((f) => f.type === "matched");
    if (matched?.type !== "matched") throw new Error("ana and ben should be matched");
    // The store loses Cleo's pool entry and Ana and Ben's room; nobody sends anything.
    const [entry] = await store.pool.candidates(40, 40, 5);
    expect(entry).toBeDefined();
    await store.pool.remove(entry?.sessionId as string);
    await store.rooms.delete(matched.roomId);
    expect(await store.pool.size()).toBe(0);
    await clock.advance(10_000);
    expect(await store.pool.size()).toBe(1);
    for (const c of [ana, ben]) {
      expect(c.frames.find((f) => f.type === "partner_left")).toMatchObject({ reason: "lost" });
    }
    // And Cleo is found again by a newcomer.
    const dan = await connect(hub);
    dan.link.receive({ type: "join", location: { lat: 40, lng: 40 }, rangeKm: 5 });
    await clock.advance(0);
    expect(cleo.frames.some((f) => f.type === "matched")).toBe(true);
  });
});
