import { isIP } from "node:net";
import { EARTH_RADIUS_KM, publicDistanceKm } from "./geo.js";

/**
 * Location obfuscation (docs/protocol.md section 6, "Location privacy"). Matching on exact points
 * and exact ranges turns "did I get matched?" into "is this user within r of my probe?", and a
 * binary search on the range from three probe points then trilaterates anyone to a few metres.
 * So core never lets an exact point or range past validation: a point is snapped to the centre
 * of a fixed grid cell (spatial cloaking on a stable grid, as the dating apps that were located
 * this way ended up doing), and a range is rounded up to a multiple of the precision. The grid is
 * public and stable: probing the same user again teaches nothing new, and the best any client
 * can learn is which cell a user is in.
 *
 * The grid: latitude bands of equal height; each band cut into equal longitude slices, as many
 * as make a slice at most one cell wide at the band's edge nearest the equator. Cells are then
 * at most `side` km tall and wide, so no point is farther than half a diagonal from its cell's
 * centre: the precision. The slices of a band divide 360° exactly, so the antimeridian is an
 * ordinary cell edge; near a pole a band has few slices (its cells are wedges), and the same
 * bound holds.
 */

const KM_PER_DEG = (Math.PI * EARTH_RADIUS_KM) / 180;
const RAD = Math.PI / 180;

/** A point and range as matching uses them: snapped and rounded. */
export interface ObfuscatedJoin {
  lat: number;
  lng: number;
  rangeKm: number;
}

/** The location obfuscation of one hub (see the module comment). */
export interface LocationGrid {
  /**
   * The largest distance between a user's point and the point matching uses, in km; also the
   * largest change made to a range. `0`: no obfuscation.
   */
  readonly precisionKm: number;
  /** The point and range matching uses for a client's `join`. */
  obfuscate(lat: number, lng: number, rangeKm: number): ObfuscatedJoin;
  /** A distance between two snapped points as partners see it: rounded up to the grid's step. */
  publicDistanceKm(distanceKm: number): number;
}

/**
 * A grid whose cells keep every point within `precisionKm` of the point used (`0` turns the
 * obfuscation off: exact points, ranges as given, distances rounded up to whole kilometres).
 */
export function locationGrid(precisionKm: number): LocationGrid {
  if (!Number.isFinite(precisionKm) || precisionKm < 0)
    throw new RangeError(`locationPrecisionKm must be a non-negative number of km, got ${precisionKm}`);
  if (precisionKm === 0) {
    return {
      precisionKm: 0,
      obfuscate: (lat, lng, rangeKm) => ({ lat, lng, rangeKm }),
      publicDistanceKm,
    };
  }
  // Half a diagonal of a square cell of `side` is side / √2; keep 2% for the sphere.
  const side = (precisionKm * Math.SQRT2) / 1.02;
  const bands = Math.max(1, Math.ceil(180 / (side / KM_PER_DEG)));
  const bandDeg = 180 / bands;
  // Distances are shown in whole kilometres, in steps of at least the precision.
  const step = Math.max(1, Math.ceil(precisionKm));
  const slicesOf = new Map<number, number>();
  const slices = (band: number): number => {
    let n = slicesOf.get(band);
    if (n === undefined) {
      const south = -90 + band * bandDeg;
      const north = south + bandDeg;
      // The band's edge nearest the equator is its widest.
      const widest = south <= 0 && north >= 0 ? 0 : Math.min(Math.abs(south), Math.abs(north));
      const circumference = 360 * KM_PER_DEG * Math.cos(widest * RAD);
      n = Math.max(1, Math.ceil(circumference / side));
      slicesOf.set(band, n);
    }
    return n;
  };
  return {
    precisionKm,
    obfuscate(lat, lng, rangeKm) {
      const band = Math.min(bands - 1, Math.max(0, Math.floor((lat + 90) / bandDeg)));
      const n = slices(band);
      const sliceDeg = 360 / n;
      const slice = Math.min(n - 1, Math.max(0, Math.floor((lng + 180) / sliceDeg)));
      return {
        lat: -90 + (band + 0.5) * bandDeg,
        lng: -180 + (slice + 0.5) * sliceDeg,
        rangeKm: Math.max(precisionKm, Math.ceil(rangeKm / precisionKm - 1e-9) * precisionKm),
      };
    },
    publicDistanceKm: (d) => Math.max(step, Math.ceil(d / step - 1e-9) * step),
  };
}

/**
 * The key of a client address in the per-address buckets (connection attempts, guests' joins):
 * an IPv4 address as it is; an IPv6 address by its /64 prefix, which one subscriber usually holds
 * whole (a bucket per full IPv6 address would give one client 2^64 buckets to probe with). An
 * IPv4 address written as IPv6 (mapped `::ffff:a.b.c.d`, or NAT64 `64:ff9b::a.b.c.d`) is its IPv4
 * address. Anything else (an unknown or empty address) is returned as it is.
 */
export function addressBucketKey(address: string): string {
  const plain = address.split("%")[0] as string; // no zone id (fe80::1%eth0)
  if (isIP(plain) !== 6) return address;
  const groups = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [Number.parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number);
          return [a * 256 + b, c * 256 + d];
        });
  const [head = "", tail] = plain.split("::") as [string, string | undefined];
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = full;
  const mapped = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff;
  const nat64 = g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0;
  if (mapped || nat64) return [g6 >> 8, g6 & 255, g7 >> 8, g7 & 255].join(".");
  return `${full
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}
