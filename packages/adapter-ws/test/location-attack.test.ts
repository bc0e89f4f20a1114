// The location attack, as strong as we can write it: an attacker with as many guest
// connections as it likes locates waiting users through "did I get matched?". For each victim it
// binary-searches its own range from three probe points (the distance to the victim as the
// server sees it), trilaterates, and then, knowing the public grid (`locationGrid`), probes each
// nearby cell with the smallest range to find the victim's cell exactly. With exact matching
// (precision 0) that locates a victim to metres; with the grid, the best it can say is the
// centre of the victim's cell. That is also the most any attack can learn: everything the service
// tells anyone about a waiting user (who is matched, `distanceKm`, the order of matches) is
// computed from the snapped point and the rounded range alone (packages/core/src/privacy.ts), so
// two users in one cell answer every probe alike. The test checks that the attack finds the cell
// of every victim, i.e. that it reaches that bound, and that the bound is over 1 km.
import type { Store, WhisperOptions } from "@whisperchat/core";
import { haversineKm, locationGrid } from "@whisperchat/core";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import { redisUp, testRedisStore } from "../../store-redis/test/redis.js";
import { startWsHarness, type WsHarness } from "./harness.js";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CENTRE = { lat: 52.5, lng: 13.4 };
const KM_LAT = 111.195;
const kmLng = (lat: number) => KM_LAT * Math.cos((lat * Math.PI) / 180);
/** A point `dx` km east and `dy` km north of `from`. */
const offset = (from: { lat: number; lng: number }, dx: number, dy: number) => ({
  lat: from.lat + dy / KM_LAT,
  lng: from.lng + dx / kmLng(from.lat),
});

/**
 * Victim `i`'s place in the unit square: the R2 low-discrepancy sequence, so that the victims
 * are the same every run and spread evenly over the cells.
 */
const spread = (i: number): [number, number] => [(0.5 + i * 0.7548776662) % 1, (0.5 + i * 0.569840291) % 1];

/** What the attacker can do: one throwaway guest connection per probe. */
class Attacker {
  joins = 0;
  constructor(
    private readonly h: WsHarness,
    private readonly victim: TestClient,
  ) {}

  /** Whether a join at `at` with `rangeKm` is matched (with the victim, the only one waiting). */
  async probe(at: { lat: number; lng: number }, rangeKm: number): Promise<boolean> {
    this.joins++;
    // One user id for all probes: a probe left in the pool must never match the next probe.
    const c = await this.h.connect({ token: "attacker" });
    await expectFrame(c, "welcome");
    c.send({ type: "join", location: at, rangeKm, id: "j" });
    c.send({ type: "ping", id: "p" });
    let matched = false;
    for (;;) {
      const f = await c.next(5000);
      if (f.type === "matched") matched = true;
      if (f.type === "pong") break;
    }
    await c.close();
    if (matched) {
      // The victim is told, and goes back in the pool as a waiting user would.
      await expectFrame(this.victim, "matched");
      await expectFrame(this.victim, "partner_left");
      this.victim.send({ type: "next" });
      await expectFrame(this.victim, "waiting");
    }
    return matched;
  }

