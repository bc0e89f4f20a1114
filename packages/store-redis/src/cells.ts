import { EARTH_RADIUS_KM } from "@whisperchat/core";

/**
 * One level of the geo-sharded pool: the range tiers up to `upToKm` live in square cells of
 * `cellDeg` degrees of latitude and longitude, each cell its own hash tag.
 */
export interface PoolCellLevel {
  /** The largest tier bound (km) this level holds; the last level holds every larger range: `Infinity`. */
  readonly upToKm: number;
  /** The side of a cell in degrees; 180 must be a whole multiple of it (1, 5, 10, 45, 90, 0.5...). */
  readonly cellDeg: number;
}

/**
 * The default levels: small ranges (tiers up to 10 km) in 1° cells, so that a crowded region
 * spreads over many tags; middle ranges (up to 300 km) in 10° cells; the largest in 45° cells,
 * so that a search of a few thousand km touches a handful of cells and one of the whole Earth
 * 32. A search touches, per level, the cells its radius reaches with that level's largest tier
 * bound as the cap: a join with a range of a few km touches one to four cells per level.
 */
export const DEFAULT_POOL_LEVELS: readonly PoolCellLevel[] = [
  { upToKm: 10, cellDeg: 1 },
  { upToKm: 300, cellDeg: 10 },
  { upToKm: Number.POSITIVE_INFINITY, cellDeg: 45 },
];

/** Entries beyond this latitude live in one polar tag, not in the grid (see pool.ts). */
export const GRID_MAX_LAT = 85;

/** Checks levels given as an option; returns a copy. */
export function checkLevels(levels: readonly PoolCellLevel[]): readonly PoolCellLevel[] {
  const fail = (why: string): never => {
    throw new RangeError(`createRedisStore: poolSharding.levels ${why}`);
  };
  if (!Array.isArray(levels) || levels.length === 0) fail("must be a non-empty array");
  let previous = 0;
  levels.forEach((level, i) => {
    const { upToKm, cellDeg } = level ?? {};
    if (!(typeof upToKm === "number" && upToKm > previous)) fail("must have ascending upToKm > 0");
    if (!(typeof cellDeg === "number" && cellDeg > 0 && cellDeg <= 180))
      fail(`[${i}].cellDeg must be within (0, 180]`);
    const bands = 180 / cellDeg;
    if (Math.abs(bands - Math.round(bands)) > 1e-9)
      fail(`[${i}].cellDeg must divide 180 evenly, got ${cellDeg}`);
    previous = upToKm;
  });
  if (levels[levels.length - 1]?.upToKm !== Number.POSITIVE_INFINITY) fail("must end with upToKm: Infinity");
  return levels.map((l) => ({ upToKm: l.upToKm, cellDeg: l.cellDeg }));
}

/** A level with its place in the grid: the tiers it holds (1-based indices into the tier list). */
export interface Level {
  readonly cellDeg: number;
  readonly bands: number;
  readonly cols: number;
  /** Tier indices (1-based, the last one is the open tier) held by this level, ascending. */
  readonly tiers: readonly number[];
  /** The largest range (km) any tier of this level holds: a search of the level is capped by it. */
  readonly capKm: number;
}

/**
 * Groups the tiers (bounds ascending, plus the open tier) into the levels: each tier goes to the
 * first level whose `upToKm` is at least its bound. Levels that get no tier are dropped.
 */
export function levelsOf(tierBoundsKm: readonly number[], levels: readonly PoolCellLevel[]): Level[] {
  const bounds = [...tierBoundsKm, Number.POSITIVE_INFINITY];
  const out: Level[] = [];
  for (const level of levels) {
    const tiers: number[] = [];
    bounds.forEach((bound, i) => {
      const first = levels.find((l) => bound <= l.upToKm);
      if (first === level) tiers.push(i + 1);
    });
    if (tiers.length === 0) continue;
    const bands = Math.round(180 / level.cellDeg);
    out.push({
      cellDeg: level.cellDeg,
      bands,
      cols: bands * 2,
      tiers,
      capKm: bounds[(tiers[tiers.length - 1] as number) - 1] as number,
    });
  }
  return out;
}

/** The cell (band, column) of a point at a level. Longitude 180 is column 0, as -180. */
export function cellOf(level: Level, lat: number, lng: number): [number, number] {
  const band = Math.min(level.bands - 1, Math.max(0, Math.floor((lat + 90) / level.cellDeg)));
  const col = Math.floor((lng + 180) / level.cellDeg) % level.cols;
  return [band, col];
}

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;
/** Margin added to every covering, in radians (about 6 cm): floating-point slack only. */
const EPS_RAD = 1e-8;

/**
 * The cells of a level that hold every grid point (|lat| ≤ {@link GRID_MAX_LAT}) within `km`
 * of (`lat`, `lng`) on core's sphere, and possibly a few more: the bounding box of the spherical
 * cap (latitude ± θ; longitude ± asin(sin θ / cos lat), or every longitude when the cap holds a
 * pole), cut to the grid's latitudes. `km` may be `Infinity`.
 */
export function cellsWithin(level: Level, lat: number, lng: number, km: number): [number, number][] {
  const theta = km / EARTH_RADIUS_KM + EPS_RAD;
  const lo = Math.max(lat - theta * DEG, -GRID_MAX_LAT);
  const hi = Math.min(lat + theta * DEG, GRID_MAX_LAT);
  if (lo > hi) return [];
  const [bandLo] = cellOf(level, lo, 0);
  const [bandHi] = cellOf(level, hi, 0);
  let allCols = theta >= Math.PI / 2 || Math.abs(lat) * RAD + theta >= Math.PI / 2;
  let colLo = 0;
  let colHi = level.cols - 1;
  if (!allCols) {
    const spread = Math.asin(Math.min(1, Math.sin(theta) / Math.cos(lat * RAD))) * DEG + EPS_RAD * DEG;
    if (2 * spread >= 360 - level.cellDeg) allCols = true;
    else {
      colLo = Math.floor((lng - spread + 180) / level.cellDeg);
      colHi = Math.floor((lng + spread + 180) / level.cellDeg);
    }
  }
  const out: [number, number][] = [];
  for (let band = bandLo; band <= bandHi; band++) {
    if (allCols) {
      for (let col = 0; col < level.cols; col++) out.push([band, col]);
    } else {
      for (let c = colLo; c <= colHi; c++) out.push([band, ((c % level.cols) + level.cols) % level.cols]);
    }
  }
  return out;
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** Redis Cluster's hash slot of a key (CRC16-XMODEM of its hash tag, mod 16384). */
export function slotOf(key: string): number {
  let tag = key;
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) tag = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(tag, "utf8")) {
    crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  }
  return crc % 16384;
}
