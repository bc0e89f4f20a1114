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
