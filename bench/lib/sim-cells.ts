/**
 * The geo-sharded pool's cell layout, as `bench/sim-10m.ts` uses it: range tiers, grid levels,
 * the cell of a point, the cells a search touches, cell tags, and Redis Cluster's hash slots
 * (CRC16 of the tag) with the contiguous slot ranges `redis-cli --cluster create` gives masters.
 * A model of the layout for the simulation, written from its specification, not the store's code.
 */
import { EARTH_RADIUS_KM } from "@whisperchat/core";

/** The store's default range tiers (`poolTiersKm`); a range above the last is in the open tier "max". */
export const TIERS_KM = [1, 3, 10, 30, 100, 300, 1000, 3000] as const;

/** A grid level: serves the tiers up to `maxTierKm` (Infinity: the rest) with cells of `cellDeg` degrees. */
export interface CellLevel {
  maxTierKm: number;
  cellDeg: number;
}

/** The default levels: tiers up to 10 km on 1° cells, up to 300 km on 10°, the rest on 45°. */
export const LEVELS: readonly CellLevel[] = [
  { maxTierKm: 10, cellDeg: 1 },
  { maxTierKm: 300, cellDeg: 10 },
  { maxTierKm: Number.POSITIVE_INFINITY, cellDeg: 45 },
];

/** Key prefix of the store (its default). */
export const PREFIX = "wc:";
/** Points beyond this latitude (absolute) go to the one polar tag. */
export const POLAR_LAT = 85;
/** Numeric id of the polar cell (every other id is `level << 20 | band << 10 | col`). */
export const POLAR_ID = 0x3fffffff;
const DEG = 180 / Math.PI;
const RAD = Math.PI / 180;

/** The tier bound of a range (Infinity for the open tier "max"). */
export function tierOf(rangeKm: number): number {
  for (const t of TIERS_KM) if (rangeKm <= t) return t;
  return Number.POSITIVE_INFINITY;
}

/** The level (index into {@link LEVELS}) that holds an entry of this range. */
export function levelOf(rangeKm: number): number {
  const tier = tierOf(rangeKm);
  for (let i = 0; i < LEVELS.length; i++) if (tier <= (LEVELS[i] as CellLevel).maxTierKm) return i;
  return LEVELS.length - 1;
}

function bandOf(lat: number, s: number): number {
  return Math.min(Math.max(Math.floor((lat + 90) / s), 0), 180 / s - 1);
}

function colOf(lng: number, s: number): number {
  const n = 360 / s;
  return ((Math.floor((lng + 180) / s) % n) + n) % n;
}

/** The cell id of a point at a level (of `levels`, by default {@link LEVELS}). */
export function cellOf(
  level: number,
  lat: number,
  lng: number,
  levels: readonly CellLevel[] = LEVELS,
): number {
  if (Math.abs(lat) > POLAR_LAT) return POLAR_ID;
  const s = (levels[level] as CellLevel).cellDeg;
  return (level << 20) | (bandOf(lat, s) << 10) | colOf(lng, s);
}

/** The tag of a cell id: `<prefix>pool:<s>:<band>:<col>` or `<prefix>pool:polar`. */
export function tagOf(id: number, levels: readonly CellLevel[] = LEVELS): string {
  if (id === POLAR_ID) return `${PREFIX}pool:polar`;
  const level = id >>> 20;
  const s = (levels[level] as CellLevel).cellDeg;
  return `${PREFIX}pool:${s}:${(id >>> 10) & 0x3ff}:${id & 0x3ff}`;
}

/**
 * Calls `visit` with the id of every cell that a search from (`lat`, `lng`) with `rangeKm`
 * touches: per level, the cells of the bounding box of the spherical cap of radius
 * min(rangeKm, the level's largest tier bound) (latitudes clamped to ±85°, the rest being the
 * polar tag), the whole longitude circle when the cap reaches a pole; then the polar tag once
 * when the circle reaches beyond ±85°. Returns the number of cells visited.
 */
export function searchCells(
  lat: number,
  lng: number,
  rangeKm: number,
  visit: (id: number) => void,
  levels: readonly CellLevel[] = LEVELS,
): number {
  let count = 0;
  let polar = false;
  for (let level = 0; level < levels.length; level++) {
    const { maxTierKm, cellDeg: s } = levels[level] as CellLevel;
    const radius = Math.min(rangeKm, maxTierKm);
    const theta = Math.min(radius / EARTH_RADIUS_KM, Math.PI);
    const dLat = theta * DEG;
    const minLat = lat - dLat;
    const maxLat = lat + dLat;
    if (maxLat > POLAR_LAT || minLat < -POLAR_LAT) polar = true;
    let whole = minLat <= -90 || maxLat >= 90;
    let dLng = 180;
    if (!whole) {
      const ratio = Math.sin(theta) / Math.cos(lat * RAD);
      if (ratio >= 1) whole = true;
      else dLng = Math.asin(ratio) * DEG;
    }
    if (Math.max(minLat, maxLat) < -POLAR_LAT || Math.min(minLat, maxLat) > POLAR_LAT) continue;
    const b0 = bandOf(Math.max(minLat, -POLAR_LAT), s);
    const b1 = bandOf(Math.min(maxLat, POLAR_LAT), s);
    const ncols = 360 / s;
    let c0: number;
    let span: number;
    if (whole || 2 * dLng >= 360) {
      c0 = 0;
      span = ncols;
    } else {
      c0 = Math.floor((lng - dLng + 180) / s);
      const c1 = Math.floor((lng + dLng + 180) / s);
      span = Math.min(c1 - c0 + 1, ncols);
    }
    for (let b = b0; b <= b1; b++) {
      for (let k = 0; k < span; k++) {
        const col = (((c0 + k) % ncols) + ncols) % ncols;
        visit((level << 20) | (b << 10) | col);
        count++;
      }
    }
  }
  if (polar) {
    visit(POLAR_ID);
    count++;
  }
  return count;
}

/** CRC16 as Redis Cluster computes it (XMODEM: polynomial 0x1021, initial value 0). */
export function crc16(text: string): number {
  const bytes = Buffer.from(text, "utf8");
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash slot of a hash tag's content (the part between braces). */
export function slotOf(tag: string): number {
  return crc16(tag) % 16384;
}

/** The master (0..n-1) that owns a slot when `redis-cli --cluster create` made `n` masters. */
export function masterOf(slot: number, n: number): number {
  // Master i owns [floor(i * 16384 / n), floor((i + 1) * 16384 / n) - 1].
  let i = Math.floor((slot * n) / 16384);
  while (i > 0 && slot < Math.floor((i * 16384) / n)) i--;
  while (i < n - 1 && slot >= Math.floor(((i + 1) * 16384) / n)) i++;
  return i;
}

/** Checks the CRC16 against Redis Cluster's known slots; throws when one differs. */
export function checkSlots(): void {
  const known: [string, number][] = [
    ["foo", 12182],
    ["bar", 5061],
    ["hello", 866],
    ["123456789", 0x31c3 % 16384],
  ];
  for (const [key, slot] of known) {
    if (slotOf(key) !== slot) throw new Error(`slot of "${key}": ${slotOf(key)}, expected ${slot}`);
  }
  if (crc16("123456789") !== 0x31c3) throw new Error("crc16 of 123456789 is not 0x31c3");
}
