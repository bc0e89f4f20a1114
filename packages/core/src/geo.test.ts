import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EARTH_RADIUS_KM, type GeoBox, haversineKm, publicDistanceKm, rangeBoxes } from "./geo.js";

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;

/** Longitude in degrees brought into [-180, 180]. */
function wrapLng(lng: number): number {
  const w = ((((lng + 180) % 360) + 360) % 360) - 180;
  return w;
}

/** The point `distanceKm` from (lat, lng) along the initial `bearingDeg` (great circle). */
function destination(lat: number, lng: number, bearingDeg: number, distanceKm: number): [number, number] {
  const d = distanceKm / EARTH_RADIUS_KM;
  const p1 = lat * RAD;
  const t = bearingDeg * RAD;
  const sinP2 = Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(t);
  const p2 = Math.asin(Math.max(-1, Math.min(1, sinP2)));
  const dl = Math.atan2(Math.sin(t) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [p2 * DEG, wrapLng(lng + dl * DEG)];
}

function inBox(b: GeoBox, lat: number, lng: number): boolean {
  return b.minX <= lng && lng <= b.maxX && b.minY <= lat && lat <= b.maxY;
}

/**
 * Strict on purpose: an index is queried with the point as given, so a point spelt -180 must be
 * in a box that reaches -180 even if the circle's centre is spelt 180.
 */
function covered(boxes: GeoBox[], lat: number, lng: number): boolean {
  return boxes.some((b) => inBox(b, lat, lng));
}

describe("haversineKm", () => {
  it("measures known distances", () => {
    // Paris (Notre-Dame) to London (Charing Cross): ~343.5 km.
    expect(haversineKm(48.8566, 2.3522, 51.5074, -0.1278)).toBeCloseTo(343.5, 0);
    // Antipodes: half the circumference.
    expect(haversineKm(10, 20, -10, -160)).toBeCloseTo(Math.PI * EARTH_RADIUS_KM, 3);
    expect(Math.PI * EARTH_RADIUS_KM).toBeCloseTo(20015.1, 1);
    // Pole to pole, and pole to equator.
    expect(haversineKm(90, 0, -90, 0)).toBeCloseTo(20015.1, 1);
    expect(haversineKm(90, 45, 0, -120)).toBeCloseTo(10007.56, 2);
    // One degree of longitude on the equator.
    expect(haversineKm(0, 0, 0, 1)).toBeCloseTo(111.195, 3);
  });

  it("is 0 for identical points, whatever the spelling of the meridian", () => {
    expect(haversineKm(0, 0, 0, 0)).toBe(0);
    expect(haversineKm(48.1, 11.5, 48.1, 11.5)).toBe(0);
    expect(haversineKm(12, 180, 12, -180)).toBeLessThan(1e-9);
    // At a pole every longitude is the same point.
    expect(haversineKm(90, 0, 90, 137)).toBeLessThan(1e-9);
    expect(haversineKm(-90, -20, -90, 170)).toBeLessThan(1e-9);
  });

  it("crosses the antimeridian and the poles the short way", () => {
    expect(haversineKm(0, 179.5, 0, -179.5)).toBeCloseTo(111.195, 3);
    // Two points 0.1 degree from the north pole on opposite meridians: 0.2 degree apart.
    expect(haversineKm(89.9, 10, 89.9, -170)).toBeCloseTo(0.2 * RAD * EARTH_RADIUS_KM, 6);
  });

  it("is symmetric", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        (a, b, c, d) => Math.abs(haversineKm(a, b, c, d) - haversineKm(c, d, a, b)) < 1e-9,
      ),
    );
  });
});

describe("publicDistanceKm", () => {
  it("rounds up to a whole kilometre, at least 1", () => {
    expect(publicDistanceKm(0)).toBe(1);
    expect(publicDistanceKm(0.2)).toBe(1);
    expect(publicDistanceKm(1.0)).toBe(1);
    expect(publicDistanceKm(1.01)).toBe(2);
    expect(publicDistanceKm(342.0001)).toBe(343);
  });
});

