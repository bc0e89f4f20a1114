import assert from "node:assert/strict";
import { haversineKm } from "../geo.js";
import type { MessageFrame, RoomFrame } from "../protocol.js";
import type {
  AccountRecord,
  BanRecord,
  BusMessage,
  FrameMessage,
  PoolEntry,
  RoomRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "../store.js";
import type { TestApi } from "./test-api.js";

/** Options of {@link storeConformance}. */
export interface StoreConformanceOptions {
  /**
   * Name of the `describe` block, e.g. the store's package name.
   * @default "Store conformance"
   */
  name?: string;
  /**
   * Whether the store has the optional {@link Store.relay} fast path. Its section of the suite
   * runs when `true`; either way the suite checks that the store has a relay exactly then.
   * @default false
   */
  relay?: boolean;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same inputs on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Generated points, biased towards the places spatial indexes get wrong. */
function pointGenerator(rand: () => number): () => [number, number] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const uniformLng = () => rand() * 360 - 180;
  // Uniform on the sphere.
  const uniformLat = () => (Math.asin(2 * rand() - 1) * 180) / Math.PI;
  const hotspots: [number, number][] = [
    [48.8566, 2.3522],
    [0, 180],
    [0, -180],
    [-16.5, 179.9],
    [65.5, -179.99],
  ];
  return () => {
    const kind = rand();
    if (kind < 0.3) return [uniformLat(), uniformLng()];
    if (kind < 0.45) {
      // Near the antimeridian, spelt on both sides.
      const side = pick([180, -180]);
      return [uniformLat() * 0.8, rand() < 0.2 ? side : side - Math.sign(side) * rand() * 2];
    }
    if (kind < 0.6) {
      // Near or at a pole.
      const pole = pick([90, -90]);
      const lat = rand() < 0.2 ? pole : pole - Math.sign(pole) * rand() * 1.5;
      return [lat, uniformLng()];
    }
    if (kind < 0.8) {
      // Identical points and tight clusters around a few places.
      const [lat, lng] = pick(hotspots);
      if (rand() < 0.3) return [lat, lng];
      const dLng = (rand() - 0.5) * 0.2;
      return [lat + (rand() - 0.5) * 0.2, Math.max(-180, Math.min(180, lng + dLng))];
    }
    return [uniformLat() * 0.5, uniformLng()];
  };
}

/** Ranges from 1 m to 20 000 km, spread evenly on a log scale, plus a few exact values. */
function rangeGenerator(rand: () => number): () => number {
  return () => {
    if (rand() < 0.1) return [0.001, 1, 10_007.6, 20_000, 20_015.1][Math.floor(rand() * 5)] as number;
    return 10 ** (-3 + rand() * (Math.log10(20_000) + 3));
  };
}

/**
 * Registers the conformance tests of the {@link Store} seam: every store implementation runs
 * them, so that core can rely on the contract written in `store.ts` whatever the store.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards. Ids are random per
 * test, so a store that shares a backend between instances (a Redis database) does not need to
 * be flushed between tests. Assertions use `node:assert/strict`, so any runner with
 * `describe`/`it`/`beforeEach`/`afterEach` works.
 *
 * @example
 * ```ts
 * import { afterEach, beforeEach, describe, it } from "vitest";
 * import { storeConformance } from "@whisperchat/core/testing";
 * storeConformance({ describe, it, beforeEach, afterEach }, () => createMemoryStore());
 * ```
 */
export function storeConformance(
  t: TestApi,
  makeStore: () => Store | Promise<Store>,
  options?: StoreConformanceOptions,
): void {
  const { describe, it, beforeEach, afterEach } = t;
  let store: Store | undefined;
  let prefix = "";
  let counter = 0;

  /** A store-unique id: the test's random prefix plus `name`. */
  const id = (name: string): string => `${prefix}:${name}`;
  const s = (): Store => {
    if (store === undefined) throw new Error("storeConformance: the store is not open (beforeEach failed?)");
    return store;
  };
  const entry = (name: string, lat: number, lng: number, rangeKm: number, extra?: Partial<PoolEntry>) =>
    ({
      sessionId: id(name),
      userId: id(`user-${name}`),
      nodeId: id("node"),
      name: `Name ${name}`,
      lat,
      lng,
      rangeKm,
      since: 1_700_000_000_000 + counter++,
      ...extra,
    }) satisfies PoolEntry;
  const candidateIds = async (lat: number, lng: number, rangeKm = 20_000): Promise<string[]> =>
    (await s().pool.candidates(lat, lng, rangeKm)).map((e) => e.sessionId);
  const room = (name: string): RoomRecord => ({
    roomId: id(name),
    members: [
      { sessionId: id(`${name}-a`), userId: id(`${name}-ua`), nodeId: id("node-1"), name: "Ann" },
      { sessionId: id(`${name}-b`), userId: id(`${name}-ub`), nodeId: id("node-2"), name: "Bob" },
    ],
    createdAt: 1_700_000_000_000,
  });
  const message = (n: number): StoredMessage => ({
    messageId: id(`m${n}`),
    from: id(n % 2 === 0 ? "a" : "b"),
    text: `message ${n}`,
    ts: 1_700_000_000_000 + n,
  });
  const busMessage = (to: string, n: number): BusMessage => {
    const frame: MessageFrame = {
      type: "message",
      roomId: id("room"),
      messageId: id(`m${n}`),
      text: `hello ${n}`,
      ts: 1_700_000_000_000 + n,
    };
    return { to, roomId: id("room"), frame };
  };
  const roomFrame = (n: number): MessageFrame => ({
    type: "message",
    roomId: id("room"),
    messageId: id(`m${n}`),
    text: `text ${n}`,
    ts: 1_700_000_000_000 + n,
  });
  /** An idle session record with no optional field, unless `extra` sets some. */
  const session = (name: string, extra?: Partial<SessionRecord>): SessionRecord => ({
    sessionId: id(name),
    nodeId: id("node-1"),
    userId: id(`user-${name}`),
    name: `Name ${name}`,
    roles: ["user", "mod"],
    guest: false,
    tokenHash: `hash-of-${name}`,
    state: "idle",
    updatedAt: 1_700_000_000_000,
    ...extra,
  });
  const account = (name: string, userId: string, extra?: Partial<AccountRecord>): AccountRecord => ({
    userId: id(userId),
    name: `${name[0]?.toUpperCase()}${name.slice(1)}`,
    nameKey: id(name),
    passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    roles: ["user"],
    createdAt: 1_700_000_000_000,
    ...extra,
  });

  describe(options?.name ?? "Store conformance", () => {
    beforeEach(async () => {
      prefix = `t${Math.random().toString(36).slice(2, 10)}`;
      counter = 0;
      store = await makeStore();
    });
    afterEach(async () => {
      const open = store;
      store = undefined;
      await open?.close();
    });

    describe("pool", () => {
      it("add keeps the entry as given; get and size see it", async () => {
        const a = entry("a", 48.8566, 2.3522, 12.5);
        await s().pool.add(a);
        assert.deepEqual(await s().pool.get(a.sessionId), a);
        assert.equal(await s().pool.size(), 1);
        assert.equal(await s().pool.get(id("missing")), undefined);
        const b = entry("b", -33.8688, 151.2093, 0.001);
        await s().pool.add(b);
        assert.equal(await s().pool.size(), 2);
        assert.deepEqual(await s().pool.get(b.sessionId), b);
      });

      it("add of an existing session replaces it (point, range and fields)", async () => {
        const a = entry("a", 48.8566, 2.3522, 10);
        await s().pool.add(a);
        const moved = { ...a, name: "Renamed", lat: -33.8688, lng: 151.2093, rangeKm: 5 };
        await s().pool.add(moved);
        assert.equal(await s().pool.size(), 1);
        assert.deepEqual(await s().pool.get(a.sessionId), moved);
        assert.deepEqual(
          await candidateIds(48.8566, 2.3522),
          [],
          "the old point must be gone from the index",
        );
        assert.deepEqual(await candidateIds(-33.87, 151.21), [a.sessionId]);
        // Range only: Canberra is ~250 km away, out of a 5 km range and inside a 400 km one.
        assert.ok(!(await candidateIds(-35.2809, 149.13)).includes(a.sessionId));
        await s().pool.add({ ...moved, rangeKm: 400 });
        assert.deepEqual(await candidateIds(-35.2809, 149.13), [a.sessionId]);
        assert.equal(await s().pool.size(), 1);
      });

      it("remove resolves true once, then false; the entry is gone", async () => {
        const a = entry("a", 10, 10, 100);
        await s().pool.add(a);
        assert.equal(await s().pool.remove(a.sessionId), true);
        assert.equal(await s().pool.remove(a.sessionId), false);
        assert.equal(await s().pool.remove(id("never")), false);
        assert.equal(await s().pool.get(a.sessionId), undefined);
        assert.equal(await s().pool.size(), 0);
        assert.deepEqual(await candidateIds(10, 10), []);
      });

      it("candidates are the entries whose range contains the point, not the ones near it", async () => {
        // a accepts points within 3000 km; b sits 2000 km from a but accepts only 1 km.
        await s().pool.add(entry("a", 0, 0, 3000));
        await s().pool.add(entry("b", 0, 18, 1));
        const ids = await candidateIds(0, 18);
        assert.ok(ids.includes(id("a")), "a's range holds the point");
        assert.ok(ids.includes(id("b")), "b's own point is in its range");
        const fromA = await candidateIds(0, 0);
        assert.ok(fromA.includes(id("a")));
        // Stores may return a few extra entries, never ones this far out of their range.
        assert.ok(!fromA.includes(id("b")), "b's 1 km range does not reach a's point, 2000 km away");
      });

      it("candidates hold entries across the antimeridian and over the poles", async () => {
        await s().pool.add(entry("east", 0, 179.9, 50));
        await s().pool.add(entry("west", -10, -180, 30));
        await s().pool.add(entry("north", 90, 0, 10));
        await s().pool.add(entry("nearNorth", 89.99, -170, 5));
        await s().pool.add(entry("south", -89.9, 45, 50));
        const hasAll = async (lat: number, lng: number, names: string[]) => {
          const ids = await candidateIds(lat, lng);
          for (const name of names) {
            assert.ok(ids.includes(id(name)), `${name} missing from candidates(${lat}, ${lng}): ${ids}`);
          }
        };
        await hasAll(0, -179.9, ["east"]);
        await hasAll(0, 180, ["east"]);
        await hasAll(0, -180, ["east"]);
        await hasAll(-10, 179.95, ["west"]);
        await hasAll(-10, 180, ["west"]);
        await hasAll(89.95, 123, ["north"]);
        await hasAll(90, -77, ["north", "nearNorth"]);
        await hasAll(89.99, 10, ["nearNorth", "north"]);
        await hasAll(-90, 0, ["south"]);
        await hasAll(-89.8, -135, ["south"]);
        // And not everything everywhere: each of these ranges is thousands of km short of the point.
        const far = await candidateIds(45, 90);
        assert.deepEqual(far, []);
      });

      it("a range of half the Earth's circumference or more accepts every point", async () => {
        await s().pool.add(entry("world", 12, 34, 20_015.1));
        await s().pool.add(entry("huge", -60, -120, 1e6));
        for (const [lat, lng] of [
          [-12, -146],
          [90, 0],
          [-90, 180],
          [0, -180],
          [12, 34],
        ] as const) {
          const ids = await candidateIds(lat, lng, 1e6);
          assert.ok(ids.includes(id("world")), `world missing at (${lat}, ${lng})`);
          assert.ok(ids.includes(id("huge")), `huge missing at (${lat}, ${lng})`);
        }
      });

      it("candidates match a brute-force check over random entries, also after removes and claims", async () => {
        const rand = prng(0x5eed);
        const point = pointGenerator(rand);
        const range = rangeGenerator(rand);
        const live = new Map<string, PoolEntry>();
        for (let i = 0; i < 300; i++) {
          const [lat, lng] = point();
          const e = entry(`r${i}`, lat, lng, range());
          live.set(e.sessionId, e);
          await s().pool.add(e);
        }
        const queries = Array.from({ length: 150 }, point);
        // Include the entries' own points: zero-distance pairs.
        for (const e of [...live.values()].slice(0, 50)) queries.push([e.lat, e.lng]);

        const check = async (round: string) => {
          assert.equal(await s().pool.size(), live.size, `${round}: size`);
          for (const [qi, [lat, lng]] of queries.entries()) {
            // The newcomer's own range: from tiny to the whole planet.
            const queryRange = [0.5, 30, 800, 20_000][qi % 4] as number;
            const got = await s().pool.candidates(lat, lng, queryRange);
            const gotIds = got.map((e) => e.sessionId);
            assert.equal(
              new Set(gotIds).size,
              gotIds.length,
              `${round}: duplicate candidates at (${lat}, ${lng})`,
            );
            for (const e of got) {
              const known = live.get(e.sessionId);
              assert.ok(known, `${round}: candidate ${e.sessionId} is not waiting`);
              assert.deepEqual(e, known, `${round}: candidate ${e.sessionId} differs from what was added`);
            }
            const ids = new Set(gotIds);
            for (const e of live.values()) {
              if (haversineKm(e.lat, e.lng, lat, lng) <= Math.min(e.rangeKm, queryRange)) {
                assert.ok(
                  ids.has(e.sessionId),
                  `${round}: ${e.sessionId} at (${e.lat}, ${e.lng}) range ${e.rangeKm} km and (${lat}, ${lng}) range ${queryRange} km are mutually in range but it is not a candidate`,
                );
              }
            }
          }
        };
        await check("after adds");

        const ids = [...live.keys()];
        for (let i = 0; i < ids.length; i += 3) {
          const sessionId = ids[i] as string;
          assert.equal(await s().pool.remove(sessionId), true);
          live.delete(sessionId);
        }
        for (let i = 1; i + 3 < ids.length; i += 9) {
          const a = ids[i] as string;
          const b = ids[i + 3] as string;
          assert.equal(await s().pool.claim(a, b), true);
          live.delete(a);
          live.delete(b);
        }
        // Moves: some entries change point and range.
        for (const e of [...live.values()].filter((_, i) => i % 4 === 0)) {
          const [lat, lng] = point();
          const moved = { ...e, lat, lng, rangeKm: range() };
          await s().pool.add(moved);
          live.set(moved.sessionId, moved);
        }
        await check("after removes, claims and moves");
      }, 60_000);

      it("claim of two waiting sessions removes both and resolves true", async () => {
        await s().pool.add(entry("a", 1, 1, 10));
        await s().pool.add(entry("b", 1, 1.01, 10));
        await s().pool.add(entry("c", 1, 1.02, 10));
        assert.equal(await s().pool.claim(id("a"), id("b")), true);
        assert.equal(await s().pool.get(id("a")), undefined);
        assert.equal(await s().pool.get(id("b")), undefined);
        assert.equal(await s().pool.size(), 1);
        assert.deepEqual(await candidateIds(1, 1.01), [id("c")]);
        assert.equal(await s().pool.claim(id("a"), id("b")), false, "a pair is claimed once");
        assert.equal(await s().pool.remove(id("a")), false);
      });

      it("claim with one session missing changes nothing and resolves false", async () => {
        await s().pool.add(entry("a", 1, 1, 10));
        assert.equal(await s().pool.claim(id("a"), id("missing")), false);
        assert.equal(await s().pool.claim(id("missing"), id("a")), false);
        assert.ok(await s().pool.get(id("a")), "the present session stays waiting");
        assert.equal(await s().pool.size(), 1);
        assert.deepEqual(await candidateIds(1, 1), [id("a")]);
      });

      it("claim of a session with itself resolves false and keeps it", async () => {
        await s().pool.add(entry("a", 1, 1, 10));
        assert.equal(await s().pool.claim(id("a"), id("a")), false);
        assert.ok(await s().pool.get(id("a")));
        assert.equal(await s().pool.size(), 1);
      });

      it("concurrent claims racing for one session: exactly one wins", async () => {
        for (let round = 0; round < 20; round++) {
          const [a, b, c] = [`a${round}`, `b${round}`, `c${round}`];
          await s().pool.add(entry(a, 5, 5, 10));
          await s().pool.add(entry(b, 5, 5, 10));
          await s().pool.add(entry(c, 5, 5, 10));
          const results = await Promise.all([s().pool.claim(id(a), id(b)), s().pool.claim(id(c), id(b))]);
          assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
          // The loser's own session is still waiting.
          const loser = results[0] ? c : a;
          assert.ok(await s().pool.get(id(loser)), `round ${round}: the losing claimer was removed`);
          assert.equal(await s().pool.get(id(b)), undefined);
          assert.equal(await s().pool.remove(id(loser)), true);
        }
        assert.equal(await s().pool.size(), 0);
      });
    });

    describe("rooms", () => {
      it("create, get and delete", async () => {
        const r = room("r1");
        await s().rooms.create(r);
        assert.deepEqual(await s().rooms.get(r.roomId), r);
        assert.equal(await s().rooms.get(id("missing")), undefined);
        assert.deepEqual(await s().rooms.delete(r.roomId), r);
        assert.equal(await s().rooms.get(r.roomId), undefined);
        assert.equal(await s().rooms.delete(r.roomId), undefined, "a room is closed once");
        assert.equal(await s().rooms.delete(id("missing")), undefined);
      });

      it("concurrent deletes: exactly one caller gets the record", async () => {
        for (let round = 0; round < 10; round++) {
          const r = room(`race${round}`);
          await s().rooms.create(r);
          const results = await Promise.all([
            s().rooms.delete(r.roomId),
            s().rooms.delete(r.roomId),
            s().rooms.delete(r.roomId),
          ]);
          const winners = results.filter((x) => x !== undefined);
          assert.equal(winners.length, 1, `round ${round}`);
          assert.deepEqual(winners[0], r);
        }
      });

      it("append keeps the newest `limit` messages in order", async () => {
        const r = room("r1");
        await s().rooms.create(r);
        assert.deepEqual(await s().rooms.history(r.roomId), []);
        for (let n = 0; n < 3; n++) assert.equal(await s().rooms.append(r.roomId, message(n), 5), true);
        assert.deepEqual(await s().rooms.history(r.roomId), [message(0), message(1), message(2)]);
        for (let n = 3; n < 12; n++) assert.equal(await s().rooms.append(r.roomId, message(n), 5), true);
        assert.deepEqual(
          await s().rooms.history(r.roomId),
          [7, 8, 9, 10, 11].map((n) => message(n)),
        );
        // A smaller limit trims on the next append.
        assert.equal(await s().rooms.append(r.roomId, message(12), 2), true);
        assert.deepEqual(await s().rooms.history(r.roomId), [message(11), message(12)]);
      });

      it("histories of two rooms are separate", async () => {
        await s().rooms.create(room("r1"));
        await s().rooms.create(room("r2"));
        await s().rooms.append(id("r1"), message(1), 10);
        await s().rooms.append(id("r2"), message(2), 10);
        assert.deepEqual(await s().rooms.history(id("r1")), [message(1)]);
        assert.deepEqual(await s().rooms.history(id("r2")), [message(2)]);
      });

      it("append to an unknown or deleted room resolves false and stores nothing", async () => {
        assert.equal(await s().rooms.append(id("missing"), message(1), 10), false);
        assert.deepEqual(await s().rooms.history(id("missing")), []);
        const r = room("r1");
        await s().rooms.create(r);
        await s().rooms.append(r.roomId, message(1), 10);
        await s().rooms.delete(r.roomId);
        assert.deepEqual(await s().rooms.history(r.roomId), [], "delete closes the history too");
        assert.equal(await s().rooms.append(r.roomId, message(2), 10), false);
        assert.deepEqual(await s().rooms.history(r.roomId), []);
      });
    });

    describe("exclusions", () => {
      it("add is symmetric and excluded returns only the excluded subset", async () => {
        const [a, b, c, d] = [id("a"), id("b"), id("c"), id("d")];
        assert.deepEqual(await s().exclusions.excluded(a, [b, c, d]), new Set());
        await s().exclusions.add(a, b);
        await s().exclusions.add(d, a);
        assert.deepEqual(await s().exclusions.excluded(a, [b, c, d]), new Set([b, d]));
        assert.deepEqual(await s().exclusions.excluded(b, [a, c, d]), new Set([a]));
        assert.deepEqual(await s().exclusions.excluded(d, [a]), new Set([a]));
        assert.deepEqual(await s().exclusions.excluded(c, [a, b, d]), new Set(), "not transitive");
        assert.deepEqual(await s().exclusions.excluded(a, []), new Set());
      });

      it("an exclusion with a ttl expires", async () => {
        const [a, b] = [id("a"), id("b")];
        await s().exclusions.add(a, b, 50);
        assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set([b]));
        assert.deepEqual(await s().exclusions.excluded(b, [a]), new Set([a]));
        await sleep(150);
        assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set());
        assert.deepEqual(await s().exclusions.excluded(b, [a]), new Set());
      });

      it("a forever exclusion is not shortened by a later ttl", async () => {
        const [a, b] = [id("a"), id("b")];
        await s().exclusions.add(a, b);
        await s().exclusions.add(b, a, 30);
        await sleep(120);
        assert.deepEqual(await s().exclusions.excluded(a, [b]), new Set([b]));
      });

      it("a long ttl is not shortened by a shorter one; a ttl can be made forever", async () => {
        const [a, b, c] = [id("a"), id("b"), id("c")];
        await s().exclusions.add(a, b, 60_000);
        await s().exclusions.add(a, b, 30);
        await s().exclusions.add(a, c, 30);
        await s().exclusions.add(c, a);
        await sleep(120);
        assert.deepEqual(await s().exclusions.excluded(a, [b, c]), new Set([b, c]));
      });
    });

    describe("bus", () => {
      it("publish to a subscribed node delivers the message and resolves true", async () => {
        const got: BusMessage[] = [];
        const unsubscribe = await s().bus.subscribe(id("node-1"), (m) => got.push(m));
        const sent = busMessage(id("session-1"), 1);
        const matched: BusMessage = {
          to: id("session-1"),
          roomId: id("room"),
          frame: { type: "matched", roomId: id("room"), partner: { name: "Bob", distanceKm: 3 } },
          partner: { sessionId: id("session-2"), userId: id("user-2"), nodeId: id("node-2"), name: "Bob" },
        };
        assert.equal(await s().bus.publish(id("node-1"), sent), true);
        assert.equal(await s().bus.publish(id("node-1"), matched), true);
        await until(() => got.length === 2, "the messages");
        assert.deepEqual(got, [sent, matched], "messages arrive whole: to, roomId, frame and partner");
        await unsubscribe();
      });

      it("publish to a node nobody subscribed resolves false", async () => {
        assert.equal(await s().bus.publish(id("nobody"), busMessage(id("s"), 1)), false);
      });

      it("after unsubscribe, publish resolves false and nothing is delivered", async () => {
        const got: BusMessage[] = [];
        const unsubscribe = await s().bus.subscribe(id("node-1"), (m) => got.push(m));
        await unsubscribe();
        assert.equal(await s().bus.publish(id("node-1"), busMessage(id("s"), 1)), false);
        await sleep(30);
        assert.deepEqual(got, []);
      });

      it("two nodes receive only their own messages", async () => {
        const one: BusMessage[] = [];
        const two: BusMessage[] = [];
        const off1 = await s().bus.subscribe(id("node-1"), (m) => one.push(m));
        const off2 = await s().bus.subscribe(id("node-2"), (m) => two.push(m));
        const m1 = busMessage(id("s1"), 1);
        const m2 = busMessage(id("s2"), 2);
        assert.equal(await s().bus.publish(id("node-1"), m1), true);
        assert.equal(await s().bus.publish(id("node-2"), m2), true);
        await until(() => one.length >= 1 && two.length >= 1, "both messages");
        await sleep(20);
        assert.deepEqual(one, [m1]);
        assert.deepEqual(two, [m2]);
        await off1();
        // Node 2 still subscribed after node 1 left.
        assert.equal(await s().bus.publish(id("node-1"), m1), false);
        assert.equal(await s().bus.publish(id("node-2"), m2), true);
        await until(() => two.length === 2, "node 2's second message");
        await off2();
      });

      it("keeps the order of many messages", async () => {
        const got: number[] = [];
        const off = await s().bus.subscribe(id("node-1"), (m) => {
          if ("frame" in m && m.frame.type === "message") got.push(m.frame.ts - 1_700_000_000_000);
        });
        const count = 300;
        // Published without waiting for each other, then awaited one by one.
        const results = await Promise.all(
          Array.from({ length: count }, (_, n) => s().bus.publish(id("node-1"), busMessage(id("s"), n))),
        );
        assert.ok(results.every(Boolean));
        for (let n = count; n < count + 50; n++) {
          assert.equal(await s().bus.publish(id("node-1"), busMessage(id("s"), n)), true);
        }
        await until(() => got.length >= count + 50, "every message", 5000);
        assert.deepEqual(
          got,
          Array.from({ length: count + 50 }, (_, n) => n),
        );
        await off();
      });
    });

    describe("relay", () => {
      it(options?.relay === true ? "the store has a relay" : "the store has no relay", () => {
        assert.equal(s().relay !== undefined, options?.relay === true);
      });
      if (options?.relay !== true) return;

      const rule = { capacity: 3, ratePerSec: 5 };
      const relay = () => {
        const r = s().relay;
        if (r === undefined) throw new Error("the store has no relay");
        return r;
      };
      const batchOf = (from: number, count: number, routeTo?: string) => {
        const messages = Array.from({ length: count }, (_, i) => message(from + i));
        const frames = messages.map((_, i) => busMessage(id("s-b"), from + i) as FrameMessage);
        return {
          roomId: id("r1"),
          messages,
          historyLimit: 10,
          bucket: { key: id("bucket"), rule: { capacity: 100, ratePerSec: 100 } },
          ...(routeTo === undefined ? {} : { route: { nodeId: routeTo, frames } }),
        };
      };
      const numbers = (got: BusMessage[]) =>
        got.map((m) => ("frame" in m && m.frame.type === "message" ? m.frame.ts - 1_700_000_000_000 : -1));

      it("stores the messages in order and publishes each frame to the partner's node", async () => {
        await s().rooms.create(room("r1"));
        const got: BusMessage[] = [];
        const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
        const batch = batchOf(0, 4, id("node-2"));
        assert.deepEqual(await relay().send(batch), {
          allowed: 4,
          retryAfterMs: 0,
          stored: true,
          routed: true,
        });
        assert.deepEqual(await relay().send(batchOf(4, 1, id("node-2"))), {
          allowed: 1,
          retryAfterMs: 0,
          stored: true,
          routed: true,
        });
        await until(() => got.length === 5, "the five frames");
        assert.deepEqual(got.slice(0, 4), batch.route?.frames, "frames arrive whole, one by one");
        assert.deepEqual(numbers(got), [0, 1, 2, 3, 4]);
        assert.deepEqual(
          await s().rooms.history(id("r1")),
          [0, 1, 2, 3, 4].map((n) => message(n)),
        );
        await off();
      });

      it("keeps the newest historyLimit messages, as append does", async () => {
        await s().rooms.create(room("r1"));
        await relay().send({ ...batchOf(0, 6), historyLimit: 4 });
        assert.deepEqual(
          await s().rooms.history(id("r1")),
          [2, 3, 4, 5].map((n) => message(n)),
        );
        await relay().send({ ...batchOf(6, 1), historyLimit: 2 });
        assert.deepEqual(await s().rooms.history(id("r1")), [message(5), message(6)]);
      });

      it("the bucket allows the first messages that fit; the rest are neither stored nor published", async () => {
        await s().rooms.create(room("r1"));
        const got: BusMessage[] = [];
        const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
        const result = await relay().send({ ...batchOf(0, 5, id("node-2")), bucket: { key: id("k"), rule } });
        assert.equal(result.allowed, 3);
        assert.equal(result.stored, true);
        assert.equal(result.routed, true);
        // About 1 / ratePerSec = 200 ms, less whatever drained meanwhile.
        assert.ok(
          result.retryAfterMs > 50 && result.retryAfterMs <= 210,
          `retryAfterMs ${result.retryAfterMs}`,
        );
        await until(() => got.length >= 3, "the allowed frames");
        await sleep(20);
        assert.deepEqual(numbers(got), [0, 1, 2]);
        assert.deepEqual(
          await s().rooms.history(id("r1")),
          [0, 1, 2].map((n) => message(n)),
        );
        // The bucket is the limiter's: both see it full.
        assert.equal((await s().limiter.consume(id("k"), rule, 1)).allowed, false);
        const refused = await relay().send({
          ...batchOf(5, 2, id("node-2")),
          bucket: { key: id("k"), rule },
        });
        assert.equal(refused.allowed, 0);
        assert.ok(refused.retryAfterMs > 0);
        assert.equal(refused.routed, false);
        await sleep(refused.retryAfterMs + 15);
        assert.equal((await relay().send({ ...batchOf(7, 1), bucket: { key: id("k"), rule } })).allowed, 1);
        await off();
      });

      it("a room that does not exist stores and publishes nothing", async () => {
        const got: BusMessage[] = [];
        const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
        const result = await relay().send(batchOf(0, 2, id("node-2")));
        assert.deepEqual(result, { allowed: 2, retryAfterMs: 0, stored: false, routed: false });
        await sleep(30);
        assert.deepEqual(got, []);
        assert.deepEqual(await s().rooms.history(id("r1")), []);
        await off();
      });

      it("stores even when no node listens; routed tells", async () => {
        await s().rooms.create(room("r1"));
        assert.deepEqual(await relay().send(batchOf(0, 2, id("nobody"))), {
          allowed: 2,
          retryAfterMs: 0,
          stored: true,
          routed: false,
        });
        assert.deepEqual(await relay().send(batchOf(2, 1)), {
          allowed: 1,
          retryAfterMs: 0,
          stored: true,
          routed: false,
        });
        assert.deepEqual(
          await s().rooms.history(id("r1")),
          [0, 1, 2].map((n) => message(n)),
        );
      });

      it("batches sent without waiting for each other arrive in call order", async () => {
        await s().rooms.create(room("r1"));
        const got: BusMessage[] = [];
        const off = await s().bus.subscribe(id("node-2"), (m) => got.push(m));
        const sizes = [1, 3, 2, 5, 1, 4];
        let from = 0;
        const sends = sizes.map((size) => {
          const p = relay().send(batchOf(from, size, id("node-2")));
          from += size;
          return p;
        });
        assert.ok((await Promise.all(sends)).every((r) => r.routed));
        await until(() => got.length === from, "every frame");
        assert.deepEqual(
          numbers(got),
          Array.from({ length: from }, (_, n) => n),
        );
        await off();
      });

      it("refuses a route without one frame per message", async () => {
        await s().rooms.create(room("r1"));
        const batch = batchOf(0, 2, id("node-2"));
        await assert.rejects(
          async () =>
            relay().send({
              ...batch,
              route: { nodeId: id("node-2"), frames: batch.route?.frames.slice(1) ?? [] },
            }),
          RangeError,
        );
        assert.deepEqual(await s().rooms.history(id("r1")), [], "nothing stored");
      });
    });

    describe("limiter", () => {
      // 200 ms per unit: the few milliseconds a test takes between calls drain almost nothing.
      const rule = { capacity: 3, ratePerSec: 5 };

      it("allows up to capacity at once and refuses the next with a retry delay", async () => {
        const key = id("k");
        for (let i = 1; i <= 3; i++) {
          const r = await s().limiter.consume(key, rule, 1);
          assert.equal(r.allowed, true, `action ${i}`);
          assert.equal(r.retryAfterMs, 0);
          assert.ok(r.level > i - 0.5 && r.level <= i + 1e-6, `level after ${i}: ${r.level}`);
        }
        const refused = await s().limiter.consume(key, rule, 1);
        assert.equal(refused.allowed, false);
        // About 1 / ratePerSec = 200 ms, less whatever drained meanwhile.
        assert.ok(
          refused.retryAfterMs > 50 && refused.retryAfterMs <= 210,
          `retryAfterMs ${refused.retryAfterMs}`,
        );
        assert.ok(refused.level <= 3 + 1e-6, "a refused action adds nothing");
        // Still refused right away: refusals do not add to the level either.
        assert.equal((await s().limiter.consume(key, rule, 1)).allowed, false);
      });

      it("allows again after waiting retryAfterMs", async () => {
        const key = id("k");
        for (let i = 0; i < 3; i++) await s().limiter.consume(key, rule, 1);
        const refused = await s().limiter.consume(key, rule, 1);
        assert.equal(refused.allowed, false);
        await sleep(refused.retryAfterMs + 15);
        const again = await s().limiter.consume(key, rule, 1);
        assert.equal(again.allowed, true, `still refused after ${refused.retryAfterMs} ms`);
      });

      it("a cost larger than what is left is refused; a cost that fits is allowed", async () => {
        const key = id("k");
        assert.equal((await s().limiter.consume(key, rule, 2)).allowed, true);
        assert.equal((await s().limiter.consume(key, rule, 2)).allowed, false);
        assert.equal((await s().limiter.consume(key, rule, 1)).allowed, true);
        assert.equal((await s().limiter.consume(id("other"), rule, 4)).allowed, false, "above capacity");
      });

      it("keys are independent", async () => {
        const [a, b] = [id("a"), id("b")];
        for (let i = 0; i < 3; i++) assert.equal((await s().limiter.consume(a, rule, 1)).allowed, true);
        assert.equal((await s().limiter.consume(a, rule, 1)).allowed, false);
        for (let i = 0; i < 3; i++) assert.equal((await s().limiter.consume(b, rule, 1)).allowed, true);
        assert.equal((await s().limiter.consume(b, rule, 1)).allowed, false);
      });
    });

    describe("sessions", () => {
      it("put then get returns the record whole; a minimal record too", async () => {
        const full = session("a", {
          state: "room",
          roomId: id("room"),
          partner: { sessionId: id("b"), userId: id("user-b"), nodeId: id("node-2"), name: "Bob" },
          lastJoin: { lat: 48.8566, lng: 2.3522, rangeKm: 12.5 },
        });
        const waiting = session("w", {
          state: "waiting",
          since: 1_700_000_000_123,
          lastJoin: { lat: -33.8688, lng: 151.2093, rangeKm: 0.5 },
          roles: [],
          guest: true,
        });
        const minimal = session("m");
        for (const record of [full, waiting, minimal]) await s().sessions.put(record, 60_000);
        assert.deepEqual(await s().sessions.get(full.sessionId), full);
        assert.deepEqual(await s().sessions.get(waiting.sessionId), waiting);
        assert.deepEqual(await s().sessions.get(minimal.sessionId), minimal);
        assert.equal(await s().sessions.get(id("missing")), undefined);
      });

      it("put replaces the record", async () => {
        const a = session("a");
        await s().sessions.put(a, 60_000);
        const moved = session("a", {
          state: "waiting",
          since: 1_700_000_000_001,
          lastJoin: { lat: 1, lng: 2, rangeKm: 3 },
          updatedAt: 1_700_000_000_999,
        });
        await s().sessions.put(moved, 60_000);
        assert.deepEqual(await s().sessions.get(a.sessionId), moved);
      });

      it("delete resolves true once, then false; the record is gone", async () => {
        const a = session("a");
        await s().sessions.put(a, 60_000);
        assert.equal(await s().sessions.delete(a.sessionId), true);
        assert.equal(await s().sessions.get(a.sessionId), undefined);
        assert.equal(await s().sessions.delete(a.sessionId), false);
        assert.equal(await s().sessions.delete(id("never")), false);
      });

      it("a record expires ttlMs after put; a later put restarts its life", async () => {
        await s().sessions.put(session("short"), 60);
        await s().sessions.put(session("renewed"), 60);
        await s().sessions.put(session("renewed"), 60_000);
        await s().sessions.put(session("shortened"), 60_000);
        await s().sessions.put(session("shortened"), 60);
        await sleep(150);
        assert.equal(await s().sessions.get(id("short")), undefined);
        assert.equal(await s().sessions.get(id("shortened")), undefined);
        assert.deepEqual(await s().sessions.get(id("renewed")), session("renewed"));
        assert.equal(await s().sessions.delete(id("short")), false, "an expired record is not deleted");
      });

      it("takeover with the right token hash sets the new hash and node and returns the old record", async () => {
        const a = session("a", {
          state: "room",
          roomId: id("room"),
          lastJoin: { lat: 1, lng: 2, rangeKm: 3 },
        });
        await s().sessions.put(a, 60_000);
        const before = await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000);
        assert.deepEqual(before, a, "resolves the record as it was before");
        assert.deepEqual(await s().sessions.get(a.sessionId), {
          ...a,
          tokenHash: "hash-2",
          nodeId: id("node-2"),
        });
        // The new hash is the token now, and it is single-use too.
        const second = await s().sessions.takeover(a.sessionId, "hash-2", id("node-3"), "hash-3", 60_000);
        assert.deepEqual(second, { ...a, tokenHash: "hash-2", nodeId: id("node-2") });
        assert.equal(
          await s().sessions.takeover(a.sessionId, "hash-2", id("node-4"), "hash-4", 60_000),
          undefined,
        );
        assert.deepEqual(await s().sessions.get(a.sessionId), {
          ...a,
          tokenHash: "hash-3",
          nodeId: id("node-3"),
        });
      });

      it("takeover with a wrong or already-used hash changes nothing and resolves undefined", async () => {
        const a = session("a");
        await s().sessions.put(a, 60_000);
        assert.equal(
          await s().sessions.takeover(a.sessionId, "wrong", id("node-2"), "hash-2", 60_000),
          undefined,
        );
        assert.equal(await s().sessions.takeover(a.sessionId, "", id("node-2"), "hash-2", 60_000), undefined);
        assert.deepEqual(await s().sessions.get(a.sessionId), a);
        assert.ok(await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000));
        assert.equal(
          await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-3"), "hash-3", 60_000),
          undefined,
          "a token is single-use",
        );
        assert.deepEqual(await s().sessions.get(a.sessionId), {
          ...a,
          tokenHash: "hash-2",
          nodeId: id("node-2"),
        });
      });

      it("concurrent takeovers with one token: exactly one succeeds", async () => {
        for (let round = 0; round < 10; round++) {
          const a = session(`a${round}`);
          await s().sessions.put(a, 60_000);
          const results = await Promise.all(
            Array.from({ length: 5 }, (_, n) =>
              s().sessions.takeover(a.sessionId, a.tokenHash, id(`node-${n}`), `hash-${n}`, 60_000),
            ),
          );
          const winners = results.flatMap((r, n) => (r === undefined ? [] : [n]));
          assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
          const n = winners[0] as number;
          assert.deepEqual(results[n], a);
          assert.deepEqual(await s().sessions.get(a.sessionId), {
            ...a,
            tokenHash: `hash-${n}`,
            nodeId: id(`node-${n}`),
          });
        }
      });

      it("takeover of a missing, deleted or expired record resolves undefined", async () => {
        assert.equal(
          await s().sessions.takeover(id("missing"), "hash", id("node"), "hash-2", 60_000),
          undefined,
        );
        const d = session("deleted");
        await s().sessions.put(d, 60_000);
        await s().sessions.delete(d.sessionId);
        assert.equal(
          await s().sessions.takeover(d.sessionId, d.tokenHash, id("node"), "hash-2", 60_000),
          undefined,
        );
        const e = session("expired");
        await s().sessions.put(e, 50);
        await sleep(150);
        assert.equal(
          await s().sessions.takeover(e.sessionId, e.tokenHash, id("node"), "hash-2", 60_000),
          undefined,
        );
        assert.equal(await s().sessions.get(e.sessionId), undefined, "a failed takeover does not revive");
      });

      it("takeover gives the record a new life of ttlMs", async () => {
        const a = session("a");
        await s().sessions.put(a, 80);
        assert.ok(await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000));
        await sleep(150);
        assert.deepEqual(await s().sessions.get(a.sessionId), {
          ...a,
          tokenHash: "hash-2",
          nodeId: id("node-2"),
        });
      });
    });

    describe("mailbox", () => {
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

    describe("accounts", () => {
      it("create then get returns the account whole", async () => {
        const a = account("ann", "u1");
        assert.equal(await s().accounts.create(a), true);
        assert.deepEqual(await s().accounts.get(a.nameKey), a);
        const b = account("bob", "u2", { roles: [] });
        assert.equal(await s().accounts.create(b), true);
        assert.deepEqual(await s().accounts.get(b.nameKey), b);
        assert.equal(await s().accounts.get(id("nobody")), undefined);
      });

      it("a second create of a name resolves false and changes nothing", async () => {
        const a = account("ann", "u1");
        assert.equal(await s().accounts.create(a), true);
        const again = account("ann", "u2", { name: "ANN", passwordHash: "$argon2id$other", roles: [] });
        assert.equal(await s().accounts.create(again), false);
        assert.deepEqual(await s().accounts.get(a.nameKey), a);
      });

      it("concurrent creates of one name: exactly one succeeds", async () => {
        for (let round = 0; round < 10; round++) {
          const candidates = Array.from({ length: 5 }, (_, n) => account(`name${round}`, `u${n}`));
          const results = await Promise.all(candidates.map((c) => s().accounts.create(c)));
          const winners = results.flatMap((r, n) => (r ? [n] : []));
          assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
          assert.deepEqual(
            await s().accounts.get(id(`name${round}`)),
            candidates[winners[0] as number],
            "the winner's account is the one stored",
          );
        }
      });

      it("update replaces an existing account and resolves true; a missing one resolves false", async () => {
        const a = account("ann", "u1");
        await s().accounts.create(a);
        const rehashed = { ...a, passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$new", roles: ["admin"] };
        assert.equal(await s().accounts.update(rehashed), true);
        assert.deepEqual(await s().accounts.get(a.nameKey), rehashed);
        const ghost = account("ghost", "u9");
        assert.equal(await s().accounts.update(ghost), false);
        assert.equal(await s().accounts.get(ghost.nameKey), undefined, "update does not create");
        assert.equal(await s().accounts.create(ghost), true);
      });
    });

    describe("bans", () => {
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

    describe("nodes", () => {
      it("alive returns the subset of nodes that heartbeat", async () => {
        const [a, b, c] = [id("a"), id("b"), id("c")];
        assert.deepEqual(await s().nodes.alive([a, b, c]), new Set());
        await s().nodes.heartbeat(a, 60_000);
        await s().nodes.heartbeat(b, 60_000);
        assert.deepEqual(await s().nodes.alive([a, b, c]), new Set([a, b]));
        assert.deepEqual(await s().nodes.alive([c, b]), new Set([b]));
        assert.deepEqual(await s().nodes.alive([]), new Set());
      });

      it("a node is dead once its ttl passes without a heartbeat", async () => {
        const [short, renewed] = [id("short"), id("renewed")];
        await s().nodes.heartbeat(short, 60);
        await s().nodes.heartbeat(renewed, 60);
        await s().nodes.heartbeat(renewed, 60_000);
        assert.deepEqual(await s().nodes.alive([short, renewed]), new Set([short, renewed]));
        await sleep(150);
        assert.deepEqual(await s().nodes.alive([short, renewed]), new Set([renewed]));
        await s().nodes.heartbeat(short, 60_000);
        assert.deepEqual(await s().nodes.alive([short]), new Set([short]), "a heartbeat revives it");
      });

      it("remove forgets the node at once", async () => {
        const [a, b] = [id("a"), id("b")];
        await s().nodes.heartbeat(a, 60_000);
        await s().nodes.heartbeat(b, 60_000);
        await s().nodes.remove(a);
        assert.deepEqual(await s().nodes.alive([a, b]), new Set([b]));
        await s().nodes.remove(id("never"));
        await s().nodes.remove(a);
        assert.deepEqual(await s().nodes.alive([a, b]), new Set([b]));
      });
    });
  });
}
