import {
  type AccountRecord,
  EARTH_RADIUS_KM,
  haversineKm,
  type MessageFrame,
  type PoolEntry,
  type SessionRecord,
} from "@whisperchat/core";
import { manualClock, poolConformance, storeConformance } from "@whisperchat/core/testing";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryStore, type MemoryStore } from "../src/index.js";

storeConformance({ describe, it, beforeEach, afterEach }, () => createMemoryStore(), {
  name: "@whisperchat/store-memory conformance",
});

// A store author can run just the suites of what the store implements: here a store that has
// nothing but a pool.
poolConformance(
  { describe, it, beforeEach, afterEach },
  () => {
    const store = createMemoryStore();
    return { pool: store.pool, close: () => store.close() };
  },
  { name: "@whisperchat/store-memory conformance, a pool alone" },
);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

const rule = { capacity: 2, ratePerSec: 1 };

const empty = {
  waiting: 0,
  rooms: 0,
  exclusions: 0,
  buckets: 0,
  subscribers: 0,
  sessions: 0,
  mailboxes: 0,
  accounts: 0,
  bans: 0,
  nodes: 0,
};

describe("createMemoryStore", () => {
  const open: MemoryStore[] = [];
  const make = (...args: Parameters<typeof createMemoryStore>) => {
    const store = createMemoryStore(...args);
    open.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it("stats counts what the store holds", async () => {
    const store = make();
    expect(store.stats()).toEqual(empty);
    await store.pool.add(entry("a", 0, 179.99, 10)); // two boxes, still one waiting session
    await store.pool.add(entry("b", 1, 1, 1));
    await store.rooms.create({
      roomId: "r",
      members: [
        { sessionId: "a", userId: "ua", nodeId: "n", name: "A" },
        { sessionId: "b", userId: "ub", nodeId: "n", name: "B" },
      ],
      createdAt: 0,
    });
    await store.exclusions.add("u1", "u2");
    await store.exclusions.add("u2", "u1", 1000); // the same pair
    await store.exclusions.add("u1", "u3", 1000);
    await store.limiter.consume("k", rule, 1);
    await store.bus.subscribe("node", () => {});
    await store.sessions.put(session("s1"), 1000);
    await store.sessions.put(session("s1"), 1000); // replaced, still one
    await store.sessions.put(session("s2"), 1000);
    await store.mailbox.push("s1", frame(1), 5, 1000);
    await store.mailbox.push("s1", frame(2), 5, 1000); // one mailbox
    await store.accounts.create(account("ann"));
    await store.accounts.create(account("bob"));
    await store.accounts.create(account("cid"));
    await store.bans.add({ userId: "u1", createdAt: 0 });
    await store.nodes.heartbeat("n1", 1000);
    await store.nodes.heartbeat("n2", 1000);
    expect(store.stats()).toEqual({
      waiting: 2,
      rooms: 1,
      exclusions: 2,
      buckets: 1,
      subscribers: 1,
      sessions: 2,
      mailboxes: 1,
      accounts: 3,
      bans: 1,
      nodes: 2,
    });
    await store.close();
    expect(store.stats()).toEqual(empty);
  });

  it("the periodic sweep removes expired exclusions and drained buckets, and nothing else", async () => {
    let clock = 1_000_000;
    const store = make({ now: () => clock, sweepIntervalMs: 10 });
    await store.exclusions.add("a", "b", 100);
    await store.exclusions.add("a", "c");
    await store.exclusions.add("a", "d", 5000);
    await store.limiter.consume("short", rule, 1); // drains in 1 s
    await store.limiter.consume("long", rule, 2); // drains in 2 s
    await sleep(50); // several sweeps with the clock standing still
    expect(store.stats()).toMatchObject({ exclusions: 3, buckets: 2 });

    clock += 1500;
    await until(() => store.stats().exclusions === 2 && store.stats().buckets === 1);
    expect(await store.exclusions.excluded("a", ["b", "c", "d"])).toEqual(new Set(["c", "d"]));
    // The remaining bucket kept its level: 2 - 1.5 drained = 0.5, so a cost of 2 does not fit.
    expect((await store.limiter.consume("long", rule, 2)).allowed).toBe(false);

    clock += 10_000;
    await until(() => store.stats().exclusions === 1 && store.stats().buckets === 0);
    expect(await store.exclusions.excluded("c", ["a"])).toEqual(new Set(["a"]));
  });

  it("with a clock, reads the time and runs the sweep on it (no real timer); now and clock together are refused", async () => {
    const clock = manualClock(1_000_000);
    const store = make({ clock, sweepIntervalMs: 1000 });
    await store.exclusions.add("a", "b", 100);
    await sleep(30); // real time passing sweeps nothing: the sweep waits for the clock
    await clock.advance(999);
    expect(store.stats().exclusions).toBe(1);
    await clock.advance(1);
    expect(store.stats().exclusions).toBe(0);
    await store.exclusions.add("a", "c", 100);
    await store.close();
    await clock.advance(5000); // closed: the sweep no longer runs (and throws nothing)
    expect(() => createMemoryStore({ clock, now: Date.now })).toThrow(TypeError);
  });

  it("sweep() sweeps on demand; expired exclusions are also dropped when read", async () => {
    let clock = 0;
    const store = make({ now: () => clock, sweepIntervalMs: 3_600_000 });
    await store.exclusions.add("a", "b", 10);
    await store.exclusions.add("a", "c", 10);
    await store.limiter.consume("k", rule, 1);
    clock = 5000;
    expect(store.stats()).toMatchObject({ exclusions: 2, buckets: 1 });
    expect(await store.exclusions.excluded("b", ["a"])).toEqual(new Set());
    expect(store.stats().exclusions).toBe(1);
    store.sweep();
    expect(store.stats()).toMatchObject({ exclusions: 0, buckets: 0 });
  });

  it("an exclusion with a ttl of 0 or less stores nothing; NaN is refused", async () => {
    const store = make();
    await store.exclusions.add("a", "b", 0);
    await store.exclusions.add("a", "c", -5);
    expect(store.stats().exclusions).toBe(0);
    expect(await store.exclusions.excluded("a", ["b", "c"])).toEqual(new Set());
    await expect(store.exclusions.add("a", "b", Number.NaN)).rejects.toThrow(RangeError);
  });

  it("exclusion keys do not collide, whatever the ids contain", async () => {
    const store = make();
    await store.exclusions.add("a\u0000b", "c");
    expect(await store.exclusions.excluded("a", ["b\u0000c", "c"])).toEqual(new Set());
    await store.exclusions.add("ab", "c");
    expect(await store.exclusions.excluded("a", ["bc"])).toEqual(new Set());
    expect(await store.exclusions.excluded("c", ["ab", "a\u0000b"])).toEqual(new Set(["ab", "a\u0000b"]));
  });

  it("maxBuckets caps the limiter and evicts the least recently used bucket", async () => {
    const clock = 0;
    const store = make({ now: () => clock, maxBuckets: 10 });
    for (let i = 0; i < 1000; i++) await store.limiter.consume(`flood-${i}`, rule, 1);
    expect(store.stats().buckets).toBe(10);

    await store.limiter.consume("hot", rule, 2);
    for (let i = 0; i < 8; i++) await store.limiter.consume(`cold-${i}`, rule, 1);
    // "hot" is used again (refused, still touched), then more keys push the oldest out.
    expect((await store.limiter.consume("hot", rule, 1)).allowed).toBe(false);
    for (let i = 0; i < 9; i++) await store.limiter.consume(`new-${i}`, rule, 1);
    expect(store.stats().buckets).toBe(10);
    expect((await store.limiter.consume("hot", rule, 1)).allowed).toBe(false);
    // cold-0 was evicted: it starts over with an empty bucket.
    expect((await store.limiter.consume("cold-0", rule, 2)).allowed).toBe(true);
  });

  it("refuses options that are not positive numbers", () => {
    expect(() => createMemoryStore({ sweepIntervalMs: 0 })).toThrow(RangeError);
    expect(() => createMemoryStore({ sweepIntervalMs: Number.NaN })).toThrow(RangeError);
    expect(() => createMemoryStore({ maxBuckets: 1.5 })).toThrow(RangeError);
    expect(() => createMemoryStore({ maxBuckets: -1 })).toThrow(/maxBuckets/);
  });

  it("close stops the sweep timer", async () => {
    let reads = 0;
    const store = make({
      now: () => {
        reads++;
        return 0;
      },
      sweepIntervalMs: 5,
    });
    await until(() => reads > 0);
    await store.close();
    const after = reads;
    await sleep(40);
    expect(reads).toBe(after);
  });

  it("pool.add refuses coordinates that would corrupt the index", async () => {
    const store = make();
    await expect(store.pool.add(entry("a", Number.NaN, 0, 1))).rejects.toThrow(RangeError);
    await expect(store.pool.add(entry("a", 0, 181, 1))).rejects.toThrow(RangeError);
    await expect(store.pool.add(entry("a", 91, 0, 1))).rejects.toThrow(RangeError);
    await expect(store.pool.add(entry("a", 0, 0, -1))).rejects.toThrow(RangeError);
    expect(store.stats().waiting).toBe(0);
  });

  it("pool methods act before their promise settles, so claims in one tick are atomic", async () => {
    const store = make();
    void store.pool.add(entry("a", 0, 0, 1));
    void store.pool.add(entry("b", 0, 0, 1));
    expect(store.stats().waiting).toBe(2);
    const first = store.pool.claim("a", "b");
    expect(store.stats().waiting).toBe(0);
    expect(await first).toBe(true);
  });

  describe("sessions, mailboxes, bans and nodes", () => {
    it("the periodic sweep removes expired records, mailboxes, ended bans and heartbeats, and nothing else", async () => {
      let clock = 1_000_000;
      const store = make({ now: () => clock, sweepIntervalMs: 10 });
      await store.sessions.put(session("short"), 100);
      await store.sessions.put(session("long"), 5000);
      await store.mailbox.push("short", frame(1), 5, 100);
      await store.mailbox.push("long", frame(2), 5, 5000);
      await store.bans.add({ userId: "short", until: clock + 100, createdAt: 0 });
      await store.bans.add({ userId: "long", until: clock + 5000, createdAt: 0 });
      await store.bans.add({ userId: "forever", createdAt: 0 });
      await store.nodes.heartbeat("short", 100);
      await store.nodes.heartbeat("long", 5000);
      await store.accounts.create(account("ann"));
      await sleep(50); // several sweeps with the clock standing still
      expect(store.stats()).toMatchObject({ sessions: 2, mailboxes: 2, bans: 3, nodes: 2, accounts: 1 });

      clock += 1000;
      await until(() => {
        const stats = store.stats();
        return stats.sessions === 1 && stats.mailboxes === 1 && stats.bans === 2 && stats.nodes === 1;
      });
      expect(await store.sessions.get("long")).toEqual(session("long"));
      expect(await store.nodes.alive(["short", "long"])).toEqual(new Set(["long"]));

      clock += 1_000_000;
      await until(() => {
        const stats = store.stats();
        return stats.sessions === 0 && stats.mailboxes === 0 && stats.bans === 1 && stats.nodes === 0;
      });
      expect(await store.bans.get("forever")).toEqual({ userId: "forever", createdAt: 0 });
      expect(store.stats().accounts).toBe(1);
    });

    it("expired entries are also dropped when read", async () => {
      let clock = 0;
      const store = make({ now: () => clock, sweepIntervalMs: 3_600_000 });
      for (const name of ["a", "b", "c"]) await store.sessions.put(session(name), 10);
      await store.mailbox.push("a", frame(1), 5, 10);
      await store.bans.add({ userId: "a", until: 10, createdAt: 0 });
      await store.bans.add({ userId: "b", until: 10, createdAt: 0 });
      await store.nodes.heartbeat("a", 10);
      await store.nodes.heartbeat("b", 10);
      clock = 10; // expiry is exclusive: at `until` it is over
      expect(store.stats()).toMatchObject({ sessions: 3, mailboxes: 1, bans: 2, nodes: 2 });
      expect(await store.sessions.get("a")).toBeUndefined();
      expect(await store.sessions.delete("b")).toBe(false);
      expect(await store.sessions.takeover("c", "hash-of-c", "n2", "new", 1000)).toBeUndefined();
      expect(await store.mailbox.drain("a")).toEqual([]);
      expect(await store.bans.get("a")).toBeUndefined();
      expect(await store.bans.remove("b")).toBe(false);
      expect(await store.nodes.alive(["a", "b"])).toEqual(new Set());
      expect(store.stats()).toMatchObject({ sessions: 0, mailboxes: 0, bans: 0, nodes: 0 });
    });

    it("a push to an expired mailbox starts a new one", async () => {
      let clock = 0;
      const store = make({ now: () => clock, sweepIntervalMs: 3_600_000 });
      await store.mailbox.push("a", frame(1), 5, 10);
      clock = 20;
      await store.mailbox.push("a", frame(2), 5, 10);
      expect(await store.mailbox.drain("a")).toEqual([frame(2)]);
    });

    it("a ttl of 0 or less (or a limit of 0, or an ended ban) leaves nothing stored; NaN is refused", async () => {
      const store = make();
      await store.sessions.put(session("a"), 60_000);
      await store.sessions.put(session("a"), 0);
      await store.sessions.put(session("b"), -5);
      await store.mailbox.push("a", frame(1), 5, 60_000);
      await store.mailbox.push("a", frame(2), 0, 60_000);
      await store.mailbox.push("b", frame(1), 5, 0);
      await store.bans.add({ userId: "a", createdAt: 0 });
      await store.bans.add({ userId: "a", until: Date.now() - 1, createdAt: 0 });
      await store.nodes.heartbeat("a", 60_000);
      await store.nodes.heartbeat("a", 0);
      expect(store.stats()).toMatchObject({ sessions: 0, mailboxes: 0, bans: 0, nodes: 0 });
      expect(await store.sessions.get("a")).toBeUndefined();
      expect(await store.mailbox.drain("a")).toEqual([]);

      await expect(store.sessions.put(session("a"), Number.NaN)).rejects.toThrow(RangeError);
      await store.sessions.put(session("a"), 60_000);
      await expect(store.sessions.takeover("a", "hash-of-a", "n", "h", Number.NaN)).rejects.toThrow(
        RangeError,
      );
      expect(await store.sessions.get("a")).toEqual(session("a"));
      await expect(store.mailbox.push("a", frame(1), Number.NaN, 1000)).rejects.toThrow(RangeError);
      await expect(store.mailbox.push("a", frame(1), 5, Number.NaN)).rejects.toThrow(RangeError);
      await expect(store.bans.add({ userId: "a", until: Number.NaN, createdAt: 0 })).rejects.toThrow(
        RangeError,
      );
      await expect(store.nodes.heartbeat("a", Number.NaN)).rejects.toThrow(RangeError);
      expect(store.stats()).toMatchObject({ sessions: 1, mailboxes: 0, bans: 0, nodes: 0 });
    });

    it("records are copied in and out: mutating one never changes what is stored", async () => {
      const store = make();
      const given = session("a", {
        state: "room",
        roomId: "r",
        partner: { sessionId: "b", userId: "ub", nodeId: "n", name: "Bob" },
        lastJoin: { lat: 1, lng: 2, rangeKm: 3 },
      });
      const kept = structuredClone(given);
      await store.sessions.put(given, 60_000);
      (given.roles as string[]).push("admin");
      given.state = "idle";
      if (given.partner) given.partner.name = "Eve";
      if (given.lastJoin) given.lastJoin.rangeKm = 999;
      const got = defined(await store.sessions.get("a"));
      expect(got).toEqual(kept);
      if (got.partner) got.partner.nodeId = "elsewhere";
      (got.roles as string[]).length = 0;
      expect(await store.sessions.get("a")).toEqual(kept);
      const before = defined(await store.sessions.takeover("a", kept.tokenHash, "n2", "h2", 60_000));
      expect(before).toEqual(kept);
      if (before.lastJoin) before.lastJoin.lat = -1;
      expect(await store.sessions.get("a")).toEqual({ ...kept, tokenHash: "h2", nodeId: "n2" });

      const ann = account("ann");
      await store.accounts.create(ann);
      (ann.roles as string[]).push("admin");
      const gotAnn = defined(await store.accounts.get("ann"));
      expect(gotAnn.roles).toEqual(["user"]);
      (gotAnn.roles as string[]).push("admin");
      expect((await store.accounts.get("ann"))?.roles).toEqual(["user"]);
      const updated = { ...account("ann"), roles: ["mod"] };
      await store.accounts.update(updated);
      updated.roles.push("admin");
      expect((await store.accounts.get("ann"))?.roles).toEqual(["mod"]);

      const ban = { userId: "u", reason: "spam", createdAt: 0 };
      await store.bans.add(ban);
      ban.reason = "changed";
      const gotBan = defined(await store.bans.get("u"));
      expect(gotBan).toEqual({ userId: "u", reason: "spam", createdAt: 0 });
      gotBan.until = 0;
      expect(await store.bans.get("u")).toEqual({ userId: "u", reason: "spam", createdAt: 0 });
    });

    it("takeover and accounts.create act before their promise settles, so races in one tick are atomic", async () => {
      const store = make();
      await store.sessions.put(session("a"), 60_000);
      const first = store.sessions.takeover("a", "hash-of-a", "n2", "h2", 60_000);
      const second = store.sessions.takeover("a", "hash-of-a", "n3", "h3", 60_000);
      void store.accounts.create(account("ann"));
      expect(store.stats().accounts).toBe(1);
      expect(await first).toEqual(session("a"));
      expect(await second).toBeUndefined();
      expect((await store.sessions.get("a"))?.nodeId).toBe("n2");
    });

    it("close drops sessions, mailboxes, accounts, bans and heartbeats", async () => {
      const store = make();
      await store.sessions.put(session("a"), 60_000);
      await store.mailbox.push("a", frame(1), 5, 60_000);
      await store.accounts.create(account("ann"));
      await store.bans.add({ userId: "u", createdAt: 0 });
      await store.nodes.heartbeat("n", 60_000);
      await store.close();
      expect(store.stats()).toEqual(empty);
    });
  });

  describe("bus", () => {
    it("rejects a second subscription under the same nodeId", async () => {
      const store = make();
      const off = await store.bus.subscribe("n", () => {});
      await expect(store.bus.subscribe("n", () => {})).rejects.toThrow(/already subscribed/);
      await off();
      await off(); // idempotent
      const again = await store.bus.subscribe("n", () => {});
      await again();
      expect(store.stats().subscribers).toBe(0);
    });

    it("delivers after publish returns, never during it", async () => {
      const store = make();
      const got: string[] = [];
      await store.bus.subscribe("n", (m) => got.push(m.to));
      const delivered = store.bus.publish("n", {
        to: "s",
        roomId: "r",
        frame: { type: "typing", active: true },
      });
      expect(got).toEqual([]);
      expect(await delivered).toBe(true);
      expect(got).toEqual(["s"]);
    });

    it("a message published before an unsubscribe but not yet delivered resolves false", async () => {
      const store = make();
      const got: string[] = [];
      const off = await store.bus.subscribe("n", (m) => got.push(m.to));
      const pending = store.bus.publish("n", {
        to: "s",
        roomId: "r",
        frame: { type: "typing", active: true },
      });
      void off();
      expect(await pending).toBe(false);
      expect(got).toEqual([]);
    });

    it("a throwing handler is reported and does not stop later messages", async () => {
      const errors: unknown[] = [];
      const store = make({ onHandlerError: (error, nodeId) => errors.push([nodeId, error]) });
      const got: string[] = [];
      await store.bus.subscribe("n", (m) => {
        if (m.to === "bad") throw new Error("boom");
        got.push(m.to);
      });
      const frame = { type: "typing", active: true } as const;
      const results = await Promise.all([
        store.bus.publish("n", { to: "bad", roomId: "r", frame }),
        store.bus.publish("n", { to: "good", roomId: "r", frame }),
      ]);
      expect(results).toEqual([true, true]);
      expect(got).toEqual(["good"]);
      expect(errors).toEqual([["n", new Error("boom")]]);
    });

    it("several hubs sharing one store are several nodes", async () => {
      const store = make();
      const got: Record<string, string[]> = { a: [], b: [], c: [] };
      for (const node of ["a", "b", "c"]) await store.bus.subscribe(node, (m) => got[node]?.push(m.to));
      const frame = { type: "typing", active: false } as const;
      await store.bus.publish("b", { to: "1", roomId: "r", frame });
      await store.bus.publish("c", { to: "2", roomId: "r", frame });
      await store.bus.publish("b", { to: "3", roomId: "r", frame });
      expect(got).toEqual({ a: [], b: ["1", "3"], c: ["2"] });
    });
  });
});

function defined<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("expected a value, got undefined");
  return value;
}

