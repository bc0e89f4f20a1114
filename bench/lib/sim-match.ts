/**
 * The matching simulation of `bench/sim-10m.ts`: sessions arrive in the sampled cities, join,
 * wait, get matched (the matcher's rule of `packages/core/src/matcher.ts`: distance within both
 * ranges, the longest-waiting eligible candidate first, ties nearest; the last partner excluded
 * as `next` does), chat, join again, give up, leave. Time-stepped by the second; the events of
 * one second are run in a random order at evenly spread times within it. Everything lives in
 * typed arrays indexed by a session slot; waiting sessions sit in a grid per level of the pool
 * (0.1°, 1° and 10° cells: finer than the store's cells, only to search fast).
 */
import { EARTH_RADIUS_KM } from "@whisperchat/core";
import { cellOf, LEVELS, levelOf, searchCells } from "./sim-cells.js";
import {
  AliasTable,
  type City,
  CLASSES,
  classOf,
  daily,
  drawRange,
  drawRangeGroup,
  exponential,
  jitter,
  jitterRadiusKm,
  localHour,
  poisson,
  RANGE_GROUPS,
} from "./sim-world.js";

/** The behaviour assumed for every session. */
export interface Behaviour {
  /** Mean session length (exponential), s. */
  sessionMeanS: number;
  /** Mean chat length (exponential), s: then both members join again (`next`, and the partner's rejoin). */
  chatMeanS: number;
  /** Patience while waiting: log-uniform between these, s. */
  patienceMinS: number;
  patienceMaxS: number;
  /** After giving up, idle this long (uniform) before joining again, s. */
  retryMinS: number;
  retryMaxS: number;
  /** Messages each member of a room sends per second. */
  msgPerUserPerS: number;
  /** A room keeps at most this many messages (the hub's default `historyLimit`). */
  historyLimit: number;
}

export interface MatchRun {
  seed: number;
  rand: () => number;
  /** The sampled cities (indexes into `cities`). */
  sampled: Int32Array;
  cities: readonly City[];
  /** Concurrent users per inhabitant at the daily curve's 1.0. */
  perCapita: number;
  /** UTC time (seconds since midnight) of simulated time 0. */
  t0Utc: number;
  warmS: number;
  measureS: number;
  tailS: number;
  behaviour: Behaviour;
  log: (line: string) => void;
}

/** Outcome of a join, kept (sampled) per class and range group for the load estimate. */
export interface OutcomeSample {
  /** 0: claimed a waiting partner (the searcher), 1: was claimed while waiting, 2: left the pool unmatched. */
  kind: Uint8Array;
  /** For kind 0: the partner's offset (degrees) and range (km). */
  dLat: Float32Array;
  dLng: Float32Array;
  partnerRange: Float32Array;
  size: number;
  seen: number;
}

export interface Snapshot {
  t: number;
  utcHour: number;
  sessions: number;
  waiting: number;
  inRooms: number;
  rooms: number;
  /** Mean messages in a room's history at this time (rooms' ages × message rate, capped). */
  meanHistory: number;
  /** Expected concurrency of the sampled cities by the daily curve. */
  expected: number;
  sessionsByClass: number[];
}

export interface MatchResult {
  joins: number[][];
  matched: number[][];
  gaveUp: number[][];
  left: number[][];
  /** Wait histograms in 0.1 s bins (last bin: 600 s and more), by class, by range group, all. */
  histByClass: Float64Array[];
  histByGroup: Float64Array[];
  histAll: Float64Array;
  /** Claims by the searcher's class: within one cell, across cells. */
  claimSame: number[];
  claimCross: number[];
  /** Pool commands the joins of the window made (exact cell layout), by step. */
  commands: { add: number; search: number; claim: number; remove: number; searchCells: number };
  samples: OutcomeSample[];
  snapshots: Snapshot[];
}

const HIST_BINS = 6001;