describe("rangeBoxes", () => {
  it("returns one box for a small range away from the antimeridian and poles", () => {
    const boxes = rangeBoxes(48.85, 2.35, 10);
    expect(boxes).toHaveLength(1);
    const [b] = boxes as [GeoBox];
    expect(b.minX).toBeLessThan(2.35);
    expect(b.maxX).toBeGreaterThan(2.35);
    expect(b.maxY - b.minY).toBeCloseTo((2 * 10 * DEG) / EARTH_RADIUS_KM, 6);
    // Longitude span grows with 1/cos(lat).
    expect(b.maxX - b.minX).toBeGreaterThan(b.maxY - b.minY);
  });

  it("splits at the antimeridian", () => {
    const east = rangeBoxes(0, 179.9, 50);
    expect(east).toHaveLength(2);
    expect(east.some((b) => b.maxX === 180)).toBe(true);
    expect(east.some((b) => b.minX === -180 && b.maxX > -180 && b.maxX < -179)).toBe(true);
    const west = rangeBoxes(0, -179.9, 50);
    expect(west).toHaveLength(2);
    expect(covered(west, 0, 179.8)).toBe(true);
    expect(covered(west, 0, -179.5)).toBe(true);
    expect(covered(west, 0, 0)).toBe(false);
  });

  it("spans all longitudes when the range reaches a pole", () => {
    for (const [lat, rangeKm] of [
      [90, 0.001],
      [-90, 1],
      [89.99, 5],
      [-89.5, 100],
      [0, 10_008],
    ] as const) {
      const boxes = rangeBoxes(lat, 17, rangeKm);
      expect(boxes).toHaveLength(1);
      expect(boxes[0]?.minX).toBe(-180);
      expect(boxes[0]?.maxX).toBe(180);
    }
  });

  it("covers the whole globe for a range of half the circumference or more", () => {
    for (const rangeKm of [20_015.2, 20_100, 1e9]) {
      expect(rangeBoxes(-33, 151, rangeKm)).toEqual([{ minX: -180, minY: -90, maxX: 180, maxY: 90 }]);
    }
  });

  it("keeps boxes within the valid coordinate ranges", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.double({ min: 0, max: 30_000, noNaN: true }),
        (lat, lng, rangeKm) => {
          for (const b of rangeBoxes(lat, lng, rangeKm)) {
            if (!(b.minX >= -180 && b.maxX <= 180 && b.minY >= -90 && b.maxY <= 90)) return false;
            if (!(b.minX <= b.maxX && b.minY <= b.maxY)) return false;
          }
          return true;
        },
      ),
    );
  });

  // Centres biased towards the poles and the antimeridian, where boxes are hardest to get right.
  const lat = fc.oneof(
    fc.double({ min: -90, max: 90, noNaN: true }),
    fc.constantFrom(90, -90, 0, 89.999999, -89.999999, 89.9, -89.9, 85.05, -85.05),
    fc.double({ min: 89, max: 90, noNaN: true }),
    fc.double({ min: -90, max: -89, noNaN: true }),
  );
  const lng = fc.oneof(
    fc.double({ min: -180, max: 180, noNaN: true }),
    fc.constantFrom(180, -180, 0, 179.999999, -179.999999),
    fc.double({ min: 179, max: 180, noNaN: true }),
    fc.double({ min: -180, max: -179, noNaN: true }),
  );
  // Tiny to huge, spread evenly on a log scale (0.001 km to 20 000 km), plus edge cases.
  const range = fc.oneof(
    fc.double({ min: -3, max: Math.log10(20_000), noNaN: true }).map((e) => 10 ** e),
    fc.constantFrom(0.001, 1, 10_007.5, 10_008, 20_000, 20_015),
  );
  const unit = fc.double({ min: 0, max: 1, noNaN: true });
  const bearing = fc.double({ min: 0, max: 360, noNaN: true, maxExcluded: true });

  it("contains every point within the range (points near the edge of the circle)", () => {
    fc.assert(
      fc.property(lat, lng, range, fc.array(bearing, { minLength: 1, maxLength: 24 }), (la, ln, r, bs) => {
        const boxes = rangeBoxes(la, ln, r);
        for (const b of bs) {
          for (const f of [1 - 1e-9, 1 - 1e-6, 1]) {
            const [pLat, pLng] = destination(la, ln, b, r * f);
            if (haversineKm(la, ln, pLat, pLng) > r) continue;
            if (!covered(boxes, pLat, pLng)) {
              throw new Error(`point (${pLat}, ${pLng}) at bearing ${b} is not in ${JSON.stringify(boxes)}`);
            }
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("contains every point within the range (points spread inside the circle)", () => {
    fc.assert(
      fc.property(lat, lng, range, bearing, unit, (la, ln, r, b, u) => {
        // sqrt spreads points evenly over the disc's area (for small discs).
        const [pLat, pLng] = destination(la, ln, b, r * Math.sqrt(u));
        if (haversineKm(la, ln, pLat, pLng) > r) return true;
        return covered(rangeBoxes(la, ln, r), pLat, pLng);
      }),
      { numRuns: 5000 },
    );
  });

  it("contains every point within the range (points uniform on the sphere)", () => {
    const sphere = fc.tuple(unit, fc.double({ min: -180, max: 180, noNaN: true })).map(([v, pLng]) => {
      const pLat = Math.asin(2 * v - 1) * DEG;
      return [pLat, pLng] as const;
    });
    fc.assert(
      fc.property(lat, lng, range, fc.array(sphere, { minLength: 1, maxLength: 50 }), (la, ln, r, points) => {
        const boxes = rangeBoxes(la, ln, r);
        for (const [pLat, pLng] of points) {
          if (haversineKm(la, ln, pLat, pLng) <= r && !covered(boxes, pLat, pLng)) return false;
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it("contains points across the pole and across the antimeridian", () => {
    // A circle around a point near the north pole that reaches over it.
    expect(covered(rangeBoxes(89.99, -170, 5), 89.99, 10)).toBe(true);
    // A circle at the antimeridian reaching the other side.
    expect(covered(rangeBoxes(-40, 180, 100), -40, -179.2)).toBe(true);
    expect(covered(rangeBoxes(-40, -180, 100), -40, 179.2)).toBe(true);
    // An identical point with a zero range.
    expect(covered(rangeBoxes(12.5, 45.25, 0), 12.5, 45.25)).toBe(true);
    expect(covered(rangeBoxes(12.5, 180, 0), 12.5, -180)).toBe(true);
  });
});