function session(sessionId: string, extra?: Partial<SessionRecord>): SessionRecord {
  return {
    sessionId,
    nodeId: "n1",
    userId: `u-${sessionId}`,
    name: sessionId,
    roles: ["user"],
    guest: false,
    tokenHash: `hash-of-${sessionId}`,
    state: "idle",
    updatedAt: 0,
    ...extra,
  };
}

function account(nameKey: string): AccountRecord {
  return {
    userId: `u-${nameKey}`,
    name: nameKey,
    nameKey,
    passwordHash: "$argon2id$x",
    roles: ["user"],
    createdAt: 0,
  };
}

function frame(n: number): MessageFrame {
  return { type: "message", roomId: "r", messageId: `m${n}`, text: `text ${n}`, ts: n };
}

function entry(sessionId: string, lat: number, lng: number, rangeKm: number): PoolEntry {
  return {
    sessionId,
    userId: `u-${sessionId}`,
    nodeId: "node",
    name: sessionId,
    lat,
    lng,
    rangeKm,
    since: 0,
  };
}

/** The point `distanceKm` from (lat, lng) along `bearingDeg` on a great circle. */
function destination(lat: number, lng: number, bearingDeg: number, distanceKm: number): [number, number] {
  const rad = Math.PI / 180;
  const d = distanceKm / EARTH_RADIUS_KM;
  const p1 = lat * rad;
  const t = bearingDeg * rad;
  const p2 = Math.asin(
    Math.max(-1, Math.min(1, Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(t))),
  );
  const dl = Math.atan2(Math.sin(t) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  const l = lng + dl / rad;
  return [p2 / rad, ((((l + 180) % 360) + 360) % 360) - 180];
}

describe("pool index against a brute-force oracle", () => {
  const lat = fc.oneof(
    fc.double({ min: -90, max: 90, noNaN: true }),
    fc.constantFrom(90, -90, 0, 89.9999, -89.9999, 85.05),
    fc.double({ min: 89, max: 90, noNaN: true }),
    fc.double({ min: -90, max: -89, noNaN: true }),
  );
  const lng = fc.oneof(
    fc.double({ min: -180, max: 180, noNaN: true }),
    fc.constantFrom(180, -180, 0, 179.9999, -179.9999),
    fc.double({ min: 179, max: 180, noNaN: true }),
    fc.double({ min: -180, max: -179, noNaN: true }),
  );
  // A few fixed points so that identical points (zero distances) come up often.
  const point = fc.oneof(
    fc.tuple(lat, lng),
    fc.constantFrom<[number, number]>([0, 180], [0, -180], [90, 0], [-90, 77], [48.85, 2.35], [48.85, 2.36]),
  );
  const range = fc.oneof(
    fc.double({ min: -3, max: Math.log10(20_000), noNaN: true }).map((e) => 10 ** e),
    fc.constantFrom(0, 0.001, 1, 10_007.6, 20_000, 20_015.1, 1e6),
  );
  const sessionIds = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
  const sid = fc.constantFrom(...sessionIds);
  const op = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("add" as const), id: sid, point, range }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), id: sid }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("claim" as const), a: sid, b: sid }) },
  );
  const bearings = fc.array(fc.double({ min: 0, max: 360, noNaN: true, maxExcluded: true }), {
    minLength: 1,
    maxLength: 4,
  });

  it("candidates hold every entry whose range holds the point, and only waiting entries", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 40 }),
        fc.array(point, { maxLength: 5 }),
        bearings,
        async (ops, extraQueries, edgeBearings) => {
          const store = createMemoryStore();
          const model = new Map<string, PoolEntry>();
          try {
            for (const o of ops) {
              if (o.kind === "add") {
                const e = entry(o.id, o.point[0], o.point[1], o.range);
                await store.pool.add(e);
                model.set(o.id, e);
              } else if (o.kind === "remove") {
                expect(await store.pool.remove(o.id)).toBe(model.delete(o.id));
              } else {
                const ok = o.a !== o.b && model.has(o.a) && model.has(o.b);
                expect(await store.pool.claim(o.a, o.b)).toBe(ok);
                if (ok) {
                  model.delete(o.a);
                  model.delete(o.b);
                }
              }
              expect(await store.pool.size()).toBe(model.size);
              for (const id of sessionIds) expect(await store.pool.get(id)).toEqual(model.get(id));

              const queries: [number, number][] = [...extraQueries];
              for (const e of model.values()) {
                queries.push([e.lat, e.lng]);
                for (const b of edgeBearings) {
                  queries.push(destination(e.lat, e.lng, b, e.rangeKm * (1 - 1e-9)));
                  queries.push(destination(e.lat, e.lng, b, e.rangeKm));
                }
              }
              for (const [qLat, qLng] of queries) {
                const got = await store.pool.candidates(qLat, qLng, 20_000);
                const ids = got.map((c) => c.sessionId);
                expect(new Set(ids).size).toBe(ids.length);
                for (const c of got) expect(model.get(c.sessionId)).toEqual(c);
                for (const e of model.values()) {
                  if (haversineKm(e.lat, e.lng, qLat, qLng) <= e.rangeKm && !ids.includes(e.sessionId)) {
                    throw new Error(
                      `${e.sessionId} at (${e.lat}, ${e.lng}) range ${e.rangeKm} km accepts (${qLat}, ${qLng}) but is not a candidate`,
                    );
                  }
                }
              }
            }
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);
});
