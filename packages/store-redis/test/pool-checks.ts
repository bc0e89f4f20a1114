import { haversineKm, type PoolEntry, type PoolStore, type Store, searchAndClaim } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { expect } from "vitest";
import { GEO_MAX_LAT } from "../src/pool.js";

// Checks of a pool store's two promises, shared by the one-server and the cluster tests: every
// mutually eligible entry is a candidate (an oracle against brute force and the memory store),
// and joins racing through several nodes match nobody twice and leave no eligible pair waiting.

/** Points where Redis GEO is weakest: near and beyond ±85°, at the poles, on the antimeridian. */
export function hardPoints(rand: () => number): () => [number, number] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const lng = () => rand() * 360 - 180;
  const sign = () => (rand() < 0.5 ? 1 : -1);
  return () => {
    const kind = rand();
    if (kind < 0.2) return [(Math.asin(2 * rand() - 1) * 180) / Math.PI, lng()];
    // Around the GEO limit, on both sides of it.
    if (kind < 0.4) return [sign() * (GEO_MAX_LAT + (rand() - 0.5) * 4), lng()];
    if (kind < 0.45) return [sign() * pick([85, 85.05, 85.05112878, 85.1, 89.999, 90]), lng()];
    // Near a pole.
    if (kind < 0.6) return [sign() * (90 - rand() ** 2 * 8), lng()];
    // On or near the antimeridian, spelt both ways, at any latitude.
    if (kind < 0.8) {
      const lat = (rand() - 0.5) * 179;
      if (rand() < 0.3) return [lat, pick([180, -180])];
      const side = pick([180, -180]);
      return [lat, side - Math.sign(side) * rand() ** 2 * 3];
    }
    // A tight cluster.
    return [48.85 + (rand() - 0.5) * 0.1, 2.35 + (rand() - 0.5) * 0.1];
  };
}

export function oracleRanges(rand: () => number): () => number {
  return () => {
    if (rand() < 0.1) return [0.001, 1, 3, 3000, 10_007.6, 20_015.1, 1e6][Math.floor(rand() * 7)] as number;
    return 10 ** (-3 + rand() * 7.3);
  };
}

/**
 * Points where a geo-sharded pool can go wrong: on and around the edges and corners of the cells
 * of every default level (1°, 10°, 45°), on the antimeridian, near and beyond ±85° and at the
 * poles, packed close enough that pairs straddle those lines.
 */
export function edgePoints(rand: () => number): () => [number, number] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const near = (x: number, km: number) => x + ((rand() - 0.5) * 2 * km) / 111;
  return () => {
    const kind = rand();
    // A corner of a cell (of one of the levels), within a few km of it.
    if (kind < 0.35) {
      const size = pick([1, 10, 45]);
      const lat = size * Math.round((rand() * 160 - 80) / size);
      const lng = size * Math.round((rand() * 360 - 180) / size);
      return [Math.max(-90, Math.min(90, near(lat, 8))), Math.max(-180, Math.min(180, near(lng, 8)))];
    }
    // The antimeridian, spelt both ways.
    if (kind < 0.55) return [near(pick([0, 10, -33, 64]), 30), pick([180, -180, 179.99, -179.99, 179.9])];
    // Around the grid's limit and the poles.
    if (kind < 0.75) return [pick([1, -1]) * pick([84.99, 85, 85.01, 86, 89.99, 90]), rand() * 360 - 180];
    // A busy city across a 1° line (Paris sits on 49° N, 2° E's neighbours).
    return [near(49, 15), near(2, 15)];
  };
}

/** A crowd around the corner of four 1° cells (49° N 2° E), within about 3 km of it. */
export function cornerCrowd(rand: () => number): () => [number, number] {
  return () => [49 + (rand() - 0.5) * 0.05, 2 + (rand() - 0.5) * 0.08];
}

/** Ranges of every tier, most of them small. */
export function stormRanges(rand: () => number): () => number {
  return () => {
    const r = rand();
    if (r < 0.5) return 0.5 + rand() * 20;
    if (r < 0.8) return 20 + rand() * 400;
    if (r < 0.95) return 400 + rand() * 5000;
    return 20_015;
  };
}

/**
 * Many sessions join at once through several stores (the nodes of an app, each with its own
 * client): each adds its entry, then searches and claims as a hub does. Then checks the pool's
 * invariants: every session is matched at most once and only to an eligible partner; the pool
 * holds exactly the sessions nobody matched; and no two of those are eligible for each other
 * (they were never both left waiting).
 */
