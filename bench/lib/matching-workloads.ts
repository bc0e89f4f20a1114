import type { PoolEntry } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";

/**
 * Deterministic workloads for the matching benchmark. Entry `i` of a workload is a pure
 * function of (seed, i), so the same pool can be rebuilt for each implementation without
 * keeping the entries alive in between (which would distort the memory figures). Entries are
 * shaped like the hub makes them: a 22-character base64url sessionId, a `guest-` userId built
 * with a template literal, a shared nodeId string, a short guest name, and `since` in ms.
 */

const DEG = 180 / Math.PI;
/** Kilometres per degree of latitude (mean Earth radius). */
const KM_PER_DEG = 111.195;
/** `since` of fill entry `i` is `T0 + i`: 1 ms apart, in the order they were added. */
export const T0 = 1_750_000_000_000;
/** `since` of newcomer `k` is `NEWCOMER_T0 + k`: after every fill entry. */
export const NEWCOMER_T0 = T0 + 100_000_000;
const NODE_ID = "node-bench01";

/** A small, fast, seeded generator (mulberry32, the one the conformance kit uses). */
export const rng = prng;

function mix(seed: number, i: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

const bytes = Buffer.alloc(16);
/**
 * Like `randomId(n)` (randomBytes(n).toString("base64url")), from the seeded generator. With
 * `unique`, the first five bytes are the seed's tag and the index: the generator has only 32
 * bits of state, so ids drawn from it alone would collide in a million.
 */
function id(next: () => number, n: number, unique?: { tag: number; index: number }): string {
  for (let i = 0; i < n; i++) bytes[i] = (next() * 256) | 0;
  if (unique !== undefined) {
    bytes.writeUInt32LE(unique.index >>> 0, 0);
    bytes[4] = unique.tag & 0xff;
  }
  return bytes.toString("base64url", 0, n);
}

function logUniform(next: () => number, min: number, max: number): number {
  return min * (max / min) ** next();
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** Uniform over the sphere. */
function worldPoint(next: () => number): [number, number] {
  return [Math.asin(2 * next() - 1) * DEG, next() * 360 - 180];
}

function offsetKm(lat: number, lng: number, northKm: number, eastKm: number): [number, number] {
  const la = Math.max(-90, Math.min(90, lat + northKm / KM_PER_DEG));
  let lo = lng + eastKm / (KM_PER_DEG * Math.cos((lat * Math.PI) / 180));
  if (lo > 180) lo -= 360;
  if (lo < -180) lo += 360;
  return [la, lo];
}

const CITIES: readonly [number, number][] = [
  [48.8566, 2.3522], // Paris
  [40.7128, -74.006], // New York
  [35.6762, 139.6503], // Tokyo
  [-23.5505, -46.6333], // São Paulo
  [6.5244, 3.3792], // Lagos
];
/** Standard deviation of a city's crowd, per axis. */
const CITY_SIGMA_KM = 10;

function entry(
  seed: number,
  i: number,
  since: number,
  place: (next: () => number) => [number, number, number],
) {
  const next = rng(mix(seed, i));
  const sessionId = id(next, 16, { tag: seed, index: i });
  const userId = `guest-${id(next, 12, { tag: seed, index: i })}`;
  const name = `Guest ${id(next, 2).slice(0, 3)}`;
  const [lat, lng, rangeKm] = place(next);
  const e: PoolEntry = { sessionId, userId, nodeId: NODE_ID, name, lat, lng, rangeKm, since };
  return e;
}

/** A benchmark workload: how the pool is filled, and who joins it. */
export interface Workload {
  readonly name: "uniform" | "clustered" | "adversarial";
  readonly description: string;
  /**
   * Whether filling must go through the matcher (add, then search and claim) so that the pool
   * holds no mutually eligible pair; otherwise the fill is built to have none.
   */
  readonly fillThroughMatcher: boolean;
  /** Fill entry `i` (for a pool of `size`). */
  fill(i: number, size: number): PoolEntry;
  /** Newcomer `k` (joining a pool of `size`). */
  newcomer(k: number, size: number): PoolEntry;
}

const FILL_SEED = 0x5eed01;
const JOIN_SEED = 0x5eed02;

/** Uniform over the world; waiting ranges 0.5 to 5 km, newcomers 1 to 100 km. */
export const uniform: Workload = {
  name: "uniform",
  description: "uniform over the world; waiting ranges 0.5-5 km (log-uniform), newcomers 1-100 km",
  fillThroughMatcher: true,
  fill: (i) => entry(FILL_SEED, i, T0 + i, (next) => [...worldPoint(next), logUniform(next, 0.5, 5)]),
  newcomer: (k) =>
    entry(JOIN_SEED, k, NEWCOMER_T0 + k, (next) => [...worldPoint(next), logUniform(next, 1, 100)]),
};

function clusteredPoint(next: () => number, cityRange: [number, number], worldRange: [number, number]) {
  if (next() < 0.8) {
    const city = CITIES[Math.floor(next() * CITIES.length)]!;
    const [lat, lng] = offsetKm(
      city[0],
      city[1],
      gaussian(next) * CITY_SIGMA_KM,
      gaussian(next) * CITY_SIGMA_KM,
    );
    return [lat, lng, logUniform(next, ...cityRange)] as [number, number, number];
  }
  return [...worldPoint(next), logUniform(next, ...worldRange)] as [number, number, number];
}

/**
 * 80% in 5 cities (Gaussian, 10 km per axis), 20% over the world. A city full of waiting users
 * can only stay unmatched if their ranges are tiny (2 to 20 m; 0.5 to 5 km elsewhere);
 * newcomers ask for 1 to 50 km.
 */
export const clustered: Workload = {
  name: "clustered",
  description:
    "80% in 5 cities (Gaussian, sigma 10 km), 20% world; waiting ranges 2-20 m in cities, 0.5-5 km elsewhere; newcomers 1-50 km",
  fillThroughMatcher: true,
  fill: (i) => entry(FILL_SEED, i, T0 + i, (next) => clusteredPoint(next, [0.002, 0.02], [0.5, 5])),
  newcomer: (k) => entry(JOIN_SEED, k, NEWCOMER_T0 + k, (next) => clusteredPoint(next, [1, 50], [1, 50])),
};

/** Grid spacing of the adversarial city, in km. */
const GRID_KM = 0.015;
const ADV_CITY: [number, number] = [48.8566, 2.3522];

/**
 * One city, everybody waiting on a jittered grid (15 m apart; at 1M the grid is 15 km wide)
 * with ranges of 30 to 45% of the spacing, so that no two of them reach each other (the jitter
 * is at most 5% per axis); newcomers land anywhere in the grid with ranges of 20 to 100 km,
 * which hold the whole city.
 */
export const adversarial: Workload = {
  name: "adversarial",
  description:
    "one city: waiting users on a 15 m jittered grid with ranges 4.5-6.75 m (none reach each other); newcomers anywhere in it with ranges 20-100 km",
  fillThroughMatcher: false,
  fill: (i, size) =>
    entry(FILL_SEED, i, T0 + i, (next) => {
      const side = Math.ceil(Math.sqrt(size));
      const row = Math.floor(i / side);
      const col = i % side;
      const jitter = () => (next() - 0.5) * 0.1 * GRID_KM; // at most 5% of the spacing each way
      const [lat, lng] = offsetKm(
        ADV_CITY[0],
        ADV_CITY[1],
        row * GRID_KM + jitter(),
        col * GRID_KM + jitter(),
      );
      return [lat, lng, GRID_KM * (0.3 + 0.15 * next())];
    }),
  newcomer: (k, size) =>
    entry(JOIN_SEED, k, NEWCOMER_T0 + k, (next) => {
      const sideKm = Math.ceil(Math.sqrt(size)) * GRID_KM;
      const [lat, lng] = offsetKm(ADV_CITY[0], ADV_CITY[1], next() * sideKm, next() * sideKm);
      return [lat, lng, logUniform(next, 20, 100)];
    }),
};

export const WORKLOADS: readonly Workload[] = [uniform, clustered, adversarial];
