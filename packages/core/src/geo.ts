/** Mean Earth radius in kilometres (IUGG). */
export const EARTH_RADIUS_KM = 6371.0088;

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;
/** Padding added to index boxes so that floating-point rounding never excludes a boundary point. */
const PAD_DEG = 1e-9;

/**
 * Great-circle distance between two points in kilometres (haversine formula).
 */
export function haversineKm(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const dLat = (lat2 - lat1) * RAD;
  const dLng = (lng2 - lng1) * RAD;
  const s1 = Math.sin(dLat / 2);
  const s2 = Math.sin(dLng / 2);
  const h = s1 * s1 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * s2 * s2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * A distance rounded UP to a whole kilometre, at least 1: what a partner is shown when the hub
 * has no location grid (`locationPrecisionKm: 0`); with one, the grid's coarser steps apply
 * (privacy.ts, docs/protocol.md "Location privacy").
 */
export function publicDistanceKm(distanceKm: number): number {
  return Math.max(1, Math.ceil(distanceKm));
}

/**
 * An axis-aligned box in degrees, in the field names rbush uses: x is longitude, y latitude.
 */
export interface GeoBox {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/**
 * The boxes (one, or two when the range crosses the antimeridian) that contain every point
 * within `rangeKm` of (`lat`, `lng`). A range reaching a pole spans all longitudes. The boxes
 * are a superset: an exact distance check must follow a box hit.
 */
export function rangeBoxes(lat: number, lng: number, rangeKm: number): GeoBox[] {
  const r = rangeKm / EARTH_RADIUS_KM; // angular radius, radians
  if (r >= Math.PI) return [{ minX: -180, minY: -90, maxX: 180, maxY: 90 }];
  const dLat = r * DEG;
  const minY = lat - dLat - PAD_DEG;
  const maxY = lat + dLat + PAD_DEG;
  if (minY <= -90 || maxY >= 90) {
    return [{ minX: -180, minY: Math.max(-90, minY), maxX: 180, maxY: Math.min(90, maxY) }];
  }
  // Widest longitude reached by the circle (tangent points): asin(sin r / cos lat).
  const ratio = Math.sin(r) / Math.cos(lat * RAD);
  if (ratio >= 1) return [{ minX: -180, minY, maxX: 180, maxY }];
  const dLng = Math.asin(ratio) * DEG + PAD_DEG;
  const minX = lng - dLng;
  const maxX = lng + dLng;
  if (minX < -180) {
    return [
      { minX: -180, minY, maxX, maxY },
      { minX: minX + 360, minY, maxX: 180, maxY },
    ];
  }
  if (maxX > 180) {
    return [
      { minX, minY, maxX: 180, maxY },
      { minX: -180, minY, maxX: maxX - 360, maxY },
    ];
  }
  return [{ minX, minY, maxX, maxY }];
}