  /** The smallest range (to `tolKm`) at which a probe from `at` is matched: the distance as the server sees it. */
  async distanceFrom(at: { lat: number; lng: number }, maxKm: number, tolKm: number): Promise<number> {
    let lo = 0;
    let hi = maxKm;
    if (!(await this.probe(at, hi))) return Number.POSITIVE_INFINITY;
    while (hi - lo > tolKm) {
      const mid = (lo + hi) / 2;
      if (await this.probe(at, mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  }
}

/** Least-squares position from distances to known points (local plane around CENTRE). */
function trilaterate(anchors: { lat: number; lng: number }[], dists: number[]): { lat: number; lng: number } {
  const xy = anchors.map((p) => [(p.lng - CENTRE.lng) * kmLng(CENTRE.lat), (p.lat - CENTRE.lat) * KM_LAT]);
  let best = { x: 0, y: 0, err: Number.POSITIVE_INFINITY };
  // A coarse then fine grid search of the residual: robust, and plenty fast for 3 anchors.
  for (const [span, stepKm] of [
    [60, 0.5],
    [2, 0.01],
  ] as const) {
    const cx = best.err === Number.POSITIVE_INFINITY ? 0 : best.x;
    const cy = best.err === Number.POSITIVE_INFINITY ? 0 : best.y;
    for (let x = cx - span; x <= cx + span; x += stepKm) {
      for (let y = cy - span; y <= cy + span; y += stepKm) {
        let err = 0;
        xy.forEach(([ax = 0, ay = 0], i) => {
          err += (Math.hypot(x - ax, y - ay) - (dists[i] as number)) ** 2;
        });
        if (err < best.err) best = { x, y, err };
      }
    }
  }
  return offset(CENTRE, best.x, best.y);
}

/** Locates one victim; resolves the estimate and how many joins it took. */
async function locate(h: WsHarness, victim: TestClient, precisionKm: number) {
  const attacker = new Attacker(h, victim);
  const anchors = [offset(CENTRE, -25, -20), offset(CENTRE, 25, -20), offset(CENTRE, 0, 25)];
  const dists: number[] = [];
  for (const a of anchors)
    dists.push(await attacker.distanceFrom(a, 80, precisionKm > 0 ? precisionKm / 4 : 0.005));
  let estimate = trilaterate(anchors, dists);
  if (precisionKm > 0) {
    // The grid is public: probe every cell near the estimate with the smallest range; only the
    // victim's own cell can match (neighbouring cell centres are farther apart than that).
    const grid = locationGrid(precisionKm);
    const cells = new Map<string, { lat: number; lng: number }>();
    for (let dx = -3 * precisionKm; dx <= 3 * precisionKm; dx += precisionKm / 3) {
      for (let dy = -3 * precisionKm; dy <= 3 * precisionKm; dy += precisionKm / 3) {
        const p = offset(estimate, dx, dy);
        const c = grid.obfuscate(p.lat, p.lng, 1);
        cells.set(`${c.lat},${c.lng}`, { lat: c.lat, lng: c.lng });
      }
    }
    const byNearness = [...cells.values()].sort(
      (a, b) =>
        haversineKm(a.lat, a.lng, estimate.lat, estimate.lng) -
        haversineKm(b.lat, b.lng, estimate.lat, estimate.lng),
    );
    for (const cell of byNearness) {
      if (await attacker.probe(cell, precisionKm)) {
        estimate = cell;
        break;
      }
    }
  }
  return { estimate, joins: attacker.joins };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function attack(store: Store, precisionKm: number, victims: number) {
  const options: Partial<WhisperOptions> = {
    store,
    locationPrecisionKm: precisionKm,
    maxRangeKm: 100,
    // The attacker has all the addresses and connections it wants: limits are not the defence here.
    connectRate: { capacity: 1e6, ratePerSec: 1e6 },
    churnRate: { capacity: 1e6, ratePerSec: 1e6 },
    guestChurnPerAddress: { capacity: 1e6, ratePerSec: 1e6 },
    requestRate: { capacity: 1e6, ratePerSec: 1e6 },
    authenticate: (_handshake, token) =>
      token === "attacker" ? { userId: "attacker", name: "A", roles: [] } : null,
  };
  const h = await startWsHarness(options, {}, { closeStore: false });
  cleanups.push(() => h.close());
  const errors: number[] = [];
  let joins = 0;
  let cellsFound = 0;
  const grid = locationGrid(precisionKm);
  for (let i = 0; i < victims; i++) {
    const [u, v] = spread(i);
    const at = offset(CENTRE, (u - 0.5) * 30, (v - 0.5) * 30);
    const victim = await h.connect();
    await expectFrame(victim, "welcome");
    victim.send({ type: "join", location: at, rangeKm: 60 });
    await expectFrame(victim, "waiting");
    const found = await locate(h, victim, precisionKm);
    joins += found.joins;
    errors.push(haversineKm(at.lat, at.lng, found.estimate.lat, found.estimate.lng));
    const cell = grid.obfuscate(at.lat, at.lng, 1);
    if (haversineKm(cell.lat, cell.lng, found.estimate.lat, found.estimate.lng) < 0.001) cellsFound++;
    await victim.close();
  }
  return { median: median(errors), min: Math.min(...errors), joinsPerVictim: joins / victims, cellsFound };
}

const stores: ["memory" | "redis", () => Store][] = [["memory", () => createMemoryStore()]];
if (redisUp) stores.push(["redis", () => testRedisStore(cleanups)]);

describe.each(stores)("the location attack (%s store)", (kind, makeStore) => {
  it("with the default precision (2.5 km), the median error over victims stays above 1 km", async () => {
    const victims = kind === "memory" ? 24 : 12;
    const r = await attack(makeStore(), 2.5, victims);
    console.info(
      `location attack, ${kind} store, precision 2.5 km: median error ${r.median.toFixed(2)} km, minimum ${r.min.toFixed(2)} km, ${r.joinsPerVictim.toFixed(0)} joins per victim, cell found for ${r.cellsFound} of ${victims} victims`,
    );
    expect(r.cellsFound).toBe(victims); // the attack is as good as any can be
    expect(r.median).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("the same attack against exact matching (precision 0) locates victims to within metres", async () => {
    const r = await attack(makeStore(), 0, 3);
    console.info(
      `location attack, ${kind} store, precision 0: median error ${(r.median * 1000).toFixed(0)} m, ${r.joinsPerVictim.toFixed(0)} joins per victim`,
    );
    expect(r.median).toBeLessThan(0.1);
  }, 120_000);
});
