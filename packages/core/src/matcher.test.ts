import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { haversineKm } from "./geo.js";
import { type MatchFilter, searchAndClaim } from "./matcher.js";
import type { ExclusionStore, PoolEntry, PoolStore, Store } from "./store.js";

/**
 * A pool that returns every waiting entry as a candidate (a superset, as the contract allows),
 * with a scripted claim, and exclusions from a set of pairs; it records the calls.
 */
function fakeStore(entries: PoolEntry[], excludedPairs: [string, string][] = []) {
  const waiting = new Map(entries.map((e) => [e.sessionId, e]));
  const calls = { claims: [] as [string, string][], excludedAsked: [] as string[][] };
  /** Sessions that vanish just before their claim (another search took them). */
  const stolen = new Set<string>();
  const pool: PoolStore = {
    async add(e) {
      waiting.set(e.sessionId, e);
    },
    async remove(id) {
      return waiting.delete(id);
    },
    async get(id) {
      return waiting.get(id);
    },
    async candidates() {
      return [...waiting.values()];
    },
    async claim(a, b) {
      calls.claims.push([a, b]);
      for (const id of stolen) waiting.delete(id);
      if (a === b || !waiting.has(a) || !waiting.has(b)) return false;
      waiting.delete(a);
      waiting.delete(b);
      return true;
    },
    async size() {
      return waiting.size;
    },
  };
  const exclusions: ExclusionStore = {
    async add() {},
    async excluded(user, others) {
      calls.excludedAsked.push([...others]);
      const out = new Set<string>();
      for (const o of others) {
        if (excludedPairs.some(([x, y]) => (x === user && y === o) || (x === o && y === user))) out.add(o);
      }
      return out;
    },
  };
  const store = { pool, exclusions } as unknown as Store;
  return { store, waiting, calls, stolen };
}

let n = 0;
function entry(
  lat: number,
  lng: number,
  rangeKm: number,
  since: number,
  extra: Partial<PoolEntry> = {},
): PoolEntry {
  n++;
  return {
    sessionId: `s${n}`,
    userId: `u${n}`,
    nodeId: "node",
    name: `n${n}`,
    lat,
    lng,
    rangeKm,
    since,
    ...extra,
  };
}