export async function joinStorm(
  stores: readonly Store[],
  options: {
    joins: number;
    seed: number;
    /** Where sessions join. @default {@link edgePoints} */
    points?: (rand: () => number) => () => [number, number];
    /** Their ranges. @default {@link stormRanges} */
    ranges?: (rand: () => number) => () => number;
  },
): Promise<{ matched: number; waiting: number }> {
  const rand = prng(options.seed);
  const point = (options.points ?? edgePoints)(rand);
  const range = (options.ranges ?? stormRanges)(rand);
  const entries: PoolEntry[] = [];
  for (let i = 0; i < options.joins; i++) {
    const [lat, lng] = point();
    entries.push({
      sessionId: `s${i}`,
      userId: `u${i}`,
      nodeId: "n",
      name: "x",
      lat,
      lng,
      rangeKm: range(),
      since: i,
    });
  }
  const base = await (stores[0] as Store).pool.size();
  const partnerOf = new Map<string, string[]>();
  const note = (a: string, b: string) => partnerOf.set(a, [...(partnerOf.get(a) ?? []), b]);
  await Promise.all(
    entries.map(async (entry, i) => {
      const store = stores[i % stores.length] as Store;
      // Spread the starts a little so that searches overlap other joins' steps.
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 20)));
      await store.pool.add(entry);
      const found = await searchAndClaim(store, entry, undefined);
      if (found !== undefined) {
        note(entry.sessionId, found.partner.sessionId);
        note(found.partner.sessionId, entry.sessionId);
        const d = haversineKm(entry.lat, entry.lng, found.partner.lat, found.partner.lng);
        expect(d, `${entry.sessionId} matched out of range`).toBeLessThanOrEqual(
          Math.min(entry.rangeKm, found.partner.rangeKm),
        );
      }
    }),
  );
  for (const [session, partners] of partnerOf) expect(partners, `${session} matched twice`).toHaveLength(1);
  const pool = (stores[0] as Store).pool;
  const waiting = entries.filter((e) => !partnerOf.has(e.sessionId));
  for (const e of entries) {
    const inPool = (await pool.get(e.sessionId)) !== undefined;
    expect(inPool, `${e.sessionId} in the pool: ${inPool}, matched: ${partnerOf.has(e.sessionId)}`).toBe(
      !partnerOf.has(e.sessionId),
    );
  }
  expect(await pool.size()).toBe(base + waiting.length);
  for (let i = 0; i < waiting.length; i++) {
    for (let j = i + 1; j < waiting.length; j++) {
      const a = waiting[i] as PoolEntry;
      const b = waiting[j] as PoolEntry;
      const d = haversineKm(a.lat, a.lng, b.lat, b.lng);
      expect(
        d <= a.rangeKm && d <= b.rangeKm,
        `${a.sessionId} (${a.lat}, ${a.lng}, ${a.rangeKm} km) and ${b.sessionId} (${b.lat}, ${b.lng}, ${b.rangeKm} km), ${d} km apart, both left waiting`,
      ).toBe(false);
    }
  }
  return { matched: partnerOf.size, waiting: waiting.length };
}

/**
 * Fills the pool with `entries` random entries and runs `queries` random searches, checking each
 * against brute force (and the memory store, the reference): every entry within both ranges of
 * the query is returned. Resolves how many such (query, entry) pairs were checked.
 */
export async function candidatesOracle(
  pool: PoolStore,
  options: {
    seed: number;
    points: (rand: () => number) => () => [number, number];
    entries?: number;
    queries?: number;
  },
): Promise<number> {
  const rand = prng(options.seed);
  const point = options.points(rand);
  const range = oracleRanges(rand);
  const memory = createMemoryStore();
  const live: PoolEntry[] = [];
  const base = (await pool.size()) as number;
  for (let i = 0; i < (options.entries ?? 1500); i++) {
    const [lat, lng] = point();
    const entry: PoolEntry = {
      sessionId: `o${options.seed}-${i}`,
      userId: `u${i}`,
      nodeId: "n",
      name: `N${i}`,
      lat,
      lng,
      rangeKm: range(),
      since: i,
    };
    live.push(entry);
    await pool.add(entry);
    await memory.pool.add(entry);
  }
  expect(await pool.size()).toBe(base + live.length);
  let checked = 0;
  for (let q = 0; q < (options.queries ?? 400); q++) {
    const [lat, lng] = point();
    const rangeKm = range();
    const fromStore = new Set((await pool.candidates(lat, lng, rangeKm)).map((e) => e.sessionId));
    const fromMemory = new Set((await memory.pool.candidates(lat, lng, rangeKm)).map((e) => e.sessionId));
    for (const e of live) {
      if (haversineKm(e.lat, e.lng, lat, lng) > Math.min(e.rangeKm, rangeKm)) continue;
      checked++;
      const where = `${e.sessionId} (${e.lat}, ${e.lng}) range ${e.rangeKm} for (${lat}, ${lng}) range ${rangeKm}`;
      expect(fromMemory.has(e.sessionId), `memory store misses ${where}`).toBe(true);
      expect(fromStore.has(e.sessionId), `the store misses ${where}`).toBe(true);
    }
  }
  await memory.close();
  return checked;
}
