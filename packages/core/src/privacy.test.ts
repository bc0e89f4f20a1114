import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { haversineKm } from "./geo.js";
import { addressBucketKey, locationGrid } from "./privacy.js";

const point = fc.record({
  lat: fc.double({ min: -90, max: 90, noNaN: true }),
  lng: fc.double({ min: -180, max: 180, noNaN: true }),
});

describe("location grid", () => {
  for (const precision of [0.5, 1, 2.5, 10]) {
    const grid = locationGrid(precision);
    it(`keeps every point within ${precision} km of the point it uses, poles and antimeridian included`, () => {
      const edges = [
        { lat: 90, lng: 0 },
        { lat: -90, lng: 180 },
        { lat: 89.999, lng: -179.999 },
        { lat: 0, lng: 180 },
        { lat: 0, lng: -180 },
        { lat: 45, lng: 179.9999 },
      ];
      for (const p of edges) {
        const o = grid.obfuscate(p.lat, p.lng, 1);
        expect(haversineKm(p.lat, p.lng, o.lat, o.lng), JSON.stringify(p)).toBeLessThanOrEqual(precision);
      }
      fc.assert(
        fc.property(point, ({ lat, lng }) => {
          const o = grid.obfuscate(lat, lng, 1);
          return (
            haversineKm(lat, lng, o.lat, o.lng) <= precision &&
            Math.abs(o.lng) <= 180 &&
            Math.abs(o.lat) <= 90
          );
        }),
        { numRuns: 5000 },
      );
    });

    it(`is stable (${precision} km): a point already used maps to itself, and nearby points share a cell`, () => {
      fc.assert(
        fc.property(point, fc.double({ min: 0.001, max: 20000, noNaN: true }), ({ lat, lng }, range) => {
          const o = grid.obfuscate(lat, lng, range);
          const again = grid.obfuscate(o.lat, o.lng, o.rangeKm);
          return again.lat === o.lat && again.lng === o.lng && again.rangeKm === o.rangeKm;
        }),
      );
    });

    it(`rounds ranges up to a multiple of the precision, never below it (${precision} km)`, () => {
      fc.assert(
        fc.property(fc.double({ min: 0.001, max: 20000, noNaN: true }), (range) => {
          const r = grid.obfuscate(10, 10, range).rangeKm;
          const steps = r / precision;
          return (
            r >= range - 1e-6 &&
            r - range < precision + 1e-6 &&
            r >= precision &&
            Math.abs(steps - Math.round(steps)) < 1e-6
          );
        }),
      );
    });
  }

  it("shows distances in whole steps of the precision rounded up (at least 1 km)", () => {
    expect(locationGrid(2.5).publicDistanceKm(0)).toBe(3);
    expect(locationGrid(2.5).publicDistanceKm(3.1)).toBe(6);
    expect(locationGrid(0).publicDistanceKm(0.2)).toBe(1);
    expect(locationGrid(0).obfuscate(1.23456, 2.34567, 0.5)).toEqual({
      lat: 1.23456,
      lng: 2.34567,
      rangeKm: 0.5,
    });
    expect(() => locationGrid(-1)).toThrow(RangeError);
  });
});

describe("what the grid costs matching (docs/protocol.md section 6, Location privacy)", () => {
  // Pairs of users with the same range, the second placed uniformly in a disc of twice the range
  // around the first (first points spread over Europe's latitudes); the figures are printed and
  // quoted in the doc. A deterministic generator keeps them the same on every run.
  const KM_LAT = 111.195;
  const PRECISION = 2.5;
  function simulate(rangeKm: number, pairs: number) {
    const grid = locationGrid(PRECISION);
    let seed = 20_240_601;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    let extra = 0;
    let lost = 0;
    const changedAt: number[] = [];
    for (let i = 0; i < pairs; i++) {
      const lat = 40 + random() * 20;
      const lng = -10 + random() * 40;
      const rho = 2 * rangeKm * Math.sqrt(random());
      const theta = 2 * Math.PI * random();
      const bLat = lat + (rho * Math.sin(theta)) / KM_LAT;
      const bLng = lng + (rho * Math.cos(theta)) / (KM_LAT * Math.cos((lat * Math.PI) / 180));
      const d = haversineKm(lat, lng, bLat, bLng);
      const a = grid.obfuscate(lat, lng, rangeKm);
      const b = grid.obfuscate(bLat, bLng, rangeKm);
      const snapped = haversineKm(a.lat, a.lng, b.lat, b.lng) <= Math.min(a.rangeKm, b.rangeKm);
      if (snapped === d <= rangeKm) continue;
      if (snapped) extra++;
      else lost++;
      changedAt.push(d);
    }
    return { extra: extra / pairs, lost: lost / pairs, changedAt };
  }

  it("changes decisions only near a range's edge, and beyond 10 km for a few percent of pairs", () => {
    const rows: string[] = [];
    for (const rangeKm of [1, 2, 3, 5, 10, 20, 50]) {
      const { extra, lost, changedAt } = simulate(rangeKm, 50_000);
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      rows.push(`${rangeKm} km: ${pct(extra + lost)} (extra ${pct(extra)}, lost ${pct(lost)})`);
      // Both points move by at most the precision, the range grows by less than it: only pairs
      // from 2 precisions inside the range to 3 beyond it can change.
      for (const d of changedAt) {
        expect(d).toBeGreaterThan(rangeKm - 2 * PRECISION);
        expect(d).toBeLessThan(rangeKm + 3 * PRECISION);
      }
      if (rangeKm >= 10) expect(extra + lost).toBeLessThan(0.08);
      if (rangeKm >= 50) expect(extra + lost).toBeLessThan(0.02);
    }
    console.info(
      `decisions changed by a ${PRECISION} km grid, pairs within twice the range:\n  ${rows.join("\n  ")}`,
    );
  });
});

describe("addressBucketKey", () => {
  it("keys IPv6 by its /64, IPv4 (mapped and NAT64 too) by the address, anything else as it is", () => {
    const cases: [string, string][] = [
      ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
      ["2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"],
      ["2001:db8::", "2001:db8:0:0::/64"],
      ["2001:db8:1::5", "2001:db8:1:0::/64"],
      ["::1", "0:0:0:0::/64"],
      ["fe80::1%eth0", "fe80:0:0:0::/64"],
      ["::ffff:192.0.2.7", "192.0.2.7"],
      ["::ffff:c000:207", "192.0.2.7"],
      ["64:ff9b::198.51.100.3", "198.51.100.3"],
      ["192.0.2.7", "192.0.2.7"],
      ["", ""],
      ["not an address", "not an address"],
    ];
    for (const [address, key] of cases) expect(addressBucketKey(address), address).toBe(key);
  });
});
