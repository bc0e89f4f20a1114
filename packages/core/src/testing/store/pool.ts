import assert from "node:assert/strict";
import { haversineKm } from "../../geo.js";
import type { PoolEntry } from "../../store.js";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  pointGenerator,
  prng,
  rangeGenerator,
  type StoreCapabilityOptions,
  type StorePart,
} from "./shared.js";

/**
 * The conformance tests of `PoolStore`, the waiting pool: `add` (a replace for a known
 * session), `get`, `remove`, `size`, `claim` (atomic: of concurrent claims on one session
 * exactly one wins) and `candidates`, which must hold every entry whose range holds the query
 * point (across the antimeridian, over the poles, and for ranges of half the Earth or more),
 * checked against a brute-force oracle on seeded random entries. Needs `store.pool`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function poolConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"pool">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "pool", options, ({ s, id, entry }) => {
    const candidateIds = async (lat: number, lng: number, rangeKm = 20_000): Promise<string[]> =>
      (await s().pool.candidates(lat, lng, rangeKm)).map((e) => e.sessionId);

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
      assert.deepEqual(await candidateIds(48.8566, 2.3522), [], "the old point must be gone from the index");
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
}