describe("searchAndClaim", () => {
  it("claims the longest-waiting eligible candidate, not the nearest", async () => {
    const me = entry(0, 0, 100, 1000);
    const near = entry(0, 0.01, 100, 500);
    const old = entry(0, 0.5, 100, 100);
    const { store, waiting } = fakeStore([me, near, old]);
    const got = await searchAndClaim(store, me, undefined);
    expect(got?.partner.sessionId).toBe(old.sessionId);
    expect(got?.distanceKm).toBeCloseTo(haversineKm(0, 0, 0, 0.5), 9);
    expect([...waiting.keys()]).toEqual([near.sessionId]);
  });

  it("breaks ties of since by distance, then by sessionId", async () => {
    const me = entry(0, 0, 100, 1000);
    const far = entry(0, 0.5, 100, 100, { sessionId: "a-far" });
    const nearB = entry(0, 0.1, 100, 100, { sessionId: "b-near" });
    const nearA = entry(0, -0.1, 100, 100, { sessionId: "a-near" });
    const first = await searchAndClaim(fakeStore([me, far, nearB, nearA]).store, me, undefined);
    expect(first?.partner.sessionId).toBe("a-near");
    const second = await searchAndClaim(fakeStore([me, far, nearB]).store, me, undefined);
    expect(second?.partner.sessionId).toBe("b-near");
  });

  it("applies the mutual rule exactly to what the index returned", async () => {
    const me = entry(0, 0, 20, 1000);
    const itsRangeTooShort = entry(0, 0.1, 5, 1); // 11.1 km away, accepts 5
    const mineTooShort = entry(0, 0.3, 100, 2); // 33.4 km away, I accept 20
    const edge = entry(0, 0, 0.001, 3); // same point, tiny range: d = 0
    const { store, calls } = fakeStore([me, itsRangeTooShort, mineTooShort, edge]);
    const got = await searchAndClaim(store, me, undefined);
    expect(got?.partner.sessionId).toBe(edge.sessionId);
    expect(got?.distanceKm).toBe(0);
    expect(calls.excludedAsked).toEqual([[edge.userId]]);
  });

  it("never matches the newcomer with itself or another session of its user", async () => {
    const me = entry(0, 0, 100, 1000, { userId: "same" });
    const twin = entry(0, 0, 100, 1, { userId: "same" });
    const { store, calls } = fakeStore([me, twin]);
    expect(await searchAndClaim(store, me, undefined)).toBeUndefined();
    expect(calls.claims).toEqual([]);
    expect(calls.excludedAsked).toEqual([]);
  });

  it("skips excluded users and candidates the host filter refuses", async () => {
    const me = entry(0, 0, 100, 1000, { name: "fr" });
    const blocked = entry(0, 0.01, 100, 1, { name: "fr" });
    const otherLanguage = entry(0, 0.02, 100, 2, { name: "de" });
    const ok = entry(0, 0.03, 100, 3, { name: "fr" });
    const seen: [string, string][] = [];
    const sameLanguage: MatchFilter = (a, b) => {
      seen.push([a.sessionId, b.sessionId]);
      return a.name === b.name;
    };
    const { store } = fakeStore([me, blocked, otherLanguage, ok], [[blocked.userId, me.userId]]);
    const got = await searchAndClaim(store, me, sameLanguage);
    expect(got?.partner.sessionId).toBe(ok.sessionId);
    // The filter gets the newcomer first, and only candidates that passed the other rules.
    expect(seen.every(([a]) => a === me.sessionId)).toBe(true);
    expect(seen.map(([, b]) => b)).not.toContain(blocked.sessionId);
  });

  it("moves on to the next candidate when a claim fails because the candidate is gone", async () => {
    const me = entry(0, 0, 100, 1000);
    const first = entry(0, 0.01, 100, 1);
    const second = entry(0, 0.02, 100, 2);
    const { store, calls, stolen } = fakeStore([me, first, second]);
    stolen.add(first.sessionId);
    const got = await searchAndClaim(store, me, undefined);
    expect(got?.partner.sessionId).toBe(second.sessionId);
    expect(calls.claims).toEqual([
      [me.sessionId, first.sessionId],
      [me.sessionId, second.sessionId],
    ]);
  });

  it("stops when the newcomer itself was claimed meanwhile", async () => {
    const me = entry(0, 0, 100, 1000);
    const first = entry(0, 0.01, 100, 1);
    const second = entry(0, 0.02, 100, 2);
    const { store, calls, stolen } = fakeStore([me, first, second]);
    stolen.add(me.sessionId);
    expect(await searchAndClaim(store, me, undefined)).toBeUndefined();
    expect(calls.claims).toEqual([[me.sessionId, first.sessionId]]);
  });

  it("drops what prune drops", async () => {
    const me = entry(0, 0, 100, 1000);
    const deadNode = entry(0, 0.01, 100, 1, { nodeId: "dead" });
    const live = entry(0, 0.02, 100, 2);
    const { store } = fakeStore([me, deadNode, live]);
    const got = await searchAndClaim(store, me, undefined, async (es) =>
      es.filter((e) => e.nodeId !== "dead"),
    );
    expect(got?.partner.sessionId).toBe(live.sessionId);
  });

  it("picks what a brute-force scan of the policy picks (random pools)", async () => {
    const point = fc.tuple(
      fc.double({ min: -1, max: 1, noNaN: true }),
      fc.double({ min: -1, max: 1, noNaN: true }),
    );
    const candidate = fc.record({
      at: point,
      rangeKm: fc.constantFrom(1, 20, 60, 150, 400),
      since: fc.integer({ min: 0, max: 5 }),
      user: fc.integer({ min: 0, max: 6 }),
      excluded: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        point,
        fc.constantFrom(10, 80, 300),
        fc.array(candidate, { maxLength: 12 }),
        async (at, r, cs) => {
          const me = entry(at[0], at[1], r, 100, { userId: "user-0" });
          const others = cs.map((c) =>
            entry(c.at[0], c.at[1], c.rangeKm, c.since, { userId: `user-${c.user}` }),
          );
          const excluded = cs.flatMap((c, i): [string, string][] =>
            c.excluded ? [[me.userId, others[i]!.userId]] : [],
          );
          const { store } = fakeStore([me, ...others], excluded);
          const got = await searchAndClaim(store, me, undefined);
          const excludedUsers = new Set(excluded.map(([, u]) => u));
          const eligible = others
            .map((o) => ({ o, d: haversineKm(me.lat, me.lng, o.lat, o.lng) }))
            .filter(
              ({ o, d }) =>
                o.userId !== me.userId && !excludedUsers.has(o.userId) && d <= r && d <= o.rangeKm,
            );
          if (eligible.length === 0) {
            expect(got).toBeUndefined();
            return;
          }
          const best = eligible.reduce((x, y) =>
            y.o.since < x.o.since || (y.o.since === x.o.since && y.d < x.d) ? y : x,
          );
          expect(got?.partner.since).toBe(best.o.since);
          expect(got?.distanceKm).toBe(best.d);
        },
      ),
      { numRuns: 300 },
    );
  });
});