/** Adds `v` to `a[i]`. */
export function inc(a: number[] | Float64Array, i: number, v: number): void {
  a[i] = (a[i] as number) + v;
}
const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;
const TWO24 = 2 ** 24;
const GRID_DEG = [0.1, 1, 10];
const MAX_TIER = LEVELS.map((l) => l.maxTierKm);
const EV_JOIN = 0;
const EV_GIVEUP = 1;
const EV_CHAT_END = 2;
const EV_SESSION_END = 3;
const S_FREE = 0;
const S_IDLE = 1;
const S_WAITING = 2;
const S_ROOM = 3;
const RESERVOIR = 8000;

export function simulateMatching(run: MatchRun): MatchResult {
  const { rand, cities, sampled, behaviour: b, log } = run;
  const NC = CLASSES.length;
  const NG = RANGE_GROUPS.length;
  const total = run.warmS + run.measureS + run.tailS;
  const windowStart = run.warmS;
  const windowEnd = run.warmS + run.measureS;

  // Sampled cities, dense arrays.
  const n = sampled.length;
  const cLat = new Float64Array(n);
  const cLng = new Float64Array(n);
  const cPop = new Float64Array(n);
  const cCls = new Uint8Array(n);
  const cRad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = cities[sampled[i] as number] as City;
    cLat[i] = c.lat;
    cLng[i] = c.lng;
    cPop[i] = c.population;
    cCls[i] = classOf(c.population);
    cRad[i] = jitterRadiusKm(c.population);
  }
  const target = (i: number, t: number) =>
    run.perCapita * (cPop[i] as number) * daily(localHour(cLng[i] as number, run.t0Utc + t));
  let expected0 = 0;
  for (let i = 0; i < n; i++) expected0 += target(i, 0);

  // Session slots.
  let cap = Math.ceil(expected0 * 1.6) + 10_000;
  if (cap >= TWO24) throw new Error("too many sessions for the event encoding: sample fewer cells");
  let LAT = new Float64Array(cap);
  let LNG = new Float64Array(cap);
  let COS = new Float64Array(cap);
  let RANGE = new Float64Array(cap);
  let CLS = new Uint8Array(cap);
  let GRP = new Uint8Array(cap);
  let LVL = new Uint8Array(cap);
  let STATE = new Uint8Array(cap);
  let GEN = new Uint32Array(cap);
  let SINCE = new Float64Array(cap);
  let END = new Float64Array(cap);
  let PARTNER = new Int32Array(cap);
  let LAST = new Int32Array(cap);
  let ROOM_AT = new Float64Array(cap);
  let GIDX = new Int32Array(cap);
  let GPOS = new Int32Array(cap);
  let COUNTED = new Uint8Array(cap);
  const free: number[] = [];
  let hi = 0;
  const grow = () => {
    const next = Math.min(TWO24 - 1, cap * 2);
    const g64 = (a: Float64Array) => {
      const x = new Float64Array(next);
      x.set(a);
      return x;
    };
    const gU8 = (a: Uint8Array) => {
      const x = new Uint8Array(next);
      x.set(a);
      return x;
    };
    const gI32 = (a: Int32Array) => {
      const x = new Int32Array(next);
      x.set(a);
      return x;
    };
    LAT = g64(LAT);
    LNG = g64(LNG);
    COS = g64(COS);
    RANGE = g64(RANGE);
    CLS = gU8(CLS);
    GRP = gU8(GRP);
    LVL = gU8(LVL);
    STATE = gU8(STATE);
    const gen = new Uint32Array(next);
    gen.set(GEN);
    GEN = gen;
    SINCE = g64(SINCE);
    END = g64(END);
    PARTNER = gI32(PARTNER);
    LAST = gI32(LAST);
    ROOM_AT = g64(ROOM_AT);
    GIDX = gI32(GIDX);
    GPOS = gI32(GPOS);
    COUNTED = gU8(COUNTED);
    cap = next;
  };

  // Grids of waiting sessions, per level.
  const GRID: (number[] | undefined)[][] = GRID_DEG.map((g) => new Array((180 / g) * (360 / g)));
  const NB = GRID_DEG.map((g) => Math.round(180 / g));
  const NCOL = GRID_DEG.map((g) => Math.round(360 / g));
  const gridIndex = (L: number, lat: number, lng: number) => {
    const g = GRID_DEG[L] as number;
    const band = Math.min(Math.max(Math.floor((lat + 90) / g), 0), (NB[L] as number) - 1);
    const nc = NCOL[L] as number;
    const col = ((Math.floor((lng + 180) / g) % nc) + nc) % nc;
    return band * nc + col;
  };
  const insert = (s: number) => {
    const L = LVL[s] as number;
    const idx = gridIndex(L, LAT[s] as number, LNG[s] as number);
    const grid = GRID[L] as (number[] | undefined)[];
    let list = grid[idx];
    if (list === undefined) {
      list = [];
      grid[idx] = list;
    }
    GIDX[s] = idx;
    GPOS[s] = list.length;
    list.push(s);
  };
  const removeFromGrid = (s: number) => {
    const list = (GRID[LVL[s] as number] as (number[] | undefined)[])[GIDX[s] as number] as number[];
    const last = list.pop() as number;
    if (last !== s) {
      const pos = GPOS[s] as number;
      list[pos] = last;
      GPOS[last] = pos;
    }
  };

  const search = (s: number): number => {
    const lat = LAT[s] as number;
    const lng = LNG[s] as number;
    const cosLat = COS[s] as number;
    const r = RANGE[s] as number;
    const lastS = LAST[s] as number;
    let best = -1;
    let bestSince = Number.POSITIVE_INFINITY;
    let bestD = Number.POSITIVE_INFINITY;
    for (let L = 0; L < 3; L++) {
      const R = Math.min(r, MAX_TIER[L] as number);
      const g = GRID_DEG[L] as number;
      const nb = NB[L] as number;
      const nc = NCOL[L] as number;
      const theta = Math.min(R / EARTH_RADIUS_KM, Math.PI);
      const dLat = theta * DEG;
      const minLat = lat - dLat;
      const maxLat = lat + dLat;
      let whole = minLat <= -90 || maxLat >= 90;
      let dLng = 180;
      if (!whole) {
        const ratio = Math.sin(theta) / cosLat;
        if (ratio >= 1) whole = true;
        else dLng = Math.asin(ratio) * DEG;
      }
      const b0 = Math.max(0, Math.floor((minLat + 90) / g));
      const b1 = Math.min(nb - 1, Math.floor((maxLat + 90) / g));
      let c0 = 0;
      let span = nc;
      if (!whole) {
        c0 = Math.floor((lng - dLng + 180) / g);
        span = Math.min(Math.floor((lng + dLng + 180) / g) - c0 + 1, nc);
      }
      const grid = GRID[L] as (number[] | undefined)[];
      const latSlack = dLat + 1e-9;
      for (let band = b0; band <= b1; band++) {
        const row = band * nc;
        for (let k = 0; k < span; k++) {
          const list = grid[row + ((((c0 + k) % nc) + nc) % nc)];
          if (list === undefined) continue;
          for (let j = 0; j < list.length; j++) {
            const c = list[j] as number;
            if (c === s) continue;
            const clat = LAT[c] as number;
            if (Math.abs(clat - lat) > latSlack) continue;
            const s1 = Math.sin(((clat - lat) * RAD) / 2);
            const s2 = Math.sin((((LNG[c] as number) - lng) * RAD) / 2);
            const h = s1 * s1 + cosLat * (COS[c] as number) * s2 * s2;
            const d = 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
            if (d > r || d > (RANGE[c] as number)) continue;
            if (c === lastS || LAST[c] === s) continue;
            const sc = SINCE[c] as number;
            if (sc < bestSince || (sc === bestSince && d < bestD)) {
              best = c;
              bestSince = sc;
              bestD = d;
            }
          }
        }
      }
    }
    return best;
  };

  // Statistics.
  const zeros = () => Array.from({ length: NC }, () => new Array<number>(NG).fill(0));
  const res: MatchResult = {
    joins: zeros(),
    matched: zeros(),
    gaveUp: zeros(),
    left: zeros(),
    histByClass: Array.from({ length: NC }, () => new Float64Array(HIST_BINS)),
    histByGroup: Array.from({ length: NG }, () => new Float64Array(HIST_BINS)),
    histAll: new Float64Array(HIST_BINS),
    claimSame: new Array<number>(NC).fill(0),
    claimCross: new Array<number>(NC).fill(0),
    commands: { add: 0, search: 0, claim: 0, remove: 0, searchCells: 0 },
    samples: Array.from({ length: NC * NG }, () => ({
      kind: new Uint8Array(RESERVOIR),
      dLat: new Float32Array(RESERVOIR),
      dLng: new Float32Array(RESERVOIR),
      partnerRange: new Float32Array(RESERVOIR),
      size: 0,
      seen: 0,
    })),
    snapshots: [],
  };
  const noop = () => {};
  const sample = (s: number, kind: number, dLat: number, dLng: number, pr: number) => {
    const o = res.samples[(CLS[s] as number) * NG + (GRP[s] as number)] as OutcomeSample;
    o.seen++;
    let at = o.size;
    if (o.size < RESERVOIR) o.size++;
    else {
      at = Math.floor(rand() * o.seen);
      if (at >= RESERVOIR) return;
    }
    o.kind[at] = kind;
    o.dLat[at] = dLat;
    o.dLng[at] = dLng;
    o.partnerRange[at] = pr;
  };
  const matchedStat = (s: number, wait: number) => {
    if (COUNTED[s] === 0) return;
    const c = CLS[s] as number;
    const g = GRP[s] as number;
    inc(res.matched[c] as number[], g, 1);
    const bin = Math.min(HIST_BINS - 1, Math.floor(wait * 10));
    inc(res.histByClass[c] as Float64Array, bin, 1);
    inc(res.histByGroup[g] as Float64Array, bin, 1);
    inc(res.histAll, bin, 1);
  };
  const unmatchedStat = (s: number, gaveUp: boolean) => {
    if (COUNTED[s] === 0) return;
    const c = CLS[s] as number;
    const g = GRP[s] as number;
    inc((gaveUp ? res.gaveUp : res.left)[c] as number[], g, 1);
    res.commands.remove += 2;
    sample(s, 2, 0, 0, 0);
  };

  // Events: one list per second; an event is slot + 2^24 * (type + 4 * (generation mod 2^20)).
  const wheel: number[][] = Array.from({ length: total + 1 }, () => []);
  const schedule = (at: number, now: number, type: number, s: number) => {
    const sec = Math.max(Math.floor(now) + 1, Math.floor(at));
    if (sec > total) return;
    (wheel[sec] as number[]).push(s + TWO24 * (type + 4 * ((GEN[s] as number) & 0xfffff)));
  };
  const patience = () => b.patienceMinS * (b.patienceMaxS / b.patienceMinS) ** rand();

  const join = (s: number, t: number) => {
    if (t >= (END[s] as number)) return;
    STATE[s] = S_WAITING;
    GEN[s] = (GEN[s] as number) + 1;
    SINCE[s] = t;
    const counted = t >= windowStart && t < windowEnd;
    COUNTED[s] = counted ? 1 : 0;
    if (counted) {
      inc(res.joins[CLS[s] as number] as number[], GRP[s] as number, 1);
      res.commands.add += 2;
      const cells = searchCells(LAT[s] as number, LNG[s] as number, RANGE[s] as number, noop);
      // The add script searches the newcomer's own cell: one search script fewer.
      res.commands.search += cells - 1;
      res.commands.searchCells += cells;
    }
    insert(s);
    const c = search(s);
    if (c < 0) {
      schedule(t + patience(), t, EV_GIVEUP, s);
      return;
    }
    removeFromGrid(s);
    removeFromGrid(c);
    matchedStat(s, 0);
    matchedStat(c, t - (SINCE[c] as number));
    if (counted) {
      const same =
        cellOf(LVL[s] as number, LAT[s] as number, LNG[s] as number) ===
        cellOf(LVL[c] as number, LAT[c] as number, LNG[c] as number);
      if (same) inc(res.claimSame, CLS[s] as number, 1);
      else inc(res.claimCross, CLS[s] as number, 1);
      // Across cells: reserve, take, commit, and the two directory keys' DEL.
      res.commands.claim += same ? 1 : 5;
      sample(
        s,
        0,
        (LAT[c] as number) - (LAT[s] as number),
        (LNG[c] as number) - (LNG[s] as number),
        RANGE[c] as number,
      );
    }
    if (COUNTED[c] === 1) sample(c, 1, 0, 0, 0);
    for (const x of [s, c]) {
      STATE[x] = S_ROOM;
      GEN[x] = (GEN[x] as number) + 1;
      ROOM_AT[x] = t;
    }
    PARTNER[s] = c;
    PARTNER[c] = s;
    LAST[s] = c;
    LAST[c] = s;
    schedule(t + exponential(b.chatMeanS, rand), t, EV_CHAT_END, s);
  };

  const create = (city: number, t: number) => {
    let s: number;
    if (free.length > 0) s = free.pop() as number;
    else {
      if (hi >= cap) grow();
      s = hi++;
    }
    const p = { lat: 0, lng: 0 };
    jitter(cLat[city] as number, cLng[city] as number, cRad[city] as number, rand, p);
    LAT[s] = p.lat;
    LNG[s] = p.lng;
    COS[s] = Math.cos(p.lat * RAD);
    const g = drawRangeGroup(rand);
    const r = drawRange(g, rand);
    GRP[s] = g;
    RANGE[s] = r;
    LVL[s] = levelOf(r);
    CLS[s] = cCls[city] as number;
    STATE[s] = S_IDLE;
    GEN[s] = (GEN[s] as number) + 1;
    LAST[s] = -1;
    COUNTED[s] = 0;
    END[s] = t + exponential(b.sessionMeanS, rand);
    if ((END[s] as number) <= total)
      (wheel[Math.max(Math.floor(t) + 1, Math.floor(END[s] as number))] as number[]).push(
        s + TWO24 * EV_SESSION_END,
      );
    return s;
  };

  const endSession = (s: number, t: number) => {
    const state = STATE[s] as number;
    if (state === S_WAITING) {
      removeFromGrid(s);
      unmatchedStat(s, false);
    } else if (state === S_ROOM) {
      const p = PARTNER[s] as number;
      STATE[p] = S_IDLE;
      GEN[p] = (GEN[p] as number) + 1;
      join(p, t); // partner_left: the partner joins again
    }
    STATE[s] = S_FREE;
    GEN[s] = (GEN[s] as number) + 1;
    LAST[s] = -1;
    free.push(s);
  };

  // Sessions already there at time 0: each joins within its first minute.
  for (let i = 0; i < n; i++) {
    const k = poisson(target(i, 0), rand);
    for (let j = 0; j < k; j++) {
      const s = create(i, 0);
      schedule(rand() * 60, -1, EV_JOIN, s);
    }
  }
  log(`${hi.toLocaleString("en-US")} sessions at time 0 in ${n.toLocaleString("en-US")} sampled cities`);

  let alias = new AliasTable(new Float64Array(0));
  const weights = new Float64Array(n);
  const started = Date.now();
  for (let sec = 0; sec <= total; sec++) {
    if (sec % 60 === 0) {
      for (let i = 0; i < n; i++) {
        const now = target(i, sec);
        weights[i] = Math.max(0, target(i, sec + 30) / b.sessionMeanS + (target(i, sec + 60) - now) / 60);
      }
      alias = new AliasTable(weights);
      // Snapshot.
      let sessions = 0;
      let waiting = 0;
      let inRooms = 0;
      let hist = 0;
      const byClass = new Array<number>(NC).fill(0);
      for (let s = 0; s < hi; s++) {
        const st = STATE[s] as number;
        if (st === S_FREE) continue;
        sessions++;
        inc(byClass, CLS[s] as number, 1);
        if (st === S_WAITING) waiting++;
        else if (st === S_ROOM) {
          inRooms++;
          if (s < (PARTNER[s] as number))
            hist += Math.min(b.historyLimit, (sec - (ROOM_AT[s] as number)) * 2 * b.msgPerUserPerS);
        }
      }
      let expected = 0;
      for (let i = 0; i < n; i++) expected += target(i, sec);
      res.snapshots.push({
        t: sec,
        utcHour: ((((run.t0Utc + sec) / 3600) % 24) + 24) % 24,
        sessions,
        waiting,
        inRooms,
        rooms: inRooms / 2,
        meanHistory: inRooms > 0 ? hist / (inRooms / 2) : 0,
        expected,
        sessionsByClass: byClass,
      });
      if (sec % 600 === 0)
        log(
          `t=${sec}s sessions ${sessions} waiting ${waiting} rooms ${inRooms / 2} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
        );
    }
    const bucket = wheel[sec] as number[];
    const arrivals = poisson(alias.total, rand);
    for (let a = 0; a < arrivals; a++) {
      const s = create(alias.draw(rand), sec);
      bucket.push(s + TWO24 * (EV_JOIN + 4 * ((GEN[s] as number) & 0xfffff)));
    }
    // Shuffle, then run at evenly spread times within the second.
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const x = bucket[i] as number;
      bucket[i] = bucket[j] as number;
      bucket[j] = x;
    }
    const m = bucket.length;
    for (let i = 0; i < m; i++) {
      const ev = bucket[i] as number;
      const s = ev % TWO24;
      const rest = Math.floor(ev / TWO24);
      const type = rest & 3;
      const gen = rest >>> 2;
      const t = sec + (i + 0.5) / m;
      if (type === EV_SESSION_END) {
        if (STATE[s] !== S_FREE) endSession(s, t);
        continue;
      }
      if (((GEN[s] as number) & 0xfffff) !== gen) continue; // stale
      if (type === EV_JOIN) {
        if (STATE[s] === S_IDLE) join(s, t);
      } else if (type === EV_GIVEUP) {
        if (STATE[s] !== S_WAITING) continue;
        removeFromGrid(s);
        unmatchedStat(s, true);
        STATE[s] = S_IDLE;
        GEN[s] = (GEN[s] as number) + 1;
        schedule(t + b.retryMinS + (b.retryMaxS - b.retryMinS) * rand(), t, EV_JOIN, s);
      } else if (type === EV_CHAT_END) {
        if (STATE[s] !== S_ROOM) continue;
        const p = PARTNER[s] as number;
        STATE[s] = S_IDLE;
        STATE[p] = S_IDLE;
        GEN[s] = (GEN[s] as number) + 1;
        GEN[p] = (GEN[p] as number) + 1;
        // `next` by one member, partner_left for the other: both join again, in random order.
        if (rand() < 0.5) {
          join(s, t);
          join(p, t);
        } else {
          join(p, t);
          join(s, t);
        }
      }
    }
    wheel[sec] = [];
  }
  return res;
}

/** The p-quantile (0..1) of a 0.1 s histogram, in seconds (bin's upper edge). */
export function quantile(hist: Float64Array, p: number): number {
  let total = 0;
  for (const v of hist) total += v;
  if (total === 0) return Number.NaN;
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i] as number;
    if (acc >= p * total) return (i + 1) / 10;
  }
  return hist.length / 10;
}
